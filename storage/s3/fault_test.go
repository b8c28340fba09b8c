package s3_test

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/storagetest"
)

// fault is what the proxy does to one request.
type fault int

const (
	pass        fault = iota
	slowDown          // answer 503 SlowDown without forwarding
	resetBefore       // cut the connection without forwarding
	resetAfter        // forward, then cut the connection instead of answering
	truncate          // forward, then cut the response body in the middle
	// notImplemented answers 501 NotImplemented without forwarding; only
	// scripts use it.
	notImplemented
	numFaults
)

// randomFaults are the faults the random sequence draws from.
var randomFaults = []fault{slowDown, resetBefore, resetAfter, truncate}

var faultNames = [...]string{"pass", "503 SlowDown", "reset before forwarding", "reset after forwarding", "truncated body", "501 NotImplemented"}

// faultyTransport forwards requests to the server and spoils about rate of
// them, chosen by a seeded pseudo-random sequence. One request (same method,
// URI and range) is spoiled at most twice in a row, so that the store's
// bounded retries (four attempts) always get through: the test then fails
// only if the store mishandles a fault, never by bad luck.
type faultyTransport struct {
	next http.RoundTripper
	rate float64
	// script, when set, decides instead of the random sequence: it returns
	// the fault for a request, or pass.
	script func(*http.Request) fault

	mu     sync.Mutex
	rng    *rand.Rand
	streak map[string]int
	counts [numFaults]int
}

var errCut = errors.New("connection cut by the fault injector")

func (f *faultyTransport) decide(req *http.Request) fault {
	key := req.Method + " " + req.URL.RequestURI() + " " + req.Header.Get("Range")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.script != nil {
		d := f.script(req)
		f.counts[d]++
		return d
	}
	d := pass
	if f.streak[key] < 2 && f.rng.Float64() < f.rate {
		d = randomFaults[f.rng.IntN(len(randomFaults))]
		f.streak[key]++
	} else {
		delete(f.streak, key)
	}
	f.counts[d]++
	return d
}

func (f *faultyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch f.decide(req) {
	case slowDown:
		return errorResponse(req, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate."), nil
	case notImplemented:
		return errorResponse(req, http.StatusNotImplemented, "NotImplemented", "A header you provided implies functionality that is not implemented."), nil
	case resetBefore:
		_, _ = io.Copy(io.Discard, req.Body)
		return nil, errCut
	case resetAfter:
		resp, err := f.next.RoundTrip(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return nil, errCut
	case truncate:
		resp, err := f.next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		if resp.ContentLength < 2 || req.Method == http.MethodHead {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil, errCut
		}
		resp.Body = &cutBody{r: io.LimitReader(resp.Body, resp.ContentLength/2), c: resp.Body}
		return resp, nil
	}
	return f.next.RoundTrip(req)
}

// errorResponse is an S3 error answered by the proxy itself.
func errorResponse(req *http.Request, status int, code, msg string) *http.Response {
	_, _ = io.Copy(io.Discard, req.Body)
	body := `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>` + msg + `</Message></Error>`
	return &http.Response{
		StatusCode: status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/xml"}}, ContentLength: int64(len(body)),
		Body: io.NopCloser(strings.NewReader(body)), Request: req,
	}
}

// cutBody ends with an error after part of the body.
type cutBody struct {
	r io.Reader
	c io.Closer
}

func (b *cutBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, errCut
	}
	return n, err
}

func (b *cutBody) Close() error { return b.c.Close() }

// newFaultyProxy puts a reverse proxy with fault injection in front of
// target.
func newFaultyProxy(t *testing.T, target string, seed uint64, rate float64) (*httptest.Server, *faultyTransport) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ft := &faultyTransport{
		next: http.DefaultTransport, rate: rate,
		rng: rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)), streak: map[string]int{},
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.Transport = ft
	proxy.ErrorLog = discardLogger()
	// Abort the client connection: the client sees a reset or an EOF, as
	// when a load balancer drops it. A body already under way is cut by
	// the proxy the same way.
	proxy.ErrorHandler = func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) }
	srv := httptest.NewUnstartedServer(proxy)
	srv.Config.ErrorLog = discardLogger()
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, ft
}

// TestConformanceThroughFaults runs the whole conformance suite through a
// proxy that spoils about 10% of the requests, and checks all along that
// every object visible on the server holds bytes some writer committed in
// full: never a partial object under a final key.
func TestConformanceThroughFaults(t *testing.T) {
	srv := newTestServer(t)
	proxy, faults := newFaultyProxy(t, srv.URL, 20240607, 0.10)
	store := newStore(t, storeOptions(proxy.URL))
	rec := newRecorder(store)

	stop := make(chan struct{})
	violations := make(chan string, 100)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			rec.checkVisible(srv.backend, violations)
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()

	storagetest.Run(t, storagetest.Harness{
		Store:         rec,
		NewDir:        func(t *testing.T) string { return "s3://" + srv.newBucket(t) + "/dir" },
		ManyEntries:   1000,
		LargeFileSize: 16 << 20,
		ForeignURI:    "s3://no-such-bucket",
		ForeignKind:   storage.ErrNotFound,
	})

	close(stop)
	wg.Wait()
	rec.checkVisible(srv.backend, violations)
	close(violations)
	for v := range violations {
		t.Error(v)
	}
	faults.mu.Lock()
	defer faults.mu.Unlock()
	total := 0
	for _, n := range faults.counts {
		total += n
	}
	for _, f := range randomFaults {
		t.Logf("%s: %d of %d requests", faultNames[f], faults.counts[f], total)
		if faults.counts[f] == 0 {
			t.Errorf("the proxy never injected %s; the test proves nothing about it", faultNames[f])
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
