package pagestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cockroachdb/pebble"

	"github.com/ferryio/ferry/storage"
)

// Resolve returns the file at uri as its source has it now, with what this
// node caches of that version. The source is asked for its version unless it
// was asked within Options.RevalidateAfter; when the version differs from the
// cached one, the cached pages are dropped first. Concurrent Resolves of one
// URI share one source call. A file deleted at the source is dropped from the
// cache and reported as storage.ErrNotFound.
func (s *Store) Resolve(ctx context.Context, uri string) (File, error) {
	fid := sha256.Sum256([]byte(uri))
	if s.opts.RevalidateAfter > 0 {
		if t, ok := s.checked.Load(fid); ok && time.Since(t.(time.Time)) < s.opts.RevalidateAfter {
			m, ok, err := s.getMeta(fid)
			if err != nil {
				return File{}, err
			}
			if ok && m.URI == uri {
				return m.file(fid, s.opts.PageSize), nil
			}
		}
	}
	e, err := s.statFlights.do(ctx, uri, func() (storage.Entry, error) { return s.statSource(ctx, uri) })
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			if _, derr := s.dropSynced(fid); derr != nil {
				s.log.Warn("page store: drop deleted file", "uri", uri, "err", derr)
			}
		}
		return File{}, err
	}
	if e.IsDir {
		return File{}, storage.NewError("read", uri, storage.ErrInvalidPath, errors.New("is a directory"))
	}
	f, _, err := s.bind(refFromEntry(uri, e))
	if err == nil {
		s.checked.Store(fid, time.Now())
	}
	return f, err
}

func (s *Store) statSource(ctx context.Context, uri string) (storage.Entry, error) {
	st, err := s.opts.Resolver.For(uri)
	if err != nil {
		return storage.Entry{}, err
	}
	return st.Stat(ctx, uri)
}

func refFromEntry(uri string, e storage.Entry) FileRef {
	return FileRef{URI: uri, Size: e.Size, Version: e.Version, ModTime: e.ModTime, ContentHash: e.ContentHash}
}

// bind makes ref the cached version of its file: a new file gets metadata, a
// new version drops the pages of the old one and starts a new generation.
// fresh reports that this call bound it (rather than finding it bound).
func (s *Store) bind(ref FileRef) (f File, fresh bool, err error) {
	if ref.Size < 0 {
		return File{}, false, storage.NewError("cache", ref.URI, storage.ErrInvalidPath, fmt.Errorf("negative size %d", ref.Size))
	}
	fid := sha256.Sum256([]byte(ref.URI))
	mu := s.stripe(fid)
	mu.Lock()
	m, ok, err := s.getMeta(fid)
	if err != nil {
		mu.Unlock()
		return File{}, false, err
	}
	if ok && m.URI == ref.URI && m.Version == ref.Version && m.Size == ref.Size {
		mu.Unlock()
		return m.file(fid, s.opts.PageSize), false, nil
	}
	b := s.newBatch()
	var stale []string
	var staleSeg []record
	var freed, dropped int64
	if ok {
		stale, staleSeg, freed, dropped, err = s.deleteRecords(b, fid)
		if err != nil {
			_ = b.Close()
			mu.Unlock()
			return File{}, false, err
		}
	}
	// Generations come from the store-wide sequence, never from the old
	// metadata: after a drop, a fill still in flight for the old
	// generation must not find its number reused.
	nm := meta{URI: ref.URI, Size: ref.Size, Version: ref.Version, ContentHash: ref.ContentHash, Gen: s.seq.Add(1)}
	if !ref.ModTime.IsZero() {
		nm.ModTimeNs = ref.ModTime.UnixNano()
	}
	setMeta(b, fid, nm)
	_ = b.Set(uriKey(ref.URI), fid[:], nil)
	if ok {
		err = s.applyChange(b, fid) // another version, or the pages of none
	} else {
		err = s.apply(b)
	}
	if err == nil {
		s.used.Add(-freed)
		s.pages.Add(-dropped)
		if nm.Size == 0 { // no pages to wait for
			s.complete.add(fid, completeEntry{size: nm.Size, version: nm.Version})
		}
	}
	mu.Unlock()
	if err != nil {
		return File{}, false, err
	}
	// Old-generation files are never written again: remove them unlocked.
	s.removeFiles(stale)
	s.releaseSegmentPages(staleSeg)
	return nm.file(fid, s.opts.PageSize), true, nil
}

