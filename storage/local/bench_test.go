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
	var listCPU, walkCPU []time.Duration
	list := func(context.Context) (time.Duration, error) {
		return timed(&listCPU, func() error {
			n, cursor := 0, ""
			var reuse []storage.Entry
			for {
				p, err := s.List(ctx, "file://"+root, storage.ListOptions{Recursive: true, Cursor: cursor, Reuse: reuse})
				if err != nil {
					return err
				}
				n += len(p.Entries)
				reuse = p.Entries
				if cursor = p.Cursor; cursor == "" {
					break
				}
			}
			if n != want {
				return fmt.Errorf("listed %d entries, want %d", n, want)
			}
			return nil
		})
	}
	walk := func(context.Context) (time.Duration, error) {
		return timed(&walkCPU, func() error {
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
			return err
		})
	}
	res, err := abbench.Run(ctx, abbench.Options{Pairs: max(b.N, 3)}, list, walk)
	if err != nil {
		b.Fatal(err)
	}
	// The first run of each side is its warm-up.
	perEntry := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 / want }
	cpuList, cpuWalk := perEntry(median(listCPU[1:])), perEntry(median(walkCPU[1:]))
	b.ReportMetric(perEntry(res.MedianA()), "list-µs/entry")
	b.ReportMetric(perEntry(res.MedianB()), "walk-µs/entry")
	b.ReportMetric(cpuList, "list-cpu-µs/entry")
	b.ReportMetric(cpuWalk, "walk-cpu-µs/entry")
	res.Report(b)
	b.Logf("%s; CPU per entry: list %.2f µs, walk+lstat %.2f µs (medians)", res.Summary("list", "walk+lstat"), cpuList, cpuWalk)
}

// timed runs f and returns its wall time; it appends the CPU time (user
// and system) this process spent meanwhile to *cpu.
func timed(cpu *[]time.Duration, f func() error) (time.Duration, error) {
	cpuNow := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	start, startCPU := time.Now(), cpuNow()
	err := f()
	wall := time.Since(start)
	*cpu = append(*cpu, cpuNow()-startCPU)
	return wall, err
}

func median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	return s[len(s)/2]
}
