package membership_test

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/ferryio/ferry/cachenode/internal/testtemporal"
	"github.com/ferryio/ferry/cachenode/membership"
	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/workflows"
)

// startRegistry starts an in-memory Temporal server and one membership
// worker, and returns a client.
func startRegistry(t *testing.T) client.Client {
	t.Helper()
	c, _ := testtemporal.Start(t)
	startWorker(t, c)
	return c
}

func startWorker(t *testing.T, c client.Client) worker.Worker {
	t.Helper()
	w := worker.New(c, membership.TaskQueue, membership.WorkerOptions())
	workflows.RegisterMembership(w)
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	return w
}

func node(id, host string) ring.Member {
	return ring.Member{ID: id, Identity: ring.IdentityFromName(host), Host: host, HTTPPort: 28080, GRPCPort: 29080, TaskQueue: ring.TaskQueueFor(id)}
}

var fast = membership.JoinOptions{HeartbeatInterval: 200 * time.Millisecond, ExpireAfter: time.Second}

func ids(r *ring.Ring) string {
	var out []string
	for _, m := range r.Members() {
		out = append(out, m.ID)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// waitRing waits until the view's ring has exactly the given members and
// returns how long that took.
func waitRing(t *testing.T, v *membership.View, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(within)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		r, err := v.Current(context.Background())
		if err == nil {
			if last = ids(r); last == want {
				return time.Since(start)
			}
		}
		select {
		case <-deadline:
			t.Fatalf("ring is %q (err %v), want %q after %s", last, err, want, within)
		case <-tick.C:
		}
	}
}

func TestJoinLeaveExpireRejoin(t *testing.T) {
	c := startRegistry(t)
	ctx := context.Background()
	v := membership.NewView(c, membership.ViewOptions{RefreshInterval: 100 * time.Millisecond})

	// Before anyone joins, the ring is empty, not an error.
	if r, err := v.Current(ctx); err != nil || r.Len() != 0 {
		t.Fatalf("empty registry: %v, %v", r, err)
	}

	regs := map[string]*membership.Registration{}
	for i, id := range []string{"node-1", "node-2", "node-3"} {
		r, err := membership.Join(ctx, c, node(id, "127.0.0."+string(rune('1'+i))), fast)
		if err != nil {
			t.Fatal(err)
		}
		regs[id] = r
	}
	waitRing(t, v, "node-1,node-2,node-3", 10*time.Second)

	// A clean leave is seen at once (within one refresh).
	if err := regs["node-3"].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	waitRing(t, v, "node-1,node-2", 5*time.Second)

	// A node that stops heartbeating is dropped after ExpireAfter.
	regs["node-2"].Abandon()
	took := waitRing(t, v, "node-1", 10*time.Second)
	if took > 3*time.Second {
		t.Errorf("silent node left after %s; bound is expiry (1s) + sticky timeout + refresh", took)
	}

	// It comes back with the same identity.
	r, err := membership.Join(ctx, c, node("node-2", "127.0.0.2"), fast)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Abandon()
	waitRing(t, v, "node-1,node-2", 5*time.Second)
	rg, _ := v.Current(ctx)
	if m, ok := rg.Member("node-2"); !ok || m.Identity != ring.IdentityFromName("127.0.0.2") {
		t.Fatalf("node-2 rejoined as %+v", m)
	}
	snap, err := v.Snapshot(ctx)
	if err != nil || len(snap.Members) != 2 || snap.Members[0].LastSeen.IsZero() {
		t.Fatalf("snapshot %+v %v", snap, err)
	}

	// A second node claiming a live identity is refused.
	if err := membership.CheckIdentity(ctx, v, node("node-9", "127.0.0.1")); err == nil {
		t.Fatal("duplicate identity accepted")
	}
	if err := membership.CheckIdentity(ctx, v, node("node-1", "127.0.0.1")); err != nil {
		t.Fatalf("a node's own identity refused: %v", err)
	}
	regs["node-1"].Abandon()
}

func TestRegistrySurvivesItsWorker(t *testing.T) {
	c, _ := testtemporal.Start(t)
	ctx := context.Background()
	w1 := startWorker(t, c)
	startWorker(t, c)
	v := membership.NewView(c, membership.ViewOptions{RefreshInterval: 50 * time.Millisecond})
	r1, err := membership.Join(ctx, c, node("node-1", "h1"), fast)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Abandon()
	waitRing(t, v, "node-1", 10*time.Second)
	// One registry worker goes away; the other carries on.
	w1.Stop()
	r2, err := membership.Join(ctx, c, node("node-2", "h2"), fast)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Abandon()
	waitRing(t, v, "node-1,node-2", 15*time.Second)
}
