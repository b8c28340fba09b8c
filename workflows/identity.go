package workflows

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// MaxReadableWorkflowID is the longest workflow ID that spells a job's
// identity out in full; longer identities, and identities holding anything
// but printable ASCII, get a hashed ID (see JobWorkflowID).
const MaxReadableWorkflowID = 200

// hashedPrefixLength is how much of the identity a hashed ID keeps, made
// readable, after the hash.
const hashedPrefixLength = 120

// CanonicalLocation spells a location URI one way, so that every spelling
// of one place gives one job: the scheme in lower case, file://localhost as
// file://, no trailing "/" and, on file systems (file, hdfs), no repeated
// "/". Object-store keys keep their inner slashes: "a//x" and "a/x" are two
// keys. A string that is not a URI is returned as it is.
func CanonicalLocation(uri string) string {
	scheme, rest, ok := strings.Cut(uri, "://")
	if !ok || scheme == "" {
		return uri
	}
	scheme = strings.ToLower(scheme)
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if scheme == "file" && strings.EqualFold(authority, "localhost") {
		authority = ""
	}
	if scheme == "file" || scheme == "hdfs" {
		for strings.Contains(path, "//") {
			path = strings.ReplaceAll(path, "//", "/")
		}
	}
	for len(path) > 1 && strings.HasSuffix(path, "/") {
		path = path[:len(path)-1]
	}
	if path == "/" && scheme != "file" {
		path = ""
	}
	return scheme + "://" + authority + path
}

// JobIdentity is the full identity of a job: its type and canonical
// location(s), "load:<path>" or "copy:<src>:<dst>".
func JobIdentity(t JobType, path, dst string) string {
	if t == JobLoad {
		return "load:" + CanonicalLocation(path)
	}
	return string(t) + ":" + CanonicalLocation(path) + ":" + CanonicalLocation(dst)
}

// JobWorkflowID is the Temporal workflow ID of a job. It is a function of
// the job's identity (JobIdentity), so that every spelling of one location
// ("file:///x/small", "file:///x/small/") addresses one job. An identity of
// printable ASCII up to MaxReadableWorkflowID bytes is the ID itself
// ("load:file:///data/x"). Any other identity (non-ASCII, bytes that are
// not UTF-8, long paths) is hashed, because Temporal carries workflow IDs
// in gRPC headers (printable ASCII only) and bounds their length:
// "<type>:~<first 40 hex digits of SHA-256(identity)>:<readable prefix>",
// where the prefix is the first bytes of the identity after the type, with
// every byte outside printable ASCII written as "_". No readable ID starts
// with "<type>:~", since a location starts with its scheme.
func JobWorkflowID(t JobType, path, dst string) string {
	id := JobIdentity(t, path, dst)
	if len(id) <= MaxReadableWorkflowID && printableASCII(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	rest := id[len(t)+1:]
	if len(rest) > hashedPrefixLength {
		rest = rest[:hashedPrefixLength]
	}
	b := []byte(rest)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '_'
		}
	}
	return string(t) + ":~" + hex.EncodeToString(sum[:20]) + ":" + string(b)
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
