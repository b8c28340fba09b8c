package main

import (
	"context"
	"os"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/backends"
)

// newResolver builds every storage backend of this process from the storage
// configuration file (--storage-config, optional) and the environment.
func newResolver(ctx context.Context, g *globals) (*storage.Resolver, error) {
	cfg, err := backends.Load(g.storageConfig, os.LookupEnv)
	if err != nil {
		return nil, err
	}
	return backends.NewResolver(ctx, cfg)
}
