package tests

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/internal/longpath"
)

// TestDevUnreadableDirectoryFailsAlone: a copy and a load, through the
// ferry CLI against `ferry dev`, of a tree holding one directory that
// cannot be listed (its path is longer than the OS takes, a real error
// whoever runs the test) end FAILED with exact counters: every other file
// done, the directory the one failure, in the failure list with its URI
// and reason; a source that cannot be read at all is refused with one
// line saying why. (Before, the one directory failed the whole job at
// listing.)
func TestDevUnreadableDirectoryFailsAlone(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end in -short mode")
	}
	dataDir := t.TempDir()
	_, c := startFullDev(t, dataDir)
	files := []string{"f0", "a/f1", "a/sub/f2", "z/f3"}
	// tree makes a source of files and one directory too long to open,
	// whose URI it returns too.
	tree := func(t *testing.T) (src, bad string) {
		src = filepath.Join(t.TempDir(), "src")
		for _, rel := range files {
			p := filepath.Join(src, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(rel), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return src, "file://" + filepath.Join(src, longpath.Make(t, src, "deep"))
	}
	src, bad := tree(t)

	// report runs a job to its end through the CLI and returns its JSON
	// report; the CLI exits non-zero for a job that did not succeed.
	report := func(t *testing.T, args ...string) map[string]any {
		t.Helper()
		run := func(args ...string) string {
			cmd := exec.Command(ferrytest.Binary(t), append(args, "--api", c.api)...)
			cmd.Env = append(os.Environ(), "FERRY_DATA_DIR="+dataDir)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil && !strings.Contains(out.String(), "Job State: FAILED") {
				t.Fatalf("ferry %q: %v\n%s\n%s", args, err, out.String(), errb.String())
			}
			return out.String()
		}
		run(append(args, "--submit", "--watch")...)
		var rep map[string]any
		out := run(append(args, "--progress", "--format", "JSON", "--verbose")...)
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("report of %q: %v\n%s", args, err, out)
		}
		return rep
	}
	// failed checks a job's report: FAILED, every file but the bad
	// directory done, and the directory alone in its failure list.
	failed := func(t *testing.T, job, bad string, rep map[string]any) {
		t.Helper()
		if rep["mJobState"] != "FAILED" || rep["qualified"] != float64(len(files)+1) || rep["succeeded"] != float64(len(files)) ||
			rep["skipped"] != 0.0 || rep["failed"] != 1.0 {
			t.Fatalf("%s: report %v", job, rep)
		}
		list, err := os.ReadFile(strings.TrimPrefix(rep["mFailedFileSavedPath"].(string), "file://"))
		if err != nil {
			t.Fatalf("%s: failure list: %v", job, err)
		}
		want := bad + "\tINVALID_PATH\tcould not be listed: invalid path: file name too long\n"
		if string(list) != want {
			t.Fatalf("%s: failure list\n%q\nwant\n%q", job, list, want)
		}
	}
	// arrived checks that dst holds every file and nothing else.
	arrived := func(t *testing.T, dst string) {
		t.Helper()
		got := enginetest.ReadTree(t, dst)
		for _, rel := range files {
			if got[rel] != rel {
				t.Errorf("%s holds %q", rel, got[rel])
			}
		}
		if len(got) != len(files) {
			t.Errorf("the destination holds %d files, want %d", len(got), len(files))
		}
	}

	t.Run("copy", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "dst")
		failed(t, "copy", bad, report(t, "job", "copy", "--src", "file://"+src, "--dst", "file://"+dst))
		arrived(t, dst)
	})
	t.Run("move", func(t *testing.T) {
		src, bad := tree(t)
		dst := filepath.Join(t.TempDir(), "dst")
		failed(t, "move", bad, report(t, "job", "move", "--src", "file://"+src, "--dst", "file://"+dst))
		arrived(t, dst)
		// What could not be listed stays where it is; the rest has moved.
		left, err := longpath.Files(src, strings.TrimPrefix(bad, "file://"+src+"/"))
		if err != nil || len(left) != 1 {
			t.Errorf("below the directory that could not be listed: %q, %v", left, err)
		}
		for _, rel := range files {
			if _, err := os.Stat(filepath.Join(src, rel)); err == nil {
				t.Errorf("%s was moved and is still in the source", rel)
			}
		}
	})
	t.Run("load", func(t *testing.T) {
		failed(t, "load", bad, report(t, "job", "load", "--path", "file://"+src))
	})
	t.Run("dry run", func(t *testing.T) {
		// What the listing could not read, a run would fail: the dry run
		// counts it failed and names it, and changes nothing.
		run := func(args ...string) string {
			cmd := exec.Command(ferrytest.Binary(t), append(args, "--api", c.api)...)
			cmd.Env = append(os.Environ(), "FERRY_DATA_DIR="+dataDir)
			out, _ := cmd.Output()
			return string(out)
		}
		for _, job := range [][]string{{"job", "load", "--path", "file://" + src}, {"job", "copy", "--src", "file://" + src, "--dst", "file://" + filepath.Join(t.TempDir(), "dry")}} {
			run(append(job, "--submit", "--dry-run", "--watch")...)
			var rep map[string]any
			out := run(append(job, "--progress", "--format", "JSON", "--verbose")...)
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%s: report: %v\n%s", job[1], err, out)
			}
			recent, _ := rep["mRecentFailedSubtasksWithReasons"].([]any)
			if rep["mJobState"] != "FAILED" || rep["qualified"] != float64(len(files)+1) || rep["failed"] != 1.0 || rep["succeeded"] != 0.0 ||
				!strings.HasPrefix(rep["reason"].(string), "dry run: nothing was changed") || len(recent) != 1 || recent[0].(map[string]any)["path"] != bad {
				t.Fatalf("%s dry run: report %v", job[1], rep)
			}
		}
	})
	t.Run("unreadable source", func(t *testing.T) {
		// Refused at submit, with one line saying why; one the API takes
		// fails at listing (TestUnreadableSourceFailsTheJob).
		cmd := exec.Command(ferrytest.Binary(t), "job", "load", "--path", bad, "--submit", "--api", c.api)
		cmd.Env = append(os.Environ(), "FERRY_DATA_DIR="+dataDir)
		out, err := cmd.CombinedOutput()
		if msg := string(out); err == nil || !strings.HasPrefix(msg, "ferry: --path: ") || !strings.HasSuffix(msg, ": file name too long\n") || strings.Count(msg, "\n") != 1 {
			t.Fatalf("load of an unreadable source: %v\n%s", err, out)
		}
	})
}
