package s3_test

import (
	"testing"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/storage/storagetest"
)

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	store := s3test.NewStore(t, s3test.Options(srv.URL))
	storagetest.Run(t, storagetest.Harness{
		Store: store,
		// A bucket per subtest: gofakes3 scans a whole bucket per listing.
		NewDir:        func(t *testing.T) string { return "s3://" + srv.NewBucket(t) + "/dir" },
		LargeFileSize: 16 << 20,
		ForeignURI:    "s3://no-such-bucket",
		ForeignKind:   storage.ErrNotFound,
	})
}

func TestListKeepsDoubleSlashKeys(t *testing.T) {
	srv := s3test.Start(t)
	store := s3test.NewStore(t, s3test.Options(srv.URL))
	storagetest.ObjectKeysKeepSlashes(t, store, "s3://"+srv.NewBucket(t)+"/coll")
}
