package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	temporaldev "github.com/ferryio/ferry/temporal-dev"
)

func newTemporalDevCommand(g *globals) *cobra.Command {
	var dataDir, listen, uiListen string
	var memory bool
	cmd := &cobra.Command{
		Use:   "temporal-dev",
		Short: "Run only the embedded Temporal server and its Web UI",
		Long: `Run only the embedded Temporal server and Web UI, for users who run the other
Ferry processes (worker, cachenode, api) separately and point them at it with
--temporal-address.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := temporaldev.Config{
				Namespace:       g.namespace,
				FrontendAddress: listen,
				UIAddress:       uiListen,
			}
			if !memory {
				if err := os.MkdirAll(dataDir, 0o755); err != nil {
					return fmt.Errorf("--data-dir: %w", err)
				}
				cfg.DatabaseFile = filepath.Join(dataDir, "temporal.db")
				cfg.LogFile = filepath.Join(dataDir, "temporal.log")
			}
			srv, err := temporaldev.Start(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			p := &parts{}
			p.add("temporal", func(context.Context) error { return srv.Stop() })
			p.endpoint("Temporal frontend", srv.FrontendAddress()+"  (namespace "+g.namespace+")")
			if srv.UIURL() != "" {
				p.endpoint("Temporal Web UI", srv.UIURL())
			}
			_, _ = fmt.Fprintln(cmd.OutOrStdout(), "Temporal is running")
			p.printEndpoints(cmd.OutOrStdout())
			<-cmd.Context().Done()
			return p.stopAll(30 * time.Second)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", envOr("FERRY_DATA_DIR", ".ferry"), "directory of the SQLite file")
	f.BoolVar(&memory, "memory", false, "keep state in memory only (lost on exit)")
	f.StringVar(&listen, "listen", "127.0.0.1:7233", "address of the Temporal frontend")
	f.StringVar(&uiListen, "ui-listen", "127.0.0.1:8233", "address of the Web UI (empty: no UI)")
	return cmd
}
