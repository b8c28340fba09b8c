package filter

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// keepCase is an entry, the rules it is kept by, and whether it is.
type keepCase struct {
	name    string
	rules   Rules
	pattern string
	e       Entry
	want    bool
}

func TestKeep(t *testing.T) {
	ref := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	cases := []keepCase{
		{"zero keeps files", Rules{}, "", Entry{Name: "a", RelPath: "a"}, true},
		{"never directories", Rules{}, "", Entry{Name: "d", IsDir: true}, false},
		{"name pattern whole", Rules{}, `.*\.csv`, Entry{Name: "x.csv"}, true},
		{"name pattern partial is no match", Rules{}, `x`, Entry{Name: "x.csv"}, false},
		{"min size", Rules{MinSize: 10}, "", Entry{Size: 9}, false},
		{"max size", Rules{MaxSize: 10}, "", Entry{Size: 10}, true},
		{"older than", Rules{OlderThan: 2 * day, ReferenceTime: ref}, "", Entry{ModTime: ref.Add(-3 * day)}, true},
		{"not older", Rules{OlderThan: 2 * day, ReferenceTime: ref}, "", Entry{ModTime: ref.Add(-day)}, false},
		{"newer than", Rules{NewerThan: 2 * day, ReferenceTime: ref}, "", Entry{ModTime: ref.Add(-3 * day)}, false},
		{"age off without reference", Rules{OlderThan: 2 * day}, "", Entry{ModTime: ref}, true},
		{"include", Rules{Include: []string{"**/*.log"}}, "", Entry{RelPath: "a/b/c.log"}, true},
		{"include miss", Rules{Include: []string{"**/*.log"}}, "", Entry{RelPath: "a/b/c.txt"}, false},
		{"exclude", Rules{Exclude: []string{"tmp/**"}}, "", Entry{RelPath: "tmp/x/y"}, false},
	}
	for _, c := range cases {
		f, err := Compile(c.rules, c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := f.Keep(c.e); got != c.want {
			t.Errorf("%s: Keep = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestCompileRejects(t *testing.T) {
	for _, c := range []struct {
		rules   Rules
		pattern string
	}{
		{Rules{}, "("},
		{Rules{Include: []string{"a/[b"}}, ""},
		{Rules{MinSize: 5, MaxSize: 4}, ""},
		{Rules{OlderThan: -1}, ""},
	} {
		if _, err := Compile(c.rules, c.pattern); err == nil {
			t.Errorf("Compile(%+v, %q) accepted", c.rules, c.pattern)
		}
	}
}

func TestMatchGlob(t *testing.T) {
	for _, c := range []struct {
		glob, path string
		want       bool
	}{
		{"*.txt", "a.txt", true},
		{"*.txt", "d/a.txt", false},
		{"**/a.txt", "a.txt", true},
		{"d/**", "d/x/y", true},
		{"d/*/y", "d/x/y", true},
	} {
		if got := MatchGlob(c.glob, c.path); got != c.want {
			t.Errorf("MatchGlob(%q, %q) = %v", c.glob, c.path, got)
		}
	}
}

// TestKeepUnread: an entry that could not be read qualifies as far as can
// be told: a file by its name and path only, a directory unless an exclude
// glob leaves out everything below it.
func TestKeepUnread(t *testing.T) {
	ref := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	cases := []keepCase{
		{"no filter", Rules{}, "", Entry{Name: "d", RelPath: "d", IsDir: true}, true},
		{"size and age unknown", Rules{MinSize: 10, OlderThan: time.Hour, ReferenceTime: ref}, "", Entry{Name: "f", RelPath: "f"}, true},
		{"name of a file", Rules{}, `.*\.csv`, Entry{Name: "f.txt", RelPath: "f.txt"}, false},
		{"name of a directory", Rules{}, `.*\.csv`, Entry{Name: "d", RelPath: "d", IsDir: true}, true},
		{"include of a file", Rules{Include: []string{"a/**"}}, "", Entry{Name: "f", RelPath: "b/f"}, false},
		{"exclude of a file", Rules{Exclude: []string{"**/*.tmp"}}, "", Entry{Name: "f.tmp", RelPath: "b/f.tmp"}, false},
		{"exclude of the whole directory", Rules{Exclude: []string{"a/**"}}, "", Entry{Name: "d", RelPath: "a/d", IsDir: true}, false},
		{"exclude of everything", Rules{Exclude: []string{"**"}}, "", Entry{Name: "d", RelPath: "d", IsDir: true}, false},
		{"exclude of one depth", Rules{Exclude: []string{"d/*"}}, "", Entry{Name: "d", RelPath: "d", IsDir: true}, true},
		{"exclude of some names", Rules{Exclude: []string{"d/**/*.tmp"}}, "", Entry{Name: "d", RelPath: "d", IsDir: true}, true},
		{"include elsewhere", Rules{Include: []string{"a/**"}}, "", Entry{Name: "x", RelPath: "b/x", IsDir: true}, false},
		{"include of a top-level file", Rules{Include: []string{"top.txt"}}, "", Entry{Name: "x", RelPath: "b/x", IsDir: true}, false},
		{"include of the directory itself", Rules{Include: []string{"b/x"}}, "", Entry{Name: "x", RelPath: "b/x", IsDir: true}, false},
		{"include one depth too shallow", Rules{Include: []string{"b/*"}}, "", Entry{Name: "x", RelPath: "b/x", IsDir: true}, false},
		{"include below", Rules{Include: []string{"b/*/*.csv"}}, "", Entry{Name: "x", RelPath: "b/x", IsDir: true}, true},
		{"include anywhere", Rules{Include: []string{"**/*.csv"}}, "", Entry{Name: "x", RelPath: "b/x", IsDir: true}, true},
		{"include above it", Rules{Include: []string{"b/**"}}, "", Entry{Name: "y", RelPath: "b/x/y", IsDir: true}, true},
		{"one include of two", Rules{Include: []string{"a/**", "*/x/f"}}, "", Entry{Name: "x", RelPath: "b/x", IsDir: true}, true},
	}
	for _, c := range cases {
		f, err := Compile(c.rules, c.pattern)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.KeepUnread(c.e); got != c.want {
			t.Errorf("%s: KeepUnread = %v, want %v", c.name, got, c.want)
		}
	}
}

// TestMayMatchBelowNeverMissesAPath: for generated globs and directories,
// whenever some path below the directory matches the glob, mayMatchBelow
// says it may (it can only err by keeping a directory).
func TestMayMatchBelowNeverMissesAPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	segs := []string{"a", "b", "c", "*", "**", "?", "[ab]", "*.csv", "x.csv"}
	names := []string{"a", "b", "c", "x.csv", "y.csv", "ab"}
	pick := func(from []string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = from[rng.IntN(len(from))]
		}
		return out
	}
	for i := 0; i < 5000; i++ {
		pat := pick(segs, 1+rng.IntN(4))
		dir := pick(names, 1+rng.IntN(3))
		may := mayMatchBelow(pat, dir)
		for j := 0; j < 30 && !may; j++ {
			below := append(append([]string(nil), dir...), pick(names, 1+rng.IntN(3))...)
			if matchSegs(pat, below) {
				t.Fatalf("glob %q matches %q below %q, but mayMatchBelow says no", strings.Join(pat, "/"), strings.Join(below, "/"), strings.Join(dir, "/"))
			}
		}
	}
}
