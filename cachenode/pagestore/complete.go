package pagestore

import "sync"

// DefaultCompleteFiles is the default of Options.CompleteFiles.
const DefaultCompleteFiles = 1 << 18

// completeShards is how many independently locked parts the set of complete
// files has (fewer when it holds fewer files): a change to one file blocks
// neither lookups nor confirmations of files in the other parts.
const completeShards = 64

// completeSet remembers files known to be cached complete: file id → the
// size and version they are complete at. It answers CachedComplete without
// the index for the files it holds (a lookup in the index costs
// microseconds: the keys of one call are scattered over the whole index).
//
// Invariant: an entry is present only while the file's metadata in the
// index holds exactly that size and version and counts every page. Every
// change of a file's metadata or deletion of its page records runs
// between begin and end (Store.applyChange), which removes the file's entry
// first; add, which needs no check, is only called under the file's stripe
// lock with the index state it records just committed. confirm, which
// records what an index read found, refuses to record it when a change of
// that part of the set was under way when the read started (the token of
// lookup) or began since: what was read may be stale. A change that ended
// before the token was taken was applied before the read.
type completeSet struct {
	shards []completeShard
}

type completeShard struct {
	mu sync.RWMutex
	m  map[[32]byte]completeEntry
	// limit is this shard's share of Options.CompleteFiles.
	limit int
	// gen counts the changes begun; busy is how many are under way.
	gen  uint64
	busy int
}

// completeEntry is what a complete file is complete at.
type completeEntry struct {
	size    int64
	version string
}

// newCompleteSet makes a set of at most limit files (none when limit ≤ 0).
func newCompleteSet(limit int) *completeSet {
	limit = max(limit, 0)
	c := &completeSet{shards: make([]completeShard, min(max(limit, 1), completeShards))}
	n := len(c.shards)
	for i := range c.shards {
		sh := &c.shards[i]
		sh.limit = limit / n
		if i < limit%n {
			sh.limit++
		}
		sh.m = make(map[[32]byte]completeEntry)
	}
	return c
}

func (c *completeSet) shard(fid [32]byte) *completeShard {
	return &c.shards[int(fid[1])%len(c.shards)]
}

// lookup returns fid's entry, if any, and a token for confirm, taken
// before the index is read: ok is false when a change of fid's part of the
// set is under way.
func (c *completeSet) lookup(fid [32]byte) (e completeEntry, found bool, tok completeToken) {
	sh := c.shard(fid)
	sh.mu.RLock()
	e, found = sh.m[fid]
	tok = completeToken{gen: sh.gen, ok: sh.busy == 0}
	sh.mu.RUnlock()
	return e, found, tok
}

// completeToken is the state of a part of the set before an index read.
type completeToken struct {
	gen uint64
	ok  bool
}

// confirm records that fid was found complete at size and version by an
// index read begun after tok was taken, unless a change may have happened
// since.
func (c *completeSet) confirm(fid [32]byte, e completeEntry, tok completeToken) {
	if !tok.ok {
		return
	}
	sh := c.shard(fid)
	sh.mu.Lock()
	if sh.gen == tok.gen { // no change begun since tok: none under way either
		sh.put(fid, e)
	}
	sh.mu.Unlock()
}

// add records that fid is complete at e. The caller holds fid's stripe
// lock and has just committed that state.
func (c *completeSet) add(fid [32]byte, e completeEntry) {
	sh := c.shard(fid)
	sh.mu.Lock()
	sh.put(fid, e)
	sh.mu.Unlock()
}

// put stores an entry, making room by dropping another when the shard is
// full (any other: a file not in the set is only looked up in the index).
// The caller holds sh.mu.
func (sh *completeShard) put(fid [32]byte, e completeEntry) {
	if sh.limit == 0 {
		return
	}
	if _, ok := sh.m[fid]; !ok && len(sh.m) >= sh.limit {
		for k := range sh.m { // map order: an arbitrary entry
			delete(sh.m, k)
			break
		}
	}
	sh.m[fid] = e
}

// begin forgets fid before a change of its metadata or page records; end
// follows once the change is applied (or failed).
func (c *completeSet) begin(fid [32]byte) {
	sh := c.shard(fid)
	sh.mu.Lock()
	delete(sh.m, fid)
	sh.gen++
	sh.busy++
	sh.mu.Unlock()
}

func (c *completeSet) end(fid [32]byte) {
	sh := c.shard(fid)
	sh.mu.Lock()
	sh.busy--
	sh.mu.Unlock()
}

// len is how many files the set holds.
func (c *completeSet) len() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += len(sh.m)
		sh.mu.RUnlock()
	}
	return n
}
