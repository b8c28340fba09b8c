package pagestore

import (
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"runtime/debug"

	"golang.org/x/sys/unix"
)

// kernelCopy reports whether this system can fill pages with copyRange and
// checksumRange.
const kernelCopy = true

// copyRange copies n bytes of src at srcOff to dst at dstOff inside the
// kernel (copy_file_range: one copy, page cache to page cache, never through
// this process). It returns how many bytes it copied: fewer than n only when
// src ended first. errNoKernelCopy says the two files do not allow it
// (another file system, an old kernel): the caller copies through memory.
func copyRange(dst *os.File, dstOff int64, src *os.File, srcOff, n int64) (int64, error) {
	var copied int64
	for copied < n {
		k, err := unix.CopyFileRange(int(src.Fd()), &srcOff, int(dst.Fd()), &dstOff, int(n-copied), 0)
		if err != nil {
			if copied == 0 && (errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) ||
				errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBADF)) {
				return 0, fmt.Errorf("%w: %w", errNoKernelCopy, err)
			}
			return copied, err
		}
		if k == 0 {
			break // the source ended
		}
		copied += int64(k)
	}
	return copied, nil
}

// checksumRange computes the CRC-32C of n bytes of fh (open for reading) at
// off, reading them where they are (a read-only shared mapping of the page
// cache) rather than copying them out: right after a copyRange they are
// still in the CPU's caches.
func checksumRange(fh *os.File, off, n int64) (crc uint32, err error) {
	if n == 0 {
		return crc32.Checksum(nil, castagnoli), nil
	}
	pg := int64(os.Getpagesize())
	start := off &^ (pg - 1)
	m, err := unix.Mmap(int(fh.Fd()), start, int(off-start+n), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return checksumRead(fh, off, n) // a file system that cannot map files
	}
	defer func() { _ = unix.Munmap(m) }()
	// A mapped page that cannot be read (the file cut short by someone
	// else, an I/O error) is a fault, not a crash: it fails this page.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("checksum of the stored page: %v", r)
		}
	}()
	return crc32.Checksum(m[off-start:], castagnoli), nil
}
