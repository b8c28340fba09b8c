package policies

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// Problem is one thing wrong with a policy; Field is its path in the
// document ("schedule.cron", "filter.minSize", "options.bandwidth").
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem of a policy.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		if p.Field == "" {
			parts[i] = p.Message
		} else {
			parts[i] = p.Field + ": " + p.Message
		}
	}
	return strings.Join(parts, "; ")
}

// Field is the field of the first problem.
func (e *ValidationError) Field() string {
	if len(e.Problems) == 0 {
		return ""
	}
	return e.Problems[0].Field
}

// MinCatchupWindow is the shortest catch-up window Temporal honours.
const MinCatchupWindow = 10 * time.Second

var nameRE = regexp.MustCompile(`^[a-z0-9-]{1,63}$`)

// reservedNames cannot name a policy: they are REST paths of their own.
var reservedNames = []string{"preview"}

// filterOptionKeys are job options that a policy sets through its filter.
var filterOptionKeys = map[string]string{
	"fileFilterRegx": "filter.namePattern", "olderThan": "filter.olderThan", "newerThan": "filter.newerThan",
	"include": "filter.include", "exclude": "filter.exclude", "minSize": "filter.minSize", "maxSize": "filter.maxSize",
}

// Validate checks every field of p and reports every problem at once. It
// does no I/O: whether Src exists is checked when the policy is added.
func (p Policy) Validate() error {
	if problems := p.problems(); len(problems) > 0 {
		return &ValidationError{Problems: problems}
	}
	return nil
}

func (p Policy) problems() []Problem {
	var out []Problem
	add := func(field, format string, args ...any) {
		out = append(out, Problem{field, fmt.Sprintf(format, args...)})
	}

	switch {
	case p.Name == "":
		add("name", "is required")
	case !nameRE.MatchString(p.Name):
		add("name", "%q: want 1 to 63 characters of a-z, 0-9 and -", p.Name)
	case slices.Contains(reservedNames, p.Name):
		add("name", "%q is reserved", p.Name)
	}

	s := p.Schedule
	switch {
	case s.Cron == "" && s.Every == "":
		add("schedule", "needs cron or every")
	case s.Cron != "" && s.Every != "":
		add("schedule", "takes cron or every, not both")
	case s.Cron != "":
		if err := checkCron(s.Cron); err != nil {
			add("schedule.cron", "%v", err)
		}
	default:
		d, err := jobs.ParseDuration(string(s.Every))
		switch {
		case err != nil:
			add("schedule.every", "%v", err)
		case d < time.Second:
			add("schedule.every", "%q: must be at least 1s", s.Every)
		case d%time.Second != 0:
			add("schedule.every", "%q: must be whole seconds", s.Every)
		}
	}
	if s.Timezone != "" {
		if _, err := time.LoadLocation(s.Timezone); err != nil {
			add("schedule.timezone", "%q is not a known time zone (want an IANA name such as UTC or Europe/Paris)", s.Timezone)
		}
	}
	if _, err := overlapPolicy(s.Overlap); err != nil {
		add("schedule.overlap", "%v", err)
	}
	if s.CatchupWindow != "" {
		d, err := jobs.ParseDuration(string(s.CatchupWindow))
		switch {
		case err != nil:
			add("schedule.catchupWindow", "%v", err)
		case d < MinCatchupWindow:
			add("schedule.catchupWindow", "%q: must be at least %v", s.CatchupWindow, MinCatchupWindow)
		}
	}

	t := workflows.JobType(p.Action)
	keyOK := false
	switch {
	case p.Action == "":
		add("action", "is required (load, copy or move)")
	case !t.Valid():
		add("action", "%q: want load, copy or move", p.Action)
	default:
		key := jobs.Key{Type: t, Path: p.Src, Dst: p.Dst}
		if err := key.Validate(); err != nil {
			var ie *jobs.InputError
			if errors.As(err, &ie) {
				field := ie.Field
				if field == "path" {
					field = "src"
				}
				add(field, "%s", ie.Message)
			} else {
				add("src", "%v", err)
			}
		} else {
			keyOK = true
		}
	}

	f := p.Filter
	if f.NamePattern != "" {
		if _, err := regexp.Compile(f.NamePattern); err != nil {
			add("filter.namePattern", "%q is not a regular expression: %v", f.NamePattern, err)
		}
	}
	for i, g := range f.Include {
		if err := jobs.ValidateGlob(g); err != nil {
			add(fmt.Sprintf("filter.include[%d]", i), "%v", err)
		}
	}
	for i, g := range f.Exclude {
		if err := jobs.ValidateGlob(g); err != nil {
			add(fmt.Sprintf("filter.exclude[%d]", i), "%v", err)
		}
	}
	older := checkDuration(f.OlderThan, "filter.olderThan", add)
	newer := checkDuration(f.NewerThan, "filter.newerThan", add)
	if older > 0 && newer > 0 && newer <= older {
		add("filter.newerThan", "%q is not longer than olderThan %q: no file can match", f.NewerThan, f.OlderThan)
	}
	minSize := checkSize(f.MinSize, "filter.minSize", add)
	maxSize := checkSize(f.MaxSize, "filter.maxSize", add)
	if minSize > 0 && maxSize > 0 && minSize > maxSize {
		add("filter.minSize", "%q is larger than maxSize %q", f.MinSize, f.MaxSize)
	}

	optsOK := true
	for _, k := range sortedKeys(p.Options) {
		if where, ok := filterOptionKeys[k]; ok {
			add("options."+k, "set it as %s", where)
			optsOK = false
		}
	}
	if t.Valid() && optsOK {
		// Every option on its own, so that each bad one is reported.
		for _, k := range sortedKeys(p.Options) {
			if _, err := jobs.ParseOptions(t, map[string]any{k: p.Options[k]}); err != nil {
				add("options."+k, "%s", optionMessage(err))
				optsOK = false
			}
		}
	}
	if len(out) == 0 && keyOK && optsOK {
		// The combination, as a run will parse it.
		if _, err := p.jobOptions(); err != nil {
			var oe *jobs.OptionError
			if errors.As(err, &oe) {
				add(optionField(oe.Option), "%s", oe.Message)
			} else {
				add("options", "%v", err)
			}
		}
	}
	return out
}

func checkDuration(v Text, field string, add func(string, string, ...any)) time.Duration {
	if v == "" {
		return 0
	}
	d, err := jobs.ParseDuration(string(v))
	if err != nil {
		add(field, "%v", err)
	}
	return d
}

func checkSize(v Text, field string, add func(string, string, ...any)) int64 {
	if v == "" {
		return 0
	}
	n, err := jobs.ParseSize(string(v))
	if err != nil {
		add(field, "%v", err)
	}
	return n
}

func optionMessage(err error) string {
	var oe *jobs.OptionError
	if errors.As(err, &oe) {
		return oe.Message
	}
	return err.Error()
}

// optionField is the document field of a job option key.
func optionField(key string) string {
	if f, ok := filterOptionKeys[key]; ok {
		return f
	}
	return "options." + key
}

func dedupe(in []Problem) []Problem {
	seen := map[Problem]bool{}
	var out []Problem
	for _, p := range in {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
