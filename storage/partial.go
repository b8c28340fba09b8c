package storage

import (
	"crypto/sha256"
	"encoding/hex"
)

// MaxNameLength is the longest file name (one path component) the file
// systems Ferry writes to accept: 255 bytes on Linux file systems and HDFS's
// default dfs.namenode.fs-limits.max-component-length.
const MaxNameLength = 255

// PartialName is the name of the file that becomes base once written:
// "." + base + marker + suffix. When that is longer than MaxNameLength (base
// itself may be up to that long), base is cut short and followed by a hash
// of the whole of it, so that the name fits, still holds marker (listings
// skip it) and is the same for the same base (a retry and a cleanup find
// the same file).
func PartialName(base, marker, suffix string) string {
	if name := "." + base + marker + suffix; len(name) <= MaxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(base))
	tail := "~" + hex.EncodeToString(sum[:8]) + marker + suffix
	keep := max(MaxNameLength-1-len(tail), 0)
	return "." + base[:min(keep, len(base))] + tail
}
