package hdfstest

import (
	"fmt"
	"math/rand/v2"
	"path"
	"strings"
	"sync"

	"github.com/ferryio/ferry/storage/hdfs"
)

// Fault is what the server does to one namenode call or one datanode
// transfer instead of serving it normally.
type Fault int

const (
	// Pass serves the call or transfer.
	Pass Fault = iota
	// Standby answers a namenode call with StandbyException, as the
	// standby of an HA pair does: the client moves to the other namenode.
	Standby
	// Drop closes the namenode connection without acting on the call: a
	// namenode that went away.
	Drop
	// DropAfter acts on the namenode call, then closes the connection
	// instead of answering: the call happened, the client does not know.
	DropAfter
	// LeaseLost answers create, addBlock and complete with
	// LeaseExpiredException, as when the writer's lease was taken.
	LeaseLost
	// Replicating makes complete commit the last block but answer false
	// (the block has not reached enough datanodes yet); the client is
	// expected to call complete again.
	Replicating
	// Reset cuts a datanode connection as soon as the operation arrives.
	Reset
	// ResetMid cuts a datanode connection in the middle of the block.
	ResetMid
	// Checksum corrupts a checksum of a block being read, or answers a
	// packet being written with ERROR_CHECKSUM.
	Checksum
	numFaults
)

// maxSpoiledPerFile bounds the random faults of one file's transfers.
const maxSpoiledPerFile = 2

// RandomDatanodeFaults are the faults a random datanode sequence draws.
var RandomDatanodeFaults = []Fault{Reset, ResetMid, Checksum}

var faultNames = [...]string{"pass", "standby", "drop", "drop after acting", "lease lost", "replicating", "reset", "reset mid-block", "checksum error"}

func (f Fault) String() string {
	if f >= 0 && f < numFaults {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Call is a namenode call, as fault rules see it.
type Call struct {
	// Namenode is the index of the namenode called (0 or 1 in an HA
	// pair).
	Namenode int
	// Method is the ClientProtocol method ("getFileInfo", "create"...).
	Method string
	// Path is the path the call names ("" for renewLease,
	// getServerDefaults).
	Path string
	// User is the user of the connection.
	User string
}

// Transfer is a datanode operation, as fault rules see it.
type Transfer struct {
	// Datanode is the index of the datanode.
	Datanode int
	// Op is "read" or "write".
	Op string
	// Block is the block id.
	Block uint64
	// Path is the path of the file the block was allocated to (a file
	// renamed since keeps the path it was written under).
	Path string
}

// Faults decides the fault of every call and transfer: by rule (a script)
// or at random with a seeded sequence. The random sequence spoils the
// transfers of one file at most twice in all (its writes, the writes of
// the partial files of the Ferry store that end as it, and its reads), so
// that bounded retries get through: a test fails only if the code under
// test mishandles a fault, never by bad luck.
type Faults struct {
	mu       sync.Mutex
	rng      *rand.Rand
	nnRate   float64
	dnRate   float64
	nnScript func(Call) Fault
	dnScript func(Transfer) Fault
	spoiled  map[string]int // by file path
	counts   [numFaults]int
}

func newFaults(seed uint64) *Faults {
	return &Faults{rng: rand.New(rand.NewPCG(seed, seed^0x9E3779B97F4A7C15)), spoiled: map[string]int{}}
}

// SetNamenodeScript makes script decide the fault of every namenode call;
// nil goes back to the random sequence. It runs one call at a time.
func (f *Faults) SetNamenodeScript(script func(Call) Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nnScript = script
}

// SetDatanodeScript makes script decide the fault of every datanode
// transfer; nil goes back to the random sequence.
func (f *Faults) SetDatanodeScript(script func(Transfer) Fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dnScript = script
}

// SetDatanodeRate spoils about rate of the datanode transfers, drawing
// from RandomDatanodeFaults; 0 turns random faults off.
func (f *Faults) SetDatanodeRate(rate float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dnRate = rate
}

// SetNamenodeRate makes about rate of the namenode calls drop the
// connection (Drop or DropAfter, drawn at random).
func (f *Faults) SetNamenodeRate(rate float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nnRate = rate
}

// Count is how many calls and transfers got fault x so far.
func (f *Faults) Count(x Fault) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[x]
}

// Spoiled is how many calls and transfers got a fault other than Pass.
func (f *Faults) Spoiled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for x, c := range f.counts {
		if Fault(x) != Pass {
			n += c
		}
	}
	return n
}

// namenode decides the fault of call c; a standby namenode answers every
// call that gets no other fault with Standby.
func (f *Faults) namenode(c Call, standby bool) Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := Pass
	switch {
	case f.nnScript != nil:
		d = f.nnScript(c)
	case f.nnRate > 0 && c.Method != "renewLease" && f.rng.Float64() < f.nnRate:
		d = []Fault{Drop, DropAfter}[f.rng.IntN(2)]
	}
	if d == Pass && standby {
		d = Standby
	}
	f.counts[d]++
	return d
}

func (f *Faults) datanode(t Transfer) Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := Pass
	switch {
	case f.dnScript != nil:
		d = f.dnScript(t)
	case f.spoiled[finalName(t.Path)] < maxSpoiledPerFile && f.rng.Float64() < f.dnRate:
		d = RandomDatanodeFaults[f.rng.IntN(len(RandomDatanodeFaults))]
		f.spoiled[finalName(t.Path)]++
	}
	f.counts[d]++
	return d
}

// finalName is the file a Ferry partial file ends as
// ("/d/.f.ferry-partial-1a2b" → "/d/f"), or p itself.
func finalName(p string) string {
	dir, base := path.Split(p)
	i := strings.Index(base, hdfs.PartialMarker)
	if i < 0 {
		return p
	}
	return dir + strings.TrimPrefix(base[:i], ".")
}