// deleteRecords adds to b the deletion of every page record of fid and its
// access-order key, and returns the data files and segment pages concerned
// (to free once b is applied), and the bytes and pages. The caller holds
// fid's stripe.
func (s *Store) deleteRecords(b *pebble.Batch, fid [32]byte) (paths []string, segPages []record, freed, n int64, err error) {
	lower, upper := recordPrefix(fid)
	var decodeErr error
	err = s.scan(lower, upper, func(k, v []byte) bool {
		rec, err := decodeRecord(v)
		if err != nil {
			decodeErr = err
			return false
		}
		_ = b.Delete(bytes.Clone(k), nil)
		_ = b.Delete(accessKey(rec.seq), nil)
		if rec.seg != 0 {
			segPages = append(segPages, rec)
		} else if p := s.dataPath(fid, rec.gen); len(paths) == 0 || paths[len(paths)-1] != p {
			paths = append(paths, p)
		}
		freed += int64(rec.len)
		n++
		return true
	})
	if err == nil {
		err = decodeErr
	}
	return paths, segPages, freed, n, err
}

// releaseSegmentPages frees the segment space of deleted records.
func (s *Store) releaseSegmentPages(recs []record) {
	for _, r := range recs {
		s.segs.release(r.seg, r.off, int64(r.len))
	}
}

// dropFile forgets a file: its pages, data files and metadata. The index
// deletion is applied without a sync; the space it frees is returned, to be
// freed (free) once the deletion is durable (syncIndex): freed first and
// then lost to a kill -9, the deleted records would come back naming bytes
// that are gone.
func (s *Store) dropFile(fid [32]byte) (EvictResult, freeLater, error) {
	mu := s.stripe(fid)
	mu.Lock()
	defer mu.Unlock()
	m, ok, err := s.getMeta(fid)
	if err != nil || !ok {
		return EvictResult{}, freeLater{}, err
	}
	b := s.newBatch()
	paths, segPages, freed, n, err := s.deleteRecords(b, fid)
	if err != nil {
		_ = b.Close()
		return EvictResult{}, freeLater{}, err
	}
	_ = b.Delete(metaKey(fid), nil)
	_ = b.Delete(uriKey(m.URI), nil)
	if err := s.applyChange(b, fid); err != nil {
		return EvictResult{}, freeLater{}, err
	}
	s.used.Add(-freed)
	s.pages.Add(-n)
	s.checked.Delete(fid)
	fl := freeLater{segPages: segPages}
	// A small file has no data file unless a record named one. A larger
	// file's data file of this generation goes even without records: a
	// fill that wrote it but did not commit finds no metadata and removes
	// its file itself. Later generations (a new load after the drop) have
	// other names, so freeing after the sync never touches them.
	if len(paths) > 0 || !s.inSegments(m.file(fid, s.opts.PageSize)) {
		fl.files = append(paths, s.dataPath(fid, m.Gen))
		fl.dir = s.fileDir(fid)
	}
	return EvictResult{Files: 1, Pages: n, Bytes: freed}, fl, nil
}

// freeLater is the space of dropped files, freed once their deletion is
// durable.
type freeLater struct {
	files    []string
	dir      string // removed when empty
	segPages []record
}

// syncIndex makes every index change applied so far durable.
func (s *Store) syncIndex() error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return ErrClosed
	}
	n := s.syncs.Add(1)  // begun after every WriteMark that returned less
	w := s.writes.Load() // applied before the sync: on disk after it
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("page store index: sync: %w", err)
	}
	raise(&s.synced, w)
	raise(&s.syncedTo, n)
	return nil
}

// raise sets c to v unless it already holds as much.
func raise[T int64 | uint64, A interface {
	Load() T
	CompareAndSwap(old, new T) bool
}](c A, v T) {
	for {
		old := c.Load()
		if old >= v || c.CompareAndSwap(old, v) {
			return
		}
	}
}

