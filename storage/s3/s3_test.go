package s3_test

import (
	"testing"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/storagetest"
)

func TestConformance(t *testing.T) {
	srv := newTestServer(t)
	store := newStore(t, storeOptions(srv.URL))
	storagetest.Run(t, storagetest.Harness{
		Store: store,
		// A bucket per subtest: gofakes3 scans a whole bucket per listing.
		NewDir:        func(t *testing.T) string { return "s3://" + srv.newBucket(t) + "/dir" },
		LargeFileSize: 16 << 20,
		ForeignURI:    "s3://no-such-bucket",
		ForeignKind:   storage.ErrNotFound,
	})
}
