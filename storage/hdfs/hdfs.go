package hdfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/jcmturner/gokrb5/v8/krberror"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/internal/cursorcache"
)

// Scheme is the URI scheme the store serves.
const Scheme = "hdfs"

// PartialMarker is part of the name of every file being written; listings
// skip such names.
const PartialMarker = ".ferry-partial"

// Store serves hdfs:// URIs. It is safe for concurrent use.
type Store struct {
	opts Options
	dial func(authority string) (fileSystem, error)

	mu      sync.Mutex
	clients map[string]fileSystem // by URI authority, connected on first use

	listings cursorcache.Cache[*walker]
}

var _ storage.Store = (*Store)(nil)

// New builds a Store. It reads the Hadoop configuration and the Kerberos
// credentials now; namenodes are connected on first use, one connection
// per URI authority.
func New(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	d, err := newDialer(opts)
	if err != nil {
		return nil, fmt.Errorf("hdfs storage: %w", err)
	}
	return newStore(opts, d.dial), nil
}

func newStore(opts Options, dial func(string) (fileSystem, error)) *Store {
	st := &Store{opts: opts.withDefaults(), dial: dial, clients: map[string]fileSystem{}}
	st.listings.OnEvict = func(w *walker) { w.close() }
	return st
}

// Close closes the namenode connections.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for k, c := range s.clients {
		errs = append(errs, c.Close())
		delete(s.clients, k)
	}
	return errors.Join(errs...)
}

// Scheme is "hdfs".
func (s *Store) Scheme() string { return Scheme }

// client returns the connection for authority, dialing it the first time.
func (s *Store) client(authority string) (fileSystem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[authority]; ok {
		return c, nil
	}
	c, err := s.dial(authority)
	if err != nil {
		return nil, err
	}
	s.clients[authority] = c
	return c, nil
}

// resolve parses uri and returns its connection and file-system path.
func (s *Store) resolve(op, uri string) (fileSystem, string, error) {
	u, err := storage.ParseURI(uri)
	if err != nil {
		return nil, "", storage.NewError(op, uri, storage.ErrInvalidPath, err)
	}
	if u.Scheme != Scheme {
		return nil, "", storage.NewError(op, uri, storage.ErrInvalidPath, fmt.Errorf("scheme %q is not hdfs", u.Scheme))
	}
	p := u.Path
	if p == "" {
		p = "/"
	}
	if strings.Contains(path.Base(p), PartialMarker) {
		return nil, "", storage.NewError(op, uri, storage.ErrInvalidPath, fmt.Errorf("names containing %q are reserved for files being written", PartialMarker))
	}
	c, err := s.client(u.Authority)
	if err != nil {
		return nil, "", storage.NewError(op, uri, classify(err), err)
	}
	return c, path.Clean(p), nil
}

// Stat describes the file or directory at uri.
func (s *Store) Stat(ctx context.Context, uri string) (storage.Entry, error) {
	c, p, err := s.resolve("stat", uri)
	if err != nil {
		return storage.Entry{}, err
	}
	fi, err := c.Stat(p)
	if err != nil {
		return storage.Entry{}, fail("stat", uri, err)
	}
	e := entry(uri, "", fi)
	if s.opts.StatChecksum && !fi.IsDir() {
		f, err := c.Open(p)
		if err != nil {
			return storage.Entry{}, fail("stat", uri, err)
		}
		sum, err := f.Checksum()
		_ = f.Close()
		if err != nil {
			return storage.Entry{}, fail("stat", uri, err)
		}
		e.ContentHash = "hdfs-md5md5crc32c:" + hex.EncodeToString(sum)
	}
	return e, nil
}

// entry describes fi. Version is the inode id with the size and the
// modification time: a write replaces the inode (temporary file, then
// rename), so a new content always has a new version.
func entry(uri, rel string, fi os.FileInfo) storage.Entry {
	e := storage.Entry{URI: uri, RelPath: rel, IsDir: fi.IsDir(), ModTime: fi.ModTime()}
	if e.IsDir {
		return e
	}
	e.Size = fi.Size()
	if st, ok := fi.Sys().(*hdfs.FileStatus); ok && st.GetFileId() != 0 {
		e.Version = fmt.Sprintf("%d-%d-%d", st.GetFileId(), fi.Size(), fi.ModTime().UnixMilli())
	} else {
		e.Version = fmt.Sprintf("%d-%d", fi.Size(), fi.ModTime().UnixNano())
	}
	return e
}