// Durability of what the store reports. Index writes are applied without
// a sync of the index's log (a load commits a record per page) and synced
// every IndexSyncInterval: until then a write is in this process's memory
// only, and a kill -9 loses it. Pages are written to the kernel before
// their records, so they survive a kill of the process once written; an
// index write is what a caller waits for before it tells anyone that a
// file is cached (a batch's heartbeat, a job's result): WriteMark, then
// Durable or SyncTo.

// WriteMark returns a point in the order of the index's writes that comes
// after every write applied (and so visible to a read) so far: once
// Durable(mark), each of them survives a kill of the process.
func (s *Store) WriteMark() uint64 { return s.syncs.Load() + 1 }

// Durable reports whether the index writes applied before mark was taken
// are on disk: a sync begun after mark ended, or nothing applied since is
// waiting for one.
func (s *Store) Durable(mark uint64) bool {
	return s.syncedTo.Load() >= mark || s.allSynced()
}

// SyncTo makes the index writes applied before mark was taken durable,
// syncing the index's log unless they already are.
func (s *Store) SyncTo(mark uint64) error {
	if s.Durable(mark) {
		return nil
	}
	return s.syncIndex()
}

// allSynced reports whether every index write visible now is on disk. A
// write is counted as applying before a read can see it and as written
// before it stops applying, so a write visible before the first load below
// is either counted applying or counted in writes, and synced counts only
// writes that were applied before their sync began.
func (s *Store) allSynced() bool {
	applying := s.applying.Load()
	w := s.writes.Load()
	return applying == 0 && s.synced.Load() >= w
}

func (s *Store) free(fls []freeLater) {
	for _, fl := range fls {
		for _, p := range fl.files {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("page store: remove file pages", "path", p, "err", err)
			}
		}
		if fl.dir != "" {
			_ = os.Remove(fl.dir) // fails while a newer generation is there
		}
		s.releaseSegmentPages(fl.segPages)
	}
}

// Drop forgets one file.
func (s *Store) Drop(uri string) (EvictResult, error) {
	if _, ok, err := s.Lookup(uri); err != nil || !ok {
		return EvictResult{}, err
	}
	return s.dropSynced(sha256.Sum256([]byte(uri)))
}

// dropSynced drops one file and frees its space once that is durable.
func (s *Store) dropSynced(fid [32]byte) (EvictResult, error) {
	r, fl, err := s.dropFile(fid)
	if err != nil {
		return r, err
	}
	if err := s.syncIndex(); err != nil {
		return r, err // the space stays taken until the file's next drop
	}
	s.free([]freeLater{fl})
	return r, nil
}

// EvictResult counts what Evict removed.
type EvictResult struct {
	Files int64
	Pages int64
	Bytes int64
}

// Evict removes every cached file whose URI starts with prefix (an empty
// prefix removes everything), and their metadata.
func (s *Store) Evict(ctx context.Context, prefix string) (EvictResult, error) {
	var total EvictResult
	lower := uriKey(prefix)
	upper := prefixEnd(lower)
	for {
		// Collect a batch of ids first: dropping takes locks that must not be
		// held while iterating.
		var fids [][32]byte
		err := s.scan(lower, upper, func(k, v []byte) bool {
			var fid [32]byte
			copy(fid[:], v)
			fids = append(fids, fid)
			return len(fids) < 256
		})
		if err != nil {
			return total, err
		}
		if len(fids) == 0 {
			return total, nil
		}
		// One sync for the whole batch of files, then their space is freed.
		var fls []freeLater
		var err2 error
		for _, fid := range fids {
			if err2 = ctx.Err(); err2 != nil {
				break
			}
			r, fl, err := s.dropFile(fid)
			if err2 = err; err != nil {
				break
			}
			fls = append(fls, fl)
			total.Files += r.Files
			total.Pages += r.Pages
			total.Bytes += r.Bytes
		}
		if err := s.syncIndex(); err != nil {
			return total, err
		}
		s.free(fls)
		if err2 != nil {
			return total, err2
		}
	}
}

