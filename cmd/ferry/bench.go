package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/ferryio/ferry/cachenode"
	"github.com/ferryio/ferry/internal/abbench"
	"github.com/ferryio/ferry/internal/telemetry"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage/backends"
	temporaldev "github.com/ferryio/ferry/temporal-dev"
	"github.com/ferryio/ferry/workflows"
)

func newBenchCommand(g *globals) *cobra.Command {
	var profile string
	var stopProfile func()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Ferry on this machine against a plain baseline run in the same process",
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := setupLogging(g.logLevel); err != nil {
				return err
			}
			if profile == "" {
				return nil
			}
			f, err := os.Create(profile)
			if err != nil {
				return fmt.Errorf("--cpu-profile: %w", err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				_ = f.Close()
				return fmt.Errorf("--cpu-profile: %w", err)
			}
			stopProfile = func() { pprof.StopCPUProfile(); _ = f.Close() }
			return nil
		},
		PersistentPostRun: func(cmd *cobra.Command, args []string) {
			if stopProfile != nil {
				stopProfile()
			}
		},
	}
	cmd.PersistentFlags().StringVar(&profile, "cpu-profile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	cmd.AddCommand(newBenchLoadCommand(g), newBenchListCommand(g), newBenchAPICommand())
	cmd.AddCommand(newBenchEngineCommands(g)...) // bench_engine.go: dry-run, copy
	return cmd
}

// benchEnv is an in-process Ferry for benchmarks: embedded Temporal (SQLite
// file, as `ferry dev` uses), cache nodes, a coordinator.
type benchEnv struct {
	p        *parts
	svc      *jobs.Service
	c        client.Client
	frontend string
	nodes    []*cachenode.Node
}

func startBenchEnv(ctx context.Context, g *globals, dir string, nodes int, capacity int64, withCoordinator bool) (*benchEnv, error) {
	tel, err := telemetry.Setup(ctx, "ferry-bench")
	if err != nil {
		return nil, err
	}
	p := &parts{}
	fail := func(err error) (*benchEnv, error) { _ = p.stopAll(30 * time.Second); return nil, err }
	srv, err := temporaldev.Start(ctx, temporaldev.Config{DatabaseFile: filepath.Join(dir, "temporal.db"), Namespace: g.namespace})
	if err != nil {
		return fail(err)
	}
	p.add("temporal", func(context.Context) error { return srv.Stop() })
	dg := *g
	dg.temporalAddress = srv.FrontendAddress()
	c, err := dialTemporal(ctx, &dg, tel)
	if err != nil {
		return fail(err)
	}
	p.add("temporal client", func(context.Context) error { c.Close(); return nil })
	// Mount the bench's whole root (dir's parent): the trees it loads and
	// copies are next to dir, and a resolver refuses what no mount covers.
	resolver, err := newResolver(ctx, g, filepath.Dir(dir))
	if err != nil {
		return fail(err)
	}
	if withCoordinator {
		if err := startCoordinator(p, c, resolver, "file://"+filepath.Join(dir, "failures")); err != nil {
			return fail(err)
		}
	}
	env := &benchEnv{p: p, svc: jobs.NewService(c, resolver), c: c, frontend: srv.FrontendAddress()}
	for i := 1; i <= nodes; i++ {
		id := fmt.Sprintf("node-%d", i)
		cfg := cachenode.Config{ID: id, DataDir: filepath.Join(dir, "nodes", id), AdvertiseHost: "127.0.0.1", IdentityName: id,
			HTTPAddr: "127.0.0.1:0", GRPCAddr: "127.0.0.1:0", Capacity: capacity}
		n, err := startNode(ctx, p, "file://"+filepath.Join(dir, "failures"), cfg, c, resolver, tel, nil)
		if err != nil {
			return fail(err)
		}
		env.nodes = append(env.nodes, n)
	}
	return env, nil
}

