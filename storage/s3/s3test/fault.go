package s3test

import (
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Fault is what a Proxy does to one request.
type Fault int

const (
	// Pass forwards the request and its answer untouched.
	Pass Fault = iota
	// SlowDown answers 503 SlowDown without forwarding.
	SlowDown
	// ResetBefore cuts the connection without forwarding.
	ResetBefore
	// ResetAfter forwards, then cuts the connection instead of answering:
	// the server acted, the client does not know.
	ResetAfter
	// Truncate forwards, then cuts the response body in the middle.
	Truncate
	// NotImplemented answers 501 NotImplemented without forwarding; only
	// scripts use it.
	NotImplemented
	numFaults
)

// RandomFaults are the faults a Proxy's random sequence draws from.
var RandomFaults = []Fault{SlowDown, ResetBefore, ResetAfter, Truncate}

var faultNames = [...]string{"pass", "503 SlowDown", "reset before forwarding", "reset after forwarding", "truncated body", "501 NotImplemented"}

func (f Fault) String() string {
	if f >= 0 && f < numFaults {
		return faultNames[f]
	}
	return "unknown fault"
}

// Proxy is a reverse proxy in front of a server that spoils about Rate of
// the requests, chosen by a seeded pseudo-random sequence. One request (same
// method, URI and range) is spoiled at most twice in a row, so that the
// store's bounded retries (four attempts by default) always get through: a
// test then fails only if the code under test mishandles a fault, never by
// bad luck. A store with fewer attempts sees some faults itself.
type Proxy struct {
	// URL is the proxy's endpoint; give it to Options instead of the
	// server's.
	URL string

	mu     sync.Mutex
	rate   float64
	script func(*http.Request) Fault
	rng    *rand.Rand
	streak map[string]int
	counts [numFaults]int
}

// StartProxy puts a fault-injecting proxy in front of target (a server URL)
// that spoils about rate of the requests, in a sequence fixed by seed. It is
// stopped when the test ends.
func StartProxy(t testing.TB, target string, seed uint64, rate float64) *Proxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{
		rate: rate, rng: rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)), streak: map[string]int{},
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &faultyTransport{p: p, next: http.DefaultTransport}
	rp.ErrorLog = DiscardLogger()
	// Abort the client connection: the client sees a reset or an EOF, as
	// when a load balancer drops it. A body already under way is cut by
	// the proxy the same way.
	rp.ErrorHandler = func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) }
	srv := httptest.NewUnstartedServer(rp)
	srv.Config.ErrorLog = DiscardLogger()
	srv.Start()
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// SetRate changes the share of requests spoiled from now on; 0 lets every
// request through (a test sets up its data, then turns faults on).
func (p *Proxy) SetRate(rate float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rate = rate
}

// SetScript makes script decide the fault of every request instead of the
// random sequence; nil goes back to the random sequence. script runs under
// the proxy's lock, one request at a time.
func (p *Proxy) SetScript(script func(*http.Request) Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.script = script
}

// Count is how many requests got fault f so far (Pass counts the untouched
// ones).
func (p *Proxy) Count(f Fault) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[f]
}

// Total is how many requests the proxy has seen.
func (p *Proxy) Total() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.counts {
		n += c
	}
	return n
}

// Spoiled is how many requests got a fault other than Pass.
func (p *Proxy) Spoiled() int { return p.Total() - p.Count(Pass) }

// ErrCut is the error a cut connection or body gives the proxy's client
// side.
var ErrCut = errors.New("connection cut by the fault injector")

func (p *Proxy) decide(req *http.Request) Fault {
	key := req.Method + " " + req.URL.RequestURI() + " " + req.Header.Get("Range")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.script != nil {
		d := p.script(req)
		p.counts[d]++
		return d
	}
	d := Pass
	if p.streak[key] < 2 && p.rng.Float64() < p.rate {
		d = RandomFaults[p.rng.IntN(len(RandomFaults))]
		p.streak[key]++
	} else {
		delete(p.streak, key)
	}
	p.counts[d]++
	return d
}

type faultyTransport struct {
	p    *Proxy
	next http.RoundTripper
}

func (f *faultyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	switch f.p.decide(req) {
	case SlowDown:
		return errorResponse(req, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate."), nil
	case NotImplemented:
		return errorResponse(req, http.StatusNotImplemented, "NotImplemented", "A header you provided implies functionality that is not implemented."), nil
	case ResetBefore:
		_, _ = io.Copy(io.Discard, req.Body)
		return nil, ErrCut
	case ResetAfter:
		resp, err := f.next.RoundTrip(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
		return nil, ErrCut
	case Truncate:
		resp, err := f.next.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		if resp.ContentLength < 2 || req.Method == http.MethodHead {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			return nil, ErrCut
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
		return n, ErrCut
	}
	return n, err
}

func (b *cutBody) Close() error { return b.c.Close() }
