package integrity

import (
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryio/ferry/api/report"
	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// TestSkipReasonsReachTheReport is issue 11 cases 4 and 8 as a user sees
// them: every skipped entry is counted under its stated reason, and the
// entries skipped because they are not regular files (a named pipe, a
// socket, a dangling symbolic link, a link to a directory) are listed in
// the progress report (verbose TEXT and JSON) like failures, not only in
// the logs. A second copy adds the files already at the destination.
func TestSkipReasonsReachTheReport(t *testing.T) {
	cl := enginetest.NewCluster(t, 1)
	base := t.TempDir()
	src := specialTree(t, base)
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	if err != nil {
		t.Skipf("unix socket: %v", err)
	}
	defer l.Close()
	irregular := map[string]string{
		"pipe":     "not a regular file: named pipe",
		"sock":     "not a regular file: socket",
		"dangling": "not a regular file: dangling symbolic link",
		"dirlink":  "not a regular file: symbolic link to a directory (not followed)",
	}
	dst := "file://" + filepath.Join(base, "dst")
	key := jobs.Key{Type: workflows.JobCopy, Path: "file://" + src, Dst: dst}
	for round, atDst := range []int64{0, 2} {
		st := runJob(t, cl, key, map[string]any{})
		copied := int64(len("regular") + len("inner"))
		if atDst > 0 {
			copied = 0
		}
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: 2 - atDst, skipped: 4 + atDst, bytes: copied})
		want := map[string]int64{}
		for _, r := range irregular {
			want[r] = 1
		}
		if atDst > 0 {
			want["already at the destination"] = atDst
		}
		got := map[string]int64{}
		var sum int64
		for _, s := range st.SkipReasons {
			got[s.Reason] += s.Count
			sum += s.Count
		}
		if sum != st.Skipped || len(got) != len(want) {
			t.Fatalf("round %d: skip reasons %+v, want %v (skipped %d)", round, st.SkipReasons, want, st.Skipped)
		}
		for r, n := range want {
			if got[r] != n {
				t.Fatalf("round %d: skip reasons %+v, want %v", round, st.SkipReasons, want)
			}
		}
		if len(st.SkippedEntries) != len(irregular) {
			t.Fatalf("round %d: skipped entries %+v", round, st.SkippedEntries)
		}
		for _, e := range st.SkippedEntries {
			if irregular[filepath.Base(e.Path)] != e.Reason {
				t.Fatalf("round %d: skipped entry %+v", round, e)
			}
		}
		text, err := report.Renderer{}.Render(st, report.Text, true)
		if err != nil {
			t.Fatal(err)
		}
		for name, r := range irregular {
			for _, line := range []string{"\t\tSkipped, " + r + ": 1\n", "\t\tfile://" + filepath.Join(src, name) + ": " + r + "\n"} {
				if !strings.Contains(text, line) {
					t.Fatalf("round %d: the report lacks %q:\n%s", round, line, text)
				}
			}
		}
		if atDst > 0 && !strings.Contains(text, "\t\tSkipped, already at the destination: 2\n") {
			t.Fatalf("the report lacks the files already at the destination:\n%s", text)
		}
		js, err := report.Renderer{}.Render(st, report.JSON, false)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(js, `"skipReasons":[`) {
			t.Fatalf("the JSON report lacks skipReasons: %s", js)
		}
	}
}