// runJob submits a job and waits for its end: a long poll on the
// workflow's close (following its continue-as-new runs), then one progress
// query for the report. Polling progress every few milliseconds instead
// loaded the 2 cores the job runs on, and rounded its end up.
func (e *benchEnv) runJob(ctx context.Context, key jobs.Key, opts workflows.Options) (workflows.JobState, time.Duration, error) {
	start := time.Now()
	if _, err := e.svc.Submit(ctx, key, opts); err != nil {
		return workflows.JobState{}, 0, err
	}
	// A job that ends FAILED or STOPPED returns an error here; the report
	// below says how it ended.
	_ = e.c.GetWorkflow(ctx, key.WorkflowID(), "").Get(ctx, nil)
	took := time.Since(start)
	for {
		st, err := e.svc.Progress(ctx, key)
		if err == nil && !st.Status.Active() {
			return st, took, nil
		}
		if err != nil && !errors.Is(err, jobs.ErrUnavailable) {
			return st, 0, err
		}
		select {
		case <-ctx.Done():
			return st, 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// evict drops every cached file under uriPrefix from every node, so that
// the next load reads everything from the source again.
func (e *benchEnv) evict(ctx context.Context, uriPrefix string) error {
	for _, n := range e.nodes {
		if _, err := n.PageStore().Evict(ctx, uriPrefix); err != nil {
			return err
		}
	}
	return nil
}

// bytesFromStorage is ferry_cache_bytes_read_from_storage summed over the
// nodes.
func (e *benchEnv) bytesFromStorage() int64 {
	var sum int64
	for _, n := range e.nodes {
		sum += n.PageStore().Stats().BytesFromStorage
	}
	return sum
}

func makeFiles(dir string, n int, size int64) error {
	buf := make([]byte, min(size, 1<<20))
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i%100), fmt.Sprintf("f%07d", i))
		if i < 100 {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		for left := size; left > 0; left -= int64(len(buf)) {
			buf[0] = byte(i)
			if _, err := f.Write(buf[:min(left, int64(len(buf)))]); err != nil {
				_ = f.Close()
				return err
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// cpSide is the baseline: cp -r of src to a fresh directory dst. The
// previous copy is removed and dirty pages are written back before the
// clock starts, so that no run pays for another's writes.
func cpSide(src, dst string) abbench.Side {
	return func(ctx context.Context) (time.Duration, error) {
		if err := os.RemoveAll(dst); err != nil {
			return 0, err
		}
		syscall.Sync()
		start := time.Now()
		out, err := exec.CommandContext(ctx, "cp", "-r", src, dst).CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("cp -r: %w: %s", err, out)
		}
		// cp returns with data in the page cache; so does the page store.
		return time.Since(start), nil
	}
}

// loadSide is a Ferry load job of src; with cold set, the tree is evicted
// from every node first (outside the clock), so the job reads everything
// from the source. It checks that every file was accounted for: loaded
// when cold, loaded or skipped as already cached when warm.
func (e *benchEnv) loadSide(src string, files int, cold bool, opts workflows.Options, last *workflows.JobState) abbench.Side {
	uri := "file://" + src
	return func(ctx context.Context) (time.Duration, error) {
		if cold {
			if err := e.evict(ctx, uri); err != nil {
				return 0, err
			}
		}
		syscall.Sync()
		st, took, err := e.runJob(ctx, jobs.Key{Type: workflows.JobLoad, Path: uri}, opts)
		if err != nil {
			return 0, err
		}
		if st.Status != workflows.StatusSucceeded || st.Succeeded+st.Skipped != int64(files) || (cold && st.Succeeded != int64(files)) {
			return 0, fmt.Errorf("load of %s ended %s with %d loaded, %d skipped, %d failed: %+v",
				src, st.Status, st.Succeeded, st.Skipped, st.Failed, st.RecentFailures)
		}
		*last = st
		return took, nil
	}
}

type benchRow struct {
	what  string
	files int
	bytes int64
	res   abbench.Result
}

func printRows(w io.Writer, rows []benchRow, nameA, nameB string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintf(tw, "workload\tfiles\tMiB\t%s\t%s\t%s files/s\t%s files/s\t%s MB/s\t%s MB/s\t%s/%s time (min–max)\t%s speed\t\n",
		nameB, nameA, nameB, nameA, nameB, nameA, nameA, nameB, nameA)
	for _, r := range rows {
		mib := float64(r.bytes) / (1 << 20)
		a, b := r.res.MedianA(), r.res.MedianB()
		med, lo, hi := r.res.Ratio()
		_, _ = fmt.Fprintf(tw, "%s\t%d\t%.0f\t%v\t%v\t%.0f\t%.0f\t%.1f\t%.1f\t%.2f× (%.2f–%.2f)\t%.0f%% of %s\t\n", r.what, r.files, mib,
			b.Round(time.Millisecond), a.Round(time.Millisecond),
			float64(r.files)/b.Seconds(), float64(r.files)/a.Seconds(),
			mib/b.Seconds(), mib/a.Seconds(), med, lo, hi, 100/med, nameB)
	}
	_ = tw.Flush()
}

// treeFlags checks the flags of a bench with a small-file and a large-file
// tree: the two sizes (the small one's flag is named smallFlag) and the
// number of pairs.
func treeFlags(smallFlag, smallSize, largeSize string, pairs int) (small, large int64, err error) {
	ss, err := backends.ParseByteSize(smallSize)
	if err != nil {
		return 0, 0, fmt.Errorf("%s: %w", smallFlag, err)
	}
	ls, err := backends.ParseByteSize(largeSize)
	if err != nil {
		return 0, 0, fmt.Errorf("--large-size: %w", err)
	}
	if pairs < 1 {
		return 0, 0, fmt.Errorf("--pairs %d: want at least 1", pairs)
	}
	return int64(ss), int64(ls), nil
}

// smallAndLarge runs a bench on its small-file tree, then on its large-file
// tree, skipping a tree of no files.
func smallAndLarge(run func(what string, files int, size int64) error, small int, smallSize int64, large int, largeSize int64) error {
	if small > 0 {
		if err := run("small", small, smallSize); err != nil {
			return err
		}
	}
	if large > 0 {
		return run("large", large, largeSize)
	}
	return nil
}

// printHeading introduces the table of a bench's results: how it ran and the
// load average now.
func printHeading(out io.Writer, bench string, nodes, pairs int) {
	l := abbench.LoadAverage()
	_, _ = fmt.Fprintf(out, "\nferry bench %s (%d cache nodes, same disk, same run; medians of %d alternated pairs after a warm-up; load average now %.2f %.2f %.2f, %d CPUs)\n",
		bench, nodes, pairs, l[0], l[1], l[2], runtime.NumCPU())
}

func newBenchLoadCommand(g *globals) *cobra.Command {
	var dir string
	var small, large, nodes, pairs, batchSize int
	var smallSize, largeSize string
	cmd := &cobra.Command{
		Use:   "load",
		Short: "Load jobs of many small and a few large local files, against cp -r of the same trees",
		Long: `Creates the trees in a fresh directory and starts in-process cache nodes
(embedded Temporal on a SQLite file, as ferry dev runs). For each tree it
warms up both sides, then measures --pairs alternated pairs (cp first, then
Ferry first, ...) of a cold Ferry load job (the tree evicted from the cache
beforehand) and cp -r to a fresh directory, and prints the median and
min–max of the per-pair time ratios. Then it measures a second load of the
unchanged, fully cached tree against a cold load, alternated the same way,
and checks that the second loads read no byte from the source
(ferry_cache_bytes_read_from_storage unchanged). The load average is printed
with every figure: on a shared machine they are noisy.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			ss, ls, err := treeFlags("--small-size", smallSize, largeSize, pairs)
			if err != nil {
				return err
			}
			root, err := os.MkdirTemp(dir, "ferry-bench-")
			if err != nil {
				return err
			}
			defer func() { _ = os.RemoveAll(root) }()
			out := cmd.OutOrStdout()
			env, err := startBenchEnv(ctx, g, filepath.Join(root, "ferry"), nodes, int64(large)*ls+int64(small)*ss+(1<<30), true)
			if err != nil {
				return err
			}
			defer func() { _ = env.p.stopAll(30 * time.Second) }()

			progress := func(what string) func(int, time.Duration, time.Duration) {
				return func(i int, a, b time.Duration) {
					_, _ = fmt.Fprintf(out, "  %s pair %d: ferry %v, baseline %v (load average %.2f)\n", what, i+1,
						a.Round(time.Millisecond), b.Round(time.Millisecond), abbench.LoadAverage()[0])
				}
			}
			var vsCp, vsCold []benchRow
			var reloadRead int64
			run := func(what string, n int, size int64) error {
				src := filepath.Join(root, what)
				_, _ = fmt.Fprintf(out, "creating %d files of %d bytes…\n", n, size)
				if err := makeFiles(src, n, size); err != nil {
					return err
				}
				var last workflows.JobState
				jobOpts := workflows.Options{BatchSize: batchSize}
				cold := env.loadSide(src, n, true, jobOpts, &last)
				warm := env.loadSide(src, n, false, jobOpts, &last)
				_, _ = fmt.Fprintf(out, "%s: cold ferry load vs cp -r\n", what)
				res, err := abbench.Run(ctx, abbench.Options{Pairs: pairs, Progress: progress(what)}, cold, cpSide(src, filepath.Join(root, what+"-cp")))
				if err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				vsCp = append(vsCp, benchRow{what: what, files: n, bytes: last.BytesDone, res: res})
				_, _ = fmt.Fprintf(out, "%s: %s\n", what, res.Summary("ferry", "cp"))

				_, _ = fmt.Fprintf(out, "%s: second load of the unchanged tree vs a cold load\n", what)
				var readDuringReloads int64
				reload := func(ctx context.Context) (time.Duration, error) {
					before := env.bytesFromStorage()
					d, err := warm(ctx)
					readDuringReloads += env.bytesFromStorage() - before
					if err == nil && last.Skipped != int64(n) {
						err = fmt.Errorf("second load of %s: %d of %d files skipped as already cached", what, last.Skipped, n)
					}
					return d, err
				}
				res, err = abbench.Run(ctx, abbench.Options{Pairs: pairs, Progress: progress(what + " reload")}, reload, cold)
				if err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				vsCold = append(vsCold, benchRow{what: what, files: n, bytes: int64(n) * size, res: res})
				reloadRead += readDuringReloads
				_, _ = fmt.Fprintf(out, "%s: %s; bytes read from storage by the second loads: %d\n", what, res.Summary("reload", "cold"), readDuringReloads)
				return nil
			}
			if err := smallAndLarge(run, small, ss, large, ls); err != nil {
				return err
			}
			printHeading(out, "load", nodes, pairs)
			printRows(out, vsCp, "ferry", "cp")
			_, _ = fmt.Fprintln(out)
			printRows(out, vsCold, "reload", "cold")
			_, _ = fmt.Fprintf(out, "bytes read from storage by second loads of unchanged trees: %d\n", reloadRead)
			if reloadRead != 0 {
				return fmt.Errorf("second loads of unchanged trees read %d bytes from storage; want 0", reloadRead)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "where to create the trees (default: the system temp dir)")
	f.IntVar(&small, "small-files", 20000, "number of small files (0: skip)")
	f.StringVar(&smallSize, "small-size", "16KiB", "size of each small file")
	f.IntVar(&large, "large-files", 8, "number of large files (0: skip)")
	f.StringVar(&largeSize, "large-size", "256MiB", "size of each large file")
	f.IntVar(&nodes, "nodes", 3, "cache nodes")
	f.IntVar(&pairs, "pairs", 3, "measured alternated pairs per comparison (after one warm-up run of each side)")
	f.IntVar(&batchSize, "batch-size", 0, "files per batch of the load jobs (0: the job default)")
	return cmd
}

func newBenchListCommand(g *globals) *cobra.Command {
	var dir, existing string
	var entries int
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Peak memory of a coordinator process listing a very large tree (a dry-run load job)",
		Long: `Creates a tree of --entries empty files (or uses --tree), starts a separate
ferry worker process as the only coordinator, runs a dry-run load job (list and
plan every entry, change nothing) and reports the coordinator's peak resident
memory (VmHWM) and the listing rate.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			root, err := os.MkdirTemp(dir, "ferry-bench-list-")
			if err != nil {
				return err
			}
			defer func() { _ = os.RemoveAll(root) }()
			tree := existing
			if tree == "" {
				tree = filepath.Join(root, "tree")
				_, _ = fmt.Fprintf(out, "creating %d empty files…\n", entries)
				if err := makeEmpty(tree, entries); err != nil {
					return err
				}
			}
			env, err := startBenchEnv(ctx, g, filepath.Join(root, "ferry"), 3, 1<<30, false)
			if err != nil {
				return err
			}
			defer func() { _ = env.p.stopAll(30 * time.Second) }()
			self, err := os.Executable()
			if err != nil {
				return err
			}
			// The coordinator reaches only what is mounted: the tree, read-only.
			w := exec.CommandContext(ctx, self, "worker", "--temporal-address", env.frontend, "--namespace", g.namespace,
				"--data-dir", filepath.Join(root, "worker"), "--log-level", "warn", "--mount", "ro:"+tree)
			w.Stderr = os.Stderr
			if err := w.Start(); err != nil {
				return err
			}
			defer func() { _ = w.Process.Kill(); _ = w.Wait() }()
			// Sample the coordinator's own (anonymous) memory while it works;
			// VmHWM also counts the pages of the executable it has touched.
			var anonPeak int64
			sampler, stopSampler := context.WithCancel(ctx)
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				for {
					if v, err := procStatus(w.Process.Pid, "RssAnon:"); err == nil && v > anonPeak {
						anonPeak = v
					}
					select {
					case <-sampler.Done():
						return
					case <-time.After(100 * time.Millisecond):
					}
				}
			}()
			st, took, err := env.runJob(ctx, jobs.Key{Type: workflows.JobLoad, Path: "file://" + tree}, workflows.Options{DryRun: true, BatchSize: 1000})
			stopSampler()
			<-sampled
			if err != nil {
				return err
			}
			if st.Status != workflows.StatusSucceeded || (existing == "" && st.Qualified != int64(entries)) {
				return fmt.Errorf("the dry run of %s ended %s (%s) with %d entries listed", tree, st.Status, st.Reason, st.Qualified)
			}
			hwm, err := procStatus(w.Process.Pid, "VmHWM:")
			if err != nil {
				return err
			}
			_, _ = fmt.Fprintf(out, "listed %d entries in %v (%.0f entries/s, %d pages, %d runs)\n",
				st.Qualified, took.Round(time.Millisecond), float64(st.Qualified)/took.Seconds(), st.PagesListed, st.Runs)
			_, _ = fmt.Fprintf(out, "coordinator peak RSS %.1f MiB (of which its own anonymous memory peaked at %.1f MiB; the rest is pages of the executable)\n",
				float64(hwm)/(1<<20), float64(anonPeak)/(1<<20))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "where to create the tree (default: the system temp dir)")
	f.StringVar(&existing, "tree", "", "use this existing directory instead of creating one")
	f.IntVar(&entries, "entries", 1_000_000, "number of files in the tree")
	return cmd
}

// makeEmpty creates n empty files, 1,000 per directory, in parallel.
func makeEmpty(dir string, n int) error {
	const perDir = 1000
	dirs := (n + perDir - 1) / perDir
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	next := make(chan int)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range next {
				sub := filepath.Join(dir, fmt.Sprintf("d%05d", d))
				if err := os.MkdirAll(sub, 0o755); err != nil {
					errs <- err
					return
				}
				for i := d * perDir; i < min((d+1)*perDir, n); i++ {
					f, err := os.Create(filepath.Join(sub, fmt.Sprintf("f%07d", i)))
					if err != nil {
						errs <- err
						return
					}
					_ = f.Close()
				}
			}
		}()
	}
	for d := 0; d < dirs; d++ {
		select {
		case next <- d:
		case err := <-errs:
			close(next)
			wg.Wait()
			return err
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// procStatus reads a size field ("VmHWM:", "RssAnon:") of a process's
// /proc status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
