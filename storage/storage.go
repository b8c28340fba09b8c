package storage

import (
	"context"
	"io"
	"io/fs"
	"time"
)

// Entry describes one file or directory.
type Entry struct {
	// URI is the full URI of the entry.
	URI string
	// RelPath is the path relative to the listed directory ("a/b.txt"); empty
	// for Stat results.
	RelPath string
	// IsDir reports a directory (or an object-store prefix).
	IsDir bool
	// Size in bytes; 0 for directories.
	Size int64
	// ModTime is the last modification time.
	ModTime time.Time
	// Version identifies this content of the file: an ETag, a generation
	// number, or size and modification time. A cache tied to one version
	// never serves another.
	Version string
	// ContentHash is "<algorithm>:<value>" (for example "md5:9e10…") where the
	// storage system keeps one, else empty.
	ContentHash string
	// Irregular, when set, says what the entry is that is neither a regular
	// file nor a directory: "named pipe", "socket", "character device",
	// "dangling symbolic link", "symbolic link to a directory"… Such an
	// entry is listed so that it is accounted for, but never opened.
	Irregular string
	// Mode holds the permission bits of a file on a file system (0600,
	// 0755…); 0 where the store has none (object stores).
	Mode fs.FileMode
	// Err, set only on an entry of a listing, says why the entry below the
	// listed directory could not be listed (a directory) or described (a
	// file) for a reason of its own that trying again will not change:
	// permission denied, a name or path too long. The listing goes on past
	// it; the caller accounts for the entry as failed. Its other fields
	// but URI, RelPath and IsDir are unset.
	Err error
}

// ListOptions selects one page of a listing.
type ListOptions struct {
	// Recursive lists every file below the directory (files only). Otherwise
	// the immediate children, directories included, are listed.
	Recursive bool
	// Cursor resumes after the entry it names; empty starts at the beginning.
	Cursor string
	// Limit is the most entries one page returns. 0 means 1000.
	Limit int
	// EmptyDirs makes a recursive listing also return the directories
	// that hold nothing at all (entries with IsDir), in key order, for
	// stores that have directories; others ignore it.
	EmptyDirs bool
	// Reuse, when it has capacity, is the caller's last page of entries,
	// which it no longer reads: a store may put the page's entries in it
	// instead of in a slice of its own (a caller that only counts lists
	// with one slice). A store may ignore it.
	Reuse []Entry
}

// ListPage is one page of a listing.
type ListPage struct {
	Entries []Entry
	// Cursor resumes the listing after this page; empty when the listing is
	// complete.
	Cursor string
}

// CreateOptions control a write.
type CreateOptions struct {
	// Overwrite replaces an existing file at Commit. Without it Commit fails
	// with ErrExists.
	Overwrite bool
	// Size, when known (>= 0), lets a backend pick single or multipart upload.
	// -1 means unknown.
	Size int64
	// Mode, when not 0, gives the new file these permission bits on a file
	// system (the source's, so that a copy keeps 0600 or an executable
	// bit), whatever the umask; stores without modes ignore it.
	Mode fs.FileMode
}

// Writer receives the bytes of a new file. Nothing is visible under the final
// name until Commit returns successfully.
type Writer interface {
	io.Writer
	// Commit makes the file visible under its final name, atomically, and
	// returns its entry.
	Commit(ctx context.Context) (Entry, error)
	// Abort discards everything written. Calling it after Commit is a no-op.
	Abort(ctx context.Context) error
}

// Store is one storage system.
type Store interface {
	// Scheme is the URI scheme this store serves ("file", "s3", …).
	Scheme() string
	// List returns one page of the directory at uri.
	List(ctx context.Context, uri string, opts ListOptions) (ListPage, error)
	// Stat describes the file or directory at uri.
	Stat(ctx context.Context, uri string) (Entry, error)
	// Open reads length bytes from offset; length < 0 reads to the end.
	Open(ctx context.Context, uri string, offset, length int64) (io.ReadCloser, error)
	// Create starts writing a file at uri.
	Create(ctx context.Context, uri string, opts CreateOptions) (Writer, error)
	// Delete removes a file or an empty directory.
	Delete(ctx context.Context, uri string) error
	// MakeDir creates a directory and its parents; an existing directory is
	// not an error. Stores without directories may do nothing.
	MakeDir(ctx context.Context, uri string) error
}

// RealLocator is implemented by stores in which one location can be reached
// by several paths (symbolic links on a file system).
type RealLocator interface {
	// RealURI is the URI of the location uri reaches, with every link in
	// its longest existing prefix resolved; the rest is kept as spelled.
	RealURI(ctx context.Context, uri string) (string, error)
}

// Copier is implemented by stores that copy within themselves without moving
// the bytes through Ferry (S3 CopyObject, GCS rewrite).
type Copier interface {
	// Copy copies src to dst, both in this store, with Create's overwrite
	// rule, and returns the new entry.
	Copy(ctx context.Context, src, dst string, opts CreateOptions) (Entry, error)
}

// LeftoverRemover is implemented by stores whose writers can leave
// something behind when their process is killed at the wrong moment (a
// partial file beside a committed one). A job that finds a destination
// already there, and does not write it again, calls RemoveLeftovers so
// that no such leftover survives it. A live writer's state is never
// removed.
type LeftoverRemover interface {
	RemoveLeftovers(ctx context.Context, uri string) error
}
