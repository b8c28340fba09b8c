package worker_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/internal/historystat"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/manifest"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	temporaldev "github.com/ferryio/ferry/temporal-dev"
	"github.com/ferryio/ferry/worker"
	"github.com/ferryio/ferry/workflows"
)

// synthStore is a listing source that generates its names: synth://tree
// holds dirs directories of perDir one-byte files each. Nothing is stored;
// it only lists and stats, for scale simulations of the job engine. It
// exists only in this test binary: no ferry build can reach it.
type synthStore struct {
	dirs, perDir int
	listed       atomic.Int64
}

// The synthetic store holds two trees of the same shape: synth://tree,
// measured, and synth://warm, for the warm-up job.
const (
	synthRoot = "synth://tree"
	synthWarm = "synth://warm"
)

// synthRootOf is the tree uri is in.
func synthRootOf(uri string) string {
	if strings.HasPrefix(uri, synthWarm) {
		return synthWarm
	}
	return synthRoot
}

func (s *synthStore) Scheme() string { return "synth" }

func (s *synthStore) Stat(ctx context.Context, uri string) (storage.Entry, error) {
	rest := strings.TrimPrefix(uri, synthRootOf(uri))
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
	// Each answer is allocated once, at its size, and each name once (its
	// relative path is a part of its URI): the store stands in for a real
	// one and should add as little garbage as it can to what is measured.
	var p storage.ListPage
	answer := func(total int) {
		p.Entries = o.Reuse[:0]
		if n := max(min(limit, total-start), 0); cap(p.Entries) < n {
			p.Entries = make([]storage.Entry, 0, n)
		}
		if end := start + cap(p.Entries); end < total {
			p.Cursor = strconv.Itoa(end)
		}
	}
	root := synthRootOf(uri)
	switch {
	case uri == root && !o.Recursive:
		answer(s.dirs)
		for i := start; i < s.dirs && len(p.Entries) < limit; i++ {
			u := synthName(root, 'd', i, 5, 0, 0)
			p.Entries = append(p.Entries, storage.Entry{URI: u, RelPath: u[len(root)+1:], IsDir: true})
		}
		return p, nil
	case uri == root:
		total := s.dirs * s.perDir
		answer(total)
		for i := start; i < total && len(p.Entries) < limit; i++ {
			u := synthName(root, 'd', i/s.perDir, 5, 'f', i)
			p.Entries = append(p.Entries, storage.Entry{URI: u, RelPath: u[len(root)+1:], Size: 1, Version: "1"})
		}
	default:
		d, err := strconv.Atoi(strings.TrimPrefix(strings.TrimPrefix(uri, root+"/"), "d"))
		if err != nil || d >= s.dirs {
			return storage.ListPage{}, storage.NewError("list", uri, storage.ErrNotFound, nil)
		}
		answer(s.perDir)
		for i := start; i < s.perDir && len(p.Entries) < limit; i++ {
			u := synthName(uri, 'f', d*s.perDir+i, 8, 0, 0)
			p.Entries = append(p.Entries, storage.Entry{URI: u, RelPath: u[len(uri)+1:], Size: 1, Version: "1"})
		}
	}
	s.listed.Add(int64(len(p.Entries)))
	return p, nil
}

