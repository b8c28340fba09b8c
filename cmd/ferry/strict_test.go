package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// TestCLIRequestsPassTheStrictAPI sends every form of request the CLI makes
// — each verb, every option flag of each job type, index files — to the
// API, which refuses any field that does not fit its route: none is refused.
func TestCLIRequestsPassTheStrictAPI(t *testing.T) {
	index := filepath.Join(t.TempDir(), "index")
	if err := os.WriteFile(index, []byte("file:///nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	allFlags := func(typ workflows.JobType) []string {
		var args []string
		for _, o := range optionFlags {
			if !o.appliesTo(typ) {
				continue
			}
			switch o.kind {
			case "bool":
				args = append(args, "--"+o.flag)
			case "int":
				args = append(args, "--"+o.flag, "2")
			case "strings":
				args = append(args, "--"+o.flag, "a/**", "--"+o.flag, "b/*")
			default:
				v := map[string]string{"bandwidth": "10MB", "file-filter-regx": ".*", "older-than": "1h", "newer-than": "720h", "min-size": "1", "max-size": "1MB"}[o.flag]
				args = append(args, "--"+o.flag, v)
			}
		}
		return args
	}
	for _, typ := range []workflows.JobType{workflows.JobLoad, workflows.JobCopy, workflows.JobMove} {
		src := newDir(t, "cli-strict-"+string(typ))
		key := jobs.Key{Type: typ, Path: src}
		name := []string{"--path", src}
		if typ != workflows.JobLoad {
			key.Dst = src + "-dst"
			name = []string{"--src", src, "--dst", key.Dst}
		}
		t.Cleanup(func() { stopQuietly(key) })
		job := func(args ...string) []string { return append(append([]string{"job", string(typ)}, name...), args...) }
		ok(t, job(append([]string{"--submit"}, allFlags(typ)...)...)...)
		ok(t, job("--progress", "--verbose", "--format", "JSON")...)
		ok(t, job("--progress")...)
		ok(t, job("--stop")...)
		waitStatus(t, key, workflows.StatusStopped)
		ok(t, "job", "list", "--type", string(typ), "--state", "STOPPED")
	}
	// A job over an index file, named by it.
	dst := newDir(t, "cli-strict-index-dst")
	for _, args := range [][]string{
		{"job", "load", "--index-file", "file://" + index, "--submit"},
		{"job", "copy", "--index-file", "file://" + index, "--dst", dst, "--submit"},
	} {
		out := ok(t, args...)
		if !strings.Contains(out, "successfully submitted") {
			t.Errorf("%v printed %q", args, out)
		}
	}
	stopQuietly(jobs.Key{Type: workflows.JobLoad, Path: "file://" + index})
	stopQuietly(jobs.Key{Type: workflows.JobCopy, Path: "file://" + index, Dst: dst})
}

// TestCLIRefusesContradictingFlags: the CLI has no flag for a field that
// contradicts the job type (src on a load, path on a copy), and refuses
// flags the verb would ignore, with one line and exit 1, before calling
// the API.
func TestCLIRefusesContradictingFlags(t *testing.T) {
	p := newDir(t, "cli-contradict")
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"unknown flag: --src", []string{"job", "load", "--path", p, "--src", p, "--submit"}},
		{"unknown flag: --dst", []string{"job", "load", "--path", p, "--dst", p + "-2", "--submit"}},
		{"unknown flag: --path", []string{"job", "copy", "--path", p, "--src", p, "--dst", p + "-2", "--submit"}},
		{"unknown flag: --replicas", []string{"job", "move", "--src", p, "--dst", p + "-2", "--submit", "--replicas", "2"}},
		{"--verbose and --format go with --progress or --watch", []string{"job", "load", "--path", p, "--stop", "--verbose"}},
		{"--verbose and --format go with --progress or --watch", []string{"job", "load", "--path", p, "--submit", "--format", "JSON"}},
		{"--overwrite applies only with --submit", []string{"job", "copy", "--src", p, "--dst", p + "-2", "--stop", "--overwrite"}},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if code := fails(t, tc.want, tc.args...); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := env.Jobs.Progress(ctx, jobs.Key{Type: workflows.JobLoad, Path: p}); err == nil {
		t.Errorf("a refused command started a job")
	}
}

// TestCLILongAndNonASCIIPaths is issue 18 point 1 (and issue 11 point 3)
// through the CLI: a copy between ~4,000-byte paths that end in non-ASCII
// names submits, reports and stops like any other; a path over
// jobs.MaxPathLength exits 1 with one line naming the flag and the limit.
func TestCLILongAndNonASCIIPaths(t *testing.T) {
	long := func(name string) string {
		d := filepath.Join(t.TempDir(), name)
		for len(d) < 3750 {
			d = filepath.Join(d, strings.Repeat("l", 200))
		}
		d = filepath.Join(d, "ünïcødé dir 日本")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return "file://" + d
	}
	src, dst := long("src"), long("dst")+"/out"
	key := jobs.Key{Type: workflows.JobCopy, Path: src, Dst: dst}
	t.Cleanup(func() { stopQuietly(key) })
	name := []string{"job", "copy", "--src", src, "--dst", dst}
	if out := ok(t, append(name, "--submit", "--bandwidth", "1KB")...); !strings.Contains(out, "successfully submitted") {
		t.Errorf("submit printed %q", out)
	}
	ok(t, append(name, "--progress")...)
	ok(t, append(name, "--stop")...)
	waitStatus(t, key, workflows.StatusStopped)

	tooLong := "file:///" + strings.Repeat("x/", jobs.MaxPathLength/2+10)
	fails(t, "--path", "job", "load", "--path", tooLong, "--submit")
}
