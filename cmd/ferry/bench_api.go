package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryio/ferry/api/report"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage/backends"
)

// `ferry bench api` holds a real `ferry dev` under many concurrent clients
// (job listings, progress queries and cache-node range reads) while a large
// load job runs, and reports what the clients saw: requests and latency
// percentiles per route, status codes, the dev process's peak memory, and
// whether the job's counters came out exact.

type benchAPIOptions struct {
	dir, binary    string
	clients        int
	duration       time.Duration
	files          int
	fileSize       string
	rangeFiles     int
	rangeFileSize  string
	rangeLength    string
	bandwidth      string
	burstClients   int
	burstCalls     int
	jobTimeout     time.Duration
	keep           bool
	requestTimeout time.Duration
}

func newBenchAPICommand() *cobra.Command {
	o := &benchAPIOptions{}
	cmd := &cobra.Command{
		Use:   "api",
		Short: "Many concurrent clients on list_job, progress and cache range reads against ferry dev while a large job runs",
		Long: `Starts a real ferry dev (free ports, a fresh data directory) as a child
process, submits a load job of --files files, and for --duration runs --clients
concurrent clients, each cycling through GET /api/v1/master/list_job, a progress
request for the job, and a range read from a cache node. Before that it times
--burst-calls list_job calls made by one client and by --burst-clients clients.

Prints per route the request count, latency percentiles and status codes; any
5xx other than a 429/503 with Retry-After is an error. Then waits for the job
and checks its counters are exact (every file succeeded), and prints the peak
resident memory of the ferry dev process and the machine's load average.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBenchAPI(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "", "where to create the trees and the data directory (default: the system temp dir)")
	f.StringVar(&o.binary, "ferry-binary", "", "the ferry binary to run as ferry dev (default: this one)")
	f.IntVar(&o.clients, "clients", 100, "concurrent clients")
	f.DurationVar(&o.duration, "duration", 60*time.Second, "how long the clients run")
	f.IntVar(&o.files, "files", 20000, "files in the load job")
	f.StringVar(&o.fileSize, "file-size", "16KiB", "size of each file of the job")
	f.IntVar(&o.rangeFiles, "range-files", 16, "files the range reads read")
	f.StringVar(&o.rangeFileSize, "range-file-size", "8MiB", "size of each of those files")
	f.StringVar(&o.rangeLength, "range-length", "1MiB", "bytes per range read")
	f.StringVar(&o.bandwidth, "job-bandwidth", "auto", "the job's bandwidth; auto: its bytes over --duration, so it runs the whole time")
	f.IntVar(&o.burstClients, "burst-clients", 10, "clients of the list_job burst measured first")
	f.IntVar(&o.burstCalls, "burst-calls", 100, "list_job calls of that burst")
	f.DurationVar(&o.jobTimeout, "job-timeout", 10*time.Minute, "how long to wait for the job to end after the clients stop")
	f.DurationVar(&o.requestTimeout, "request-timeout", 30*time.Second, "client timeout of one request")
	f.BoolVar(&o.keep, "keep", false, "keep the directory (data dir, ferry dev log) afterwards")
	return cmd
}

// devProcess is a ferry dev child process and the endpoints it printed.
type devProcess struct {
	cmd   *exec.Cmd
	api   string
	nodes []string
	done  chan error
}

var urlRE = regexp.MustCompile(`http://[^\s]+`)

// startDev runs ferry dev on free ports with dataDir and waits for its
// banner. Its stderr goes to logPath.
func startDev(ctx context.Context, binary, dataDir, logPath string) (*devProcess, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// WithoutCancel: the process is stopped by devProcess, not killed when ctx ends.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), binary, "dev", "--data-dir", dataDir, "--temporal-listen", "127.0.0.1:0", "--ui-listen", "",
		"--metrics-listen", "", "--api-listen", "127.0.0.1:0", "--node-http-port", "0", "--node-grpc-port", "0",
		"--nodes", "3", "--node-capacity", "4GiB", "--log-level", "warn")
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		_ = logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, err
	}
	d := &devProcess{cmd: cmd, done: make(chan error, 1)}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			switch {
			case strings.HasPrefix(line, "REST API"):
				d.api = urlRE.FindString(line)
			case strings.HasPrefix(line, "Cache node"):
				d.nodes = append(d.nodes, urlRE.FindString(line))
			case strings.HasPrefix(line, "Press Ctrl-C"):
				close(ready)
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { d.done <- cmd.Wait(); _ = logf.Close() }()
	select {
	case <-ready:
		if d.api == "" || len(d.nodes) == 0 {
			d.stop()
			return nil, errors.New("ferry dev printed no REST API or cache node address")
		}
		return d, nil
	case err := <-d.done:
		return nil, fmt.Errorf("ferry dev exited before it was ready (%w); see %s", err, logPath)
	case <-ctx.Done():
		d.stop()
		return nil, ctx.Err()
	case <-time.After(5 * time.Minute):
		d.stop()
		return nil, fmt.Errorf("ferry dev was not ready within 5 minutes; see %s", logPath)
	}
}

// stop interrupts ferry dev and waits for it (killing it after a minute).
func (d *devProcess) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.done:
	case <-time.After(time.Minute):
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

// routeStats are what the clients saw on one route.
type routeStats struct {
	mu        sync.Mutex
	latencies []time.Duration
	codes     map[int]int
	// bad are answers that break the rules: a 5xx that is not a 429/503
	// with Retry-After, a transport error, a wrong body.
	bad     int
	badLast string
}

func (s *routeStats) add(d time.Duration, code int, bad string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latencies = append(s.latencies, d)
	if s.codes == nil {
		s.codes = map[int]int{}
	}
	s.codes[code]++
	if bad != "" {
		s.bad++
		s.badLast = bad
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// check classifies one answer: "" when it keeps the rules.
func check(resp *http.Response, err error) (int, string) {
	if err != nil {
		return 0, oneLine(err)
	}
	code := resp.StatusCode
	switch {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if resp.Header.Get("Retry-After") == "" {
			return code, fmt.Sprintf("%d without Retry-After", code)
		}
	case code >= 500:
		return code, fmt.Sprintf("status %d", code)
	}
	return code, ""
}

func runBenchAPI(ctx context.Context, out io.Writer, o *benchAPIOptions) error {
	fileSize, err := backends.ParseByteSize(o.fileSize)
	if err != nil {
		return fmt.Errorf("--file-size: %w", err)
	}
	rangeFileSize, err := backends.ParseByteSize(o.rangeFileSize)
	if err != nil {
		return fmt.Errorf("--range-file-size: %w", err)
	}
	rangeLength, err := backends.ParseByteSize(o.rangeLength)
	if err != nil {
		return fmt.Errorf("--range-length: %w", err)
	}
	if o.clients < 1 || o.duration <= 0 || o.files < 1 || o.rangeFiles < 1 {
		return errors.New("--clients, --duration, --files and --range-files must be positive")
	}
	binary := o.binary
	if binary == "" {
		if binary, err = os.Executable(); err != nil {
			return err
		}
	}
	root, err := os.MkdirTemp(o.dir, "ferry-bench-api-")
	if err != nil {
		return err
	}
	if o.keep {
		_, _ = fmt.Fprintf(out, "keeping %s\n", root)
	} else {
		defer func() { _ = os.RemoveAll(root) }()
	}

	tree, ranges := filepath.Join(root, "tree"), filepath.Join(root, "ranges")
	_, _ = fmt.Fprintf(out, "creating %d files of %s and %d of %s…\n", o.files, o.fileSize, o.rangeFiles, o.rangeFileSize)
	if err := makeFiles(tree, o.files, int64(fileSize)); err != nil {
		return err
	}
	if err := makeFiles(ranges, o.rangeFiles, int64(rangeFileSize)); err != nil {
		return err
	}
	var rangeURIs []string
	_ = filepath.WalkDir(ranges, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rangeURIs = append(rangeURIs, "file://"+p)
		}
		return nil
	})

	dev, err := startDev(ctx, binary, filepath.Join(root, "data"), filepath.Join(root, "ferry-dev.log"))
	if err != nil {
		return err
	}
	defer dev.stop()
	pid := dev.cmd.Process.Pid
	_, _ = fmt.Fprintf(out, "ferry dev (pid %d): API %s, %d cache nodes\n", pid, dev.api, len(dev.nodes))
	rssStart, _ := procStatus(pid, "VmRSS:")

	client := &http.Client{
		Timeout:   o.requestTimeout,
		Transport: &http.Transport{MaxIdleConns: 4 * o.clients, MaxIdleConnsPerHost: 2 * o.clients, IdleConnTimeout: time.Minute},
	}
	// do sends one request and returns the response with its body already
	// read into the []byte and closed (hence the bodyclose nolints below).
	do := func(ctx context.Context, method, u string, body any) (*http.Response, []byte, error) {
		var r io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			r = bytes.NewReader(b)
		}
		req, err := http.NewRequestWithContext(ctx, method, u, r)
		if err != nil {
			return nil, nil, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer func() { _ = resp.Body.Close() }()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	listURL := dev.api + "/api/v1/master/list_job"

	// 1. The list_job burst of the issue: one client, then many.
	burst := func(clients int) (time.Duration, map[int]int, error) {
		var mu sync.Mutex
		codes := map[int]int{}
		var wg sync.WaitGroup
		next := make(chan struct{}, o.burstCalls)
		for range o.burstCalls {
			next <- struct{}{}
		}
		close(next)
		start := time.Now()
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range next {
					resp, _, err := do(ctx, http.MethodGet, listURL, nil) //nolint:bodyclose // do has read and closed the body
					code, _ := check(resp, err)
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		return time.Since(start), codes, ctx.Err()
	}

	// The job.
	total := int64(o.files) * int64(fileSize)
	opts := map[string]any{}
	if o.bandwidth == "auto" {
		opts["bandwidth"] = strconv.FormatInt(max(1, total/int64(o.duration.Seconds())), 10)
	} else if o.bandwidth != "" && o.bandwidth != "0" {
		opts["bandwidth"] = o.bandwidth
	}
	jobPath := "file://" + tree
	resp, b, err := do(ctx, http.MethodPost, dev.api+"/api/v1/master/submit_job/load", map[string]any{"path": jobPath, "options": opts}) //nolint:bodyclose // do has read and closed the body
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("submit the job: %w %s", err, b)
	}
	_, _ = fmt.Fprintf(out, "submitted a load job of %d files (%s, bandwidth %v)\n", o.files, report.FormatSize(total), opts["bandwidth"])

	one, codes1, err := burst(1)
	if err != nil {
		return err
	}
	many, codesN, err := burst(o.burstClients)
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(out, "list_job burst while the job runs: %d calls from 1 client %v (%v each, codes %v); from %d clients %v (codes %v)\n",
		o.burstCalls, one.Round(time.Millisecond), (one / time.Duration(o.burstCalls)).Round(time.Microsecond), codes1,
		o.burstClients, many.Round(time.Millisecond), codesN)

	// 2. The clients.
	progressURL := dev.api + "/api/v1/master/progress_job/load"
	progressBody := map[string]any{"path": jobPath, "format": "JSON"}
	routes := []string{"list_job", "progress_job", "range read"}
	stats := map[string]*routeStats{}
	for _, r := range routes {
		stats[r] = &routeStats{}
	}
	var peakRSS int64
	sampleCtx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if v, err := procStatus(pid, "VmRSS:"); err == nil && v > peakRSS {
				peakRSS = v
			}
			select {
			case <-sampleCtx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	load1, _ := os.ReadFile("/proc/loadavg")
	runCtx, cancel := context.WithTimeout(ctx, o.duration)
	var wg sync.WaitGroup
	for c := range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(c), 1))
			for i := c; runCtx.Err() == nil; i++ {
				route := routes[i%len(routes)]
				start := time.Now()
				var resp *http.Response
				var body []byte
				var err error
				switch route {
				case "list_job":
					resp, body, err = do(runCtx, http.MethodGet, listURL, nil) //nolint:bodyclose // do has read and closed the body
				case "progress_job":
					resp, body, err = do(runCtx, http.MethodPost, progressURL, progressBody) //nolint:bodyclose // do has read and closed the body
				default:
					uri := rangeURIs[rnd.IntN(len(rangeURIs))]
					off := rnd.Int64N(max(1, int64(rangeFileSize)-int64(rangeLength)))
					node := dev.nodes[rnd.IntN(len(dev.nodes))]
					u := fmt.Sprintf("%s/v1/range/%s?ufsFullPath=%s&offset=%d&length=%d", node, pagestore.FileID(uri), url.QueryEscape(uri), off, rangeLength)
					resp, body, err = do(runCtx, http.MethodGet, u, nil) //nolint:bodyclose // do has read and closed the body
					if err == nil && resp.StatusCode == http.StatusOK && int64(len(body)) != int64(rangeLength) {
						err = fmt.Errorf("range read returned %d bytes, want %d", len(body), rangeLength)
					}
				}
				took := time.Since(start)
				if runCtx.Err() != nil {
					return // cut off by the end of the run: not counted
				}
				code, bad := check(resp, err)
				if bad == "" && code == http.StatusOK && route != "range read" && !json.Valid(body) {
					bad = "answer is not JSON"
				}
				stats[route].add(took, code, bad)
			}
		}()
	}
	wg.Wait()
	cancel()
	stopSampling()
	<-sampled
	load2, _ := os.ReadFile("/proc/loadavg")

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintf(out, "\nferry bench api: %d clients for %v against ferry dev\n", o.clients, o.duration)
	_, _ = fmt.Fprintln(tw, "route\trequests\treq/s\tp50\tp90\tp99\tmax\tstatus codes\tbad\t")
	var badTotal int
	for _, r := range routes {
		s := stats[r]
		sort.Slice(s.latencies, func(i, j int) bool { return s.latencies[i] < s.latencies[j] })
		var codes []string
		for code, n := range s.codes {
			codes = append(codes, fmt.Sprintf("%d×%d", code, n))
		}
		sort.Strings(codes)
		ms := func(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000) }
		_, _ = fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%d\t\n", r, len(s.latencies), float64(len(s.latencies))/o.duration.Seconds(),
			ms(percentile(s.latencies, 0.5)), ms(percentile(s.latencies, 0.9)), ms(percentile(s.latencies, 0.99)),
			ms(percentile(s.latencies, 1)), strings.Join(codes, " "), s.bad)
		badTotal += s.bad
	}
	_ = tw.Flush()
	for _, r := range routes {
		if s := stats[r]; s.bad > 0 {
			_, _ = fmt.Fprintf(out, "  %s: last bad answer: %s\n", r, s.badLast)
		}
	}
	hwm, _ := procStatus(pid, "VmHWM:")
	_, _ = fmt.Fprintf(out, "ferry dev RSS: %.0f MiB before the clients, peak %.0f MiB during them (VmHWM %.0f MiB)\n",
		float64(rssStart)/(1<<20), float64(peakRSS)/(1<<20), float64(hwm)/(1<<20))
	_, _ = fmt.Fprintf(out, "load average (1, 5, 15 min): %s at the start, %s at the end\n", firstFields(string(load1), 3), firstFields(string(load2), 3))

	// 3. The job's counters, exact once it has ended.
	var st report.Progress
	deadline := time.Now().Add(o.jobTimeout)
	for {
		resp, b, err := do(ctx, http.MethodPost, progressURL, progressBody) //nolint:bodyclose // do has read and closed the body
		if err == nil && resp.StatusCode == http.StatusOK {
			var ans struct {
				Progress *report.Progress `json:"progress"`
			}
			if json.Unmarshal(b, &ans) == nil && ans.Progress != nil {
				st = *ans.Progress
				if !st.Active() {
					break
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the job did not end within --job-timeout %v (last state %s, %d processed)", o.jobTimeout, st.Status, st.Processed)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	exact := st.Status == "SUCCEEDED" && st.Succeeded+st.Skipped == int64(o.files) && st.Failed == 0 &&
		st.Qualified == st.Succeeded+st.Skipped+st.Failed && st.Processed == int64(o.files)
	_, _ = fmt.Fprintf(out, "job %s: qualified %d, succeeded %d, skipped %d, failed %d, processed %d of %d files, %s, elapsed %s: counters %s\n",
		st.Status, st.Qualified, st.Succeeded, st.Skipped, st.Failed, st.Processed, o.files, report.FormatSize(st.BytesDone), st.TimeElapsed,
		map[bool]string{true: "exact", false: "NOT EXACT"}[exact])
	switch {
	case badTotal > 0:
		return fmt.Errorf("%d answers broke the rules (a 5xx other than 429/503 with Retry-After, or no answer)", badTotal)
	case !exact:
		return errors.New("the job's counters are not exact")
	}
	return nil
}

func firstFields(s string, n int) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(n, len(f))], " ")
}
