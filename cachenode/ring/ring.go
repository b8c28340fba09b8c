// Package ring is the consistent-hash ring that places files on cache nodes.
// It computes, bit for bit, the ring of the Alluxio clients (the Java client's
// ConsistentHashProvider and the Python fsspec client alluxiofs), so a file
// that Ferry loads onto a node is the file those clients read from it:
//
//   - A node's identity is a version (int32) and a 16-byte identifier. A node
//     named by a host string gets version 1 and the name-based UUID (v3, empty
//     namespace) of that string: Java's UUID.nameUUIDFromBytes.
//   - Every node owns VirtualNodes points (default 5): point i is the
//     MurmurHash3 x86 32-bit (seed 0, read as a signed int32) of
//     identifier ‖ version (4 bytes little-endian) ‖ i (4 bytes little-endian).
//   - The owners of a key (the full URI) are found by hashing key ‖ attempt
//     (4 bytes little-endian) for attempt = 1, 2, … up to 100 and taking the
//     node of the first point strictly greater than the hash, wrapping round,
//     skipping nodes already chosen, until k distinct nodes are found.
//
// The package is pure: no I/O, no clocks, no goroutines. Who is on the ring is
// decided elsewhere (package membership); a Ring is an immutable snapshot that
// is safe for concurrent use.
package ring

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/murmur3"
)

// DefaultVirtualNodes is the number of ring points per node that the Alluxio
// clients use unless configured otherwise
// (alluxio.user.consistent.hash.virtual.node.count.per.worker).
const DefaultVirtualNodes = 5

// MaxVirtualNodes bounds the points per node a configuration may ask for
// (a ring of 100 nodes at this count has a million points).
const MaxVirtualNodes = 10000

// maxAttempts bounds the search for distinct owners, as in the Alluxio
// clients; with few nodes and many points it is never reached in practice.
const maxAttempts = 100

// Identity is a node's place on the ring: what the Alluxio clients call a
// WorkerIdentity.
type Identity struct {
	Version int32
	ID      [16]byte
}

// IdentityFromName is the identity of a node named by a host (or any other)
// string: version 1 and the name-based UUID of the string's bytes, the way
// Java's UUID.nameUUIDFromBytes builds it (MD5, then the version nibble set
// to 3 and the variant bits to 10).
func IdentityFromName(name string) Identity {
	sum := md5.Sum([]byte(name))
	sum[6] = sum[6]&0x0f | 0x30
	sum[8] = sum[8]&0x3f | 0x80
	return Identity{Version: 1, ID: sum}
}

// String is the identifier in lower-case hex, as the Alluxio clients print it.
func (id Identity) String() string { return hex.EncodeToString(id.ID[:]) }

// identityJSON is the shape the Alluxio test vectors and etcd entries use.
type identityJSON struct {
	Version    int32  `json:"version"`
	Identifier string `json:"identifier"`
}

