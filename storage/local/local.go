// Package local is the storage backend for file:// URIs: the local file
// system, confined to a root directory.
//
// Every URI is resolved to a real path and refused with ErrPermission when it
// lies outside the root, whether by its own text or through a symbolic link.
// Writes go to a hidden sibling named ".<name>.ferry-partial" and are renamed
// into place at Commit, so a reader, or a process that dies mid-write, never
// sees a partial file under the final name. The partial name is fixed per
// destination and locked while in use, so a retry after a crash reuses (and
// truncates) the leftover instead of leaving another one behind; listings
// never show partial files.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ferryio/ferry/internal/crashpoint"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/internal/cursorcache"
)

// Options configure a Store.
type Options struct {
	// Root confines the store: URIs resolving outside it are refused.
	// Default "/".
	Root string
	// Fsync flushes each committed file and its directory to disk before
	// Commit returns, so a power loss cannot lose it. A process crash never
	// loses a committed file either way. Default false.
	Fsync bool
}

// Store serves file:// URIs.
type Store struct {
	root     string // real (symlink-free) absolute root
	fsync    bool
	listings cursorcache.Cache[*walker]
}

var _ storage.Store = (*Store)(nil)

// New returns a Store for opts. The root must exist.
func New(opts Options) (*Store, error) {
	root := opts.Root
	if root == "" {
		root = "/"
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("local storage root %q: %w", root, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("local storage root %q: %w", root, err)
	}
	return &Store{root: real, fsync: opts.Fsync}, nil
}

// Scheme is "file".
func (s *Store) Scheme() string { return "file" }

// Root is the real path of the root directory.
func (s *Store) Root() string { return s.root }

// path resolves uri to a file-system path inside the root.
func (s *Store) path(op, uri string) (string, error) {
	u, err := storage.ParseURI(uri)
	if err != nil {
		return "", storage.NewError(op, uri, storage.ErrInvalidPath, err)
	}
	if u.Scheme != "file" {
		return "", storage.NewError(op, uri, storage.ErrInvalidPath, fmt.Errorf("scheme %q is not file", u.Scheme))
	}
	if u.Authority != "" && u.Authority != "localhost" {
		return "", storage.NewError(op, uri, storage.ErrInvalidPath, errors.New("file URIs name no host: use file:///path"))
	}
	if !strings.HasPrefix(u.Path, "/") {
		return "", storage.NewError(op, uri, storage.ErrInvalidPath, errors.New("path must be absolute"))
	}
	p := filepath.Clean(u.Path)
	if s.root == "/" {
		return p, nil
	}
	real, err := evalExisting(p)
	if err != nil {
		return "", storage.NewError(op, uri, storage.ErrInvalidPath, err)
	}
	if !within(s.root, real) {
		return "", storage.NewError(op, uri, storage.ErrPermission, fmt.Errorf("outside the storage root %s", s.root))
	}
	return p, nil
}

// within reports whether p is root or below it.
func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, strings.TrimSuffix(root, "/")+"/")
}

