package policies

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ferryio/ferry/internal/jsonerr"
)

// Policy is one rule: run a job of Action over the files of Src that match
// Filter, on Schedule. Its YAML and JSON forms use the same keys
// (spec/policies.md); unknown keys are errors.
type Policy struct {
	// Name is unique; [a-z0-9-]{1,63}.
	Name     string   `json:"name"`
	Schedule Schedule `json:"schedule"`
	// Action is load, copy or move.
	Action string `json:"action"`
	Src    string `json:"src"`
	// Dst is the destination of copy and move.
	Dst    string `json:"dst,omitempty"`
	Filter Filter `json:"filter,omitzero"`
	// Options are job options by their REST keys (spec/jobs.md §2), for
	// example {"checkContent": true, "bandwidth": "200MB"}.
	Options map[string]any `json:"options,omitempty"`
}

// Schedule says when a policy runs: Cron or Every, not both.
type Schedule struct {
	// Cron is a cron expression ("0 2 * * *"), evaluated in Timezone.
	Cron string `json:"cron,omitempty"`
	// Every is a fixed interval ("10s", "1h", "1d"), aligned to the Unix
	// epoch.
	Every Text `json:"every,omitempty"`
	// Timezone is an IANA zone name for Cron; default UTC.
	Timezone string `json:"timezone,omitempty"`
	// Overlap says what a run does while the previous one is still going:
	// skip (default), buffer-one, cancel-other or allow-all.
	Overlap string `json:"overlap,omitempty"`
	// CatchupWindow is how late a missed run may still start (after an
	// outage); older ones are dropped. Default: Temporal's (one year);
	// at least 10s.
	CatchupWindow Text `json:"catchupWindow,omitempty"`
	// PauseOnFailure pauses the schedule when a run fails.
	PauseOnFailure bool `json:"pauseOnFailure,omitempty"`
}

// Filter selects the files a run works on; every set rule must match.
type Filter struct {
	// NamePattern is a regular expression the base name must fully match
	// (the job option fileFilterRegx).
	NamePattern string `json:"namePattern,omitempty"`
	// Include and Exclude are globs on the path relative to Src ("**"
	// matches any number of segments).
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// OlderThan keeps files modified at least this long before the run's
	// scheduled time; NewerThan at most this long before it ("720h", "30d").
	OlderThan Text `json:"olderThan,omitempty"`
	NewerThan Text `json:"newerThan,omitempty"`
	// MinSize and MaxSize bound the size ("1KiB", "10GiB", 1024).
	MinSize Text `json:"minSize,omitempty"`
	MaxSize Text `json:"maxSize,omitempty"`
}

// Text is a scalar written as a string or a number (minSize: 1024).
type Text string

// UnmarshalJSON takes a JSON string or number.
func (t *Text) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*t = Text(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, got %s", b)
	}
	*t = Text(n.String())
	return nil
}

// Overlap policies.
const (
	OverlapSkip        = "skip"
	OverlapBufferOne   = "buffer-one"
	OverlapCancelOther = "cancel-other"
	OverlapAllowAll    = "allow-all"
)

// knownKeys lists the keys of each mapping of a policy document, by the
// field path of the mapping ("" is the top level).
var knownKeys = map[string][]string{
	"":         {"name", "schedule", "action", "src", "dst", "filter", "options"},
	"schedule": {"cron", "every", "timezone", "overlap", "catchupWindow", "pauseOnFailure"},
	"filter":   {"namePattern", "include", "exclude", "olderThan", "newerThan", "minSize", "maxSize"},
}

// Parse reads a policy from YAML or JSON (JSON is YAML). The error is a
// *ValidationError listing every unknown key and every value of the wrong
// type; Parse does not check values (see Validate, and Decode for both).
func Parse(data []byte) (Policy, error) {
	var p Policy
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return p, &ValidationError{Problems: []Problem{{Field: "", Message: "not a YAML or JSON document: " + oneLine(err.Error())}}}
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return p, &ValidationError{Problems: []Problem{{Field: "", Message: "want a mapping of policy keys (name, schedule, action, src, …)"}}}
	}
	var problems []Problem
	for _, section := range []string{"", "schedule", "filter"} {
		m := top
		if section != "" {
			v, present := top[section]
			if !present || v == nil {
				continue
			}
			if m, ok = v.(map[string]any); !ok {
				problems = append(problems, Problem{section, "want a mapping"})
				delete(top, section)
				continue
			}
		}
		for _, k := range sortedKeys(m) {
			if !slices.Contains(knownKeys[section], k) {
				problems = append(problems, Problem{join(section, k), fmt.Sprintf("unknown key (known: %s)", strings.Join(knownKeys[section], ", "))})
				delete(m, k)
			}
		}
	}
	// Each known key is decoded on its own, so that one value of the wrong
	// type does not hide the others.
	for _, k := range sortedKeys(top) {
		one, err := json.Marshal(map[string]any{k: top[k]})
		if err != nil {
			problems = append(problems, Problem{k, "cannot be read: " + err.Error()})
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(one))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil {
			problems = append(problems, typeProblem(k, err))
		}
	}
	if len(problems) > 0 {
		return p, &ValidationError{Problems: problems}
	}
	return p, nil
}

// Decode parses and validates a policy document: the error lists every
// problem at once.
func Decode(data []byte) (Policy, error) {
	p, err := Parse(data)
	var ve *ValidationError
	if err != nil && !errors.As(err, &ve) {
		return p, err
	}
	if ve != nil && len(ve.Problems) == 1 && ve.Problems[0].Field == "" {
		return p, ve // not a document at all
	}
	var problems []Problem
	if ve != nil {
		problems = ve.Problems
	}
	problems = append(problems, p.problems()...)
	if len(problems) > 0 {
		return p, &ValidationError{Problems: dedupe(problems)}
	}
	return p, nil
}

// JSON is the policy's canonical JSON form, the document a schedule keeps.
func (p Policy) JSON() string {
	b, err := json.Marshal(p)
	if err != nil {
		// Every field marshals; options come from JSON or YAML scalars.
		panic(fmt.Sprintf("policies: marshal %q: %v", p.Name, err))
	}
	return string(b)
}

func typeProblem(key string, err error) Problem {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "unknown field "); ok {
		if f, err := strconv.Unquote(after); err == nil {
			return Problem{join(key, f), "unknown key"}
		}
	}
	field, text := jsonerr.Describe(err)
	if field == "" {
		field = key
	}
	// Policies are YAML documents as often as JSON ones.
	text = strings.ReplaceAll(text, "an object", "a mapping")
	return Problem{field, oneLine(text)}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func join(section, key string) string {
	if section == "" {
		return key
	}
	return section + "." + key
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
