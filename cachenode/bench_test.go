package cachenode_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/ferryio/ferry/cachenode"
	"github.com/ferryio/ferry/cachenode/internal/testsource"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

// The benchmarks compare the cache with the plain file system on the same
// bytes, in one run:
//
//	go test -run '^$' -bench . -benchtime 2s ./cachenode/
//
// BenchmarkCachedPageReadHTTP vs BenchmarkLocalFileRead: 1 MiB pages served
// by a node over HTTP on loopback (cache warm) against pread of the same
// bytes; both report MB/s and p50/p99 latency. BenchmarkFillVsPlainWrite:
// loading a file into a fresh page store from an in-memory source against
// writing the same bytes to a fresh file, interleaved.

const (
	benchPage  = 1 << 20
	benchPages = 64
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

func benchFile(b *testing.B) (dir, path string) {
	dir = b.TempDir()
	path = filepath.Join(dir, "data.bin")
	if err := os.WriteFile(path, benchData(), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir, path
}

func BenchmarkCachedPageReadHTTP(b *testing.B) {
	for _, clients := range []int{1, 2} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			dir, path := benchFile(b)
			src := localResolver(b, dir)
			n, err := cachenode.New(cachenode.Config{
				ID: "bench", DataDir: b.TempDir(), HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0",
				Capacity: 2 * benchPages * benchPage, Resolver: src, Telemetry: tel,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := n.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer n.Stop(context.Background())
			uri := "file://" + path
			url := func(i int) string {
				return fmt.Sprintf("http://%s/v1/file/%s/page/%d?ufsFullPath=%s", n.HTTPAddr(), fileID(uri), i%benchPages, uri)
			}
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
			read := func(i int, buf []byte) error {
				resp, err := hc.Get(url(i))
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				k, err := io.ReadFull(resp.Body, buf)
				if err != nil || k != benchPage {
					return fmt.Errorf("read %d bytes: %v", k, err)
				}
				return nil
			}
			// Warm-up: every page is fetched once, so the loop measures hits.
			buf := make([]byte, benchPage)
			for i := range benchPages {
				if err := read(i, buf); err != nil {
					b.Fatal(err)
				}
			}
			misses := n.PageStore().Stats().Misses
			measureReads(b, clients, read)
			if m := n.PageStore().Stats().Misses; m != misses {
				b.Fatalf("%d pages missed after the warm-up", m-misses)
			}
		})
	}
}

func BenchmarkLocalFileRead(b *testing.B) {
	for _, clients := range []int{1, 2} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			_, path := benchFile(b)
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, benchPage)
			for i := range benchPages { // warm-up: into the page cache
				if _, err := f.ReadAt(buf, int64(i)*benchPage); err != nil {
					b.Fatal(err)
				}
			}
			measureReads(b, clients, func(i int, buf []byte) error {
				_, err := f.ReadAt(buf, int64(i%benchPages)*benchPage)
				return err
			})
		})
	}
}

// measureReads runs b.N page reads split over clients goroutines, each with
// its own page buffer, and reports throughput and p50/p99 latency.
func measureReads(b *testing.B, clients int, read func(i int, buf []byte) error) {
	var lat latencies
	b.SetBytes(benchPage)
	b.ResetTimer()
	var wg sync.WaitGroup
	per := (b.N + clients - 1) / clients
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, benchPage)
			own := make([]time.Duration, 0, per)
			for i := c * per; i < min((c+1)*per, b.N); i++ {
				start := time.Now()
				if err := read(i, buf); err != nil {
					b.Error(err)
					return
				}
				own = append(own, time.Since(start))
			}
			lat.add(own)
		}()
	}
	wg.Wait()
	b.StopTimer()
	lat.report(b)
}

// BenchmarkFillVsPlainWrite alternates, in every iteration, a page-store
// fill of a 64 MiB file (from an in-memory source, into a fresh store) and a
// plain write of the same bytes to a fresh file, so that both see the same
// machine (other processes, writeback) and the ratio is fair.
func BenchmarkFillVsPlainWrite(b *testing.B) {
	data := benchData()
	mem := testsource.NewMem()
	const uri = "mem://bench/data.bin"
	mem.Put(uri, data)
	resolver := storage.NewResolver(mem)

	fill := func() time.Duration {
		dir := freshDir(b)
		defer removeDir(b, dir)
		s, err := pagestore.Open(pagestore.Options{Dir: dir, Capacity: 2 * benchPages * benchPage, Resolver: resolver})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		start := time.Now()
		res, err := s.LoadFile(context.Background(), pagestore.FileRef{URI: uri}, pagestore.LoadOptions{}, nil)
		took := time.Since(start)
		if err != nil || res.BytesLoaded != int64(len(data)) {
			b.Fatalf("%+v %v", res, err)
		}
		return took
	}
	plain := func() time.Duration {
		dir := freshDir(b)
		defer removeDir(b, dir)
		start := time.Now()
		f, err := os.Create(filepath.Join(dir, "data.bin"))
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += benchPage {
			if _, err := f.Write(data[off : off+benchPage]); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	fill() // warm-up
	plain()
	var fillTime, plainTime time.Duration
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			fillTime += fill()
			plainTime += plain()
		} else {
			plainTime += plain()
			fillTime += fill()
		}
	}
	b.StopTimer()
	mb := float64(b.N) * float64(len(data)) / 1e6
	b.ReportMetric(mb/fillTime.Seconds(), "fill-MB/s")
	b.ReportMetric(mb/plainTime.Seconds(), "plain-MB/s")
	b.ReportMetric(100*plainTime.Seconds()/fillTime.Seconds(), "fill/plain-%")
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
