package membership

import (
	"fmt"
	"testing"

	"github.com/ferryio/ferry/cachenode/ring"
)

// Readers build the ring with the virtual-node count the nodes advertise,
// whatever their own setting, so that nodes, coordinators and APIs agree.
func TestSnapshotRingFollowsTheAdvertisedVirtualNodes(t *testing.T) {
	var members []ring.Member
	var recs []Record
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("node-%d", i)
		m := ring.Member{ID: id, Identity: ring.IdentityFromName(id), VirtualNodes: 2000}
		members = append(members, m)
		recs = append(recs, Record{Member: m})
	}
	want := ring.New(members, 2000)
	old := ring.New(members, ring.DefaultVirtualNodes)
	got := Snapshot{Members: recs}.Ring(ring.DefaultVirtualNodes)
	differs := 0
	for k := range 200 {
		key := fmt.Sprintf("s3://b/k%03d", k)
		g, _ := got.Owner(key)
		w, _ := want.Owner(key)
		o, _ := old.Owner(key)
		if g.ID != w.ID {
			t.Fatalf("%s: owner %s, want %s (the advertised 2000 points)", key, g.ID, w.ID)
		}
		if o.ID != w.ID {
			differs++
		}
	}
	if differs == 0 {
		t.Fatal("5 and 2000 points place every key alike: the test proves nothing")
	}
	// Members that do not advertise a count leave the reader's.
	for i := range recs {
		recs[i].Member.VirtualNodes = 0
	}
	got = Snapshot{Members: recs}.Ring(ring.DefaultVirtualNodes)
	for k := range 50 {
		key := fmt.Sprintf("s3://b/k%03d", k)
		g, _ := got.Owner(key)
		o, _ := old.Owner(key)
		if g.ID != o.ID {
			t.Fatalf("%s: owner %s, want %s (the reader's 5 points)", key, g.ID, o.ID)
		}
	}
}
