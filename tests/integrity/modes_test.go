package integrity

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// TestCopiesKeepFileModes: a copy or move between file systems keeps each
// file's permission bits exactly, whatever the umask: a 0600 file stays
// private, an executable stays executable, 0666 is not narrowed to 0644.
func TestCopiesKeepFileModes(t *testing.T) {
	cl := enginetest.NewCluster(t, 1)
	modes := map[string]os.FileMode{"private.key": 0o600, "run.sh": 0o755, "shared.txt": 0o666, "group.txt": 0o640, "d/ro.txt": 0o444}
	for _, typ := range []workflows.JobType{workflows.JobCopy, workflows.JobMove} {
		t.Run(string(typ), func(t *testing.T) {
			base := t.TempDir()
			src, dst := filepath.Join(base, "src"), filepath.Join(base, "dst")
			files := map[string]string{}
			for name := range modes {
				files[name] = name
			}
			writeTree(t, src, files)
			for name, m := range modes {
				if err := os.Chmod(filepath.Join(src, name), m); err != nil {
					t.Fatal(err)
				}
			}
			st := runJob(t, cl, jobs.Key{Type: typ, Path: "file://" + src, Dst: "file://" + dst}, nil)
			var n int64
			for name := range modes {
				n += int64(len(name))
			}
			check(t, st, want{status: workflows.StatusSucceeded, succeeded: int64(len(modes)), bytes: n})
			sameFiles(t, "destination", readTree(t, dst), files)
			for name, m := range modes {
				fi, err := os.Stat(filepath.Join(dst, name))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode().Perm() != m {
					t.Errorf("%s arrived with mode %v, the source had %v", name, fi.Mode().Perm(), m)
				}
			}
		})
	}
}
