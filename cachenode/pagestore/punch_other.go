//go:build !linux

package pagestore

import (
	"errors"
	"os"
)

func punchHole(*os.File, int64, int64) error {
	return errors.New("freeing part of a file is not supported on this system")
}
