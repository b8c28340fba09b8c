package copymove

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// TestBenchCopyLocal measures a copy job local → local through the engine
// (three nodes, the real workflow and CopyBatch) against cp -r of the same
// tree into a fresh directory on the same disk, in the same process run,
// back to back: 20,000 files of 16 KiB, then 8 files of 256 MiB. It is
// opt-in:
//
//	FERRY_BENCH=1 go test ./tests/copymove -run Bench -v -timeout 30m
//
// FERRY_BENCH_DIR puts the trees on another disk (default: the test's
// temporary directory); FERRY_BENCH_ROUNDS repeats each measurement
// (default 2, alternating which of cp and Ferry goes first);
// FERRY_BENCH_ONLY="16 KiB" or "256 MiB" runs one workload;
// FERRY_BENCH_BATCH sets the job's batchSize (default: the job default).
func TestBenchCopyLocal(t *testing.T) {
	if os.Getenv("FERRY_BENCH") == "" {
		t.Skip("set FERRY_BENCH=1 to run the copy benchmark")
	}
	base := t.TempDir()
	if d := os.Getenv("FERRY_BENCH_DIR"); d != "" {
		var err error
		if base, err = os.MkdirTemp(d, "ferry-bench-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(base) })
	}
	rounds := 2
	if r := os.Getenv("FERRY_BENCH_ROUNDS"); r != "" {
		if _, err := fmt.Sscan(r, &rounds); err != nil || rounds < 1 {
			t.Fatalf("FERRY_BENCH_ROUNDS=%q", r)
		}
	}
	batch := os.Getenv("FERRY_BENCH_BATCH")
	cl := enginetest.NewCluster(t, 3)

	var report []string
	for _, w := range []struct {
		name  string
		files int
		size  int
	}{
		{"20,000 × 16 KiB", 20_000, 16 << 10},
		{"8 × 256 MiB", 8, 256 << 20},
	} {
		if only := os.Getenv("FERRY_BENCH_ONLY"); only != "" && !strings.Contains(w.name, only) {
			continue
		}
		src := filepath.Join(base, fmt.Sprintf("src-%d", w.files))
		writeBenchTree(t, src, w.files, w.size)
		bytes := int64(w.files) * int64(w.size)
		t.Logf("%s: ring owners (where a load would place them) %v", w.name, filesPerNode(t, cl, src))
		n := 0
		fresh := func(what string) string {
			n++
			return filepath.Join(base, fmt.Sprintf("dst-%d-%s-%d", w.files, what, n))
		}
		// Warm-up: the source in the page cache, cp and the engine's
		// workers and connections busy once, on the real tree.
		readAll(t, src)
		cpCopy(t, src, fresh("warm-cp"))
		ferryCopy(t, cl, src, fresh("warm-ferry"), batch, w.files)

		var cpBest, ferryBest time.Duration
		for r := 0; r < rounds; r++ {
			order := []string{"cp", "ferry"}
			if r%2 == 1 {
				order = []string{"ferry", "cp"}
			}
			for _, who := range order {
				var d time.Duration
				if who == "cp" {
					d = cpCopy(t, src, fresh("cp"))
					if cpBest == 0 || d < cpBest {
						cpBest = d
					}
				} else {
					d = ferryCopy(t, cl, src, fresh("ferry"), batch, w.files)
					if ferryBest == 0 || d < ferryBest {
						ferryBest = d
					}
				}
				t.Logf("%s round %d %-5s %8.3fs  %9.0f files/s  %8.1f MB/s", w.name, r+1, who, d.Seconds(),
					float64(w.files)/d.Seconds(), float64(bytes)/1e6/d.Seconds())
			}
		}
		line := fmt.Sprintf("%-16s cp -r %7.3fs %9.0f files/s %7.1f MB/s | ferry %7.3fs %9.0f files/s %7.1f MB/s | ferry/cp throughput %.2f",
			w.name, cpBest.Seconds(), float64(w.files)/cpBest.Seconds(), float64(bytes)/1e6/cpBest.Seconds(),
			ferryBest.Seconds(), float64(w.files)/ferryBest.Seconds(), float64(bytes)/1e6/ferryBest.Seconds(),
			cpBest.Seconds()/ferryBest.Seconds())
		report = append(report, line)
	}
	t.Logf("best of %d rounds each:\n%s", rounds, strings.Join(report, "\n"))
}

// writeBenchTree writes files of size bytes under dir, 1,000 per
// subdirectory.
func writeBenchTree(t *testing.T, dir string, files, size int) {
	t.Helper()
	for i := 0; i < files; i++ {
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i/1000), fmt.Sprintf("f%06d.bin", i))
		if i%1000 == 0 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(p, content(i, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Write the tree out now, so that its writeback does not land in a
	// measurement.
	if out, err := exec.Command("sync").CombinedOutput(); err != nil {
		t.Fatalf("sync: %v %s", err, out)
	}
}

func readAll(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(io.Discard, f)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func cpCopy(t *testing.T, src, dst string) time.Duration {
	t.Helper()
	start := time.Now()
	if out, err := exec.Command("cp", "-r", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -r: %v %s", err, out)
	}
	return time.Since(start)
}

// ferryCopy runs a copy job and returns the time from submit to the end of
// the workflow.
func ferryCopy(t *testing.T, cl *enginetest.Cluster, src, dst, batch string, files int) time.Duration {
	t.Helper()
	key := jobs.Key{Type: workflows.JobCopy, Path: "file://" + src, Dst: "file://" + dst}
	raw := map[string]any{}
	if batch != "" {
		raw["batchSize"] = batch
	}
	opts, err := jobs.ParseOptions(workflows.JobCopy, raw)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	if _, err := cl.Svc.Submit(ctx, key, opts); err != nil {
		t.Fatal(err)
	}
	var st workflows.JobState
	if err := cl.Client.GetWorkflow(ctx, key.WorkflowID(), "").Get(ctx, &st); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	if st.Status != workflows.StatusSucceeded || st.Succeeded != int64(files) {
		t.Fatalf("copy: %s (%s), %d of %d files succeeded: %+v", st.Status, st.Reason, st.Succeeded, files, st.RecentFailures)
	}
	return d
}

// filesPerNode counts the files of the tree under dir that each node owns
// on the ring: a batch copies its files one after the other, so the node
// with the most work bounds a job of a few large files.
func filesPerNode(t *testing.T, cl *enginetest.Cluster, dir string) map[string]int {
	t.Helper()
	r, err := cl.Ring(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		m, _ := r.Owner("file://" + p)
		out[m.ID]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