// evalExisting resolves symbolic links in the longest existing prefix of p and
// appends the rest unchanged.
func evalExisting(p string) (string, error) {
	rest := ""
	for cur := p; ; {
		real, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(real, rest), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}

var _ storage.RealLocator = (*Store)(nil)

// RealURI resolves the symbolic links of uri's longest existing prefix.
func (s *Store) RealURI(ctx context.Context, uri string) (string, error) {
	p, err := s.path("resolve", uri)
	if err != nil {
		return "", err
	}
	real, err := evalExisting(p)
	if err != nil {
		return "", mapError("resolve", uri, err)
	}
	return "file://" + real, nil
}

// Stat describes the file or directory at uri.
func (s *Store) Stat(ctx context.Context, uri string) (storage.Entry, error) {
	p, err := s.path("stat", uri)
	if err != nil {
		return storage.Entry{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return storage.Entry{}, mapError("stat", uri, err)
	}
	return entry(uri, "", fi), nil
}

func entry(uri, rel string, fi fs.FileInfo) storage.Entry {
	return entryOf(uri, rel, statOf(fi))
}

// entryOf is the entry of a file with this stat. A regular file's version
// is "<size>-<mtime in Unix nanoseconds>-<ctime in Unix nanoseconds>"
// (without the last part where the system gives no change time). The
// change time is what tells a file rewritten in place whose modification
// time was put back (touch -d, a restore that keeps times, a file renamed
// over it) from the file it was: the system sets it on every change and
// no call sets it back. A change of metadata alone (chmod) also changes
// it: such a file is read again, which is safe.
func entryOf(uri, rel string, st fileStat) storage.Entry {
	e := storage.Entry{URI: uri, RelPath: rel, IsDir: st.mode.IsDir(), ModTime: st.mtime, Irregular: irregular(st.mode)}
	if !e.IsDir && e.Irregular == "" {
		e.Mode = st.mode.Perm()
		e.Size = st.size
		var b [64]byte
		v := strconv.AppendInt(b[:0], st.size, 10)
		v = append(v, '-')
		v = strconv.AppendInt(v, st.mtime.UnixNano(), 10)
		if !st.ctime.IsZero() {
			v = append(v, '-')
			v = strconv.AppendInt(v, st.ctime.UnixNano(), 10)
		}
		e.Version = string(v)
	}
	return e
}

// irregular names what a file of this mode is when it is neither a regular
// file nor a directory (after symbolic links are followed).
func irregular(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case !m.IsRegular() && !m.IsDir():
		return "special file"
	}
	return ""
}

// Open reads length bytes of uri from offset; length < 0 reads to the end.
func (s *Store) Open(ctx context.Context, uri string, offset, length int64) (io.ReadCloser, error) {
	p, err := s.path("open", uri)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, storage.NewError("open", uri, storage.ErrOutOfRange, fmt.Errorf("negative offset %d", offset))
	}
	// Never open what is not a regular file: a pipe's open blocks until a
	// writer comes, a device's read never ends.
	if fi, err := os.Stat(p); err != nil {
		return nil, mapError("open", uri, err)
	} else if kind := irregular(fi.Mode()); kind != "" {
		return nil, storage.NewError("open", uri, storage.ErrInvalidPath, fmt.Errorf("not a regular file: a %s", kind))
	}
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, mapError("open", uri, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, mapError("open", uri, err)
	}
	if kind := irregular(fi.Mode()); kind != "" && !fi.IsDir() {
		_ = f.Close()
		return nil, storage.NewError("open", uri, storage.ErrInvalidPath, fmt.Errorf("not a regular file: a %s", kind))
	}
	if fi.IsDir() {
		_ = f.Close()
		return nil, storage.NewError("open", uri, storage.ErrInvalidPath, errors.New("is a directory"))
	}
	if offset > fi.Size() {
		_ = f.Close()
		return nil, storage.NewError("open", uri, storage.ErrOutOfRange, fmt.Errorf("offset %d past size %d", offset, fi.Size()))
	}
	n := fi.Size() - offset
	if length >= 0 && length < n {
		n = length
	}
	return &sectionFile{SectionReader: io.NewSectionReader(f, offset, n), f: f}, nil
}

type sectionFile struct {
	*io.SectionReader
	f *os.File
}

func (r *sectionFile) Close() error { return r.f.Close() }

// Create starts writing uri. The parent directories are created as needed.
func (s *Store) Create(ctx context.Context, uri string, opts storage.CreateOptions) (storage.Writer, error) {
	p, err := s.path("create", uri)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(p); err == nil {
		if fi.IsDir() {
			return nil, storage.NewError("create", uri, storage.ErrInvalidPath, errors.New("a directory exists under this name"))
		}
		if !opts.Overwrite {
			return nil, storage.NewError("create", uri, storage.ErrExists, nil)
		}
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, mapError("create", uri, err)
	}
	f, tmp, err := openPartial(p)
	if err != nil {
		return nil, mapError("create", uri, err)
	}
	if opts.Mode != 0 {
		// fchmod: exact bits, no umask; never setuid, setgid or sticky.
		if err := f.Chmod(opts.Mode.Perm()); err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
			return nil, mapError("create", uri, err)
		}
	}
	return &writer{store: s, uri: uri, final: p, tmp: tmp, f: f, overwrite: opts.Overwrite}, nil
}

