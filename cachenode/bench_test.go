package cachenode_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ferryio/ferry/cachenode"
	"github.com/ferryio/ferry/cachenode/internal/testsource"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/internal/abbench"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

// The benchmarks compare the cache with the plain file system on the same
// bytes, in one run, through the shared A/B runner (internal/abbench): both
// sides warmed up, then alternated pairs (A B, B A, …), reporting the median
// and min–max of the per-pair time ratios A/B and the load average:
//
//	go test -run '^$' -bench . -benchtime 20x ./cachenode/
//
// BenchmarkReadHTTPVsLocal: cached pages served by a node over HTTP on
// loopback (A) against reading the same bytes from plain files (B): 1 MiB
// pages of one file (pread of an open file) and whole 16 KiB files (open,
// read, close); A's p50/p99 latency is reported too.
// BenchmarkFillVsPlainWrite: loading into a page store from an in-memory
// source (A) against writing the same bytes to fresh plain files (B): one
// 64 MiB file, and 1,000 files of 16 KiB.

const (
	benchPage  = 1 << 20
	benchPages = 64
	// benchRound is how many reads one side does in one measured round.
	benchRound = 32
)

func benchData() []byte {
	data := make([]byte, benchPages*benchPage)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	return data
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	if len(l.d) == 0 {
		return
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	pct := func(p float64) float64 {
		return float64(l.d[int(p*float64(len(l.d)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

// readWorkload is what BenchmarkReadHTTPVsLocal reads: objects of size
// bytes, either the pages of one file or whole small files.
type readWorkload struct {
	name    string
	size    int
	objects int
	// smallFiles: each object is its own file, read whole.
	smallFiles bool
}

func (w readWorkload) write(b *testing.B) (dir string, paths []string) {
	dir = b.TempDir()
	if !w.smallFiles {
		p := filepath.Join(dir, "data.bin")
		if err := os.WriteFile(p, benchData()[:w.size*w.objects], 0o644); err != nil {
			b.Fatal(err)
		}
		return dir, []string{p}
	}
	data := make([]byte, w.size)
	for i := range w.objects {
		for j := range data {
			data[j] = byte(i + j*7)
		}
		p := filepath.Join(dir, fmt.Sprintf("f%05d", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	return dir, paths
}

func BenchmarkReadHTTPVsLocal(b *testing.B) {
	for _, w := range []readWorkload{
		{name: "page=1MiB", size: benchPage, objects: benchPages},
		{name: "file=16KiB", size: 16 << 10, objects: 256, smallFiles: true},
	} {
		for _, clients := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/clients=%d", w.name, clients), func(b *testing.B) {
				benchReadHTTPVsLocal(b, w, clients)
			})
		}
	}
}

func benchReadHTTPVsLocal(b *testing.B, w readWorkload, clients int) {
	dir, paths := w.write(b)
	n, err := cachenode.New(cachenode.Config{
		ID: "bench", DataDir: b.TempDir(), HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
		Capacity: 2 * benchPages * benchPage, Resolver: localResolver(b, dir), Telemetry: tel,
		RevalidateAfter: time.Minute, // a hit, not a source stat, is measured
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer n.Stop(context.Background())
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	url := func(i int) string {
		i %= w.objects
		if w.smallFiles {
			uri := "file://" + paths[i]
			return fmt.Sprintf("http://%s/v1/file/%s/page/0?ufsFullPath=%s", n.HTTPAddr(), fileID(uri), uri)
		}
		uri := "file://" + paths[0]
		return fmt.Sprintf("http://%s/v1/file/%s/page/%d?ufsFullPath=%s", n.HTTPAddr(), fileID(uri), i, uri)
	}
	viaHTTP := func(i int, buf []byte) error {
		resp, err := hc.Get(url(i))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		k, err := io.ReadFull(resp.Body, buf)
		if err != nil || k != w.size {
			return fmt.Errorf("read %d bytes: %w", k, err)
		}
		return nil
	}
	var big *os.File
	if !w.smallFiles {
		if big, err = os.Open(paths[0]); err != nil {
			b.Fatal(err)
		}
		defer big.Close()
	}
	local := func(i int, buf []byte) error {
		i %= w.objects
		if big != nil {
			_, err := big.ReadAt(buf, int64(i*w.size))
			return err
		}
		f, err := os.Open(paths[i])
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.ReadFull(f, buf)
		return err
	}
	// Warm-up: every object once each way, so that the rounds measure
	// cache hits and page-cache reads.
	buf := make([]byte, w.size)
	for i := range w.objects {
		if err := viaHTTP(i, buf); err != nil {
			b.Fatal(err)
		}
		if err := local(i, buf); err != nil {
			b.Fatal(err)
		}
	}
	misses := n.PageStore().Stats().Misses
	var lat latencies
	var res abbench.Result
	res.LoadBefore = abbench.LoadAverage()
	b.SetBytes(int64(w.size))
	b.ResetTimer()
	for done := 0; done < b.N; done += benchRound {
		k := min(benchRound, b.N-done)
		da, db, err := abbench.Pair(context.Background(), done/benchRound,
			func(context.Context) (time.Duration, error) {
				return readRound(clients, done, k, w.size, viaHTTP, &lat)
			},
			func(context.Context) (time.Duration, error) { return readRound(clients, done, k, w.size, local, nil) })
		if err != nil {
			b.Fatal(err)
		}
		res.Add(da, db)
	}
	b.StopTimer()
	res.LoadAfter = abbench.LoadAverage()
	if m := n.PageStore().Stats().Misses; m != misses {
		b.Fatalf("%d pages missed after the warm-up", m-misses)
	}
	lat.report(b)
	res.Report(b)
}

// readRound does reads [first, first+k) split over clients goroutines,
// each with its own buffer, and returns the wall time; lat, when set,
// collects each read's latency.
func readRound(clients, first, k, size int, read func(i int, buf []byte) error, lat *latencies) (time.Duration, error) {
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	per := (k + clients - 1) / clients
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, size)
			own := make([]time.Duration, 0, per)
			for i := first + c*per; i < first+min((c+1)*per, k); i++ {
				t := time.Now()
				if err := read(i, buf); err != nil {
					errs <- err
					return
				}
				own = append(own, time.Since(t))
			}
			if lat != nil {
				lat.add(own)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	select {
	case err := <-errs:
		return 0, err
	default:
		return took, nil
	}
}

// fillWorkload is what BenchmarkFillVsPlainWrite writes: files of size
// bytes.
type fillWorkload struct {
	name  string
	files int
	size  int
}

// BenchmarkFillVsPlainWrite alternates, in every iteration, a page-store
// fill of the workload (from an in-memory source) and a plain write of the
// same bytes to fresh files, so that both see the same machine (other
// processes, writeback) and the ratio is fair. The store stays open across
// iterations, as a node's does; each iteration loads new names and evicts
// them afterwards, as the plain side removes its directory.
func BenchmarkFillVsPlainWrite(b *testing.B) {
	for _, w := range []fillWorkload{
		{"large=64MiB", 1, benchPages * benchPage},
		{"small=1000x16KiB", 1000, 16 << 10},
	} {
		b.Run(w.name, func(b *testing.B) { benchFill(b, w) })
	}
}

func benchFill(b *testing.B, w fillWorkload) {
	ctx := context.Background()
	data := benchData()[:w.size]
	mem := testsource.NewMem()
	iteration := 0
	refs := func(it int) []pagestore.FileRef {
		out := make([]pagestore.FileRef, w.files)
		for i := range out {
			out[i] = pagestore.FileRef{URI: fmt.Sprintf("mem://bench/it%d/f%05d", it, i), Size: int64(w.size), Version: "v1"}
		}
		return out
	}
	resolver := storage.NewResolver(mem)
	s, err := pagestore.Open(pagestore.Options{Dir: b.TempDir(), Capacity: 4 * benchPages * benchPage, Resolver: resolver})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()

	fill := func(context.Context) (time.Duration, error) {
		iteration++
		rs := refs(iteration)
		for _, r := range rs {
			mem.PutVersion(r.URI, data, r.Version)
		}
		start := time.Now()
		for _, r := range rs {
			res, err := s.LoadFile(ctx, r, pagestore.LoadOptions{}, nil)
			if err != nil || res.BytesLoaded != int64(w.size) {
				return 0, fmt.Errorf("%+v %w", res, err)
			}
		}
		took := time.Since(start)
		if _, err := s.Evict(ctx, fmt.Sprintf("mem://bench/it%d/", iteration)); err != nil {
			return 0, err
		}
		return took, nil
	}
	plain := func(context.Context) (time.Duration, error) {
		dir := freshDir(b)
		defer removeDir(b, dir)
		start := time.Now()
		for i := range w.files {
			if err := writePlain(filepath.Join(dir, fmt.Sprintf("f%05d", i)), data); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	if _, err := fill(ctx); err != nil { // warm-up
		b.Fatal(err)
	}
	if _, err := plain(ctx); err != nil {
		b.Fatal(err)
	}
	var res abbench.Result
	res.LoadBefore = abbench.LoadAverage()
	b.SetBytes(int64(w.files * w.size))
	b.ResetTimer()
	for i := range b.N {
		da, db, err := abbench.Pair(ctx, i, fill, plain)
		if err != nil {
			b.Fatal(err)
		}
		res.Add(da, db)
	}
	b.StopTimer()
	res.LoadAfter = abbench.LoadAverage()
	mb := float64(w.files*w.size) / 1e6
	b.ReportMetric(mb/res.MedianA().Seconds(), "fill-MB/s")
	b.ReportMetric(mb/res.MedianB().Seconds(), "plain-MB/s")
	res.Report(b)
}

// writePlain writes data to a new file in 1 MiB writes.
func writePlain(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	for off := 0; off < len(data); off += benchPage {
		if _, err := f.Write(data[off:min(off+benchPage, len(data))]); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func localResolver(tb testing.TB, dir string) *storage.Resolver {
	tb.Helper()
	l, err := local.New(local.Options{Root: dir})
	if err != nil {
		tb.Fatal(err)
	}
	return storage.NewResolver(l)
}

// freshDir is a new empty directory for one iteration; removeDir deletes it
// right after, so that gigabytes of dirty pages from earlier iterations do
// not throttle later ones.
func freshDir(b *testing.B) string {
	dir, err := os.MkdirTemp(b.TempDir(), "iter-")
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

func removeDir(b *testing.B, dir string) {
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkReloadVsFill alternates a second load of 1,000 cached 16 KiB
// files (A: every one AlreadyCached, nothing read from the source) with a
// cold load of the same files (B: evicted first, outside the clock): the
// page store's share of "a second load of an unchanged tree".
func BenchmarkReloadVsFill(b *testing.B) {
	ctx := context.Background()
	const files, size = 1000, 16 << 10
	data := benchData()[:size]
	mem := testsource.NewMem()
	refs := make([]pagestore.FileRef, files)
	for i := range refs {
		uri := fmt.Sprintf("mem://bench/reload/f%05d", i)
		mem.Put(uri, data)
		e, err := mem.Stat(ctx, uri) // the version a listing gives
		if err != nil {
			b.Fatal(err)
		}
		refs[i] = pagestore.FileRef{URI: uri, Size: size, Version: e.Version}
	}
	s, err := pagestore.Open(pagestore.Options{Dir: b.TempDir(), Capacity: 4 * benchPages * benchPage, Resolver: storage.NewResolver(mem)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	load := func(want pagestore.Outcome) (time.Duration, error) {
		start := time.Now()
		for _, r := range refs {
			res, err := s.LoadFile(ctx, r, pagestore.LoadOptions{}, nil)
			if err != nil || res.Outcome != want {
				return 0, fmt.Errorf("%+v %w, want %v", res, err, want)
			}
		}
		return time.Since(start), nil
	}
	reload := func(context.Context) (time.Duration, error) {
		read := s.Stats().BytesFromStorage
		d, err := load(pagestore.AlreadyCached)
		if err == nil && s.Stats().BytesFromStorage != read {
			err = fmt.Errorf("a reload read %d bytes from the source", s.Stats().BytesFromStorage-read)
		}
		return d, err
	}
	cold := func(context.Context) (time.Duration, error) {
		if _, err := s.Evict(ctx, "mem://bench/reload/"); err != nil {
			return 0, err
		}
		return load(pagestore.Loaded)
	}
	if _, err := cold(ctx); err != nil { // what the first reload finds
		b.Fatal(err)
	}
	res, err := abbench.Run(ctx, abbench.Options{Pairs: max(b.N, 3)}, reload, cold)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.MedianA().Microseconds())/files, "reload-µs/file")
	b.ReportMetric(float64(res.MedianB().Microseconds())/files, "cold-µs/file")
	res.Report(b)
}

// BenchmarkLoadLargeVsCopy is the page store's share of "8 × 256 MiB load
// at least 90 % of cp -r": A loads large local files into a page store
// (LoadFile, par files at once, as a node's batch does), B copies the same
// files to fresh plain files the way cp does (copy_file_range, one file
// after the other). Both start with the written-back source in the page
// cache: the pages of the previous run are evicted, and dirty pages synced,
// outside the clock. FERRY_BENCH_LARGE_MIB sets the file size (default 256).
//
//	go test -run '^$' -bench LoadLargeVsCopy -benchtime 5x ./cachenode/
func BenchmarkLoadLargeVsCopy(b *testing.B) {
	const files = 8
	size := int64(256)
	if v := os.Getenv("FERRY_BENCH_LARGE_MIB"); v != "" {
		if _, err := fmt.Sscan(v, &size); err != nil || size <= 0 {
			b.Fatalf("FERRY_BENCH_LARGE_MIB=%q: want a positive number of MiB", v)
		}
	}
	size <<= 20
	src := b.TempDir()
	var paths []string
	chunk := benchData()[:benchPage]
	for i := range files {
		p := filepath.Join(src, fmt.Sprintf("big%d", i))
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		for off := int64(0); off < size; off += benchPage {
			binary.BigEndian.PutUint64(chunk, uint64(i)<<32|uint64(off>>20)) // every page differs
			if _, err := f.Write(chunk[:min(benchPage, size-off)]); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		paths = append(paths, p)
	}
	for _, par := range []int{1, 4} {
		b.Run(fmt.Sprintf("files=%dx%dMiB/par=%d", files, size>>20, par), func(b *testing.B) {
			benchLoadLarge(b, src, paths, size, par)
		})
	}
}

func benchLoadLarge(b *testing.B, src string, paths []string, size int64, par int) {
	ctx := context.Background()
	s, err := pagestore.Open(pagestore.Options{Dir: b.TempDir(), Capacity: int64(len(paths))*size + (1 << 30), Resolver: localResolver(b, src)})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	load := func(context.Context) (time.Duration, error) {
		if _, err := s.Evict(ctx, "file://"+src); err != nil {
			return 0, err
		}
		syscall.Sync()
		start := time.Now()
		errs := make(chan error, len(paths))
		next := make(chan string, len(paths))
		for _, p := range paths {
			next <- p
		}
		close(next)
		for range par {
			go func() {
				for p := range next {
					res, err := s.LoadFile(ctx, pagestore.FileRef{URI: "file://" + p}, pagestore.LoadOptions{}, nil)
					if err == nil && res.BytesLoaded != size {
						err = fmt.Errorf("%s: %+v", p, res)
					}
					errs <- err
				}
			}()
		}
		for range paths {
			if err := <-errs; err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	copyFiles := func(context.Context) (time.Duration, error) {
		dir := freshDir(b)
		defer removeDir(b, dir)
		syscall.Sync()
		start := time.Now()
		for i, p := range paths {
			if err := copyPlain(p, filepath.Join(dir, fmt.Sprintf("big%d", i))); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	var loadCPU, copyCPU []time.Duration
	res, err := abbench.Run(ctx, abbench.Options{Pairs: max(b.N, 3)}, withCPU(load, &loadCPU), withCPU(copyFiles, &copyCPU))
	if err != nil {
		b.Fatal(err)
	}
	mb := float64(int64(len(paths))*size) / 1e6
	b.ReportMetric(mb/res.MedianA().Seconds(), "load-MB/s")
	b.ReportMetric(mb/res.MedianB().Seconds(), "copy-MB/s")
	// CPU time (this process, user and system, the whole side: each also
	// removes the previous run's 2 GiB) tells on a busy machine what the
	// wall clock cannot: a side with more threads gets a larger share of a
	// contended CPU.
	b.ReportMetric(medianOf(loadCPU[1:]).Seconds(), "load-cpu-s")
	b.ReportMetric(medianOf(copyCPU[1:]).Seconds(), "copy-cpu-s")
	res.Report(b)
	b.Logf("%s; CPU time: load %v, copy %v (medians)", res.Summary("load", "copy_file_range"),
		medianOf(loadCPU[1:]).Round(time.Millisecond), medianOf(copyCPU[1:]).Round(time.Millisecond))
}

// withCPU wraps a side to append the CPU time (user and system) this
// process spent in each of its runs to *cpu, the warm-up first.
func withCPU(side abbench.Side, cpu *[]time.Duration) abbench.Side {
	return func(ctx context.Context) (time.Duration, error) {
		before := cpuTime()
		d, err := side(ctx)
		*cpu = append(*cpu, cpuTime()-before)
		return d, err
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func medianOf(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// copyPlain copies src to a new file dst as cp does: *os.File to *os.File,
// which io.Copy does with copy_file_range.
func copyPlain(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// BenchmarkCachedCompleteVsLookups is the node's share of a second load of
// an unchanged tree: which of 20,000 small files are cached complete at the
// listed version, answered by one sorted walk of the index (A,
// CachedComplete of a store that remembers no file as complete) against one
// Lookup per file (B). The store has been filled, evicted and refilled
// first, as a benchmark's cold loads leave it. BenchmarkCachedCompleteReload
// compares the walk with the answers from memory.
func BenchmarkCachedCompleteVsLookups(b *testing.B) {
	ctx := context.Background()
	const files, size = 20000, 4 << 10
	mem := testsource.NewMem()
	refs := memFiles(b, mem, "mem://bench/index/", files, size)
	s, err := pagestore.Open(pagestore.Options{Dir: b.TempDir(), Capacity: 1 << 30, Resolver: storage.NewResolver(mem), CompleteFiles: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	loadRounds(b, s, "mem://bench/index/", refs, 2)
	batch := func(context.Context) (time.Duration, error) {
		start := time.Now()
		got, err := s.CachedComplete(refs)
		d := time.Since(start)
		if err == nil && slices.Contains(got, false) {
			err = fmt.Errorf("a cached file reported not cached")
		}
		return d, err
	}
	single := func(context.Context) (time.Duration, error) {
		start := time.Now()
		for _, r := range refs {
			f, ok, err := s.Lookup(r.URI)
			if err != nil {
				return 0, err
			}
			if !ok || f.Version != r.Version || !f.FullyCached() {
				return 0, fmt.Errorf("%s: not cached complete at version %s", r.URI, r.Version)
			}
		}
		return time.Since(start), nil
	}
	res, err := abbench.Run(ctx, abbench.Options{Pairs: max(b.N, 3)}, batch, single)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.MedianA().Nanoseconds())/files, "batch-ns/file")
	b.ReportMetric(float64(res.MedianB().Nanoseconds())/files, "lookup-ns/file")
	res.Report(b)
}

// BenchmarkCachedCompleteReload is CachedFiles' share of a reload as the
// coordinator asks it: 6,700 cached 16 KiB files (one node's share of
// 20,000), asked in calls of 400 refs in a random order, of a store filled
// and then evicted and refilled three times (the index as repeated
// benchmark loads leave it). A answers from the files the store remembers
// as complete (Options.CompleteFiles), B walks the index for every call
// (CompleteFiles < 0). Both stores are opened from copies of the same
// closed store, so their indexes are the same.
//
// "warm": A remembers every file (as after loading them, or after one
// earlier call). "first": both stores are reopened before each run, so A
// walks the index too and remembers what it finds: the first reload after
// a restart.
//
//	go test -run '^$' -bench CachedCompleteReload -benchtime 15x ./cachenode/
func BenchmarkCachedCompleteReload(b *testing.B) {
	ctx := context.Background()
	const files, size, chunk = 6700, 16 << 10, 400
	mem := testsource.NewMem()
	refs := memFiles(b, mem, "mem://bench/reload-index/", files, size)
	dirA := b.TempDir()
	open := func(dir string, completeFiles int) *pagestore.Store {
		s, err := pagestore.Open(pagestore.Options{Dir: dir, Capacity: 1 << 30, Resolver: storage.NewResolver(mem), CompleteFiles: completeFiles})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	s := open(dirA, 0)
	loadRounds(b, s, "mem://bench/reload-index/", refs, 4)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	dirB := b.TempDir()
	if err := copyTree(dirA, dirB); err != nil {
		b.Fatal(err)
	}
	stores := map[string]*pagestore.Store{dirA: open(dirA, 0), dirB: open(dirB, -1)}
	defer func() {
		for _, s := range stores {
			s.Close()
		}
	}()
	r := rand.New(rand.NewPCG(1, 2))
	ask := func(dir string, reopen bool) abbench.Side {
		return func(context.Context) (time.Duration, error) {
			if reopen {
				if err := stores[dir].Close(); err != nil {
					return 0, err
				}
				stores[dir] = open(dir, map[bool]int{true: 0, false: -1}[dir == dirA])
			}
			s := stores[dir]
			order := slices.Clone(refs)
			r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			start := time.Now()
			for i := 0; i < len(order); i += chunk {
				got, err := s.CachedComplete(order[i:min(i+chunk, len(order))])
				if err != nil {
					return 0, err
				}
				if slices.Contains(got, false) {
					return 0, fmt.Errorf("a cached file reported not cached")
				}
			}
			return time.Since(start), nil
		}
	}
	for _, first := range []bool{false, true} {
		b.Run(map[bool]string{false: "warm", true: "first"}[first], func(b *testing.B) {
			res, err := abbench.Run(ctx, abbench.Options{Pairs: max(b.N, 3)}, ask(dirA, first), ask(dirB, first))
			if err != nil {
				b.Fatal(err)
			}
			perFile := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / files }
			b.ReportMetric(perFile(res.MedianA()), "memory-ns/file")
			b.ReportMetric(perFile(slices.Min(res.A)), "memory-min-ns/file")
			b.ReportMetric(perFile(slices.Max(res.A)), "memory-max-ns/file")
			b.ReportMetric(perFile(res.MedianB()), "index-ns/file")
			b.ReportMetric(perFile(slices.Min(res.B)), "index-min-ns/file")
			b.ReportMetric(perFile(slices.Max(res.B)), "index-max-ns/file")
			res.Report(b)
		})
	}
}

// memFiles puts n files of size bytes in mem under prefix, in 20
// directories, and returns them as a listing gives them (with their
// versions).
func memFiles(b *testing.B, mem *testsource.Mem, prefix string, n, size int) []pagestore.FileRef {
	data := benchData()[:size]
	refs := make([]pagestore.FileRef, n)
	for i := range refs {
		uri := fmt.Sprintf("%sd%02d/f%05d", prefix, i%20, i)
		mem.Put(uri, data)
		e, err := mem.Stat(context.Background(), uri)
		if err != nil {
			b.Fatal(err)
		}
		refs[i] = pagestore.FileRef{URI: uri, Size: int64(size), Version: e.Version}
	}
	return refs
}

// loadRounds loads refs into s rounds times, evicting them (by prefix)
// before each round after the first: the index as repeated benchmark loads
// leave it.
func loadRounds(b *testing.B, s *pagestore.Store, prefix string, refs []pagestore.FileRef, rounds int) {
	ctx := context.Background()
	for round := range rounds {
		if round > 0 {
			if _, err := s.Evict(ctx, prefix); err != nil {
				b.Fatal(err)
			}
		}
		for _, r := range refs {
			if _, err := s.LoadFile(ctx, r, pagestore.LoadOptions{}, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// copyTree copies the files under src to dst, which exists.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil || rel == "." {
			return err
		}
		if d.IsDir() {
			return os.Mkdir(filepath.Join(dst, rel), 0o755)
		}
		return copyPlain(p, filepath.Join(dst, rel))
	})
}
