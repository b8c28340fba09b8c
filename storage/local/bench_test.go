package local_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/abbench"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

// BenchmarkListVsWalk lists a fresh tree of 20,000 files (20 directories of
// 1,000) recursively through the store, page by page (A), against the plain
// walk a program would do to learn the same facts: filepath.WalkDir and an
// os.Lstat of each file (B). Both are warmed up, then alternated (A B, B A,
// …) through internal/abbench; the result is the median and min–max of the
// per-pair time ratios A/B, with each side's median time per entry, wall
// and CPU (user and system time of this process: on a busy machine the
// wall clock also counts waiting for a CPU):
//
//	go test -run '^$' -bench ListVsWalk -benchtime 10x ./storage/local/
func BenchmarkListVsWalk(b *testing.B) {
	const dirs, perDir = 20, 1000
	root := b.TempDir()
	for d := range dirs {
		dir := filepath.Join(root, fmt.Sprintf("d%02d", d))
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := range perDir {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%05d", i)), []byte("x"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	s, err := local.New(local.Options{Root: root})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const want = dirs * perDir
	list := func(context.Context) (time.Duration, error) {
		start := time.Now()
		n, cursor := 0, ""
		var reuse []storage.Entry
		for {
			p, err := s.List(ctx, "file://"+root, storage.ListOptions{Recursive: true, Cursor: cursor, Reuse: reuse})
			if err != nil {
				return 0, err
			}
			n += len(p.Entries)
			reuse = p.Entries
			if cursor = p.Cursor; cursor == "" {
				break
			}
		}
		if n != want {
			return 0, fmt.Errorf("listed %d entries, want %d", n, want)
		}
		return time.Since(start), nil
	}
	walk := func(context.Context) (time.Duration, error) {
		start := time.Now()
		n := 0
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			if _, err := os.Lstat(p); err != nil {
				return err
			}
			n++
			return nil
		})
		if err == nil && n != want {
			err = fmt.Errorf("walked %d files, want %d", n, want)
		}
		return time.Since(start), err
	}
	var listCPU, walkCPU []time.Duration
	list, walk = withCPU(list, &listCPU), withCPU(walk, &walkCPU)
	for _, side := range []abbench.Side{list, walk} {
		if _, err := side(ctx); err != nil {
			b.Fatal(err)
		}
	}
	listCPU, walkCPU = nil, nil
	var res abbench.Result
	res.LoadBefore = abbench.LoadAverage()
	b.ResetTimer()
	for i := range b.N {
		da, db, err := abbench.Pair(ctx, i, list, walk)
		if err != nil {
			b.Fatal(err)
		}
		res.Add(da, db)
	}
	b.StopTimer()
	res.LoadAfter = abbench.LoadAverage()
	perEntry := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 / want }
	b.ReportMetric(perEntry(res.MedianA()), "list-µs/entry")
	b.ReportMetric(perEntry(res.MedianB()), "walk-µs/entry")
	b.ReportMetric(perEntry(medianOf(listCPU)), "list-cpu-µs/entry")
	b.ReportMetric(perEntry(medianOf(walkCPU)), "walk-cpu-µs/entry")
	res.Report(b)
	b.Logf("%s; CPU per entry: list %.2f µs, walk+lstat %.2f µs (medians)", res.Summary("list", "walk+lstat"),
		perEntry(medianOf(listCPU)), perEntry(medianOf(walkCPU)))
}

// withCPU wraps a side to append the CPU time (user and system) this
// process spent in each of its runs to *cpu.
func withCPU(side abbench.Side, cpu *[]time.Duration) abbench.Side {
	return func(ctx context.Context) (time.Duration, error) {
		var before, after syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
		d, err := side(ctx)
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
		*cpu = append(*cpu, time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()))
		return d, err
	}
}

func medianOf(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
