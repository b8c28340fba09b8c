package pagestore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Small files (one page at most) are not given a data file each: creating a
// file and its directory costs more than writing 16 KiB. Their pages are
// appended to shared segment files instead, and the page record says where
// (segment and offset). A segment is only ever appended to, by the process
// that created it, so a page's bytes are never overwritten while a record
// may name them: a fill that dies before it commits its record leaves dead
// bytes, never a damaged or mixed page. An evicted page's space is freed by
// punching a hole; a segment whose pages are all gone is removed.

// segmentMax is the size at which the active segment is closed and a new one
// started.
const segmentMax = 256 << 20

// segmentAlign aligns pages in a segment to file-system blocks, so that
// punching a page's hole frees its blocks and no neighbour's.
const segmentAlign = 4096

func alignUp(n int64) int64 { return (n + segmentAlign - 1) &^ (segmentAlign - 1) }

// segment is one segment file.
type segment struct {
	id uint32
	fh *os.File
	// Guarded by segments.mu:
	size int64 // bytes reserved so far (the append offset)
	live int64 // aligned bytes of committed or reserved pages
}

// segments is the set of segment files of a store.
type segments struct {
	dir string
	// maxSize is segmentMax (smaller in tests).
	maxSize int64

	mu     sync.Mutex
	all    map[uint32]*segment
	active *segment
	next   uint32
}

func segmentName(id uint32) string { return fmt.Sprintf("%08d.seg", id) }

// openSegments opens the segment files in dir. live gives, per segment,
// the aligned bytes that committed page records name; segments that no
// record names are removed (their bytes were never committed, or all their
// pages are gone). Appends always go to a new segment.
func openSegments(dir string, live map[uint32]int64) (*segments, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &segments{dir: dir, maxSize: segmentMax, all: map[uint32]*segment{}, next: 1}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(name, 10, 32)
		if err != nil {
			continue
		}
		id := uint32(n)
		s.next = max(s.next, id+1)
		path := filepath.Join(dir, e.Name())
		if live[id] == 0 {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			continue
		}
		fh, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			s.close()
			return nil, err
		}
		st, err := fh.Stat()
		if err != nil {
			_ = fh.Close()
			s.close()
			return nil, err
		}
		s.all[id] = &segment{id: id, fh: fh, size: st.Size(), live: live[id]}
	}
	// Records naming a segment that is gone (removed by hand) keep their
	// count here so that the accounting stays balanced; reads of them fail
	// and the pages are fetched again.
	for id, n := range live {
		if _, ok := s.all[id]; !ok {
			s.all[id] = &segment{id: id, live: n}
			s.next = max(s.next, id+1)
		}
	}
	return s, nil
}

// reserve takes n bytes (aligned) at the end of the active segment, starting
// a new segment when it is full, and returns the segment and offset. The
// bytes count as live until release.
func (s *segments) reserve(n int64) (*segment, int64, error) {
	need := alignUp(n)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil || s.active.size+need > s.maxSize {
		id := s.next
		fh, err := os.OpenFile(filepath.Join(s.dir, segmentName(id)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return nil, 0, err
		}
		s.next++
		old := s.active
		s.active = &segment{id: id, fh: fh}
		s.all[id] = s.active
		if old != nil && old.live == 0 {
			s.removeLocked(old)
		}
	}
	seg := s.active
	off := seg.size
	seg.size += need
	seg.live += need
	return seg, off, nil
}

// release gives back the space of a page of n bytes at off in segment id:
// its hole is punched, and a segment with nothing live left that is not
// being appended to is removed.
func (s *segments) release(id uint32, off, n int64) {
	need := alignUp(n)
	s.mu.Lock()
	seg, ok := s.all[id]
	if !ok {
		s.mu.Unlock()
		return
	}
	seg.live -= need
	if seg.live <= 0 && seg != s.active {
		s.removeLocked(seg)
		s.mu.Unlock()
		return
	}
	fh := seg.fh
	s.mu.Unlock()
	if fh != nil {
		_ = punchHole(fh, off, need)
	}
}

func (s *segments) removeLocked(seg *segment) {
	delete(s.all, seg.id)
	if seg.fh != nil {
		_ = seg.fh.Close()
	}
	_ = os.Remove(filepath.Join(s.dir, segmentName(seg.id)))
}

// file returns the open segment id, or nil when it is gone.
func (s *segments) file(id uint32) *os.File {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seg, ok := s.all[id]; ok {
		return seg.fh
	}
	return nil
}

func (s *segments) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.all {
		if seg.fh != nil {
			_ = seg.fh.Close()
		}
	}
	s.all = map[uint32]*segment{}
	s.active = nil
}