// PartialMarker is part of the name of every file being written; listings
// skip such names.
const PartialMarker = ".ferry-partial"

// openPartial opens the fixed partial name of final, locked for this writer.
// When another live writer holds it, a unique name is used instead.
func openPartial(final string) (*os.File, string, error) {
	tmp := filepath.Join(filepath.Dir(final), storage.PartialName(filepath.Base(final), PartialMarker, ""))
	for attempt := 0; ; attempt++ {
		f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return nil, "", err
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			// Truncate only a leftover of a crashed writer: on ext4 a
			// truncate makes close() flush the whole new file to disk
			// (auto_da_alloc), ~50 ms per 256 MiB for nothing.
			if fi, err := f.Stat(); err != nil || fi.Size() > 0 {
				if err := f.Truncate(0); err != nil {
					_ = f.Close()
					return nil, "", err
				}
			}
			return f, tmp, nil
		}
		_ = f.Close()
		if attempt > 0 {
			return nil, "", fmt.Errorf("partial file %s is busy", tmp)
		}
		var b [6]byte
		_, _ = rand.Read(b[:])
		tmp = filepath.Join(filepath.Dir(final), storage.PartialName(filepath.Base(final), PartialMarker, "-"+hex.EncodeToString(b[:])))
	}
}

type writer struct {
	store     *Store
	uri       string
	final     string
	tmp       string
	f         *os.File
	overwrite bool
	done      bool
}

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil {
		return n, mapError("write", w.uri, err)
	}
	return n, nil
}

func (w *writer) Commit(ctx context.Context) (storage.Entry, error) {
	if w.done {
		return storage.Entry{}, storage.NewError("commit", w.uri, storage.ErrInvalidPath, errors.New("writer already finished"))
	}
	w.done = true
	fail := func(err error) (storage.Entry, error) {
		_ = w.f.Close()
		_ = os.Remove(w.tmp)
		return storage.Entry{}, mapError("commit", w.uri, err)
	}
	if w.store.fsync {
		if err := w.f.Sync(); err != nil {
			return fail(err)
		}
	}
	crashpoint.Here("local.written")
	if w.overwrite {
		if err := os.Rename(w.tmp, w.final); err != nil {
			return fail(err)
		}
	} else if err := renameNoReplace(w.tmp, w.final); err != nil {
		return fail(err)
	}
	crashpoint.Here("local.renamed")
	fi, err := w.f.Stat()
	_ = w.f.Close()
	if err != nil {
		return storage.Entry{}, mapError("commit", w.uri, err)
	}
	if w.store.fsync {
		if err := syncDir(filepath.Dir(w.final)); err != nil {
			return storage.Entry{}, mapError("commit", w.uri, err)
		}
	}
	return entry(w.uri, "", fi), nil
}

func (w *writer) Abort(ctx context.Context) error {
	if w.done {
		return nil
	}
	w.done = true
	_ = w.f.Close()
	if err := os.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return mapError("abort", w.uri, err)
	}
	return nil
}

// renameNoReplace renames tmp to final unless final exists, in one step
// (renameat2 RENAME_NOREPLACE), so that no crash can leave the file under
// both names. A file system without that flag gets link then unlink, whose
// window a retry closes: the leftover partial name is reused.
func renameNoReplace(tmp, final string) error {
	var err error = unix.EINVAL
	if !crashpoint.Armed("local.linked") {
		err = unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	}
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return &os.LinkError{Op: "rename", Old: tmp, New: final, Err: err}
	}
	// link fails if the final name was taken meanwhile; rename would not.
	if err := os.Link(tmp, final); err != nil {
		return err
	}
	crashpoint.Here("local.linked")
	return os.Remove(tmp)
}

var _ storage.LeftoverRemover = (*Store)(nil)

