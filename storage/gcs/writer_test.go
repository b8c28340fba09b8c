package gcs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/gcs/gcstest"
	"github.com/ferryio/ferry/storage/storagetest"
)

// TestResumableNothingVisibleBeforeCommit sends chunks of a resumable
// upload, checks that nothing is visible, aborts, and checks again.
func TestResumableNothingVisibleBeforeCommit(t *testing.T) {
	ctx := context.Background()
	srv := gcstest.Start(t)
	s := gcstest.NewStore(t, gcstest.Options(srv.URL))
	bucket := srv.NewBucket()
	uri := "gs://" + bucket + "/big"
	storagetest.Put(t, s, "gs://"+bucket+"/keep", []byte("k"))

	w, err := s.Create(ctx, uri, storage.CreateOptions{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(storagetest.Content(1, 12<<20)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, uri); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat while writing: %v, want ErrNotFound", err)
	}
	if got := storagetest.ListAll(t, s, "gs://"+bucket, true, 10); len(got) != 1 {
		t.Fatalf("listing while writing shows %d entries, want only keep", len(got))
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stat(ctx, uri); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat after abort: %v, want ErrNotFound", err)
	}
}

// TestNoOverwriteRaceResumable: another writer takes the name while a
// resumable upload is under way. fake-gcs-server ignores ifGenerationMatch
// on resumable uploads, so only the check before finalizing can refuse.
func TestNoOverwriteRaceResumable(t *testing.T) {
	ctx := context.Background()
	srv := gcstest.Start(t)
	s := gcstest.NewStore(t, gcstest.Options(srv.URL))
	uri := "gs://" + srv.NewBucket() + "/contended"
	w, err := s.Create(ctx, uri, storage.CreateOptions{Size: 12 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(storagetest.Content(2, 12<<20)); err != nil {
		t.Fatal(err)
	}
	storagetest.Put(t, s, uri, []byte("the other writer won"))
	if _, err := w.Commit(ctx); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("commit over a name taken meanwhile: %v, want ErrExists", err)
	}
	if got := storagetest.Get(t, s, uri, 0, -1); string(got) != "the other writer won" {
		t.Fatalf("the refused commit changed the object to %d bytes", len(got))
	}
}

// cutOnce is a transport that forwards the first request matching and then
// drops the connection instead of answering, as when a response is lost.
type cutOnce struct {
	match func(*http.Request) bool
	mu    sync.Mutex
	done  bool
}

func (c *cutOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && !c.done && c.match(r) {
		c.done = true
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return nil, errors.New("response lost")
	}
	return resp, err
}

// TestLostFinalizeResponse: the single-request upload is stored but its
// response is lost; the client retries, GCS refuses with 412 (the object
// exists now), and the store recognises its own object by its write id.
func TestLostFinalizeResponse(t *testing.T) {
	srv := gcstest.Start(t)
	target, _ := url.Parse(srv.URL)
	cut := &cutOnce{match: func(r *http.Request) bool {
		return r.Method == http.MethodPost && r.URL.Query().Get("uploadType") == "multipart"
	}}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = cut
	proxy.ErrorHandler = func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) }
	ps := httptest.NewUnstartedServer(proxy)
	ps.Config.ErrorLog = gcstest.DiscardLogger()
	ps.Start()
	t.Cleanup(ps.Close)

	s := gcstest.NewStore(t, gcstest.Options(ps.URL))
	uri := "gs://" + srv.NewBucket() + "/lost"
	data := storagetest.Content(3, 1000)
	ctx := context.Background()
	w, err := s.Create(ctx, uri, storage.CreateOptions{Size: int64(len(data))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	e, err := w.Commit(ctx)
	if err != nil {
		t.Fatalf("commit whose response was lost: %v", err)
	}
	if !cut.done {
		t.Fatal("the upload was never cut")
	}
	if got := storagetest.Get(t, s, uri, 0, -1); !bytes.Equal(got, data) || e.Size != int64(len(data)) {
		t.Fatalf("content %d bytes, entry %+v", len(got), e)
	}
}

// TestCopyKeepsMetadataAndNames copies names that need escaping.
func TestCopyTrickyNames(t *testing.T) {
	ctx := context.Background()
	srv := gcstest.Start(t)
	s := gcstest.NewStore(t, gcstest.Options(srv.URL))
	bucket := srv.NewBucket()
	src, dst := "gs://"+bucket+"/src a+b%20ü", "gs://"+bucket+"/dst/x+y z"
	data := storagetest.Content(4, 5<<20+3)
	storagetest.Put(t, s, src, data)
	if _, err := s.Copy(ctx, src, dst, storage.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := storagetest.Get(t, s, dst, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("copy differs from the source")
	}
	if _, err := s.Copy(ctx, src, dst, storage.CreateOptions{}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("copy over an existing object: %v, want ErrExists", err)
	}
	if _, err := s.Copy(ctx, src, dst, storage.CreateOptions{Overwrite: true}); err != nil {
		t.Fatalf("copy with overwrite: %v", err)
	}
}
