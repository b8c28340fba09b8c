package hdfs

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/ferryio/ferry/storage"
)

const (
	defaultPageSize = 1000
	// readdirBatch is how many entries one Readdir asks for: about one
	// namenode getListing call (dfs.ls.limit defaults to 1000).
	readdirBatch = 1000
)

// List returns one page of the directory at uri.
//
// Entries come in byte order of their key: the path relative to uri, with
// "/" after a directory's name, which is the order of object-store keys (so
// "a-b" sorts before "a/c"). The namenode lists a directory in name order,
// in batches; the walk streams those batches and holds back only the
// subdirectories whose key sorts after names still to come ("a" waits for
// "a-b"), so no directory is ever read whole into memory.
//
// The cursor is the key of the last entry returned. The client library
// cannot start a directory listing after a given name, so a cursor that
// does not continue a live walk (kept in a small cache, as the next page of
// the same listing does) is resumed by reading the directories on the
// cursor's path from their start and skipping what sorts before it.
func (s *Store) List(ctx context.Context, uri string, opts storage.ListOptions) (storage.ListPage, error) {
	c, p, err := s.resolve("list", uri)
	if err != nil {
		return storage.ListPage{}, err
	}
	fi, err := c.Stat(p)
	if err != nil {
		return storage.ListPage{}, fail("list", uri, err)
	}
	if !fi.IsDir() {
		return storage.ListPage{}, storage.NewError("list", uri, storage.ErrInvalidPath, errors.New("not a directory"))
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = defaultPageSize
	}
	authority := ""
	if u, err := storage.ParseURI(uri); err == nil {
		authority = u.Authority
	}
	w, ok := s.listings.Take(listingKey(authority, p, opts.Recursive, opts.Cursor))
	if !ok {
		w = &walker{c: c, recursive: opts.Recursive, cursor: opts.Cursor}
		if err := w.push(p, ""); err != nil {
			return storage.ListPage{}, fail("list", uri, err)
		}
	}
	var page storage.ListPage
	for len(page.Entries) < limit {
		if err := ctx.Err(); err != nil {
			return storage.ListPage{}, storage.NewError("list", uri, storage.ErrUnavailable, err)
		}
		e, key, ok, err := w.next()
		if err != nil {
			w.close()
			return storage.ListPage{}, fail("list", uri, err)
		}
		if !ok {
			w.close()
			return page, nil
		}
		e.URI = storage.Join(uri, e.RelPath)
		if e.Err != nil {
			e.Err = fail("list", e.URI, e.Err)
		}
		page.Entries = append(page.Entries, e)
		page.Cursor = key
	}
	// Look one entry ahead, so that the last page says it is the last.
	e, key, ok, err := w.next()
	if err != nil {
		w.close()
		return storage.ListPage{}, fail("list", uri, err)
	}
	if !ok {
		w.close()
		page.Cursor = ""
		return page, nil
	}
	w.ahead = &lookahead{entry: e, key: key}
	s.listings.Put(listingKey(authority, p, opts.Recursive, page.Cursor), w)
	return page, nil
}

func listingKey(authority, dir string, recursive bool, cursor string) string {
	r := "0"
	if recursive {
		r = "1"
	}
	return r + "\x00" + authority + "\x00" + dir + "\x00" + cursor
}

// dirEntry is a subdirectory seen but not yet walked (or, in a flat
// listing, not yet returned).
type dirEntry struct {
	name string
	key  string // with a trailing "/"
	fi   os.FileInfo
}

// frame is one directory being read.
type frame struct {
	path    string // file-system path
	rel     string // key prefix: "" or "a/b/"
	f       file
	buf     []os.FileInfo
	eof     bool
	pending []dirEntry // sorted by key
}

// peek returns the next entry of the directory in name order, or nil at
// its end.
func (fr *frame) peek() (os.FileInfo, error) {
	for len(fr.buf) == 0 && !fr.eof {
		b, err := fr.f.Readdir(readdirBatch)
		if errors.Is(err, io.EOF) || (err == nil && len(b) == 0) {
			fr.eof = true
			break
		}
		if err != nil {
			return nil, err
		}
		fr.buf = b
	}
	if len(fr.buf) == 0 {
		return nil, nil
	}
	return fr.buf[0], nil
}