// RemoveLeftovers removes the partial file that a writer of uri killed
// between the link and the unlink of its commit (see renameNoReplace), or
// before its commit, left beside it, unless a live writer holds it.
func (s *Store) RemoveLeftovers(ctx context.Context, uri string) error {
	p, err := s.path("clean", uri)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(p), storage.PartialName(filepath.Base(p), PartialMarker, ""))
	f, err := os.OpenFile(tmp, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return mapError("clean", uri, err)
	}
	defer func() { _ = f.Close() }()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return nil // a live writer's
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return mapError("clean", uri, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	return d.Sync()
}

// Delete removes a file or an empty directory.
func (s *Store) Delete(ctx context.Context, uri string) error {
	p, err := s.path("delete", uri)
	if err != nil {
		return err
	}
	if p == s.root {
		return storage.NewError("delete", uri, storage.ErrPermission, errors.New("refusing to delete the storage root"))
	}
	if err := os.Remove(p); err != nil {
		return mapError("delete", uri, err)
	}
	return nil
}

// MakeDir creates the directory and its parents.
func (s *Store) MakeDir(ctx context.Context, uri string) error {
	p, err := s.path("mkdir", uri)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return mapError("mkdir", uri, err)
	}
	return nil
}

// mapError classifies an os error as one of the storage sentinels.
func mapError(op, uri string, err error) error {
	var kind error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		kind = storage.ErrNotFound
	case errors.Is(err, fs.ErrPermission):
		kind = storage.ErrPermission
	case errors.Is(err, fs.ErrExist):
		kind = storage.ErrExists
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR), errors.Is(err, syscall.ENOTEMPTY),
		errors.Is(err, syscall.ENAMETOOLONG), errors.Is(err, syscall.EINVAL):
		kind = storage.ErrInvalidPath
	default:
		// I/O errors, a full disk: maybe transient, let the caller retry.
		kind = storage.ErrUnavailable
	}
	return storage.NewError(op, uri, kind, err)
}

var _ storage.Copier = (*Store)(nil)

// Copy copies src to dst within the local file system, atomically like
// Create, letting the kernel move the bytes (copy_file_range: one copy, page
// cache to page cache) instead of passing them through this process. Like
// Open, it never opens what is not a regular file; with opts.Size set (> 0:
// a zero CreateOptions says nothing about the size), a source that does not
// hold exactly that many bytes (it changed since it was listed) is not
// committed.
func (s *Store) Copy(ctx context.Context, src, dst string, opts storage.CreateOptions) (storage.Entry, error) {
	sp, err := s.path("copy", src)
	if err != nil {
		return storage.Entry{}, err
	}
	in, err := os.OpenFile(sp, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return storage.Entry{}, mapError("copy", src, err)
	}
	defer func() { _ = in.Close() }()
	if fi, err := in.Stat(); err != nil {
		return storage.Entry{}, mapError("copy", src, err)
	} else if fi.IsDir() {
		return storage.Entry{}, storage.NewError("copy", src, storage.ErrInvalidPath, errors.New("is a directory"))
	} else if kind := irregular(fi.Mode()); kind != "" {
		return storage.Entry{}, storage.NewError("copy", src, storage.ErrInvalidPath, fmt.Errorf("not a regular file: a %s", kind))
	}
	w, err := s.Create(ctx, dst, opts)
	if err != nil {
		return storage.Entry{}, err
	}
	lw := w.(*writer)
	// *os.File to *os.File: io.Copy uses copy_file_range (or sendfile).
	n, err := io.Copy(lw.f, in)
	if err != nil {
		_ = w.Abort(ctx)
		return storage.Entry{}, mapError("copy", dst, err)
	}
	if opts.Size > 0 && n != opts.Size {
		_ = w.Abort(ctx)
		return storage.Entry{}, storage.NewError("copy", src, storage.ErrUnavailable,
			fmt.Errorf("the source changed while it was copied: %d bytes, %d expected", n, opts.Size))
	}
	return w.Commit(ctx)
}
