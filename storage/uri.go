package storage

import (
	"fmt"
	"strings"
)

// URI is a parsed storage URI. The parts are raw substrings: nothing is
// percent-decoded.
type URI struct {
	// Scheme is lower-case: "file", "s3", "gs", "hdfs".
	Scheme string
	// Authority is the bucket or host[:port]; empty for file URIs.
	Authority string
	// Path starts with "/" unless empty ("s3://bucket" has Path "").
	Path string
}

// ParseURI splits s into scheme, authority and path. It rejects strings with
// no "scheme://", with NUL bytes, and with "." or ".." segments, which would
// name something other than what they say. Any other byte is part of a name:
// "[", "*" and "?" are ordinary characters in names found by listing (the
// job service refuses wildcards only in the paths a user types).
func ParseURI(s string) (URI, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || scheme == "" {
		return URI{}, fmt.Errorf("%w: %q has no scheme (expected a full URI such as file:///data or s3://bucket/key)", ErrInvalidPath, s)
	}
	for _, r := range scheme {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '+' && r != '-' && r != '.' {
			return URI{}, fmt.Errorf("%w: %q has an invalid scheme", ErrInvalidPath, s)
		}
	}
	if strings.ContainsRune(s, 0) {
		return URI{}, fmt.Errorf("%w: %q contains a NUL byte", ErrInvalidPath, s)
	}
	u := URI{Scheme: strings.ToLower(scheme)}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		u.Authority, u.Path = rest[:i], rest[i:]
	} else {
		u.Authority = rest
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return URI{}, fmt.Errorf("%w: %q contains a %q segment", ErrInvalidPath, s, seg)
		}
	}
	return u, nil
}

// String reassembles the URI.
func (u URI) String() string { return u.Scheme + "://" + u.Authority + u.Path }

// Join appends a relative path (with "/" separators) to a directory URI.
func Join(dir, rel string) string {
	if rel == "" {
		return dir
	}
	return strings.TrimSuffix(dir, "/") + "/" + strings.TrimPrefix(rel, "/")
}

// JoinKey is the URI of the object whose key is dir's key followed by "/"
// and rel, with rel kept byte for byte: in an object store a key may hold
// "//" ("a//x.txt"), so a rel that starts with "/" names another object
// than the same rel without it, which Join would make of it.
func JoinKey(dir, rel string) string {
	if rel == "" {
		return dir
	}
	return strings.TrimSuffix(dir, "/") + "/" + rel
}

// Base is the last path segment of uri, ignoring a trailing "/".
func Base(uri string) string {
	s := strings.TrimSuffix(uri, "/")
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}
