// Command ferry is Ferry's single binary: one subcommand per process (dev,
// temporal-dev, worker, cachenode, api) and the command-line clients. It
// parses flags, builds each dependency once, and hands them to the packages
// that do the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// globals are the flags several subcommands share. Each command declares
// only the ones it uses (see the *Flags methods), so that its --help lists
// nothing it ignores.
type globals struct {
	temporalAddress string
	namespace       string
	logLevel        string
	storageConfig   string
	sec             securityFlags
	// mounts are storage locations the command mounts for its own files
	// (manifest stores), added to the configured ones.
	mounts []string
	// startupTimeout bounds how long a process waits at start for what it
	// needs (Temporal, its namespace, the membership registry).
	startupTimeout time.Duration
}

// temporalFlags are the flags of the commands that talk to Temporal.
func (g *globals) temporalFlags(f *pflag.FlagSet) {
	f.StringVar(&g.temporalAddress, "temporal-address", envOr("FERRY_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		"host:port of the Temporal frontend (env FERRY_TEMPORAL_ADDRESS)")
	g.namespaceFlag(f)
}

// namespaceFlag is --namespace alone, for the commands that run their own
// Temporal server.
func (g *globals) namespaceFlag(f *pflag.FlagSet) {
	f.StringVar(&g.namespace, "namespace", envOr("FERRY_NAMESPACE", "default"), "Temporal namespace (env FERRY_NAMESPACE)")
}

// storageFlags are the flags of the commands that read or write storage.
func (g *globals) storageFlags(f *pflag.FlagSet) {
	f.StringVar(&g.storageConfig, "storage-config", os.Getenv("FERRY_STORAGE_CONFIG"),
		"storage configuration file for S3, GCS and HDFS (YAML or JSON; env FERRY_STORAGE_CONFIG)")
}

// logFlags are the flags of the commands that log.
func (g *globals) logFlags(f *pflag.FlagSet) {
	f.StringVar(&g.logLevel, "log-level", envOr("FERRY_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env FERRY_LOG_LEVEL)")
}

// processFlags are the flags of every long-running Ferry process that
// connects to Temporal: Temporal, storage, logging and the start-up bound.
func (g *globals) processFlags(f *pflag.FlagSet) {
	g.temporalFlags(f)
	g.storageFlags(f)
	g.logFlags(f)
	def := defaultStartupTimeout
	if v, err := time.ParseDuration(os.Getenv("FERRY_STARTUP_TIMEOUT")); err == nil && v > 0 {
		def = v
	}
	f.DurationVar(&g.startupTimeout, "startup-timeout", def,
		"how long to wait at start for Temporal, its namespace and the membership registry (env FERRY_STARTUP_TIMEOUT)")
}

// defaultStartupTimeout is the default of --startup-timeout.
const defaultStartupTimeout = 2 * time.Minute

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := newRootCommand().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferry: "+oneLine(err))
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		os.Exit(1)
	}
}

// exitError carries a specific exit status.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// oneLine keeps an error message to one line, as the CLI promises.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

func newRootCommand() *cobra.Command {
	// Commands without --log-level log at the level of FERRY_LOG_LEVEL.
	g := &globals{logLevel: envOr("FERRY_LOG_LEVEL", "info"), startupTimeout: defaultStartupTimeout}
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Ferry loads data into a distributed cache and copies and moves it between storage systems",
		Version:       currentVersion().short(),
		SilenceUsage:  true,
		SilenceErrors: true,
		// Runnable so that a misspelt subcommand gets our one-line error
		// with a suggestion; without arguments it prints help.
		Args: cobra.ArbitraryArgs,
		RunE: helpOrUnknown,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return setupLogging(g.logLevel)
		},
	}
	root.SetVersionTemplate(currentVersion().String())
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})

	dev := newDevCommand(g)
	g.processFlags(dev.Flags())
	worker := newWorkerCommand(g)
	g.processFlags(worker.Flags())
	node := newCacheNodeCommand(g)
	g.processFlags(node.Flags())
	apiCmd := newAPICommand(g)
	g.processFlags(apiCmd.Flags())
	temporal := newTemporalDevCommand(g)
	g.namespaceFlag(temporal.Flags())
	g.logFlags(temporal.Flags())
	bench := newBenchCommand(g)
	g.namespaceFlag(bench.PersistentFlags())
	g.storageFlags(bench.PersistentFlags())
	g.logFlags(bench.PersistentFlags())

	jobCmd, policyCmd := newJobCommand(g), newPolicyCommand(g)
	// Security: the processes serve and dial with it; the clients take
	// their token and TLS settings from it.
	for _, c := range []*cobra.Command{dev, worker, node, apiCmd, temporal} {
		g.sec.register(c.Flags())
	}
	for _, c := range []*cobra.Command{jobCmd, policyCmd, bench} {
		g.sec.register(c.PersistentFlags())
	}

	root.AddCommand(dev, temporal, worker, node, apiCmd, jobCmd, policyCmd, bench, newVersionCommand())
	return root
}

// helpOrUnknown is the RunE of a command that only groups subcommands: help
// without arguments, else an "unknown command" error that suggests the
// nearest subcommand, on one line.
func helpOrUnknown(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return cmd.Help()
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	} else {
		msg += fmt.Sprintf(" (see '%s --help')", cmd.CommandPath())
	}
	return errors.New(msg)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func setupLogging(level string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})))
	return nil
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Ferry's version, commit, and Go and Temporal SDK versions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), currentVersion().String())
			return err
		},
	}
}
