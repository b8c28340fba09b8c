package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/backends"
)

// newResolver builds every storage backend of this process from the storage
// configuration file (--storage-config, optional) and the environment,
// confined to the mounts of the configuration, FERRY_MOUNTS, --mount, the
// command's own (g.mounts) and extra.
func newResolver(ctx context.Context, g *globals, extra ...string) (*storage.Resolver, error) {
	cfg, err := backends.Load(g.storageConfig, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	cfg.Mounts = append(append(append(cfg.Mounts, g.sec.mounts...), g.mounts...), extra...)
	r, err := backends.NewConfinedResolver(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if len(r.Mounts()) == 0 {
		slog.Warn("no storage location is mounted: every storage URI will be refused (set mounts in --storage-config, FERRY_MOUNTS or --mount)")
	} else {
		names := make([]string, 0, len(r.Mounts()))
		for _, m := range r.Mounts() {
			names = append(names, m.String())
		}
		slog.Info("storage mounts", "mounts", names)
	}
	return r, nil
}