// Open reads length bytes of uri from offset; length < 0 reads to the end.
func (s *Store) Open(ctx context.Context, uri string, offset, length int64) (io.ReadCloser, error) {
	c, p, err := s.resolve("open", uri)
	if err != nil {
		return nil, err
	}
	if offset < 0 {
		return nil, storage.NewError("open", uri, storage.ErrOutOfRange, fmt.Errorf("negative offset %d", offset))
	}
	fi, err := c.Stat(p)
	if err != nil {
		return nil, fail("open", uri, err)
	}
	if fi.IsDir() {
		return nil, storage.NewError("open", uri, storage.ErrInvalidPath, errors.New("is a directory"))
	}
	if offset > fi.Size() {
		return nil, storage.NewError("open", uri, storage.ErrOutOfRange, fmt.Errorf("offset %d past size %d", offset, fi.Size()))
	}
	n := fi.Size() - offset
	if length >= 0 && length < n {
		n = length
	}
	if n == 0 {
		return io.NopCloser(strings.NewReader("")), nil
	}
	r := &reader{c: c, p: p, uri: uri, version: entry(uri, "", fi).Version, off: offset, left: n}
	if err := r.open(); err != nil {
		return nil, fail("open", uri, err)
	}
	return r, nil
}

// maxReadAttempts bounds the attempts at one offset of a read: the client
// library moves to another datanode holding the block by itself, and the
// reader starts over from the namenode when none is left.
const maxReadAttempts = 4

// reader reads a range of a file. When the datanodes fail, it opens the
// file again and goes on from where it was, as long as the file is the
// same (same inode, size and modification time).
type reader struct {
	c       fileSystem
	p       string
	uri     string
	version string
	f       file
	off     int64 // offset of the next byte
	left    int64 // bytes still to return
	fails   int   // failed attempts since the last progress
}

func (r *reader) open() error {
	f, err := r.c.Open(r.p)
	if err != nil {
		return err
	}
	if _, err := f.Seek(r.off, io.SeekStart); err != nil {
		_ = f.Close()
		return err
	}
	r.f = f
	return nil
}

// reopen opens the file again for a resumed read, unless it changed.
func (r *reader) reopen() error {
	fi, err := r.c.Stat(r.p)
	if err != nil {
		return err
	}
	if v := entry(r.uri, "", fi).Version; v != r.version {
		return fmt.Errorf("the file changed while being read (version %s, then %s)", r.version, v)
	}
	return r.open()
}

func (r *reader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	for {
		if r.f == nil {
			if err := r.reopen(); err != nil {
				return 0, fail("read", r.uri, err)
			}
		}
		n, err := r.f.Read(p)
		r.off += int64(n)
		r.left -= int64(n)
		if n > 0 {
			r.fails = 0
		}
		switch {
		case err == nil || (errors.Is(err, io.EOF) && r.left == 0):
			if r.left == 0 {
				return n, io.EOF
			}
			return n, nil
		case errors.Is(err, io.EOF):
			return n, storage.NewError("read", r.uri, storage.ErrUnavailable, fmt.Errorf("the file ended %d bytes early", r.left))
		}
		r.fails++
		if !errors.Is(classify(err), storage.ErrUnavailable) || r.fails >= maxReadAttempts {
			return n, fail("read", r.uri, err)
		}
		_ = r.f.Close()
		r.f = nil
		if n > 0 {
			return n, nil
		}
	}
}

func (r *reader) Close() error {
	if r.f == nil {
		return nil
	}
	return r.f.Close()
}

