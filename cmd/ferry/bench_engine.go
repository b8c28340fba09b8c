package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferryio/ferry/internal/abbench"
	"github.com/ferryio/ferry/internal/historystat"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// The job engine's benchmarks (issue 10): Ferry against a plain baseline on
// the same tree, in the same run, alternating A B A B after a warm-up pair,
// reporting the median and the range of the per-pair ratios, and what the
// job cost in Temporal history per 1,000 files.

// abSide adapts a numbered run (i = -1 for the warm-up, then 0, 1, …) to the
// shared A/B runner, which warms up both sides once and then alternates them.
func abSide(run func(i int) (time.Duration, error)) abbench.Side {
	i := -1
	return func(context.Context) (time.Duration, error) {
		d, err := run(i)
		i++
		return d, err
	}
}

// printHistory writes what one job cost in Temporal history.
func printHistory(w io.Writer, h historystat.Stats, files int64) {
	ev, kb := h.PerThousand(files)
	_, _ = fmt.Fprintf(w, "history of one job: %d runs, %d events, %d bytes (%.1f events and %.2f KB per 1,000 files)\n",
		h.Runs, h.Events, h.Bytes, ev, kb)
	if h.Children > 0 {
		_, _ = fmt.Fprintf(w, "  and %d batch workflows handed over at continue-as-new: %d events, %d bytes\n", h.Children, h.ChildEvents, h.ChildBytes)
	}
}

// mounting returns g with dir added to its mounts: the bench's trees live
// beside the environment's own directory, and the resolver refuses every
// location outside a mount.
func mounting(g *globals, dir string) *globals {
	mg := *g
	mg.mounts = append(append([]string(nil), g.mounts...), dir)
	return &mg
}

func newBenchEngineCommands(g *globals) []*cobra.Command {
	return []*cobra.Command{newBenchDryRunCommand(g), newBenchCopyCommand(g)}
}

