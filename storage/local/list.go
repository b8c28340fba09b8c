package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ferryio/ferry/storage"
)

const defaultPageSize = 1000

// List returns one page of the directory at uri. Entries come in byte order
// of their key: the relative path, with "/" after a directory's name, which is
// the order of object-store keys (so "a-b" sorts before "a/c").
func (s *Store) List(ctx context.Context, uri string, opts storage.ListOptions) (storage.ListPage, error) {
	p, err := s.path("list", uri)
	if err != nil {
		return storage.ListPage{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return storage.ListPage{}, mapError("list", uri, err)
	}
	if !fi.IsDir() {
		return storage.ListPage{}, storage.NewError("list", uri, storage.ErrInvalidPath, errors.New("not a directory"))
	}
	limit := opts.Limit
	if limit <= 0 {
		limit = defaultPageSize
	}
	key := listingKey(p, opts, opts.Cursor)
	w, ok := s.listings.Take(key)
	if !ok {
		w = &walker{store: s, recursive: opts.Recursive, emptyDirs: opts.Recursive && opts.EmptyDirs}
	}
	page, more, err := w.page(ctx, uri, p, opts, ok, limit)
	// No directory stays open between pages: release before the walker
	// is shared again through the cache, whatever happened.
	w.dirs.release()
	if err != nil {
		return storage.ListPage{}, err
	}
	if more {
		s.listings.Put(listingKey(p, opts, page.Cursor), w)
	}
	return page, nil
}

// page lists the next page of up to limit entries of the directory dir at
// uri, after seeking to opts.Cursor unless resumed; more reports entries
// left to list.
func (w *walker) page(ctx context.Context, uri, dir string, opts storage.ListOptions, resumed bool, limit int) (page storage.ListPage, more bool, err error) {
	if !resumed {
		if err := w.start(dir, opts.Cursor); err != nil {
			return storage.ListPage{}, false, mapError("list", uri, err)
		}
	}
	page = storage.ListPage{Entries: opts.Reuse[:0]}
	for len(page.Entries) < limit {
		if err := ctx.Err(); err != nil {
			return storage.ListPage{}, false, err
		}
		e, ok, err := w.next()
		if err != nil {
			return storage.ListPage{}, false, mapError("list", uri, err)
		}
		if !ok {
			return page, false, nil
		}
		e.URI = storage.Join(uri, e.RelPath)
		if e.Err != nil {
			op := "stat"
			if e.IsDir && opts.Recursive {
				op = "list"
			}
			e.Err = mapError(op, e.URI, e.Err)
		}
		page.Entries = append(page.Entries, e)
		page.Cursor = w.lastKey
	}
	if w.done() {
		page.Cursor = ""
		return page, false, nil
	}
	return page, true, nil
}

func listingKey(dir string, opts storage.ListOptions, cursor string) string {
	r := "0"
	if opts.Recursive {
		r = "1"
	}
	if opts.EmptyDirs {
		r += "e"
	}
	return r + "\x00" + dir + "\x00" + cursor
}

// dent is one directory entry. Its sort key is its name, plus "/" for a
// directory. It is small, so that sorting a large directory moves little.
type dent struct {
	name  string
	isDir bool
	link  link
}

// key is the sort key of d: its name, plus "/" for a directory.
func (d dent) key() string {
	if d.isDir {
		return d.name + "/"
	}
	return d.name
}

// compareKeys orders dents by key without building the keys. No name holds
// "/", so a directory's key "x/" sorts against a longer name "xy…" as "/"
// against "y".
func compareKeys(a, b dent) int {
	n := min(len(a.name), len(b.name))
	if c := strings.Compare(a.name[:n], b.name[:n]); c != 0 {
		return c
	}
	switch {
	case len(a.name) == len(b.name):
		return compareBool(a.isDir, b.isDir)
	case len(a.name) < len(b.name):
		if a.isDir && '/' > b.name[n] {
			return 1
		}
		return -1
	default:
		if b.isDir && '/' > a.name[n] {
			return -1
		}
		return 1
	}
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// link says why a symbolic link is not followed; linkFollowed for other
// entries, and for links to files inside the root.
type link uint8

const (
	linkFollowed link = iota
	linkDangling
	linkOutside
	linkToDir
)

// reason is the Irregular text of an entry for a link that is not followed.
func (l link) reason() string {
	switch l {
	case linkDangling:
		return "dangling symbolic link"
	case linkOutside:
		return "symbolic link outside the storage root"
	case linkToDir:
		return "symbolic link to a directory (not followed)"
	}
	return ""
}

type frame struct {
	dir   string // file-system path
	rel   string // key prefix: "" or "a/b/"
	dents []dent
	i     int
}

// fileStat is what a listing needs of a stat (symbolic links followed).
type fileStat struct {
	mode  fs.FileMode
	size  int64
	mtime time.Time
	// ctime is the inode's change time where the system gives it (zero
	// elsewhere): see entryOf.
	ctime time.Time
}

// A walker lists a tree in key order. Between pages it holds no open file:
// the OS-specific part (dirs) may keep the directories of the frames on the
// stack open while a page is listed (done when a frame is left), and List
// releases them before it returns, so that a walker kept in s.listings,
// evicted, or abandoned by its caller never leaks one.
type walker struct {
	store     *Store
	recursive bool
	emptyDirs bool // return directories that hold nothing (recursive only)
	stack     []*frame
	lastKey   string
	dirs      dirReader
	// pending is a directory the seek of start could not enter, to be
	// returned first as a failed entry (see perEntry).
	pending *storage.Entry
}

// perEntry reports whether err, met on an entry below the listed
// directory, is that entry's own and permanent: permission denied, a name
// or path too long, a directory that became a file. The entry is then
// returned with the error (storage.Entry.Err) and the listing goes on;
// other errors (I/O errors, too many open files) fail the listing, which
// may be tried again.
func perEntry(err error) bool {
	return storage.IsEntryError(mapError("", "", err))
}

// failedDir is the entry of the directory with key full ("a/b/") that
// could not be listed for err.
func failedDir(full string, err error) storage.Entry {
	return storage.Entry{RelPath: strings.TrimSuffix(full, "/"), IsDir: true, Err: err}
}

func (w *walker) start(dir, cursor string) error {
	f, err := w.frame(dir, "")
	if err != nil {
		return err
	}
	w.stack = []*frame{f}
	if cursor == "" {
		return nil
	}
	// Seek: skip every entry whose whole subtree sorts at or before cursor,
	// descend into the directory that contains it.
	for {
		top := w.stack[len(w.stack)-1]
		descended := false
		for top.i < len(top.dents) {
			d := top.dents[top.i]
			full := top.rel + d.key()
			if d.isDir && w.recursive && strings.HasPrefix(cursor, full) {
				top.i++
				child, err := w.frame(filepath.Join(top.dir, d.name), full)
				if err != nil {
					if !perEntry(err) {
						return err
					}
					if cursor != full {
						// Listed in part on an earlier page: what is
						// left of it is failed.
						e := failedDir(full, err)
						w.pending = &e
					}
					// A cursor at the directory itself follows its
					// failed entry (or the empty directory it was).
					return nil
				}
				w.stack = append(w.stack, child)
				descended = true
				break
			}
			if full <= cursor {
				top.i++
				continue
			}
			return nil
		}
		if !descended {
			return nil
		}
	}
}

// frame reads the directory dir, whose entries' keys start with rel, and
// sorts its entries by key: once, in byte order.
func (w *walker) frame(dir, rel string) (*frame, error) {
	f := &frame{dir: dir, rel: rel}
	err := w.dirs.read(f, func(name string, isDir, isLink bool) {
		if strings.Contains(name, PartialMarker) {
			return
		}
		d := dent{name: name, isDir: isDir}
		if isLink {
			d.link = w.linkOf(filepath.Join(dir, name))
		}
		f.dents = append(f.dents, d)
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(f.dents, compareKeys)
	return f, nil
}

// linkOf says why the symbolic link at path is not followed, if it is not:
// links to files inside the root are followed; linked directories are never
// descended (no loops), nor is anything outside the root exposed. Those are
// listed as irregular entries, so that they are reported rather than
// silently dropped.
func (w *walker) linkOf(path string) link {
	real, err := filepath.EvalSymlinks(path)
	var fi os.FileInfo
	if err == nil {
		fi, err = os.Stat(real)
	}
	switch {
	case err != nil:
		return linkDangling
	case w.store.root != "/" && !within(w.store.root, real):
		return linkOutside
	case fi.IsDir():
		return linkToDir
	}
	return linkFollowed
}

// next returns the next entry in key order.
func (w *walker) next() (storage.Entry, bool, error) {
	if e := w.pending; e != nil {
		w.pending = nil
		return *e, true, nil
	}
	for len(w.stack) > 0 {
		top := w.stack[len(w.stack)-1]
		if top.i >= len(top.dents) {
			w.stack = w.stack[:len(w.stack)-1]
			w.dirs.done(top)
			continue
		}
		d := top.dents[top.i]
		top.i++
		full := top.rel + d.key()
		if d.isDir && w.recursive {
			child, err := w.frame(filepath.Join(top.dir, d.name), full)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue // removed while listing
				}
				if !perEntry(err) {
					return storage.Entry{}, false, err
				}
				w.lastKey = full
				return failedDir(full, err), true, nil
			}
			if w.emptyDirs && len(child.dents) == 0 {
				w.dirs.done(child)
				w.lastKey = full
				return storage.Entry{RelPath: strings.TrimSuffix(full, "/"), IsDir: true}, true, nil
			}
			w.stack = append(w.stack, child)
			continue
		}
		w.lastKey = full
		rel := full
		if d.isDir {
			rel = top.rel + d.name
		}
		if d.link != linkFollowed {
			return storage.Entry{RelPath: rel, Irregular: d.link.reason()}, true, nil
		}
		st, err := w.dirs.stat(top, d.name)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if !perEntry(err) {
				return storage.Entry{}, false, err
			}
			return storage.Entry{RelPath: rel, IsDir: d.isDir, Err: err}, true, nil
		}
		return entryOf("", rel, st), true, nil
	}
	return storage.Entry{}, false, nil
}

// done reports whether no entry is left.
func (w *walker) done() bool {
	if w.pending != nil {
		return false
	}
	for _, f := range w.stack {
		if f.i < len(f.dents) {
			// A non-empty remainder may still hold only empty directories;
			// the caller then gets one empty page, which is harmless.
			return false
		}
	}
	return true
}
