package gcs_test

import (
	"testing"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/gcs/gcstest"
	"github.com/ferryio/ferry/storage/storagetest"
)

func TestConformance(t *testing.T) {
	srv := gcstest.Start(t)
	storagetest.Run(t, storagetest.Harness{
		Store: gcstest.NewStore(t, gcstest.Options(srv.URL)),
		// A bucket per subtest, and 1,000 listed files rather than 2,500:
		// fake-gcs-server copies and sorts a whole bucket for every listing
		// request, which makes the page-size-7 pass quadratic.
		NewDir:        func(t *testing.T) string { return "gs://" + srv.NewBucket() + "/dir" },
		ManyEntries:   1000,
		LargeFileSize: 16 << 20,
		ForeignURI:    "gs://no-such-bucket",
		ForeignKind:   storage.ErrNotFound,
	})
}

func TestListKeepsDoubleSlashKeys(t *testing.T) {
	srv := gcstest.Start(t)
	storagetest.ObjectKeysKeepSlashes(t, gcstest.NewStore(t, gcstest.Options(srv.URL)), "gs://"+srv.NewBucket()+"/coll")
}