// MarshalJSON writes {"version": 1, "identifier": "<32 hex digits>"}.
func (id Identity) MarshalJSON() ([]byte, error) {
	return json.Marshal(identityJSON{Version: id.Version, Identifier: id.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (id *Identity) UnmarshalJSON(b []byte) error {
	var v identityJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	raw, err := hex.DecodeString(v.Identifier)
	if err != nil || len(raw) != len(id.ID) {
		return fmt.Errorf("ring identity %q: want 32 hex digits", v.Identifier)
	}
	id.Version = v.Version
	copy(id.ID[:], raw)
	return nil
}

// Member is one cache node as the ring and its clients see it.
type Member struct {
	// ID is Ferry's name for the node ("node-1"); stable across restarts.
	ID string `json:"id"`
	// Identity places the node on the ring. It is derived from a name (the
	// advertised host by default) so that it survives restarts.
	Identity Identity `json:"identity"`
	// Host is the address clients dial (a host name or an IP).
	Host string `json:"host"`
	// HTTPPort serves the Alluxio-compatible HTTP data API.
	HTTPPort int `json:"httpPort"`
	// GRPCPort serves Ferry's gRPC data service.
	GRPCPort int `json:"grpcPort"`
	// TaskQueue is the node's own Temporal task queue, where the activities
	// that work on its disk run.
	TaskQueue string `json:"taskQueue"`
	// VirtualNodes is the number of ring points per node the node was
	// started with. Readers build the ring with the count the members
	// advertise, so that nodes and every reader agree; 0 (a node that does
	// not say) leaves the reader's own setting.
	VirtualNodes int `json:"virtualNodes,omitempty"`
}

// TaskQueueFor is the task queue of the node with the given ID.
func TaskQueueFor(nodeID string) string { return "ferry-node-" + nodeID }

// Ring is an immutable snapshot of the placement ring.
type Ring struct {
	members []Member // sorted by ID
	points  []point  // sorted by hash
	// AsOf is when the membership the ring was built from was current
	// (the registry's clock), zero when not known: of two rings read at
	// different times, the one with the later AsOf is the newer.
	AsOf time.Time
}

type point struct {
	hash   int32
	member int // index into members
}

// New builds the ring of members with virtualNodes points each (values < 1
// mean DefaultVirtualNodes). Members are identified by Identity: when two
// share one, the first in ID order is kept. When two points of different
// members collide, the member later in identity order keeps the point; the
// clients' ordered maps resolve such a collision by insertion order, which is
// not defined across clients either, and with 32-bit hashes it is rare.
func New(members []Member, virtualNodes int) *Ring {
	if virtualNodes < 1 {
		virtualNodes = DefaultVirtualNodes
	}
	sorted := append([]Member(nil), members...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	r := &Ring{}
	seen := make(map[Identity]bool, len(sorted))
	for _, m := range sorted {
		if seen[m.Identity] {
			continue
		}
		seen[m.Identity] = true
		r.members = append(r.members, m)
	}

	// Insert in identity order so that collisions resolve the same way in
	// every process, whatever order the members arrived in.
	byIdentity := make([]int, len(r.members))
	for i := range byIdentity {
		byIdentity[i] = i
	}
	sort.Slice(byIdentity, func(a, b int) bool {
		return lessIdentity(r.members[byIdentity[a]].Identity, r.members[byIdentity[b]].Identity)
	})
	owner := make(map[int32]int, len(r.members)*virtualNodes)
	for _, mi := range byIdentity {
		for i := 0; i < virtualNodes; i++ {
			owner[PointHash(r.members[mi].Identity, i)] = mi
		}
	}
	r.points = make([]point, 0, len(owner))
	for h, mi := range owner {
		r.points = append(r.points, point{hash: h, member: mi})
	}
	sort.Slice(r.points, func(i, j int) bool { return r.points[i].hash < r.points[j].hash })
	return r
}

func lessIdentity(a, b Identity) bool {
	if a.Version != b.Version {
		return a.Version < b.Version
	}
	for i := range a.ID {
		if a.ID[i] != b.ID[i] {
			return a.ID[i] < b.ID[i]
		}
	}
	return false
}

// PointHash is the ring position of virtual node i of a node.
func PointHash(id Identity, i int) int32 {
	var buf [24]byte
	copy(buf[:16], id.ID[:])
	binary.LittleEndian.PutUint32(buf[16:], uint32(id.Version))
	binary.LittleEndian.PutUint32(buf[20:], uint32(i))
	return int32(murmur3.Sum32(buf[:]))
}

// KeyHash is the hash of a key for the given attempt (1, 2, …).
func KeyHash(key string, attempt int) int32 {
	var small [256]byte // most keys: no allocation
	buf := small[:0]
	if len(key)+4 > len(small) {
		buf = make([]byte, 0, len(key)+4)
	}
	buf = append(buf, key...)
	buf = buf[:len(key)+4]
	binary.LittleEndian.PutUint32(buf[len(key):], uint32(attempt))
	return int32(murmur3.Sum32(buf))
}

// Owners returns the k distinct members that own key (a full URI), first
// owner first. It returns fewer when the ring has fewer than k members, and
// none for an empty ring or k < 1.
func (r *Ring) Owners(key string, k int) []Member {
	if k > len(r.members) {
		k = len(r.members)
	}
	if k < 1 || len(r.points) == 0 {
		return nil
	}
	out := make([]Member, 0, k)
	chosen := make([]bool, len(r.members))
	for attempt := 1; attempt <= maxAttempts && len(out) < k; attempt++ {
		mi := r.ceiling(KeyHash(key, attempt))
		if !chosen[mi] {
			chosen[mi] = true
			out = append(out, r.members[mi])
		}
	}
	return out
}

// Owner returns the first owner of key, and false when the ring is empty.
func (r *Ring) Owner(key string) (Member, bool) {
	if len(r.points) == 0 {
		return Member{}, false
	}
	// Owners' first attempt, without its allocations: the first owner is
	// never a member already chosen.
	return r.members[r.ceiling(KeyHash(key, 1))], true
}

// ceiling is the member of the first point strictly greater than h, wrapping
// to the smallest point.
func (r *Ring) ceiling(h int32) int {
	i := sort.Search(len(r.points), func(i int) bool { return r.points[i].hash > h })
	if i == len(r.points) {
		i = 0
	}
	return r.points[i].member
}

// Members returns the ring's members sorted by ID. The slice is a copy.
func (r *Ring) Members() []Member { return append([]Member(nil), r.members...) }

// Len is the number of members.
func (r *Ring) Len() int { return len(r.members) }

// Member returns the member with the given ID.
func (r *Ring) Member(id string) (Member, bool) {
	i := sort.Search(len(r.members), func(i int) bool { return r.members[i].ID >= id })
	if i < len(r.members) && r.members[i].ID == id {
		return r.members[i], true
	}
	return Member{}, false
}

// Point is one position on the ring, for display and for tests.
type Point struct {
	Hash     int32    `json:"hash"`
	Member   string   `json:"member"`
	Identity Identity `json:"identity"`
}

// Points lists the ring's points in hash order.
func (r *Ring) Points() []Point {
	out := make([]Point, len(r.points))
	for i, p := range r.points {
		m := r.members[p.member]
		out[i] = Point{Hash: p.hash, Member: m.ID, Identity: m.Identity}
	}
	return out
}