// synthName is prefix/<a><x>, x zero-padded to width digits, followed by
// /<b><y> (y to 8 digits) unless b is 0: "synth://tree/d00001/f00010001".
// It allocates only the name.
func synthName(prefix string, a byte, x, width int, b byte, y int) string {
	var buf [128]byte
	padded := func(out []byte, n, width int) []byte {
		var d [20]byte
		digits := strconv.AppendInt(d[:0], int64(n), 10)
		for i := len(digits); i < width; i++ {
			out = append(out, '0')
		}
		return append(out, digits...)
	}
	out := append(append(buf[:0], prefix...), '/', a)
	out = padded(out, x, width)
	if b != 0 {
		out = padded(append(out, '/', b), y, 8)
	}
	return string(out)
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

// synthShape is the synthetic tree of n entries: directories of up to
// 10,000 files.
func synthShape(n int) *synthStore {
	const perDir = 10_000
	return &synthStore{dirs: max(n/perDir, 1), perDir: min(n, perDir)}
}

// The environment of the coordinator process of TestSyntheticDryRunScale.
const (
	envSynthChild     = "FERRY_SYNTH_CHILD"
	envSynthTemporal  = "FERRY_SYNTH_TEMPORAL"
	envSynthNamespace = "FERRY_SYNTH_NAMESPACE"
	envSynthManifests = "FERRY_SYNTH_MANIFESTS"
	envSynthTrace     = "FERRY_SYNTH_TRACE"
	envSynthProfile   = "FERRY_SYNTH_PROFILE"
	synthReady        = "synth coordinator ready"
	synthMeasure      = "measure"
	synthResultPrefix = "synth result "
	synthTracePrefix  = "synth trace "
)

// synthMemory is what the coordinator process measured of itself, in
// bytes: peaks while the first tenth of the entries was listed (…Tenth)
// and over the whole run.
type synthMemory struct {
	// Anon is the process's anonymous resident memory (RssAnon of
	// /proc/self/status): Go heap, stacks and runtime, cgo, everything but
	// the pages of the executable and of files.
	AnonTenth, Anon int64
	// Live is the Go heap that survived the last collection
	// (/gc/heap/live:bytes), HeapGoal the collector's target for the next.
	LiveTenth, Live         int64
	HeapGoalTenth, HeapGoal int64
	// Activities is the most coordinator activities (ListPage, mostly)
	// running at once.
	ActivitiesTenth, Activities int64
	Listed                      int64
	Samples                     int
}

// TestSyntheticDryRunScale is the scale simulation of issue 10: a dry run of
// FERRY_SYNTH_ENTRIES generated entries (10,000,000 for the acceptance run;
// 500,000 by default, for CI) through the whole engine. The coordinator
// (the job workflow's worker and the coordinator activities, which list)
// runs alone in a process of its own: this test binary started again, the
// only binary with the synthetic store; the Temporal server stays in this
// process, so that its memory is not counted. The coordinator samples its
// own memory every 10 ms. It first runs a warm-up dry run of a tree of the
// same shape (a coordinator serves job after job; a fresh process's heap
// grows to the collector's goal during its first collections, whatever
// the job), then the measured one. The test prints entries/s, the
// histories, and the coordinator's peaks after the measured job's first
// tenth of the entries and overall (and the warm-up's, from the process's
// start), and requires, from 10,000,000 entries on, the anonymous memory's
// peak to stay within 10 % of its peak after the first tenth (flat: the
// engine keeps no entries), and every run's history under 10 % of
// Temporal's limits.
func TestSyntheticDryRunScale(t *testing.T) {
	n := 500_000
	if v := os.Getenv("FERRY_SYNTH_ENTRIES"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			t.Fatalf("FERRY_SYNTH_ENTRIES=%q: want a positive number of entries", v)
		}
	}
	src := synthShape(n)
	n = src.dirs * src.perDir

	srv, c := enginetest.StartTemporal(t, temporaldev.Config{})
	coord := startSynthCoordinator(t, n, srv.FrontendAddress(), srv.Namespace())

	svc := jobs.NewService(c, storage.NewResolver(src))
	ctx := context.Background()
	// A coordinator serves job after job: the measured dry run follows a
	// warm-up one of the same tree, so that what is compared is a
	// coordinator at work, after and before the measured job's first tenth,
	// and not the process's start-up (its heap grows to the collector's
	// goal during its first collections, whatever the job).
	if st := synthDryRun(t, c, svc, jobs.Key{Type: workflows.JobLoad, Path: synthWarm}); st.Qualified != int64(n) {
		t.Fatalf("warm-up dry run: %s %q, qualified %d of %d", st.Status, st.Reason, st.Qualified, n)
	}
	warmMem := coord.measure(t)
	key := jobs.Key{Type: workflows.JobLoad, Path: synthRoot}
	start := time.Now()
	st := synthDryRun(t, c, svc, key)
	took := time.Since(start)
	mem := coord.finish(t)
	if st.Qualified != int64(n) {
		t.Fatalf("dry run: %s %q, qualified %d of %d", st.Status, st.Reason, st.Qualified, n)
	}
	hs, err := historystat.Of(ctx, c, key.WorkflowID())
	if err != nil {
		t.Fatal(err)
	}
	// Temporal's limits on one run's history: 51,200 events, 50 MB.
	const eventLimit, byteLimit = 51_200, 50 << 20
	t.Logf("%d entries in %v: %.0f entries/s; %d runs, %d pages", n, took.Round(time.Millisecond), float64(n)/took.Seconds(), hs.Runs, st.PagesListed)
	t.Logf("history: %d events, %d bytes in all runs; per run at most %d events (%.2f%% of %d), %d bytes (%.2f%% of 50 MB)",
		hs.Events, hs.Bytes, hs.MaxRunEvents, 100*float64(hs.MaxRunEvents)/eventLimit, eventLimit, hs.MaxRunBytes, 100*float64(hs.MaxRunBytes)/byteLimit)
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	checked := "must stay within 10 %"
	if n < 10_000_000 {
		checked = "checked from 10,000,000 entries on: a short first tenth sees few collections"
	}
	t.Logf("coordinator process (alone), the warm-up dry run from its start: anonymous memory peak after the first tenth %s -> overall %s (%+.1f%%; Go heap goal %s -> %s)",
		mib(warmMem.AnonTenth), mib(warmMem.Anon), 100*(float64(warmMem.Anon)/float64(warmMem.AnonTenth)-1), mib(warmMem.HeapGoalTenth), mib(warmMem.HeapGoal))
	t.Logf("coordinator process, the measured dry run (%d samples, 10 ms apart), peak after its first tenth -> overall (%s):", mem.Samples, checked)
	t.Logf("  anonymous memory (RssAnon):  %s -> %s (%+.1f%%)", mib(mem.AnonTenth), mib(mem.Anon), 100*(float64(mem.Anon)/float64(mem.AnonTenth)-1))
	t.Logf("  Go live heap after a GC:     %s -> %s", mib(mem.LiveTenth), mib(mem.Live))
	t.Logf("  Go heap goal:                %s -> %s", mib(mem.HeapGoalTenth), mib(mem.HeapGoal))
	t.Logf("  activities running at once:  %d -> %d", mem.ActivitiesTenth, mem.Activities)
	if hs.MaxRunEvents >= eventLimit/10 || hs.MaxRunBytes >= byteLimit/10 {
		t.Errorf("a run's history reached 10%% of Temporal's limits: %d events, %d bytes", hs.MaxRunEvents, hs.MaxRunBytes)
	}
	if n >= 10_000_000 && float64(mem.Anon) > 1.1*float64(mem.AnonTenth) {
		t.Errorf("the coordinator's anonymous memory grew with the listing: peak %s after a tenth, %s overall", mib(mem.AnonTenth), mib(mem.Anon))
	}
}

