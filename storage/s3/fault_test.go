package s3_test

import (
	"context"
	"crypto/md5"
	"fmt"
	"hash"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/storage/storagetest"
)

// TestConformanceThroughFaults runs the whole conformance suite through a
// proxy that spoils about 10% of the requests, and checks all along that
// every object visible on the server holds bytes some writer committed in
// full: never a partial object under a final key.
func TestConformanceThroughFaults(t *testing.T) {
	srv := s3test.Start(t)
	proxy := s3test.StartProxy(t, srv.URL, 20240607, 0.10)
	store := s3test.NewStore(t, s3test.Options(proxy.URL))
	rec := newRecorder(store)

	stop := make(chan struct{})
	violations := make(chan string, 100)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			rec.checkVisible(srv.Backend, violations)
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	storagetest.Run(t, storagetest.Harness{
		Store:         rec,
		NewDir:        func(t *testing.T) string { return "s3://" + srv.NewBucket(t) + "/dir" },
		ManyEntries:   1000,
		LargeFileSize: 16 << 20,
		ForeignURI:    "s3://no-such-bucket",
		ForeignKind:   storage.ErrNotFound,
	})

	close(stop)
	wg.Wait()
	rec.checkVisible(srv.Backend, violations)
	close(violations)
	for v := range violations {
		t.Error(v)
	}
	total := proxy.Total()
	for _, f := range s3test.RandomFaults {
		t.Logf("%s: %d of %d requests", f, proxy.Count(f), total)
		if proxy.Count(f) == 0 {
			t.Errorf("the proxy never injected %s; the test proves nothing about it", f)
		}
	}
}

// recorder wraps a store and remembers the MD5 of every content committed
// (or being committed) under each key, so that a watcher can check that
// nothing else is ever visible.
type recorder struct {
	storage.Store
	mu      sync.Mutex
	allowed map[string]map[[md5.Size]byte]bool // "bucket/key" → contents
}

func newRecorder(s storage.Store) *recorder {
	return &recorder{Store: s, allowed: map[string]map[[md5.Size]byte]bool{}}
}

func objectKey(uri string) string {
	u, _ := storage.ParseURI(uri)
	return u.Authority + u.Path
}

func (r *recorder) allow(uri string, sum [md5.Size]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := objectKey(uri)
	if r.allowed[k] == nil {
		r.allowed[k] = map[[md5.Size]byte]bool{}
	}
	r.allowed[k][sum] = true
}

func (r *recorder) Create(ctx context.Context, uri string, opts storage.CreateOptions) (storage.Writer, error) {
	w, err := r.Store.Create(ctx, uri, opts)
	if err != nil {
		return nil, err
	}
	return &recordingWriter{Writer: w, r: r, uri: uri, h: md5.New()}, nil
}

func (r *recorder) Copy(ctx context.Context, src, dst string, opts storage.CreateOptions) (storage.Entry, error) {
	r.mu.Lock()
	for sum := range r.allowed[objectKey(src)] {
		k := objectKey(dst)
		if r.allowed[k] == nil {
			r.allowed[k] = map[[md5.Size]byte]bool{}
		}
		r.allowed[k][sum] = true
	}
	r.mu.Unlock()
	return r.Store.(storage.Copier).Copy(ctx, src, dst, opts)
}

// checkVisible compares every object on the server with the allowed contents.
func (r *recorder) checkVisible(backend *s3mem.Backend, violations chan<- string) {
	buckets, _ := backend.ListBuckets()
	for _, b := range buckets {
		list, err := backend.ListBucket(b.Name, nil, gofakes3.ListBucketPage{})
		if err != nil {
			continue
		}
		for _, c := range list.Contents {
			obj, err := backend.HeadObject(b.Name, c.Key)
			if err != nil {
				continue // deleted meanwhile
			}
			var sum [md5.Size]byte
			copy(sum[:], obj.Hash)
			r.mu.Lock()
			ok := r.allowed[b.Name+"/"+c.Key][sum]
			r.mu.Unlock()
			if !ok {
				select {
				case violations <- fmt.Sprintf("s3://%s/%s (%d bytes) holds content no writer committed", b.Name, c.Key, obj.Size):
				default:
				}
			}
		}
	}
}

type recordingWriter struct {
	storage.Writer
	r   *recorder
	uri string
	h   hash.Hash
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.h.Write(p[:n])
	return n, err
}

func (w *recordingWriter) Commit(ctx context.Context) (storage.Entry, error) {
	var sum [md5.Size]byte
	copy(sum[:], w.h.Sum(nil))
	w.r.allow(w.uri, sum) // before the commit: the object may appear before Commit returns
	return w.Writer.Commit(ctx)
}
