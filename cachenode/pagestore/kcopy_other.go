//go:build !linux

package pagestore

import (
	"errors"
	"os"
)

// kernelCopy is false: pages are filled through memory.
const kernelCopy = false

func copyRange(*os.File, int64, *os.File, int64, int64) (int64, error) {
	return 0, errNoKernelCopy
}

func checksumRange(*os.File, int64, int64) (uint32, error) {
	return 0, errors.ErrUnsupported
}
