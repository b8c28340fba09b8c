package pagestore

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// kernelCopy reports whether this system can fill pages with copyRange.
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
