// Package filter decides which listed entries a job or a policy run works
// on. It is pure: no I/O, no clock. Age cut-offs are measured against a
// reference time that the caller passes in (fixed when a run is submitted),
// so every page of one run, and a replay of it, decides the same way.
//
// The API is three names: Rules (the serialisable settings, carried in job
// options), Compile (validates once, at the edge) and Filter.Keep (called per
// entry by the listing). MatchGlob is exported for callers that match a path
// pattern alone.
package filter

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

// Rules select entries. The zero value keeps every file. Every rule that is
// set must hold for an entry to be kept.
type Rules struct {
	// Include and Exclude are globs on the path relative to the source
	// ("**" matches any number of segments, other segments use path.Match
	// syntax). An entry must match one Include (when any) and no Exclude.
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// OlderThan keeps files modified at least this long before
	// ReferenceTime; NewerThan at most this long before it. 0 is off.
	OlderThan time.Duration `json:"olderThan,omitempty"`
	NewerThan time.Duration `json:"newerThan,omitempty"`
	// MinSize and MaxSize bound the file size in bytes; 0 is off.
	MinSize int64 `json:"minSize,omitempty"`
	MaxSize int64 `json:"maxSize,omitempty"`
	// ReferenceTime is "now" for OlderThan/NewerThan. Age rules are off
	// while it is zero.
	ReferenceTime time.Time `json:"referenceTime,omitzero"`
}

// Entry is what a filter looks at: one listed file.
type Entry struct {
	// Name is the base name; RelPath the path relative to the source.
	Name    string
	RelPath string
	IsDir   bool
	Size    int64
	ModTime time.Time
}

// Filter is a compiled set of rules. Its zero value and nil keep every
// file (and no directory).
type Filter struct {
	rules Rules
	name  *regexp.Regexp
}

// Compile checks the rules and the optional name pattern (a regular
// expression that must match the whole base name) and returns the filter.
// Its error names the bad setting.
func Compile(r Rules, namePattern string) (*Filter, error) {
	f := &Filter{rules: r}
	if namePattern != "" {
		re, err := regexp.Compile("^(?:" + namePattern + ")$")
		if err != nil {
			return nil, fmt.Errorf("fileFilterRegx: %w", err)
		}
		f.name = re
	}
	for _, g := range append(append([]string(nil), r.Include...), r.Exclude...) {
		for _, seg := range strings.Split(g, "/") {
			if seg == "**" {
				continue
			}
			if _, err := path.Match(seg, ""); err != nil {
				return nil, fmt.Errorf("glob %q: %w", g, err)
			}
		}
	}
	if r.MinSize < 0 || r.MaxSize < 0 || (r.MaxSize > 0 && r.MinSize > r.MaxSize) {
		return nil, fmt.Errorf("size bounds: min %d, max %d", r.MinSize, r.MaxSize)
	}
	if r.OlderThan < 0 || r.NewerThan < 0 {
		return nil, fmt.Errorf("age bounds: older than %v, newer than %v", r.OlderThan, r.NewerThan)
	}
	return f, nil
}

// Keep reports whether e qualifies: it is a file and every rule holds.
func (f *Filter) Keep(e Entry) bool {
	if e.IsDir {
		return false
	}
	if f == nil {
		return true
	}
	r := &f.rules
	if f.name != nil && !f.name.MatchString(e.Name) {
		return false
	}
	if r.MinSize > 0 && e.Size < r.MinSize {
		return false
	}
	if r.MaxSize > 0 && e.Size > r.MaxSize {
		return false
	}
	if !r.ReferenceTime.IsZero() {
		age := r.ReferenceTime.Sub(e.ModTime)
		if r.OlderThan > 0 && age < r.OlderThan {
			return false
		}
		if r.NewerThan > 0 && age > r.NewerThan {
			return false
		}
	}
	if len(r.Include) > 0 {
		ok := false
		for _, g := range r.Include {
			if MatchGlob(g, e.RelPath) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, g := range r.Exclude {
		if MatchGlob(g, e.RelPath) {
			return false
		}
	}
	return true
}

// KeepUnread reports whether an entry that could not be read qualifies as
// far as can be told: a file by its name and path (its size and age are
// unknown), a directory (whose files are unknown) when an include glob, if
// any, can match a path below it and no exclude glob leaves out everything
// below it.
func (f *Filter) KeepUnread(e Entry) bool {
	if f == nil {
		return true
	}
	if e.IsDir {
		if len(f.rules.Include) > 0 {
			below := false
			for _, g := range f.rules.Include {
				below = below || mayMatchBelow(strings.Split(g, "/"), strings.Split(e.RelPath, "/"))
			}
			if !below {
				return false
			}
		}
		for _, g := range f.rules.Exclude {
			// Paths of one and two literal "**" segments below it stand
			// for any path below: a glob that matches both ("d/**",
			// "**") leaves out the whole directory; one that matches
			// only some depths ("d/*") may not.
			if MatchGlob(g, e.RelPath+"/**") && MatchGlob(g, e.RelPath+"/**/**") {
				return false
			}
		}
		return true
	}
	r := f.rules
	r.MinSize, r.MaxSize, r.ReferenceTime = 0, 0, time.Time{}
	return (&Filter{rules: r, name: f.name}).Keep(e)
}

// UsesPaths reports whether Keep looks at an entry's relative path (an
// include or exclude glob): a listing that only counts need not build the
// paths otherwise.
func (f *Filter) UsesPaths() bool {
	return f != nil && len(f.rules.Include)+len(f.rules.Exclude) > 0
}

// MatchGlob reports whether rel (a "/"-separated relative path) matches the
// glob g, where "**" stands for any number of whole segments and other
// segments use path.Match syntax.
func MatchGlob(g, rel string) bool {
	return matchSegs(strings.Split(g, "/"), strings.Split(rel, "/"))
}

// mayMatchBelow reports whether the glob pat (in segments) can match some
// path strictly below the directory dir (in segments): its segments match
// dir's as far as either goes, and it goes on below dir, or reaches a "**".
func mayMatchBelow(pat, dir []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" || len(dir) == 0 {
			return true
		}
		if ok, _ := path.Match(pat[0], dir[0]); !ok {
			return false
		}
		pat, dir = pat[1:], dir[1:]
	}
	return false // the glob ends at dir or above it
}

func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(segs); i++ {
				if matchSegs(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}