// synthDryRun runs a dry run of key to its end and returns its last run's
// state (Get follows continue-as-new: no polling query adds work to the
// coordinator being measured).
func synthDryRun(t *testing.T, c client.Client, svc *jobs.Service, key jobs.Key) workflows.JobState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
	defer cancel()
	if _, err := svc.Submit(ctx, key, workflows.Options{DryRun: true, PartialListing: true}); err != nil {
		t.Fatal(err)
	}
	var st workflows.JobState
	if err := c.GetWorkflow(ctx, key.WorkflowID(), "").Get(ctx, &st); err != nil {
		t.Fatalf("dry run of %s: %v", key.Path, err)
	}
	if st.Status != workflows.StatusSucceeded {
		t.Fatalf("dry run of %s: %s %q", key.Path, st.Status, st.Reason)
	}
	return st
}

// synthCoordinator is the coordinator process of TestSyntheticDryRunScale.
type synthCoordinator struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	result chan synthMemory
	done   chan struct{}
	stderr strings.Builder
}

// startSynthCoordinator starts this test binary as the coordinator of the
// server at frontend, with a synthetic tree of n entries, and waits until
// it serves the coordinator's task queue.
func startSynthCoordinator(t *testing.T, n int, frontend, namespace string) *synthCoordinator {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSyntheticCoordinatorProcess$", "-test.timeout=3h")
	cmd.Env = append(os.Environ(), envSynthChild+"="+strconv.Itoa(n), envSynthTemporal+"="+frontend,
		envSynthNamespace+"="+namespace, envSynthManifests+"=file://"+t.TempDir())
	p := &synthCoordinator{cmd: cmd, result: make(chan synthMemory, 1), done: make(chan struct{})}
	var err error
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	trace := os.Getenv(envSynthTrace) != ""
	cmd.Stderr = &p.stderr
	if trace {
		cmd.Stderr = io.MultiWriter(&p.stderr, os.Stderr)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan bool, 1)
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == synthReady && !seen:
				seen = true
				ready <- true
			case strings.HasPrefix(line, synthResultPrefix):
				var m synthMemory
				if json.Unmarshal([]byte(strings.TrimPrefix(line, synthResultPrefix)), &m) == nil {
					p.result <- m
				}
			case trace && strings.HasPrefix(line, synthTracePrefix):
				t.Log(line)
			}
		}
		if !seen {
			ready <- false
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = p.stdin.Close()
		_ = cmd.Process.Kill()
		<-p.done
	})
	if !<-ready {
		<-p.done
		t.Fatalf("the coordinator process did not start:\n%s", p.stderr.String())
	}
	return p
}

