package worker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// synthStore is a listing source that generates its names: synth://tree
// holds dirs directories of perDir one-byte files each. Nothing is stored;
// it only lists and stats, for scale simulations of the job engine.
type synthStore struct {
	dirs, perDir int
	listed       atomic.Int64
}

const synthRoot = "synth://tree"

func (s *synthStore) Scheme() string { return "synth" }

func (s *synthStore) Stat(ctx context.Context, uri string) (storage.Entry, error) {
	rest := strings.TrimPrefix(uri, synthRoot)
	if rest == "" || strings.HasPrefix(rest, "/d") && !strings.Contains(rest[1:], "/") {
		return storage.Entry{URI: uri, IsDir: true}, nil
	}
	return storage.Entry{URI: uri, Size: 1, Version: "1"}, nil
}

// List pages by index; the cursor is the index of the next entry.
func (s *synthStore) List(ctx context.Context, uri string, o storage.ListOptions) (storage.ListPage, error) {
	start := 0
	if o.Cursor != "" {
		n, err := strconv.Atoi(o.Cursor)
		if err != nil {
			return storage.ListPage{}, fmt.Errorf("%w: cursor %q", storage.ErrInvalidPath, o.Cursor)
		}
		start = n
	}
	limit := o.Limit
	if limit <= 0 {
		limit = 1000
	}
	var p storage.ListPage
	switch {
	case uri == synthRoot && !o.Recursive:
		for i := start; i < s.dirs && len(p.Entries) < limit; i++ {
			name := fmt.Sprintf("d%05d", i)
			p.Entries = append(p.Entries, storage.Entry{URI: synthRoot + "/" + name, RelPath: name, IsDir: true})
		}
		if end := start + len(p.Entries); end < s.dirs {
			p.Cursor = strconv.Itoa(end)
		}
		return p, nil
	case uri == synthRoot:
		total := s.dirs * s.perDir
		for i := start; i < total && len(p.Entries) < limit; i++ {
			rel := fmt.Sprintf("d%05d/f%08d", i/s.perDir, i)
			p.Entries = append(p.Entries, storage.Entry{URI: synthRoot + "/" + rel, RelPath: rel, Size: 1, Version: "1"})
		}
		if end := start + len(p.Entries); end < total {
			p.Cursor = strconv.Itoa(end)
		}
	default:
		d, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(uri, synthRoot+"/"), "d"))
		if err != nil || d >= s.dirs {
			return storage.ListPage{}, storage.NewError("list", uri, storage.ErrNotFound, nil)
		}
		for i := start; i < s.perDir && len(p.Entries) < limit; i++ {
			rel := fmt.Sprintf("f%08d", d*s.perDir+i)
			p.Entries = append(p.Entries, storage.Entry{URI: uri + "/" + rel, RelPath: rel, Size: 1, Version: "1"})
		}
		if end := start + len(p.Entries); end < s.perDir {
			p.Cursor = strconv.Itoa(end)
		}
	}
	s.listed.Add(int64(len(p.Entries)))
	return p, nil
}

var errSynthReadOnly = errors.New("synthetic listing source: list and stat only")

func (s *synthStore) Open(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, errSynthReadOnly
}

func (s *synthStore) Create(context.Context, string, storage.CreateOptions) (storage.Writer, error) {
	return nil, errSynthReadOnly
}
func (s *synthStore) Delete(context.Context, string) error  { return errSynthReadOnly }
func (s *synthStore) MakeDir(context.Context, string) error { return errSynthReadOnly }

// TestSyntheticDryRunScale is the scale simulation of issue 10: a dry run of
// FERRY_SYNTH_ENTRIES generated entries (10,000,000 for the acceptance run)
// through the whole engine. It prints entries/s, the test process's peak
// memory after the first tenth of the entries and overall (heap in use,
// memory from the OS, and the live heap after a collection, which must stay
// within 10 %: flat means the engine keeps no entries), and the histories.
// Opt-in.
func TestSyntheticDryRunScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FERRY_SYNTH_ENTRIES"))
	if n == 0 {
		t.Skip("set FERRY_SYNTH_ENTRIES (e.g. 10000000) to run")
	}
	const perDir = 10_000
	src := &synthStore{dirs: max(n/perDir, 1), perDir: min(n, perDir)}
	n = src.dirs * src.perDir
	cl := enginetest.NewCluster(t, 3, src)
	key := jobs.Key{Type: workflows.JobLoad, Path: synthRoot}

	// Heap in use, and what the Go runtime holds from the OS (Sys less
	// what it released): the process's anonymous memory, Temporal included.
	// The live heap (measured after a collection every second) is what the
	// engine keeps; the peaks of the others include garbage not yet
	// collected, which varies with the collector's timing.
	var peakTenth, peak, osTenth, osPeak, liveTenth, livePeak uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for i := 0; ; i++ {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			osPeak = max(osPeak, ms.Sys-ms.HeapReleased)
			if i%5 == 0 {
				runtime.GC()
				runtime.ReadMemStats(&ms)
				livePeak = max(livePeak, ms.HeapAlloc)
			}
			if src.listed.Load() <= int64(n/10) {
				peakTenth, osTenth, liveTenth = peak, osPeak, livePeak
			}
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	if _, err := cl.Svc.Submit(context.Background(), key, workflows.Options{DryRun: true, PartialListing: true}); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 2*time.Hour)
	took := time.Since(start)
	close(stop)
	<-sampled
	if st.Status != workflows.StatusSucceeded || st.Qualified != int64(n) {
		t.Fatalf("dry run: %s %q, qualified %d of %d", st.Status, st.Reason, st.Qualified, n)
	}
	hs, err := cl.History(context.Background(), key.WorkflowID())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d entries in %v: %.0f entries/s; %d runs, %d pages; largest run history %d bytes (%.2f%% of 50 MB), %d events",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), hs.Runs, st.PagesListed, hs.MaxRunBytes,
		100*float64(hs.MaxRunBytes)/(50<<20), hs.Events)
	t.Logf("heap in use (whole test process, Temporal included): peak %.1f MiB after the first tenth, %.1f MiB overall",
		float64(peakTenth)/(1<<20), float64(peak)/(1<<20))
	t.Logf("memory from the OS (runtime Sys less released): peak %.1f MiB after the first tenth, %.1f MiB overall",
		float64(osTenth)/(1<<20), float64(osPeak)/(1<<20))
	t.Logf("history: %d events, %d bytes in all runs; per run at most %d bytes (%.2f%% of 50 MB)",
		hs.Events, hs.Bytes, hs.MaxRunBytes, 100*float64(hs.MaxRunBytes)/(50<<20))
	t.Logf("live heap after a collection: peak %.1f MiB after the first tenth, %.1f MiB overall",
		float64(liveTenth)/(1<<20), float64(livePeak)/(1<<20))
	if n >= 10_000_000 && float64(livePeak) > 1.1*float64(liveTenth) {
		t.Errorf("the live heap grew with the listing: %.1f MiB after a tenth, %.1f MiB at the end", float64(liveTenth)/(1<<20), float64(livePeak)/(1<<20))
	}
}
