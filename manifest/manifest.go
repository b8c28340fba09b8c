// Package manifest is the job engine's durable store of file lists: the
// pages a listing produced, the batches planned from them, the entries to
// retry and the failed files. Workflow history only holds references to
// these objects (a name, an index range, counts), so the cost of a job in
// Temporal grows with its pages, not with its files.
//
// A Store keeps its objects under a root URI, one directory per job:
//
//	<root>/<jobID>/pages/<key>      a listing page, entries grouped by node
//	<root>/<jobID>/plans/<key>      entries re-planned onto the current ring
//	<root>/<jobID>/retry/<key>      a batch's entries to retry after listing
//	<root>/<jobID>/failures/<key>   a batch's permanent failures
//	<root>/<jobID>/listed/<page>/   what the attempts of a listing page
//	                                listed (see listed.go)
//	<root>/<jobID>/failures.txt     the job's full failure list, when it ends
//
// Keys are chosen by the workflow and are deterministic (job, partition,
// page, batch, attempt), so an activity that is retried rewrites the same
// object and never leaves a second copy. The store sits on the
// storage.Store interface, so any backend can hold it: a directory under the
// data dir for `ferry dev`, a bucket prefix shared by every worker and cache
// node in production.
//
// Objects are written in a small binary format (a magic line, then
// length-prefixed fields), not JSON: file names are bytes, and encoding/json
// would turn invalid UTF-8 into U+FFFD.
package manifest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// Object kinds: the directories of a job.
const (
	KindPages    = "pages"
	KindPlans    = "plans"
	KindRetry    = "retry"
	KindFailures = "failures"
)

// FailuresFile is the name of a job's full failure list.
const FailuresFile = "failures.txt"

const (
	magicEntries  = "FERRY-MANIFEST-ENTRIES-2\n"
	magicFailures = "FERRY-MANIFEST-FAILURES-1\n"
	// maxField bounds one decoded field, so a corrupt object cannot make a
	// reader allocate without limit.
	maxField = 1 << 20
)

// ErrCorrupt marks an object that does not decode.
var ErrCorrupt = errors.New("manifest: corrupt object")

// Store reads and writes manifests under a root URI.
type Store struct {
	st   storage.Store
	root string
}

// New opens the manifest store at root (a directory URI) through r.
func New(r *storage.Resolver, root string) (*Store, error) {
	if root == "" {
		return nil, errors.New("manifest: no store configured (set --manifest-store)")
	}
	st, err := r.For(root)
	if err != nil {
		return nil, fmt.Errorf("manifest store %s: %w", root, err)
	}
	return &Store{st: st, root: strings.TrimSuffix(root, "/")}, nil
}

// Root is the URI the store keeps its objects under.
func (s *Store) Root() string { return s.root }

// JobDir is the URI of a job's directory.
func (s *Store) JobDir(jobID string) string { return s.root + "/" + jobID }

// URI is the URI of one object: kind is one of the Kind constants.
func (s *Store) URI(jobID, kind, key string) string {
	return s.root + "/" + jobID + "/" + kind + "/" + key
}

// WriteEntries writes entries as object key of kind, replacing it.
func (s *Store) WriteEntries(ctx context.Context, jobID, kind, key string, entries []workflows.FileEntry) error {
	var b bytes.Buffer
	b.Grow(entriesSize(entries))
	b.WriteString(magicEntries)
	putUvarint(&b, uint64(len(entries)))
	for _, e := range entries {
		putEntry(&b, e)
	}
	return s.put(ctx, s.URI(jobID, kind, key), b.Bytes())
}

func putEntry(b *bytes.Buffer, e workflows.FileEntry) {
	putString(b, e.URI)
	putString(b, e.RelPath)
	putVarint(b, e.Size)
	putString(b, e.Version)
	putString(b, e.Irregular)
}

// ReadEntries reads count entries from index start of an entries object;
// count < 0 reads to the end.
func (s *Store) ReadEntries(ctx context.Context, jobID, kind, key string, start, count int) ([]workflows.FileEntry, error) {
	uri := s.URI(jobID, kind, key)
	r, err := s.open(ctx, uri, magicEntries)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	return readEntries(r, uri, start, count)
}

// readEntries decodes a count and the entries that follow it, keeping
// count of them from index start (count < 0: to the end).
func readEntries(r *reader, uri string, start, count int) ([]workflows.FileEntry, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, corrupt(uri, err)
	}
	end := int(n)
	if count >= 0 && start+count < end {
		end = start + count
	}
	out := make([]workflows.FileEntry, 0, max(end-start, 0))
	for i := 0; i < end; i++ {
		var e workflows.FileEntry
		if e.URI, err = getString(r); err == nil {
			if e.RelPath, err = getString(r); err == nil {
				if e.Size, err = binary.ReadVarint(r); err == nil {
					if e.Version, err = getString(r); err == nil {
						e.Irregular, err = getString(r)
					}
				}
			}
		}
		if err != nil {
			return nil, corrupt(uri, err)
		}
		if i >= start {
			out = append(out, e)
		}
	}
	return out, nil
}

