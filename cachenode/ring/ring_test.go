package ring_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/ferryio/ferry/cachenode/ring"
)

func load(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// vectorRing is the ring of the 50 hosts of the test vectors.
func vectorRing(t *testing.T) (*ring.Ring, []string) {
	var hosts []string
	load(t, "workerHostnames.json", &hosts)
	members := make([]ring.Member, len(hosts))
	for i, h := range hosts {
		members[i] = ring.Member{ID: h, Identity: ring.IdentityFromName(h), Host: h, HTTPPort: 28080}
	}
	return ring.New(members, ring.DefaultVirtualNodes), hosts
}

func TestIdentitiesMatchVectors(t *testing.T) {
	var hosts []string
	var want []ring.Identity
	load(t, "workerHostnames.json", &hosts)
	load(t, "workerList.json", &want)
	if len(hosts) != 50 || len(want) != 50 {
		t.Fatalf("vectors: %d hosts, %d identities; want 50 each", len(hosts), len(want))
	}
	// workerList.json holds the same identities in another order.
	got := map[ring.Identity]string{}
	for _, h := range hosts {
		got[ring.IdentityFromName(h)] = h
	}
	for _, id := range want {
		if _, ok := got[id]; !ok {
			t.Errorf("identity %s (version %d) is not the identity of any host", id, id.Version)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct identities, want %d", len(got), len(want))
	}
	// A known pair, checked by hand against Java's UUID.nameUUIDFromBytes.
	if id := ring.IdentityFromName("worker-fmvjygixyt-8993"); id.String() != "4f23e7a1a230318a912dbdf8f78e0aed" || id.Version != 1 {
		t.Errorf("identity of worker-fmvjygixyt-8993 = %s v%d", id, id.Version)
	}
}

func TestRingPointsMatchVectors(t *testing.T) {
	r, _ := vectorRing(t)
	var want map[string]ring.Identity
	load(t, "activeNodesMap.json", &want)
	if len(want) != 250 {
		t.Fatalf("activeNodesMap.json has %d points, want 250", len(want))
	}
	points := r.Points()
	if len(points) != len(want) {
		t.Fatalf("ring has %d points, want %d", len(points), len(want))
	}
	for _, p := range points {
		id, ok := want[strconv.Itoa(int(p.Hash))]
		if !ok {
			t.Errorf("point %d (%s) is not in the vectors", p.Hash, p.Member)
			continue
		}
		if id != p.Identity {
			t.Errorf("point %d belongs to %s, want %s", p.Hash, p.Identity, id)
		}
	}
}

func TestOwnersMatchVectors(t *testing.T) {
	r, _ := vectorRing(t)
	var want map[string][]ring.Identity
	load(t, "fileUrlWorkers.json", &want)
	if len(want) != 21 {
		t.Fatalf("fileUrlWorkers.json has %d URIs, want 21", len(want))
	}
	uris := make([]string, 0, len(want))
	for u := range want {
		uris = append(uris, u)
	}
	sort.Strings(uris)
	for _, uri := range uris {
		owners := r.Owners(uri, 5)
		if len(owners) != 5 {
			t.Errorf("%s: %d owners, want 5", uri, len(owners))
			continue
		}
		for i, o := range owners {
			if o.Identity != want[uri][i] {
				t.Errorf("%s: owner %d is %s, want %s", uri, i, o.Identity, want[uri][i])
			}
		}
		if first, ok := r.Owner(uri); !ok || first.Identity != want[uri][0] {
			t.Errorf("%s: Owner gives %s, want %s", uri, first.Identity, want[uri][0])
		}
	}
}

// Owner is Owners' first, for rings of every size and keys of any bytes.
func TestOwnerIsTheFirstOfOwners(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 0; n <= 9; n++ {
		var members []ring.Member
		for i := range n {
			members = append(members, ring.Member{ID: fmt.Sprintf("node-%d", i), Identity: ring.IdentityFromName(fmt.Sprintf("10.0.0.%d", i))})
		}
		r := ring.New(members, 1+rng.IntN(8))
		for range 500 {
			key := make([]byte, rng.IntN(40))
			for i := range key {
				key[i] = byte(rng.IntN(256))
			}
			got, ok := r.Owner(string(key))
			want := r.Owners(string(key), 1)
			if ok != (len(want) == 1) || ok && got.ID != want[0].ID {
				t.Fatalf("%d members, key %q: Owner %v %v, Owners %v", n, key, got.ID, ok, want)
			}
		}
	}
}

func TestOwnersAreDistinctAndBounded(t *testing.T) {
	members := []ring.Member{
		{ID: "node-1", Identity: ring.IdentityFromName("127.0.0.1")},
		{ID: "node-2", Identity: ring.IdentityFromName("127.0.0.2")},
		{ID: "node-3", Identity: ring.IdentityFromName("127.0.0.3")},
	}
	r := ring.New(members, 0)
	for _, tc := range []struct {
		k, want int
	}{{0, 0}, {1, 1}, {2, 2}, {3, 3}, {7, 3}} {
		owners := r.Owners("s3://bucket/key", tc.k)
		if len(owners) != tc.want {
			t.Errorf("k=%d: %d owners, want %d", tc.k, len(owners), tc.want)
		}
		seen := map[string]bool{}
		for _, o := range owners {
			if seen[o.ID] {
				t.Errorf("k=%d: %s chosen twice", tc.k, o.ID)
			}
			seen[o.ID] = true
		}
	}
	if got := ring.New(nil, 5).Owners("s3://b/k", 1); len(got) != 0 {
		t.Errorf("empty ring gave owners %v", got)
	}
	// The first owner does not depend on the order members are given in.
	rev := ring.New([]ring.Member{members[2], members[0], members[1]}, 0)
	for _, key := range []string{"s3://a/1", "file:///x/y", "gs://b/c d"} {
		a, _ := r.Owner(key)
		b, _ := rev.Owner(key)
		if a.ID != b.ID {
			t.Errorf("%s: owner %s vs %s depending on member order", key, a.ID, b.ID)
		}
	}
}

func TestDuplicateIdentityKeepsFirstByID(t *testing.T) {
	id := ring.IdentityFromName("127.0.0.1")
	r := ring.New([]ring.Member{{ID: "node-b", Identity: id}, {ID: "node-a", Identity: id}}, 0)
	if r.Len() != 1 || r.Members()[0].ID != "node-a" {
		t.Fatalf("members %v, want only node-a", r.Members())
	}
}

func TestIdentityJSONRoundTrip(t *testing.T) {
	id := ring.IdentityFromName("host-1")
	b, err := json.Marshal(id)
	if err != nil {
		t.Fatal(err)
	}
	var back ring.Identity
	if err := json.Unmarshal(b, &back); err != nil || back != id {
		t.Fatalf("round trip %s -> %v, %v", b, back, err)
	}
	if err := json.Unmarshal([]byte(`{"version":1,"identifier":"zz"}`), &back); err == nil {
		t.Fatal("bad identifier accepted")
	}
}
