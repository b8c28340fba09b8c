package local

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"

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
		if err := w.start(p, opts.Cursor); err != nil {
			return storage.ListPage{}, mapError("list", uri, err)
		}
	}
	page := storage.ListPage{Entries: opts.Reuse[:0]}
	for len(page.Entries) < limit {
		if err := ctx.Err(); err != nil {
			return storage.ListPage{}, err
		}
		e, ok, err := w.next()
		if err != nil {
			return storage.ListPage{}, mapError("list", uri, err)
		}
		if !ok {
			return page, nil
		}
		e.URI = storage.Join(uri, e.RelPath)
		page.Entries = append(page.Entries, e)
		page.Cursor = w.lastKey
	}
	if w.done() {
		page.Cursor = ""
		return page, nil
	}
	s.listings.Put(listingKey(p, opts, page.Cursor), w)
	return page, nil
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

// dent is one directory entry with its sort key (name, plus "/" for a
// directory).
type dent struct {
	name  string
	key   string
	isDir bool
	// link says why a symbolic link is not followed; "" for others.
	link string
}

type frame struct {
	dir   string // file-system path
	rel   string // key prefix: "" or "a/b/"
	dents []dent
	i     int
}

type walker struct {
	store     *Store
	recursive bool
	emptyDirs bool // return directories that hold nothing (recursive only)
	stack     []*frame
	lastKey   string
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
			full := top.rel + d.key
			if d.isDir && w.recursive && strings.HasPrefix(cursor, full) {
				top.i++
				child, err := w.frame(filepath.Join(top.dir, d.name), full)
				if err != nil {
					return err
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

func (w *walker) frame(dir, rel string) (*frame, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	dents := make([]dent, 0, len(des))
	for _, de := range des {
		name := de.Name()
		if strings.Contains(name, PartialMarker) {
			continue
		}
		isDir := de.IsDir()
		link := ""
		if de.Type()&os.ModeSymlink != 0 {
			// Follow links to files inside the root; never descend linked
			// directories (no loops) nor expose anything outside the root.
			// Those are listed as irregular entries, so that they are
			// reported rather than silently dropped.
			target := filepath.Join(dir, name)
			real, err := filepath.EvalSymlinks(target)
			var fi os.FileInfo
			if err == nil {
				fi, err = os.Stat(real)
			}
			switch {
			case err != nil:
				link = "dangling symbolic link"
			case w.store.root != "/" && !within(w.store.root, real):
				link = "symbolic link outside the storage root"
			case fi.IsDir():
				link = "symbolic link to a directory (not followed)"
			}
		}
		if isDir && !w.recursive {
			dents = append(dents, dent{name: name, key: name + "/", isDir: true})
			continue
		}
		key := name
		if isDir {
			key += "/"
		}
		dents = append(dents, dent{name: name, key: key, isDir: isDir, link: link})
	}
	sort.Slice(dents, func(i, j int) bool { return dents[i].key < dents[j].key })
	return &frame{dir: dir, rel: rel, dents: dents}, nil
}

// next returns the next entry in key order.
func (w *walker) next() (storage.Entry, bool, error) {
	for len(w.stack) > 0 {
		top := w.stack[len(w.stack)-1]
		if top.i >= len(top.dents) {
			w.stack = w.stack[:len(w.stack)-1]
			continue
		}
		d := top.dents[top.i]
		top.i++
		full := top.rel + d.key
		p := filepath.Join(top.dir, d.name)
		if d.isDir && w.recursive {
			child, err := w.frame(p, full)
			if err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue // removed while listing
				}
				return storage.Entry{}, false, err
			}
			if w.emptyDirs && len(child.dents) == 0 {
				w.lastKey = full
				return storage.Entry{RelPath: strings.TrimSuffix(full, "/"), IsDir: true}, true, nil
			}
			w.stack = append(w.stack, child)
			continue
		}
		w.lastKey = full
		if d.link != "" {
			return storage.Entry{RelPath: strings.TrimSuffix(full, "/"), Irregular: d.link}, true, nil
		}
		fi, err := os.Stat(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return storage.Entry{}, false, err
		}
		rel := strings.TrimSuffix(full, "/")
		return entry("", rel, fi), true, nil
	}
	return storage.Entry{}, false, nil
}

// done reports whether no entry is left.
func (w *walker) done() bool {
	for _, f := range w.stack {
		if f.i < len(f.dents) {
			// A non-empty remainder may still hold only empty directories;
			// the caller then gets one empty page, which is harmless.
			return false
		}
	}
	return true
}