func newBenchDryRunCommand(g *globals) *cobra.Command {
	var dir string
	var entries, pairs int
	cmd := &cobra.Command{
		Use:   "dry-run",
		Short: "Dry-run listing of a large local tree against find -type f | wc -l, A B A B",
		Long: `Creates --entries empty files (1,000 per directory), then alternates a dry-run
load job (list, filter and count every entry; embedded Temporal, in-process
coordinator) with "find <tree> -type f | wc -l", after one warm-up pair.
Prints the median and range of the per-pair time ratios and the job's history
events and bytes per 1,000 files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			root, err := os.MkdirTemp(dir, "ferry-bench-dry-run-")
			if err != nil {
				return err
			}
			defer func() { _ = os.RemoveAll(root) }()
			tree := filepath.Join(root, "tree")
			_, _ = fmt.Fprintf(out, "creating %d empty files…\n", entries)
			if err := makeEmpty(tree, entries); err != nil {
				return err
			}
			env, err := startBenchEnv(ctx, mounting(g, root), filepath.Join(root, "ferry"), 3, 1<<30, true)
			if err != nil {
				return err
			}
			defer func() { _ = env.p.stopAll(30 * time.Second) }()
			var hist historystat.Stats
			ferry := func(i int) (time.Duration, error) {
				key := jobs.Key{Type: workflows.JobLoad, Path: "file://" + tree}
				st, took, err := env.runJob(ctx, key, workflows.Options{DryRun: true})
				if err != nil {
					return 0, err
				}
				if st.Qualified != int64(entries) {
					return 0, fmt.Errorf("dry run counted %d entries, the tree has %d", st.Qualified, entries)
				}
				if i < 0 {
					// The warm-up is the only job of its workflow ID so far.
					if hist, err = historystat.Of(ctx, env.c, key.WorkflowID()); err != nil {
						return 0, err
					}
				}
				return took, nil
			}
			find := func(int) (time.Duration, error) {
				start := time.Now()
				b, err := exec.CommandContext(ctx, "sh", "-c", `find "$1" -type f | wc -l`, "sh", tree).Output()
				took := time.Since(start)
				if err != nil {
					return 0, fmt.Errorf("find: %w", err)
				}
				if n, _ := strconv.Atoi(strings.TrimSpace(string(b))); n != entries {
					return 0, fmt.Errorf("find counted %d files, want %d", n, entries)
				}
				return took, nil
			}
			r, err := abbench.Run(ctx, abbench.Options{Pairs: pairs}, abSide(ferry), abSide(find))
			if err != nil {
				return err
			}
			_, _ = fmt.Fprintf(out, "dry-run listing of %d files: %s\n", entries, r.Summary("ferry", "find"))
			printHistory(out, hist, int64(entries))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "where to create the tree (default: the system temp dir)")
	f.IntVar(&entries, "entries", 1_000_000, "number of files in the tree")
	f.IntVar(&pairs, "pairs", 3, "measured A B pairs after the warm-up pair")
	return cmd
}

func newBenchCopyCommand(g *globals) *cobra.Command {
	var dir string
	var files, large, pairs int
	var smallSize, largeSize string
	cmd := &cobra.Command{
		Use:   "copy",
		Short: "Copy jobs of many small and a few large local files against cp -r, A B A B",
		Long: `Creates --files files of --size bytes and --large-files files of --large-size
bytes (two trees), then, for each tree, alternates a copy job into a fresh
directory (3 in-process cache nodes, embedded Temporal) with cp -r into a
fresh directory, after one warm-up pair; dirty pages are written back before
either side starts. Prints the median and range of the per-pair time ratios,
the MB/s of both sides, the load average, and the job's history events and
bytes per 1,000 files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			ss, ls, err := treeFlags("--size", smallSize, largeSize, pairs)
			if err != nil {
				return err
			}
			root, err := os.MkdirTemp(dir, "ferry-bench-copy-")
			if err != nil {
				return err
			}
			defer func() { _ = os.RemoveAll(root) }()
			env, err := startBenchEnv(ctx, mounting(g, root), filepath.Join(root, "ferry"), 3, 1<<30, true)
			if err != nil {
				return err
			}
			defer func() { _ = env.p.stopAll(30 * time.Second) }()
			var rows []benchRow
			run := func(what string, files int, size int64) error {
				src := filepath.Join(root, what)
				_, _ = fmt.Fprintf(out, "creating %d files of %d bytes…\n", files, size)
				if err := makeFiles(src, files, size); err != nil {
					return err
				}
				var hist historystat.Stats
				ferry := func(i int) (time.Duration, error) {
					dst := filepath.Join(root, fmt.Sprintf("%s-ferry-%d", what, i+1))
					key := jobs.Key{Type: workflows.JobCopy, Path: "file://" + src, Dst: "file://" + dst}
					// As cp's side: no run pays for another's writes.
					syscall.Sync()
					st, took, err := env.runJob(ctx, key, workflows.Options{})
					if err != nil {
						return 0, err
					}
					if st.Succeeded != int64(files) {
						return 0, fmt.Errorf("copy job: %s, %d of %d files copied", st.Status, st.Succeeded, files)
					}
					if i < 0 {
						// The warm-up is the only job of its workflow ID so far.
						if hist, err = historystat.Of(ctx, env.c, key.WorkflowID()); err != nil {
							return 0, err
						}
					}
					return took, os.RemoveAll(dst)
				}
				cp := func(i int) (time.Duration, error) {
					dst := filepath.Join(root, fmt.Sprintf("%s-cp-%d", what, i+1))
					took, err := cpSide(src, dst)(ctx)
					if err != nil {
						return 0, err
					}
					return took, os.RemoveAll(dst)
				}
				r, err := abbench.Run(ctx, abbench.Options{Pairs: pairs}, abSide(ferry), abSide(cp))
				if err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				rows = append(rows, benchRow{what: what, files: files, bytes: int64(files) * size, res: r})
				_, _ = fmt.Fprintf(out, "copy of %d × %d B: %s\n", files, size, r.Summary("ferry", "cp -r"))
				printHistory(out, hist, int64(files))
				return os.RemoveAll(src)
			}
			if err := smallAndLarge(run, files, ss, large, ls); err != nil {
				return err
			}
			printHeading(out, "copy", 3, pairs)
			printRows(out, rows, "ferry", "cp")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "where to create the trees (default: the system temp dir)")
	f.IntVar(&files, "files", 20_000, "number of small files (0: skip)")
	f.StringVar(&smallSize, "size", "16KiB", "size of each small file (bytes, or with a unit: 16KiB)")
	f.IntVar(&large, "large-files", 8, "number of large files (0: skip)")
	f.StringVar(&largeSize, "large-size", "256MiB", "size of each large file")
	f.IntVar(&pairs, "pairs", 3, "measured A B pairs after the warm-up pair")
	return cmd
}