// prefixEnd is the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Lookup returns what the store holds of uri, without asking the source.
func (s *Store) Lookup(uri string) (File, bool, error) {
	fid := sha256.Sum256([]byte(uri))
	m, ok, err := s.getMeta(fid)
	if err != nil || !ok || m.URI != uri {
		return File{}, false, err
	}
	return m.file(fid, s.opts.PageSize), true, nil
}

// LookupID is Lookup by file id (hex SHA-256 of the URI).
func (s *Store) LookupID(id string) (File, bool, error) {
	raw, err := hex.DecodeString(id)
	if err != nil || len(raw) != 32 {
		return File{}, false, storage.NewError("lookup", id, storage.ErrInvalidPath, errors.New("a file id is 64 hex digits"))
	}
	var fid [32]byte
	copy(fid[:], raw)
	m, ok, err := s.getMeta(fid)
	if err != nil || !ok {
		return File{}, false, err
	}
	return m.file(fid, s.opts.PageSize), true, nil
}

// CachedComplete reports, for each ref, whether the store holds every page
// of ref.URI at exactly ref.Size and ref.Version (a ref without a version
// is never cached complete). It reads no source and records no access.
// Files the store remembers as complete (Options.CompleteFiles: those
// loaded complete, or found so by an earlier call, since Open) are answered
// from memory; the others from the index, walked once in key order: one
// iterator for the whole slice, not one lookup per file.
func (s *Store) CachedComplete(refs []FileRef) ([]bool, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	out := make([]bool, len(refs))
	var keys [][]byte
	var toks []completeToken
	var order []int
	for i, r := range refs {
		if r.Version == "" {
			continue
		}
		fid := sha256.Sum256([]byte(r.URI))
		e, found, tok := s.complete.lookup(fid)
		if found {
			// The file is complete at e and nothing else.
			out[i] = e.size == r.Size && e.version == r.Version
			continue
		}
		if keys == nil {
			keys, toks = make([][]byte, len(refs)), make([]completeToken, len(refs))
		}
		keys[i], toks[i] = metaKey(fid), tok
		order = append(order, i)
	}
	if len(order) == 0 {
		return s.durableAnswer(out)
	}
	slices.SortFunc(order, func(a, b int) int { return bytes.Compare(keys[a], keys[b]) })
	err := s.seekEach(keys[order[0]], prefixEnd([]byte{'f'}), len(order), func(n int) []byte { return keys[order[n]] },
		func(n int, v []byte) error {
			m, err := decodeMeta(v)
			if err != nil {
				return err
			}
			r := refs[order[n]]
			out[order[n]] = m.URI == r.URI && m.Version == r.Version && m.Size == r.Size &&
				m.Pages >= pageCount(m.Size, s.opts.PageSize)
			return nil
		})
	if err != nil {
		return nil, err
	}
	if s.afterIndexWalk != nil {
		s.afterIndexWalk()
	}
	for _, i := range order {
		if out[i] {
			var fid [32]byte
			copy(fid[:], keys[i][1:])
			s.complete.confirm(fid, completeEntry{size: refs[i].Size, version: strings.Clone(refs[i].Version)}, toks[i])
		}
	}
	return s.durableAnswer(out)
}

// durableAnswer returns CachedComplete's answer once what it says is
// durable: the caller counts a file answered cached as done without
// loading it, so its records must survive a kill of this process. It
// syncs the index only when a file is answered cached and a write the
// answer may have seen is not on disk yet (a load under way), never on an
// idle store.
func (s *Store) durableAnswer(cached []bool) ([]bool, error) {
	if !slices.Contains(cached, true) {
		return cached, nil
	}
	if err := s.SyncTo(s.WriteMark()); err != nil {
		return nil, err
	}
	return cached, nil
}

// checkOpen fails with ErrClosed once the store is closed.
func (s *Store) checkOpen() error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// IsCached reports whether every page of uri is cached at version (any
// version when version is empty). It does not ask the source.
func (s *Store) IsCached(uri, version string) bool {
	f, ok, err := s.Lookup(uri)
	return err == nil && ok && (version == "" || f.Version == version) && f.FullyCached()
}
