package gcs_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/gcs"
	"github.com/ferryio/ferry/storage/storagetest"
)

// testServer is fake-gcs-server on a kernel-chosen loopback port.
type testServer struct {
	srv     *fakestorage.Server
	URL     string
	buckets int
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return &testServer{srv: srv, URL: srv.URL()}
}

func (ts *testServer) newBucket() string {
	ts.buckets++
	name := fmt.Sprintf("bucket-%d", ts.buckets)
	ts.srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
	return name
}

func storeOptions(endpoint string) gcs.Options {
	return gcs.Options{
		Connection: gcs.Connection{Endpoint: endpoint, Anonymous: true},
		ChunkSize:  4 << 20,
		MinBackoff: time.Millisecond,
		MaxBackoff: 10 * time.Millisecond,
	}
}

func newStore(t testing.TB, opts gcs.Options) *gcs.Store {
	t.Helper()
	s, err := gcs.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := newTestServer(t)
	storagetest.Run(t, storagetest.Harness{
		Store: newStore(t, storeOptions(srv.URL)),
		// A bucket per subtest, and 1,000 listed files rather than 2,500:
		// fake-gcs-server copies and sorts a whole bucket for every listing
		// request, which makes the page-size-7 pass quadratic.
		NewDir:        func(t *testing.T) string { return "gs://" + srv.newBucket() + "/dir" },
		ManyEntries:   1000,
		LargeFileSize: 16 << 20,
		ForeignURI:    "gs://no-such-bucket",
		ForeignKind:   storage.ErrNotFound,
	})
}

// discardLogger silences a test server's log of aborted connections.
func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