// WriteFailures writes failures as object key of KindFailures, replacing it.
func (s *Store) WriteFailures(ctx context.Context, jobID, key string, failures []workflows.Failure) error {
	var b bytes.Buffer
	b.WriteString(magicFailures)
	putUvarint(&b, uint64(len(failures)))
	for _, f := range failures {
		putString(&b, f.Path)
		putString(&b, f.Reason)
		putString(&b, f.Message)
		putBool(&b, f.Retryable)
	}
	return s.put(ctx, s.URI(jobID, KindFailures, key), b.Bytes())
}

// ReadFailures reads a failures object.
func (s *Store) ReadFailures(ctx context.Context, jobID, key string) ([]workflows.Failure, error) {
	uri := s.URI(jobID, KindFailures, key)
	r, err := s.open(ctx, uri, magicFailures)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	n, err := binary.ReadUvarint(r)
	if err != nil || n > maxField {
		return nil, corrupt(uri, err)
	}
	out := make([]workflows.Failure, 0, n)
	for i := uint64(0); i < n; i++ {
		var f workflows.Failure
		var flag byte
		if f.Path, err = getString(r); err == nil {
			if f.Reason, err = getString(r); err == nil {
				if f.Message, err = getString(r); err == nil {
					flag, err = r.ReadByte()
				}
			}
		}
		if err != nil {
			return nil, corrupt(uri, err)
		}
		f.Retryable = flag == 1
		out = append(out, f)
	}
	return out, nil
}

// Keys lists the keys of one kind of a job, sorted, starting after the key
// after ("" from the first), at most limit of them (limit <= 0: all).
func (s *Store) Keys(ctx context.Context, jobID, kind, after string, limit int) ([]string, error) {
	keys, err := s.names(ctx, s.root+"/"+jobID+"/"+kind, false)
	if err != nil {
		return nil, err
	}
	sort.Strings(keys)
	i := sort.SearchStrings(keys, after)
	if after != "" && i < len(keys) && keys[i] == after {
		i++
	}
	keys = keys[i:]
	if limit > 0 && len(keys) > limit {
		keys = keys[:limit]
	}
	return keys, nil
}

// names lists the names of the objects (or, with dirs, the
// sub-directories) of a directory; a directory that does not exist holds
// none.
func (s *Store) names(ctx context.Context, dir string, dirs bool) ([]string, error) {
	var out []string
	cursor := ""
	for {
		p, err := s.st.List(ctx, dir, storage.ListOptions{Cursor: cursor, Limit: 1000})
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return out, nil
			}
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		for _, e := range p.Entries {
			if e.IsDir == dirs {
				out = append(out, storage.Base(strings.TrimSuffix(e.URI, "/")))
			}
		}
		if p.Cursor == "" {
			return out, nil
		}
		cursor = p.Cursor
	}
}

// WriteFailureList concatenates every failures object of a job into its
// FailuresFile, one line per file ("<path>\t<reason>\t<message>"), and
// returns its URI and line count. Names are written as their bytes, but
// for the four that would break a line apart (see EscapeListPath).
// Called again after DeleteWork (a job's last step run a second time: its
// worker was lost before the step's end was recorded), it returns the list
// written the first time.
func (s *Store) WriteFailureList(ctx context.Context, jobID string) (string, int64, error) {
	keys, err := s.Keys(ctx, jobID, KindFailures, "", 0)
	if err != nil {
		return "", 0, err
	}
	uri := s.JobDir(jobID) + "/" + FailuresFile
	if len(keys) == 0 {
		return s.writtenFailureList(ctx, uri)
	}
	w, err := s.st.Create(ctx, uri, storage.CreateOptions{Overwrite: true, Size: -1})
	if err != nil {
		return "", 0, fmt.Errorf("create %s: %w", uri, err)
	}
	bw := bufio.NewWriter(w)
	var lines int64
	for _, k := range keys {
		fs, err := s.ReadFailures(ctx, jobID, k)
		if err != nil {
			_ = w.Abort(ctx)
			return "", 0, err
		}
		for _, f := range fs {
			msg := strings.NewReplacer("\n", " ", "\r", " ", "\t", " ").Replace(f.Message)
			_, _ = fmt.Fprintf(bw, "%s\t%s\t%s\n", EscapeListPath(f.Path), f.Reason, msg)
			lines++
		}
	}
	if err := bw.Flush(); err != nil {
		_ = w.Abort(ctx)
		return "", 0, fmt.Errorf("write %s: %w", uri, err)
	}
	if _, err := w.Commit(ctx); err != nil {
		return "", 0, fmt.Errorf("commit %s: %w", uri, err)
	}
	return uri, lines, nil
}