type lookahead struct {
	entry storage.Entry
	key   string
}

type walker struct {
	c         fileSystem
	recursive bool
	// cursor: entries whose key sorts at or before it are skipped, and
	// subtrees that lie wholly before it are not read.
	cursor string
	stack  []*frame
	ahead  *lookahead
}

// perEntry reports whether err, met on a directory below the listed one,
// is that directory's own and permanent (access denied, a bad path): the
// directory is then returned as an entry with the error
// (storage.Entry.Err) and the listing goes on. Other errors (a namenode
// that is down) fail the listing.
func perEntry(err error) bool {
	return storage.IsEntryError(classify(err))
}

// failedDir is the entry of the directory with key ("a/b/") that could
// not be read for err.
func failedDir(key string, err error) storage.Entry {
	return storage.Entry{RelPath: strings.TrimSuffix(key, "/"), IsDir: true, Err: err}
}

func (w *walker) push(dir, rel string) error {
	f, err := w.c.Open(dir)
	if err != nil {
		return err
	}
	w.stack = append(w.stack, &frame{path: dir, rel: rel, f: f})
	return nil
}

func (w *walker) close() {
	for _, fr := range w.stack {
		_ = fr.f.Close()
	}
	w.stack = nil
}

// next returns the next entry in key order and its key.
func (w *walker) next() (storage.Entry, string, bool, error) {
	if a := w.ahead; a != nil {
		w.ahead = nil
		return a.entry, a.key, true, nil
	}
	for len(w.stack) > 0 {
		top := w.stack[len(w.stack)-1]
		fi, err := top.peek()
		if err != nil {
			if len(w.stack) == 1 || !perEntry(err) {
				return storage.Entry{}, "", false, err
			}
			// A directory below the listed one that cannot be read (or
			// what is left of it): one failed entry.
			_ = top.f.Close()
			w.stack = w.stack[:len(w.stack)-1]
			if top.rel == w.cursor {
				continue // failed on the page the cursor ends
			}
			return failedDir(top.rel, err), top.rel, true, nil
		}
		incoming := ""
		if fi != nil {
			incoming = top.rel + fi.Name()
			if fi.IsDir() {
				incoming += "/"
			}
		}
		if len(top.pending) > 0 && (fi == nil || top.pending[0].key < incoming) {
			d := top.pending[0]
			top.pending = top.pending[1:]
			if !w.recursive {
				if w.cursor != "" && d.key <= w.cursor {
					continue
				}
				e := entry("", strings.TrimSuffix(d.key, "/"), d.fi)
				return e, d.key, true, nil
			}
			if w.cursor != "" && d.key < w.cursor && !strings.HasPrefix(w.cursor, d.key) {
				continue // the whole subtree sorts before the cursor
			}
			if err := w.push(path.Join(top.path, d.name), d.key); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // removed while listing
				}
				if !perEntry(err) {
					return storage.Entry{}, "", false, err
				}
				if d.key == w.cursor {
					continue // failed on the page the cursor ends
				}
				return failedDir(d.key, err), d.key, true, nil
			}
			continue
		}
		if fi == nil {
			_ = top.f.Close()
			w.stack = w.stack[:len(w.stack)-1]
			continue
		}
		top.buf = top.buf[1:]
		if strings.Contains(fi.Name(), PartialMarker) {
			continue
		}
		if fi.IsDir() {
			d := dirEntry{name: fi.Name(), key: incoming, fi: fi}
			i := sort.Search(len(top.pending), func(i int) bool { return top.pending[i].key >= d.key })
			top.pending = append(top.pending, dirEntry{})
			copy(top.pending[i+1:], top.pending[i:])
			top.pending[i] = d
			continue
		}
		if w.cursor != "" && incoming <= w.cursor {
			continue
		}
		return entry("", incoming, fi), incoming, true, nil
	}
	return storage.Entry{}, "", false, nil
}
