package pagestore

import (
	"os"
	"sync/atomic"
	"syscall"
)

// SetSegmentSize makes the store start a new segment every n bytes, so that
// tests see several.
func SetSegmentSize(s *Store, n int64) {
	s.segs.mu.Lock()
	s.segs.maxSize = n
	s.segs.mu.Unlock()
}

// RefuseKernelCopy makes every copy of a local source's pages inside the
// kernel fail as it does between file systems that do not allow it, until
// the returned function is called.
func RefuseKernelCopy() (restore func()) {
	copyPage = func(*os.File, int64, *os.File, int64, int64) (int64, error) { return 0, errNoKernelCopy }
	return func() { copyPage = copyRange }
}

// KernelCopy reports whether this system copies local sources' pages in
// the kernel.
const KernelCopy = kernelCopy

// CountKernelCopies counts the pages copied inside the kernel until the
// returned restore is called.
func CountKernelCopies() (count func() int64, restore func()) {
	var n atomic.Int64
	copyPage = func(dst *os.File, dstOff int64, src *os.File, srcOff, k int64) (int64, error) {
		c, err := copyRange(dst, dstOff, src, srcOff, k)
		if err == nil {
			n.Add(1)
		}
		return c, err
	}
	return n.Load, func() { copyPage = copyRange }
}

// FailKernelCopyAfter makes every kernel copy after the first n fail with
// an I/O error, until the returned function is called.
func FailKernelCopyAfter(n int64) (restore func()) {
	var calls atomic.Int64
	copyPage = func(dst *os.File, dstOff int64, src *os.File, srcOff, k int64) (int64, error) {
		if calls.Add(1) > n {
			return 0, syscall.EIO
		}
		return copyRange(dst, dstOff, src, srcOff, k)
	}
	return func() { copyPage = copyRange }
}

// CopyChecksummed is the kernel copy of a page with the checksum of what
// landed.
var CopyChecksummed = copyChecksummed

// SetCopyAhead makes every kernel copy of s copy ahead in a goroutine of
// its own (true) or copy and checksum in one (false), whatever the load.
func SetCopyAhead(s *Store, ahead bool) {
	if ahead {
		s.copyMode.Store(1)
	} else {
		s.copyMode.Store(-1)
	}
}

// EvictScans is how many evictions have begun from the old end of the
// access order.
func EvictScans(s *Store) int64 { return s.stats.evictScans.Load() }

// AfterIndexWalk makes fn run in every CachedComplete of s between its
// index walk and its recording of the files the walk found complete.
func AfterIndexWalk(s *Store, fn func()) { s.afterIndexWalk = fn }

// CompleteLen is how many files s remembers as cached complete.
func CompleteLen(s *Store) int { return s.complete.len() }

// DuringChange makes fn run in every change of a file's metadata or page
// records in s, between forgetting that the file is complete and applying
// the change.
func DuringChange(s *Store, fn func()) { s.duringChange = fn }