// listPathEscaper and listPathUnescaper write and read the paths of a
// failure list.
var (
	listPathEscaper   = strings.NewReplacer("\\", `\\`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	listPathUnescaper = strings.NewReplacer(`\\`, "\\", `\n`, "\n", `\r`, "\r", `\t`, "\t")
)

// EscapeListPath is path as a failure list writes it: its bytes, with a
// backslash, newline, carriage return or tab written as \\, \n, \r or \t,
// so that every failure is one line of three tab-separated fields whatever
// the names a storage system holds. UnescapeListPath gives the bytes back.
func EscapeListPath(path string) string { return listPathEscaper.Replace(path) }

// UnescapeListPath is the path a failure list's line names (EscapeListPath
// undone).
func UnescapeListPath(field string) string { return listPathUnescaper.Replace(field) }

// DeleteWork removes a job's working objects (pages, plans, retry entries,
// per-batch failures, listing records and pieces), keeping its failure list. Objects already gone are
// not an error.
func (s *Store) DeleteWork(ctx context.Context, jobID string) error {
	var errs []error
	for _, kind := range []string{KindPages, KindPlans, KindRetry, KindFailures} {
		errs = append(errs, s.deleteKind(ctx, jobID, kind))
	}
	errs = append(errs, s.deleteListed(ctx, jobID))
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// The job's own directory goes too unless it holds the failure list:
	// on a file system every job ended would leave an empty directory.
	// Best effort: where the list is there, removing a directory that is
	// not empty fails (os.Remove, HDFS Remove) and changes nothing, and an
	// object store has no such directory to remove.
	_ = s.st.Delete(ctx, s.root+"/"+jobID)
	return nil
}

// deleteKind removes the objects of one directory of a job, then the
// directory.
func (s *Store) deleteKind(ctx context.Context, jobID, kind string) error {
	keys, err := s.Keys(ctx, jobID, kind, "", 0)
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range keys {
		if err := s.st.Delete(ctx, s.URI(jobID, kind, k)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			errs = append(errs, fmt.Errorf("delete %s: %w", s.URI(jobID, kind, k), err))
		}
	}
	dir := s.root + "/" + jobID + "/" + kind
	if err := s.st.Delete(ctx, dir); err != nil && !errors.Is(err, storage.ErrNotFound) && !errors.Is(err, storage.ErrInvalidPath) {
		errs = append(errs, fmt.Errorf("delete %s: %w", dir, err))
	}
	return errors.Join(errs...)
}

func (s *Store) put(ctx context.Context, uri string, data []byte) error {
	w, err := s.st.Create(ctx, uri, storage.CreateOptions{Overwrite: true, Size: int64(len(data))})
	if err != nil {
		return fmt.Errorf("create %s: %w", uri, err)
	}
	if _, err := w.Write(data); err != nil {
		_ = w.Abort(ctx)
		return fmt.Errorf("write %s: %w", uri, err)
	}
	if _, err := w.Commit(ctx); err != nil {
		return fmt.Errorf("commit %s: %w", uri, err)
	}
	return nil
}

// writtenFailureList returns uri and its line count when it exists.
func (s *Store) writtenFailureList(ctx context.Context, uri string) (string, int64, error) {
	rc, err := s.st.Open(ctx, uri, 0, -1)
	if errors.Is(err, storage.ErrNotFound) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("open %s: %w", uri, err)
	}
	defer func() { _ = rc.Close() }()
	var lines int64
	buf := make([]byte, 64<<10)
	for {
		n, err := rc.Read(buf)
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		if errors.Is(err, io.EOF) {
			return uri, lines, nil
		}
		if err != nil {
			return "", 0, fmt.Errorf("read %s: %w", uri, err)
		}
	}
}

type reader struct {
	*bufio.Reader
	io.Closer
}

func (s *Store) open(ctx context.Context, uri, magic string) (*reader, error) {
	rc, err := s.st.Open(ctx, uri, 0, -1)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", uri, err)
	}
	r := &reader{Reader: bufio.NewReaderSize(rc, 64<<10), Closer: rc}
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(r, head); err != nil || string(head) != magic {
		_ = rc.Close()
		return nil, corrupt(uri, err)
	}
	return r, nil
}

func corrupt(uri string, err error) error {
	if err == nil {
		err = errors.New("bad header or size")
	}
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, uri, err.Error())
}

func putBool(b *bytes.Buffer, v bool) {
	if v {
		b.WriteByte(1)
	} else {
		b.WriteByte(0)
	}
}

func putString(b *bytes.Buffer, s string) {
	putUvarint(b, uint64(len(s)))
	b.WriteString(s)
}

// entriesSize is about the bytes entries take once written: the buffer
// is sized once instead of doubling as it fills.
func entriesSize(entries []workflows.FileEntry) int {
	n := 16
	for _, e := range entries {
		n += len(e.URI) + len(e.RelPath) + len(e.Version) + len(e.Irregular) + 4*binary.MaxVarintLen16 + binary.MaxVarintLen64
	}
	return n
}

// putUvarint and putVarint append a number to b without allocating.
func putUvarint(b *bytes.Buffer, v uint64) {
	var tmp [binary.MaxVarintLen64]byte
	b.Write(binary.AppendUvarint(tmp[:0], v))
}

func putVarint(b *bytes.Buffer, v int64) {
	var tmp [binary.MaxVarintLen64]byte
	b.Write(binary.AppendVarint(tmp[:0], v))
}

func getString(r *reader) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return "", err
	}
	if n > maxField {
		return "", fmt.Errorf("field of %d bytes", n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return "", err
	}
	return string(buf), nil
}
