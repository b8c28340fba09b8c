package main

import (
	"context"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

// newResolver builds the storage backends of this process.
func newResolver(ctx context.Context) (*storage.Resolver, error) {
	st, err := local.New(local.Options{})
	if err != nil {
		return nil, err
	}
	return storage.NewResolver(st), nil
}