// Create starts writing uri: the bytes go to ".<name>.ferry-partial" in the
// same directory, renamed into place at Commit. The partial name is fixed
// per destination so that a retry after a crash reuses it; while another
// writer holds it (its lease), a unique name is used instead.
func (s *Store) Create(ctx context.Context, uri string, opts storage.CreateOptions) (storage.Writer, error) {
	c, p, err := s.resolve("create", uri)
	if err != nil {
		return nil, err
	}
	if p == "/" || strings.HasSuffix(uri, "/") {
		return nil, storage.NewError("create", uri, storage.ErrInvalidPath, errors.New("names a directory, not a file"))
	}
	if fi, err := c.Stat(p); err == nil {
		if fi.IsDir() {
			return nil, storage.NewError("create", uri, storage.ErrInvalidPath, errors.New("a directory exists under this name"))
		}
		if !opts.Overwrite {
			return nil, storage.NewError("create", uri, storage.ErrExists, nil)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fail("create", uri, err)
	}
	if err := c.MkdirAll(path.Dir(p), 0o755); err != nil {
		return nil, fail("create", uri, err)
	}
	tmp, w, err := s.createPartial(c, p)
	if err != nil {
		return nil, fail("create", uri, err)
	}
	return &writer{
		s: s, c: c, uri: uri, final: p, tmp: tmp, w: w, overwrite: opts.Overwrite,
		replayable: s.opts.ReplayLimit > 0 && opts.Size <= s.opts.ReplayLimit,
	}, nil
}

// createPartial creates the partial file of final: the fixed name, after
// removing a stale leftover, or else a unique name.
func (s *Store) createPartial(c fileSystem, final string) (string, io.WriteCloser, error) {
	tmp := path.Join(path.Dir(final), storage.PartialName(path.Base(final), PartialMarker, ""))
	w, err := c.Create(tmp)
	if err == nil {
		return tmp, w, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return "", nil, err
	}
	if fi, serr := c.Stat(tmp); serr == nil && time.Since(fi.ModTime()) > s.opts.StaleTempAge {
		if rerr := c.Remove(tmp); rerr == nil {
			if w, err := c.Create(tmp); err == nil {
				return tmp, w, nil
			}
		}
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	tmp = path.Join(path.Dir(final), storage.PartialName(path.Base(final), PartialMarker, "-"+hex.EncodeToString(b[:])))
	w, err = c.Create(tmp)
	return tmp, w, err
}

// maxReplays bounds how many times one file is written again.
const maxReplays = 3

type writer struct {
	s         *Store
	c         fileSystem
	uri       string
	final     string
	tmp       string
	w         io.WriteCloser
	overwrite bool
	done      bool
	// kept is every byte written so far while replayable: a failed write
	// is redone from it into a new partial file.
	kept       []byte
	replayable bool
	replays    int
}

func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, storage.NewError("write", w.uri, storage.ErrInvalidPath, errors.New("writer already finished"))
	}
	if len(p) == 0 {
		// The client library starts a block on any Write, even an empty
		// one; a block that no datanode ever receives keeps the file
		// from completing (complete answers false for ever).
		return 0, nil
	}
	if w.replayable {
		if int64(len(w.kept)+len(p)) > w.s.opts.ReplayLimit {
			w.replayable, w.kept = false, nil
		} else {
			w.kept = append(w.kept, p...)
		}
	}
	n, err := w.w.Write(p)
	if err != nil {
		if err := w.replay(err); err != nil {
			return n, fail("write", w.uri, err)
		}
		return len(p), nil
	}
	return n, nil
}

// replay writes the kept bytes again to a new partial file after err, when
// err is a failure worth it (a datanode or the namenode failing, a lost
// lease) and every byte was kept. It returns nil when the new partial file
// holds everything written so far, else the error that stopped it.
func (w *writer) replay(err error) error {
	for {
		if !w.replayable || !errors.Is(classify(err), storage.ErrUnavailable) || hdfs.IsErrReplicating(err) || w.replays >= maxReplays {
			return err
		}
		w.replays++
		_ = w.w.Close() // releases the datanode connection; the file is dropped next
		if rerr := w.c.Remove(w.tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
			continue
		}
		tmp, nw, cerr := w.s.createPartial(w.c, w.final)
		if cerr != nil {
			err = cerr
			continue
		}
		w.tmp, w.w = tmp, nw
		if len(w.kept) > 0 {
			if _, werr := nw.Write(w.kept); werr != nil {
				err = werr
				continue
			}
		}
		return nil
	}
}

// closeWriter closes the HDFS writer, retrying while the last block is
// still being replicated (the client asks callers to retry Close then).
func closeWriter(ctx context.Context, w io.WriteCloser) error {
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := w.Close()
		if err == nil || !hdfs.IsErrReplicating(err) || attempt >= 8 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 3*time.Second)
	}
}

