package bandwidth

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/internal/ferrytest"
)

// testNode is one node's side of the limiter: its authority served over
// gRPC on a free port, and its pacer.
type testNode struct {
	id     string
	srv    *grpc.Server
	port   int
	pacer  *Pacer
	served atomic.Int64
}

// startNodes starts n nodes whose pacers see the same ring.
func startNodes(t *testing.T, n int) []*testNode {
	t.Helper()
	var nodes []*testNode
	var members []ring.Member
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tn := &testNode{id: fmt.Sprintf("node-%d", i+1), port: l.Addr().(*net.TCPAddr).Port}
		auth := &Authority{}
		tn.srv = grpc.NewServer(grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			tn.served.Add(1)
			return h(ctx, req)
		}))
		(&Service{Authority: auth}).Register(tn.srv)
		go func() { _ = tn.srv.Serve(l) }()
		t.Cleanup(tn.srv.Stop)
		tn.pacer = &Pacer{Self: tn.id, Authority: auth}
		t.Cleanup(func() { _ = tn.pacer.Close() })
		nodes = append(nodes, tn)
		members = append(members, ring.Member{ID: tn.id, Identity: ring.IdentityFromName(tn.id), Host: "127.0.0.1", GRPCPort: tn.port})
	}
	rg := ring.New(members, ring.DefaultVirtualNodes)
	for _, tn := range nodes {
		tn.pacer.Ring = func(context.Context) (*ring.Ring, error) { return rg, nil }
	}
	return nodes
}

// measure runs readers batches on every node, each reading chunk-sized
// pieces of job paced by its node's limiter, and returns the bytes per
// second they read between from and to after the start.
func measure(t *testing.T, nodes []*testNode, job string, limit int64, readers, chunk int, from, to time.Duration) float64 {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var read atomic.Int64
	var wg sync.WaitGroup
	for _, tn := range nodes {
		for range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					// Paid after the read, as the data path does.
					read.Add(int64(chunk))
					if err := tn.pacer.Limiter(job, "", limit, 0).WaitN(ctx, chunk); err != nil {
						return
					}
				}
			}()
		}
	}
	// The window is counted in bytes at the limit: it opens once from's
	// worth has been read and closes once (to-from)'s worth more has.
	// Deadlines are 3× the time the limit allows (the test then fails on
	// the rate it measured).
	atLeast := func(n int64, d time.Duration) {
		if err := ferrytest.Within(3*d, func() error {
			if got := read.Load(); got < n {
				return fmt.Errorf("%d of %d bytes read", got, n)
			}
			return nil
		}); err != nil {
			t.Logf("window cut short: %v", err)
		}
	}
	atLeast(int64(float64(limit)*from.Seconds()), from)
	a, ta := read.Load(), time.Now()
	atLeast(a+int64(float64(limit)*(to-from).Seconds()), to-from)
	b, tb := read.Load(), time.Now()
	cancel()
	wg.Wait()
	return float64(b-a) / tb.Sub(ta).Seconds()
}

// TestPacerHoldsJobLimitAcrossNodes: twelve batches on three nodes, two of
// which reach the job's authority over gRPC, read at the job's limit
// together, for large and small reads.
func TestPacerHoldsJobLimitAcrossNodes(t *testing.T) {
	nodes := startNodes(t, 3)
	for _, c := range []struct {
		limit int64
		chunk int
	}{{1_000_000, 64 << 10}, {4_000_000, 2 << 10}} {
		t.Run(fmt.Sprintf("%d B/s, reads of %d", c.limit, c.chunk), func(t *testing.T) {
			job := fmt.Sprintf("job-%d", c.limit)
			got := measure(t, nodes, job, c.limit, 4, c.chunk, 500*time.Millisecond, 3500*time.Millisecond)
			t.Logf("limit %d B/s: measured %.0f B/s (%.3f×)", c.limit, got, got/float64(c.limit))
			if got < 0.9*float64(c.limit) || got > 1.1*float64(c.limit) {
				t.Fatalf("measured %.0f B/s against a limit of %d", got, c.limit)
			}
		})
	}
	// The leases went through the authority: the nodes that are not it
	// called it.
	var remote int64
	for _, tn := range nodes {
		remote += tn.served.Load()
	}
	if remote == 0 {
		t.Fatal("no node asked another for a lease")
	}
}

// TestPacerFallbackStaysUnderLimit: with the job's authority gone, the
// other nodes pace the job alone at limit / nodes each, so the job stays
// under its limit.
func TestPacerFallbackStaysUnderLimit(t *testing.T) {
	nodes := startNodes(t, 3)
	const job, limit = "job-fallback", 3_000_000
	var owner *testNode
	rg, _ := nodes[0].pacer.Ring(context.Background())
	o, _ := rg.Owner(AuthorityKey(job))
	var others []*testNode
	for _, tn := range nodes {
		if tn.id == o.ID {
			owner = tn
		} else {
			others = append(others, tn)
		}
	}
	owner.srv.Stop()
	got := measure(t, others, job, limit, 4, 64<<10, 500*time.Millisecond, 2500*time.Millisecond)
	t.Logf("two of three nodes without their authority: %.0f B/s against %d", got, limit)
	// Two nodes of three, each at a third of the limit.
	want := 2.0 / 3 * limit
	if got > 1.1*want || got < 0.8*want {
		t.Fatalf("measured %.0f B/s; want about %.0f (two thirds of %d)", got, want, limit)
	}
}

// TestWaitFollowsRaisedLimit: a batch waiting for a lease granted at 1 B/s
// (18 h for 64 KiB) goes on within a few seconds once the job's limit is
// raised, rather than sleeping the whole wait.
func TestWaitFollowsRaisedLimit(t *testing.T) {
	p := &Pacer{Self: "n1"}
	l := p.Limiter("job", "", 1, 1)
	done := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() { done <- l.WaitN(ctx, 64<<10) }()
	// Once the lease is granted (the waiter now sleeps), a batch started
	// after the change brings the new limit to this node.
	a := p.authority()
	ferrytest.Eventually(t, 10*time.Second, func() error {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.jobs["job"] == nil {
			return fmt.Errorf("no lease granted yet")
		}
		return nil
	})
	p.Limiter("job", "", 50<<20, 2)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
	case <-time.After(3 * RefreshEvery):
		t.Fatalf("still waiting %v after the limit was raised to 50 MiB/s", 3*RefreshEvery)
	}
}
