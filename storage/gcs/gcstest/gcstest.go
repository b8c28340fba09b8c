// Package gcstest starts a Google Cloud Storage server for tests:
// fake-gcs-server in-process, on a kernel-chosen loopback port.
//
// Package storage/gcs uses it for its own tests; other packages use it to run
// jobs against GCS without a network:
//
//	srv := gcstest.Start(t)
//	store := gcstest.NewStore(t, gcstest.Options(srv.URL))
//	uri := "gs://" + srv.NewBucket() + "/dir"
//
// fake-gcs-server copies and sorts a whole bucket for every listing request
// (and the store lists to tell a missing object from a directory), so tests
// with many objects keep them in buckets of their own.
package gcstest

import (
	"context"
	"fmt"
	"io"
	"log"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/ferryio/ferry/storage/gcs"
)

// Server is a running fake-gcs-server. It is stopped when the test ends.
type Server struct {
	// Server is the fake itself; tests look behind the GCS API with it.
	Server *fakestorage.Server
	// URL is the endpoint ("http://127.0.0.1:<port>").
	URL string

	buckets atomic.Int64
}

// Start starts a server with no buckets.
func Start(t testing.TB) *Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		Scheme: "http", Host: "127.0.0.1", Port: 0, Writer: io.Discard,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return &Server{Server: srv, URL: srv.URL()}
}

// NewBucket creates a bucket with a fresh name and returns the name.
func (s *Server) NewBucket() string {
	name := fmt.Sprintf("bucket-%d", s.buckets.Add(1))
	s.CreateBucket(name)
	return name
}

// CreateBucket creates the bucket name.
func (s *Server) CreateBucket(name string) {
	s.Server.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
}

// Options are the options of an anonymous store talking to endpoint, with
// 4 MiB chunks so that resumable uploads start at small sizes, and
// millisecond backoffs so that tests of retries stay fast.
func Options(endpoint string) gcs.Options {
	return gcs.Options{
		Connection: gcs.Connection{Endpoint: endpoint, Anonymous: true},
		ChunkSize:  4 << 20,
		MinBackoff: time.Millisecond,
		MaxBackoff: 10 * time.Millisecond,
	}
}

// NewStore builds a store from opts, failing the test on error; the store
// is closed when the test ends.
func NewStore(t testing.TB, opts gcs.Options) *gcs.Store {
	t.Helper()
	st, err := gcs.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// DiscardLogger silences a test server's log of aborted connections.
func DiscardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// Names lists every object name of bucket straight from the fake, past the
// GCS API and the store: what a test checks names against.
func (s *Server) Names(t testing.TB, bucket string) []string {
	t.Helper()
	var names []string
	opts := fakestorage.ListOptions{}
	for {
		resp, err := s.Server.ListObjectsWithOptionsPaginated(bucket, opts)
		if err != nil {
			t.Fatalf("list bucket %s: %v", bucket, err)
		}
		for _, o := range resp.Objects {
			names = append(names, o.Name)
		}
		if resp.NextPageToken == "" {
			return names
		}
		opts.PageToken = resp.NextPageToken
	}
}