// measure asks the coordinator for its measurements so far and starts
// new ones (a line on its standard input).
func (p *synthCoordinator) measure(t *testing.T) synthMemory {
	t.Helper()
	if _, err := io.WriteString(p.stdin, synthMeasure+"\n"); err != nil {
		t.Fatalf("the coordinator process: %v", err)
	}
	return p.wait(t)
}

// finish asks the coordinator for its measurements (closing its standard
// input ends it) and waits for them.
func (p *synthCoordinator) finish(t *testing.T) synthMemory {
	t.Helper()
	_ = p.stdin.Close()
	return p.wait(t)
}

func (p *synthCoordinator) wait(t *testing.T) synthMemory {
	t.Helper()
	select {
	case m := <-p.result:
		return m
	case <-p.done:
		t.Fatalf("the coordinator process ended without its measurements:\n%s", p.stderr.String())
	case <-time.After(time.Minute):
		t.Fatal("the coordinator process did not report its measurements within a minute")
	}
	return synthMemory{}
}

// TestSyntheticCoordinatorProcess is not a test: it is the coordinator
// process of TestSyntheticDryRunScale (this test binary started again with
// FERRY_SYNTH_CHILD set to the number of entries). It serves the
// coordinator's task queue with the real workflow and activities over the
// synthetic store, measures its own memory every 10 ms, and prints the
// measurements when its standard input closes.
func TestSyntheticCoordinatorProcess(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv(envSynthChild))
	if n <= 0 {
		t.Skip("the coordinator process of TestSyntheticDryRunScale")
	}
	c, err := enginetest.Dial(os.Getenv(envSynthTemporal), os.Getenv(envSynthNamespace))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	src := synthShape(n)
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := storage.NewResolver(st, src)
	man, err := manifest.New(res, os.Getenv(envSynthManifests))
	if err != nil {
		t.Fatal(err)
	}
	// A ring of three nodes that a dry run never sends work to.
	var members []ring.Member
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("node-%d", i)
		members = append(members, ring.Member{ID: id, Identity: ring.IdentityFromName(id), Host: "127.0.0.1", TaskQueue: ring.TaskQueueFor(id)})
	}
	rg := ring.New(members, 0)
	var running atomic.Int64
	opts := worker.CoordinatorOptions()
	opts.Interceptors = []interceptor.WorkerInterceptor{&activityGauge{running: &running}}
	w := sdkworker.New(c, workflows.CoordinatorTaskQueue, opts)
	worker.RegisterCoordinator(w, &activities.Coordinator{
		Resolver:  res,
		Placement: worker.RingPlacement{Current: func(context.Context) (*ring.Ring, error) { return rg, nil }},
		Manifests: man,
	})
	// mem is measured from listedBefore entries on (the entries listed by
	// the jobs before the one measured).
	var mem synthMemory
	var listedBefore int64
	var mu sync.Mutex
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/goal:bytes"}, {Name: "/gc/cycles/total:gc-cycles"},
			{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}, {Name: "/memory/classes/heap/free:bytes"},
			{Name: "/memory/classes/heap/stacks:bytes"}, {Name: "/memory/classes/metadata/other:bytes"}, {Name: "/memory/classes/other:bytes"}}
		var cycles uint64
		status := make([]byte, 8<<10)
		trace := os.Getenv(envSynthTrace) != ""
		for i := 0; ; i++ {
			metrics.Read(samples)
			anon, _ := selfRssAnon(status)
			mu.Lock()
			listed := src.listed.Load() - listedBefore
			mem.Samples++
			mem.Listed = listed
			mem.Anon = max(mem.Anon, anon)
			mem.Live = max(mem.Live, int64(samples[0].Value.Uint64()))
			mem.HeapGoal = max(mem.HeapGoal, int64(samples[1].Value.Uint64()))
			mem.Activities = max(mem.Activities, running.Load())
			if listed <= int64(n/10) {
				mem.AnonTenth, mem.LiveTenth, mem.HeapGoalTenth, mem.ActivitiesTenth = mem.Anon, mem.Live, mem.HeapGoal, mem.Activities
			}
			mu.Unlock()
			// The trace has a line after each collection, and every half second.
			if c := samples[2].Value.Uint64(); trace && (c != cycles || i%50 == 0) {
				cycles = c
				m := func(i int) float64 { return float64(samples[i].Value.Uint64()) / (1 << 20) }
				fmt.Printf("%slisted %d anon %.1f live %.1f goal %.1f gc %d activities %d objects %.1f unused %.1f free %.1f stacks %.1f meta %.1f other %.1f\n", synthTracePrefix, listed,
					float64(anon)/(1<<20), m(0), m(1), c, running.Load(), m(3), m(4), m(5), m(6), m(7), m(8))
			}
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Println(synthReady)
	report := func() {
		mu.Lock()
		b, err := json.Marshal(mem)
		mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Println(synthResultPrefix + string(b))
	}
	// A line asks for the measurements so far and starts new ones; the end
	// of the input for the last ones.
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == synthMeasure {
			report()
			mu.Lock()
			mem, listedBefore = synthMemory{}, src.listed.Load()
			mu.Unlock()
		}
	}
	close(stop)
	<-sampled
	w.Stop()
	if path := os.Getenv(envSynthProfile); path != "" {
		// The allocations of the whole run and the heap of the last
		// collection, for go tool pprof.
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	report()
}

// selfRssAnon is this process's anonymous resident memory, in bytes. It
// reads /proc/self/status into buf and allocates nothing else: the
// sampler adds no garbage to the process it measures.
func selfRssAnon(buf []byte) (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	n, err := io.ReadFull(f, buf)
	_ = f.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return 0, err
	}
	_, rest, ok := bytes.Cut(buf[:n], []byte("\nRssAnon:"))
	if !ok {
		return 0, errors.New("no RssAnon in /proc/self/status")
	}
	var kb int64
	for _, c := range bytes.TrimLeft(rest, " \t") {
		if c < '0' || c > '9' {
			break
		}
		kb = kb*10 + int64(c-'0')
	}
	return kb << 10, nil
}

// activityGauge counts the activities running in a worker.
type activityGauge struct {
	interceptor.WorkerInterceptorBase
	running *atomic.Int64
}

func (g *activityGauge) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	a := &gaugedActivity{running: g.running}
	a.Next = next
	return a
}

type gaugedActivity struct {
	interceptor.ActivityInboundInterceptorBase
	running *atomic.Int64
}

func (a *gaugedActivity) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (interface{}, error) {
	a.running.Add(1)
	defer a.running.Add(-1)
	return a.Next.ExecuteActivity(ctx, in)
}