// Commit closes the partial file and renames it into place. Without
// Overwrite the final name is checked just before the rename: HDFS's
// no-overwrite rename (rename2 without OVERWRITE) is not exposed by the
// client library, so a writer that takes the name between the check and
// the rename is replaced. That race is documented.
func (w *writer) Commit(ctx context.Context) (storage.Entry, error) {
	if w.done {
		return storage.Entry{}, storage.NewError("commit", w.uri, storage.ErrInvalidPath, errors.New("writer already finished"))
	}
	w.done = true
	for {
		err := closeWriter(ctx, w.w)
		if err == nil {
			break
		}
		if err := w.replay(err); err != nil {
			_ = w.c.Remove(w.tmp)
			return storage.Entry{}, fail("commit", w.uri, err)
		}
	}
	w.kept = nil
	if !w.overwrite {
		if _, err := w.c.Stat(w.final); err == nil {
			_ = w.c.Remove(w.tmp)
			return storage.Entry{}, storage.NewError("commit", w.uri, storage.ErrExists, nil)
		} else if !errors.Is(err, fs.ErrNotExist) {
			_ = w.c.Remove(w.tmp)
			return storage.Entry{}, fail("commit", w.uri, err)
		}
	}
	if err := w.c.Rename(w.tmp, w.final); err != nil {
		_ = w.c.Remove(w.tmp)
		return storage.Entry{}, fail("commit", w.uri, err)
	}
	fi, err := w.c.Stat(w.final)
	if err != nil {
		return storage.Entry{}, fail("commit", w.uri, err)
	}
	return entry(w.uri, "", fi), nil
}

// Abort closes and removes the partial file.
func (w *writer) Abort(ctx context.Context) error {
	if w.done {
		return nil
	}
	w.done = true
	_ = w.w.Close()
	if err := w.c.Remove(w.tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fail("abort", w.uri, err)
	}
	return nil
}

// Delete removes a file or an empty directory.
func (s *Store) Delete(ctx context.Context, uri string) error {
	c, p, err := s.resolve("delete", uri)
	if err != nil {
		return err
	}
	if p == "/" {
		return storage.NewError("delete", uri, storage.ErrPermission, errors.New("refusing to delete the root directory"))
	}
	if err := c.Remove(p); err != nil {
		return fail("delete", uri, err)
	}
	return nil
}

// MakeDir creates the directory and its parents.
func (s *Store) MakeDir(ctx context.Context, uri string) error {
	c, p, err := s.resolve("mkdir", uri)
	if err != nil {
		return err
	}
	if err := c.MkdirAll(p, 0o755); err != nil {
		return fail("mkdir", uri, err)
	}
	return nil
}

// Remote exceptions that mean "try again later".
var transientExceptions = []string{
	"org.apache.hadoop.ipc.StandbyException",
	"org.apache.hadoop.ipc.RetriableException",
	"org.apache.hadoop.hdfs.server.namenode.SafeModeException",
	"java.io.IOException",
	// The writer's lease was lost (expired, recovered, or the partial
	// file was removed by another writer): writing again succeeds.
	"org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException",
}

// classify maps an HDFS client error onto a storage sentinel.
func classify(err error) error {
	var remote hdfs.Error
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return storage.ErrNotFound
	case errors.Is(err, fs.ErrPermission):
		return storage.ErrPermission
	case errors.Is(err, fs.ErrExist):
		return storage.ErrExists
	case errors.Is(err, syscall.ENOTEMPTY), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EISDIR),
		errors.Is(err, fs.ErrInvalid):
		return storage.ErrInvalidPath
	case errors.As(err, &remote):
		for _, t := range transientExceptions {
			if remote.Exception() == t {
				return storage.ErrUnavailable
			}
		}
		if strings.HasSuffix(remote.Exception(), "AccessControlException") || strings.Contains(remote.Exception(), "security") {
			return storage.ErrPermission
		}
		if strings.HasSuffix(remote.Exception(), "FileNotFoundException") {
			return storage.ErrNotFound
		}
		return storage.ErrInvalidPath
	case errors.As(err, new(krberror.Krberror)):
		// Kerberos refused our credentials.
		return storage.ErrPermission
	default:
		// Network failures, a namenode that is down, timeouts.
		return storage.ErrUnavailable
	}
}

// fail builds the storage error. Remote exceptions carry a Java stack
// trace; only its first line is kept.
func fail(op, uri string, err error) error {
	var remote hdfs.Error
	if errors.As(err, &remote) {
		msg, _, _ := strings.Cut(remote.Message(), "\n")
		return storage.NewError(op, uri, classify(err), &cause{msg: remote.Exception() + ": " + msg, err: err})
	}
	return storage.NewError(op, uri, classify(err), err)
}

type cause struct {
	msg string
	err error
}

func (c *cause) Error() string { return c.msg }
func (c *cause) Unwrap() error { return c.err }
