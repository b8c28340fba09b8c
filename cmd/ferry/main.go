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

	"github.com/spf13/cobra"
)

// globals are the flags every subcommand shares.
type globals struct {
	temporalAddress string
	namespace       string
	logLevel        string
	storageConfig   string
	sec             securityFlags
	// mounts are storage locations the command mounts for its own files
	// (failure lists), added to the configured ones.
	mounts []string
}

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
	g := &globals{}
	root := &cobra.Command{
		Use:           "ferry",
		Short:         "Ferry loads data into a distributed cache and copies and moves it between storage systems",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return setupLogging(g.logLevel)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.temporalAddress, "temporal-address", envOr("FERRY_TEMPORAL_ADDRESS", "127.0.0.1:7233"),
		"host:port of the Temporal frontend (env FERRY_TEMPORAL_ADDRESS)")
	pf.StringVar(&g.namespace, "namespace", envOr("FERRY_NAMESPACE", "default"), "Temporal namespace (env FERRY_NAMESPACE)")
	pf.StringVar(&g.storageConfig, "storage-config", os.Getenv("FERRY_STORAGE_CONFIG"),
		"storage configuration file for S3, GCS and HDFS (YAML or JSON; env FERRY_STORAGE_CONFIG)")
	pf.StringVar(&g.logLevel, "log-level", envOr("FERRY_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	g.sec.register(pf)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})

	root.AddCommand(
		newDevCommand(g),
		newTemporalDevCommand(g),
		newWorkerCommand(g),
		newCacheNodeCommand(g),
		newAPICommand(g),
		newJobCommand(g),
		newPolicyCommand(g),
		newBenchCommand(g),
		newVersionCommand(),
	)
	return root
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

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Ferry's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "ferry "+version)
		},
	}
}
