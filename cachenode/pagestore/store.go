package pagestore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// DefaultPageSize is the page size of the Alluxio clients (1 MiB); a node
// must use the page size its clients use, since they address pages by index.
const DefaultPageSize = 1 << 20

// Options configure a Store.
type Options struct {
	// Dir holds the index and the pages. Required; created if missing.
	Dir string
	// PageSize in bytes. Default DefaultPageSize. Changing it on an existing
	// store clears the cache.
	PageSize int64
	// Capacity is the most page bytes the store keeps. Required, at least
	// one page.
	Capacity int64
	// Resolver finds the storage system of a URI. Required.
	Resolver *storage.Resolver
	// RevalidateAfter is how long a source version, once checked, is trusted
	// before the next read asks the source again. 0 (the default) asks on
	// every Resolve, so a changed source is never served from stale pages;
	// a positive value trades that for fewer metadata calls (an object store
	// HEAD per read), serving stale bytes for at most this long.
	RevalidateAfter time.Duration
	// Logger receives warnings (corrupt pages, failed removals). Default
	// slog.Default().
	Logger *slog.Logger
	// CompleteFiles is the most files the store remembers in memory as
	// cached complete, so that CachedComplete answers for them without
	// reading the index: about 160 bytes of heap each with versions of 25
	// bytes (BenchmarkCompleteSetMemory), so ~42 MB for the default's
	// 262,144 files. Beyond it, arbitrary ones are forgotten and looked up
	// in the index again. 0 is DefaultCompleteFiles; negative remembers
	// none.
	CompleteFiles int
}

// Validate fills defaults and reports every problem at once.
func (o *Options) Validate() error {
	var errs []error
	if o.PageSize == 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CompleteFiles == 0 {
		o.CompleteFiles = DefaultCompleteFiles
	}
	if o.Dir == "" {
		errs = append(errs, errors.New("page store: Dir is required"))
	}
	if o.PageSize < 4096 || o.PageSize > 64<<20 {
		errs = append(errs, fmt.Errorf("page store: page size %d is outside 4 KiB … 64 MiB", o.PageSize))
	}
	if o.Capacity < o.PageSize {
		errs = append(errs, fmt.Errorf("page store: capacity %d is less than one page (%d bytes)", o.Capacity, o.PageSize))
	}
	if o.Resolver == nil {
		errs = append(errs, errors.New("page store: Resolver is required"))
	}
	if o.RevalidateAfter < 0 {
		errs = append(errs, errors.New("page store: RevalidateAfter must not be negative"))
	}
	return errors.Join(errs...)
}

// indexCacheSize is the index's block cache: room for the records of a few
// hundred thousand cached files.
const indexCacheSize = 64 << 20

// Errors of the page store. Both wrap storage.ErrUnavailable: trying again
// later is the right reaction.
var (
	// ErrChanged: the source changed while a file was being read or loaded;
	// what was read is not served. The HTTP API answers 412.
	ErrChanged = fmt.Errorf("%w: the source file changed while it was being read; try again", storage.ErrUnavailable)
	// ErrNoSpace: the whole capacity is held by pages being written, so
	// nothing can be evicted to make room.
	ErrNoSpace = fmt.Errorf("%w: the cache is full of pages being written", storage.ErrUnavailable)
	// ErrClosed: the store was closed.
	ErrClosed = fmt.Errorf("%w: the page store is closed", storage.ErrUnavailable)
)

// Errors of a load whose file does not stay in the cache. They wrap
// storage.ErrOutOfRange, a final error: loading again would only evict
// something else (or the same file's first pages) once more.
var (
	// ErrTooLarge: the file is larger than the store's whole capacity, so
	// it cannot be held; nothing is read.
	ErrTooLarge error = loadFitError("larger than the cache")
	// ErrEvicted: pages of the file were evicted to make room for other
	// pages before the load (or the job) ended: the working set exceeds
	// the cache.
	ErrEvicted error = loadFitError("evicted to make room")
)

// loadFitError is a load that does not stay in the cache. It is
// storage.ErrOutOfRange (final) for errors.Is, but says only what it is:
// "offset out of range", that error's text, would mislead the user.
type loadFitError string

func (e loadFitError) Error() string { return string(e) }

// Is makes the error match storage.ErrOutOfRange.
func (e loadFitError) Is(target error) bool { return target == storage.ErrOutOfRange }

// FileRef names a file at a known version, as a listing describes it.
type FileRef struct {
	URI string
	// Size in bytes. With an empty Version, Size is ignored and both are
	// read from the source.
	Size int64
	// Version is the source's version of the content (storage.Entry.Version).
	Version string
	// ModTime and ContentHash are kept for display when known.
	ModTime     time.Time
	ContentHash string
}

// File is a file as the store holds it at one version.
type File struct {
	URI string
	// ID is the lower-case hex SHA-256 of URI.
	ID          string
	Size        int64
	Version     string
	ModTime     time.Time
	ContentHash string
	// PageSize is the store's page size.
	PageSize int64
	// CachedPages and CachedBytes are what this node holds of this version.
	CachedPages int64
	CachedBytes int64
	// EvictedPages counts the pages of this version evicted to make room
	// (least recently used) since it was first cached.
	EvictedPages int64

	fid [32]byte
	gen uint64
}

// Pages is the number of pages of the file.
func (f File) Pages() int64 { return pageCount(f.Size, f.PageSize) }

// pageCount is the number of pages of size bytes.
func pageCount(size, pageSize int64) int64 { return (size + pageSize - 1) / pageSize }

// FullyCached reports whether every page of this version is cached.
func (f File) FullyCached() bool { return f.CachedPages >= f.Pages() }

// PageLen is the length of page idx (the last page is short).
func (f File) PageLen(idx int64) int64 {
	n := f.Size - idx*f.PageSize
	if n > f.PageSize {
		n = f.PageSize
	}
	if n < 0 {
		n = 0
	}
	return n
}

// FileID is the file id of a URI: the lower-case hex SHA-256 of the string.
func FileID(uri string) string {
	sum := sha256.Sum256([]byte(uri))
	return hex.EncodeToString(sum[:])
}

// Stats are the store's counters since Open (UsedBytes, Pages and Files are
// current values).
type Stats struct {
	Capacity  int64
	UsedBytes int64
	Pages     int64
	// Hits and Misses count pages read from the cache and fetched from the
	// source on a read.
	Hits   int64
	Misses int64
	// BytesServed were returned to readers; BytesFromStorage were read from
	// storage systems (reads and loads).
	BytesServed      int64
	BytesFromStorage int64
	PagesStored      int64
	PagesEvicted     int64
	// PagesCorrupt failed their checksum (or were missing) and were dropped.
	PagesCorrupt int64
	// IndexWrites counts the index's writes; IndexSyncedWrites how many of
	// them were on disk at the last sync (a kill -9 loses the others, and
	// their pages are fetched again). Syncs come at most IndexSyncInterval
	// after a write.
	IndexWrites, IndexSyncedWrites int64
}

// IndexSyncInterval bounds how long an index write stays in the process
// only: a kill -9 of the node loses at most the records of this last
// interval (never bytes: pages are written before their records).
const IndexSyncInterval = time.Second

type counters struct {
	hits, misses, bytesServed, bytesFromStorage, pagesStored, pagesEvicted, pagesCorrupt atomic.Int64
	evictScans                                                                           atomic.Int64 // evictions begun from the old end (tests)
}

// Store is a page store. It is safe for concurrent use.
type Store struct {
	opts    Options
	db      *pebble.DB
	pageDir string
	segs    *segments
	log     *slog.Logger

	// life guards the Pebble handle: operations hold it shared, Close
	// exclusively, so that nothing touches a closed database.
	life   sync.RWMutex
	closed bool

	// stripes serialise read-modify-write of one file's metadata and page
	// records. Lock order: evictMu, then one stripe; never two stripes.
	stripes [256]sync.Mutex
	evictMu sync.Mutex

	seq   atomic.Uint64 // access order
	used  atomic.Int64  // committed page bytes plus reservations
	pages atomic.Int64  // committed pages

	// complete remembers files known to be cached complete (CachedComplete).
	complete *completeSet
	// afterIndexWalk, when set (tests), runs between CachedComplete's
	// index walk and its recording of what the walk found.
	afterIndexWalk func()
	// duringChange, when set (tests), runs in applyChange between
	// forgetting the file and applying the change.
	duringChange func()

	pageFlights flights[pageKey, []byte]
	statFlights flights[string, storage.Entry]
	checked     sync.Map // file id ([32]byte) → time.Time of the last source check

	bufs sync.Pool
	// pieceBufs hold copyPiece bytes: copyRun reads back what it copied.
	pieceBufs sync.Pool
	// copyMode, when not 0 (tests), makes every copyRun copy ahead (> 0)
	// or not (< 0).
	copyMode atomic.Int32
	stats    counters

	// writes counts applied index batches, synced those on disk at the
	// last sync; applying counts the batches being applied (see
	// allSynced). syncs counts the syncs begun, syncedTo is the highest
	// of them that ended (see WriteMark). syncStop ends the loop that
	// syncs them (syncDone once it has).
	writes, synced     atomic.Int64
	applying           atomic.Int64
	syncs, syncedTo    atomic.Uint64
	syncStop, syncDone chan struct{}
	syncStopOnce       sync.Once
}

type pageKey struct {
	fid [32]byte
	gen uint64
	idx int64
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Open opens (or creates) the store in opts.Dir.
func Open(opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Store{opts: opts, pageDir: filepath.Join(opts.Dir, "pages"), log: opts.Logger}
	if err := os.MkdirAll(s.pageDir, 0o755); err != nil {
		return nil, fmt.Errorf("page store: %w", err)
	}
	// Pebble's default 8 MiB block cache holds the index of a few thousand
	// files: beyond that every lookup decompressed a block again (a load
	// of 20,000 cached files spent ~60 µs per file in it).
	cache := pebble.NewCache(indexCacheSize)
	defer cache.Unref()
	popts := &pebble.Options{Logger: pebbleLogger{s.log}, Cache: cache}
	// Bloom filters let a lookup skip the tables that do not hold its key:
	// loads and evictions leave many small tables before compaction, and
	// without filters every lookup searched each of them.
	popts.Levels = make([]pebble.LevelOptions, 7)
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		popts.Levels[i].FilterType = pebble.TableFilter
	}
	db, err := pebble.Open(filepath.Join(opts.Dir, "index"), popts)
	if err != nil {
		return nil, fmt.Errorf("page store: open index in %s: %w", opts.Dir, err)
	}
	s.db = db
	ps := opts.PageSize
	s.bufs.New = func() any { b := make([]byte, ps); return &b }
	s.pieceBufs.New = func() any { b := make([]byte, copyPiece); return &b }
	if err := s.checkPageSize(); err != nil {
		_ = db.Close()
		return nil, err
	}
	live, err := s.loadCounters()
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	if s.segs, err = openSegments(filepath.Join(opts.Dir, "segments"), live); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("page store: segments: %w", err)
	}
	// Empty at every start, and made after the index may have been cleared
	// (checkPageSize): CachedComplete fills it from the index lazily.
	s.complete = newCompleteSet(opts.CompleteFiles)
	s.syncStop, s.syncDone = make(chan struct{}), make(chan struct{})
	go s.syncLoop()
	return s, nil
}

// syncLoop writes the index's log to disk every IndexSyncInterval when it
// was written to since: index writes are not synced one by one (a load
// commits a record per page), but a kill -9 must not lose more than the
// last interval's.
func (s *Store) syncLoop() {
	defer close(s.syncDone)
	t := time.NewTicker(IndexSyncInterval)
	defer t.Stop()
	for {
		select {
		case <-s.syncStop:
			return
		case <-t.C:
		}
		if s.writes.Load() == s.synced.Load() {
			continue
		}
		if err := s.syncIndex(); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("page store: sync of the index failed; retrying", "err", err)
		}
	}
}

// Close closes the index, its log synced. Operations after Close fail with
// ErrClosed.
func (s *Store) Close() error {
	s.syncStopOnce.Do(func() {
		close(s.syncStop)
		<-s.syncDone
		_ = s.syncIndex() // a clean close leaves every record on disk
	})
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.segs.close()
	return s.db.Close()
}

// PageSize is the store's page size.
func (s *Store) PageSize() int64 { return s.opts.PageSize }

// Stats returns the counters.
func (s *Store) Stats() Stats {
	return Stats{
		Capacity:          s.opts.Capacity,
		UsedBytes:         s.used.Load(),
		Pages:             s.pages.Load(),
		Hits:              s.stats.hits.Load(),
		Misses:            s.stats.misses.Load(),
		BytesServed:       s.stats.bytesServed.Load(),
		BytesFromStorage:  s.stats.bytesFromStorage.Load(),
		PagesStored:       s.stats.pagesStored.Load(),
		PagesEvicted:      s.stats.pagesEvicted.Load(),
		PagesCorrupt:      s.stats.pagesCorrupt.Load(),
		IndexWrites:       s.writes.Load(),
		IndexSyncedWrites: s.synced.Load(),
	}
}

var pageSizeKey = []byte("m/pagesize")

// checkPageSize clears the cache when it was written with another page size:
// its pages could not be addressed by index any more.
func (s *Store) checkPageSize() error {
	want := strconv.FormatInt(s.opts.PageSize, 10)
	v, ok, err := s.get(pageSizeKey)
	if err != nil {
		return err
	}
	if ok && string(v) == want {
		return nil
	}
	if ok {
		s.log.Warn("page size changed: clearing the cache", "dir", s.opts.Dir, "was", string(v), "now", want)
		if err := s.db.DeleteRange([]byte{0}, []byte{0xff}, pebble.Sync); err != nil {
			return fmt.Errorf("page store: clear index: %w", err)
		}
		for _, d := range []string{s.pageDir, filepath.Join(s.opts.Dir, "segments")} {
			if err := os.RemoveAll(d); err != nil {
				return fmt.Errorf("page store: clear pages: %w", err)
			}
		}
		if err := os.MkdirAll(s.pageDir, 0o755); err != nil {
			return fmt.Errorf("page store: %w", err)
		}
	}
	return s.db.Set(pageSizeKey, []byte(want), pebble.Sync)
}

// loadCounters rebuilds used bytes, the page count and the access sequence
// from the index, and returns the live bytes of each segment.
func (s *Store) loadCounters() (map[uint32]int64, error) {
	live := map[uint32]int64{}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'p'}, UpperBound: []byte{'p' + 1}})
	if err != nil {
		return nil, err
	}
	// The sequence numbers both the access order and file generations, so
	// it restarts above every number still in use.
	var used, n int64
	var seq uint64
	for it.First(); it.Valid(); it.Next() {
		rec, err := decodeRecord(it.Value())
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("page store: %w", err)
		}
		if rec.seg != 0 {
			live[rec.seg] += alignUp(int64(rec.len))
		}
		used += int64(rec.len)
		n++
		seq = max(seq, rec.seq, rec.gen)
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	it, err = s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{'f'}, UpperBound: []byte{'f' + 1}})
	if err != nil {
		return nil, err
	}
	for it.First(); it.Valid(); it.Next() {
		if m, err := decodeMeta(it.Value()); err == nil {
			seq = max(seq, m.Gen)
		}
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	s.used.Store(used)
	s.pages.Store(n)
	s.seq.Store(seq)
	return live, nil
}

// Keys.

func metaKey(fid [32]byte) []byte {
	k := make([]byte, 33)
	k[0] = 'f'
	copy(k[1:], fid[:])
	return k
}

func recordKey(fid [32]byte, idx int64) []byte {
	k := make([]byte, 41)
	k[0] = 'p'
	copy(k[1:], fid[:])
	binary.BigEndian.PutUint64(k[33:], uint64(idx))
	return k
}

func recordPrefix(fid [32]byte) (lower, upper []byte) {
	lower = make([]byte, 33)
	lower[0] = 'p'
	copy(lower[1:], fid[:])
	upper = append(append([]byte(nil), lower...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	return lower, upper
}

func accessKey(seq uint64) []byte {
	k := make([]byte, 9)
	k[0] = 'a'
	binary.BigEndian.PutUint64(k[1:], seq)
	return k
}

func accessValue(fid [32]byte, idx int64) []byte {
	v := make([]byte, 40)
	copy(v, fid[:])
	binary.BigEndian.PutUint64(v[32:], uint64(idx))
	return v
}

func uriKey(uri string) []byte { return append([]byte{'u'}, uri...) }

// Values.

// record is a page record: which generation the page belongs to, its length
// and checksum, its place in the access order, and where its bytes are: in
// the file's data file at the page's offset (seg 0), or at off in segment
// seg.
type record struct {
	gen     uint64
	len     uint32
	crc     uint32
	seq     uint64
	touched int64 // unix nanoseconds of the last access-order update
	seg     uint32
	off     int64
}

// Encoded sizes: a page in a data file, a page in a segment.
const (
	recordLen        = 32
	segmentRecordLen = recordLen + 12
)

func (r record) encode() []byte {
	n := recordLen
	if r.seg != 0 {
		n = segmentRecordLen
	}
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b[0:], r.gen)
	binary.BigEndian.PutUint32(b[8:], r.len)
	binary.BigEndian.PutUint32(b[12:], r.crc)
	binary.BigEndian.PutUint64(b[16:], r.seq)
	binary.BigEndian.PutUint64(b[24:], uint64(r.touched))
	if r.seg != 0 {
		binary.BigEndian.PutUint32(b[32:], r.seg)
		binary.BigEndian.PutUint64(b[36:], uint64(r.off))
	}
	return b
}

func decodeRecord(b []byte) (record, error) {
	if len(b) != recordLen && len(b) != segmentRecordLen {
		return record{}, fmt.Errorf("corrupt page record of %d bytes", len(b))
	}
	r := record{
		gen:     binary.BigEndian.Uint64(b[0:]),
		len:     binary.BigEndian.Uint32(b[8:]),
		crc:     binary.BigEndian.Uint32(b[12:]),
		seq:     binary.BigEndian.Uint64(b[16:]),
		touched: int64(binary.BigEndian.Uint64(b[24:])),
	}
	if len(b) == segmentRecordLen {
		r.seg = binary.BigEndian.Uint32(b[32:])
		r.off = int64(binary.BigEndian.Uint64(b[36:]))
		if r.seg == 0 {
			return record{}, errors.New("corrupt page record: segment 0")
		}
	}
	return r, nil
}

// meta is a file's metadata record.
type meta struct {
	URI         string `json:"uri"`
	Size        int64  `json:"size"`
	Version     string `json:"version"`
	ModTimeNs   int64  `json:"mtime,omitempty"`
	ContentHash string `json:"hash,omitempty"`
	Gen         uint64 `json:"gen"`
	Pages       int64  `json:"pages"`
	Bytes       int64  `json:"bytes"`
	Evicted     int64  `json:"evicted,omitempty"`
}

func (m meta) file(fid [32]byte, pageSize int64) File {
	f := File{
		URI: m.URI, ID: hex.EncodeToString(fid[:]), Size: m.Size, Version: m.Version,
		ContentHash: m.ContentHash, PageSize: pageSize, CachedPages: m.Pages, CachedBytes: m.Bytes,
		EvictedPages: m.Evicted, fid: fid, gen: m.Gen,
	}
	if m.ModTimeNs != 0 {
		f.ModTime = time.Unix(0, m.ModTimeNs)
	}
	return f
}

// Database access, guarded against Close.

func (s *Store) get(key []byte) ([]byte, bool, error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return nil, false, ErrClosed
	}
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("page store index: %w", err)
	}
	out := bytes.Clone(v)
	_ = closer.Close()
	return out, true, nil
}

func (s *Store) apply(b *pebble.Batch) error {
	s.life.RLock()
	defer s.life.RUnlock()
	defer func() { _ = b.Close() }()
	if s.closed {
		return ErrClosed
	}
	// Counted as applying before the write can be seen and as written
	// before it stops applying: see allSynced.
	s.applying.Add(1)
	defer s.applying.Add(-1)
	if err := s.db.Apply(b, pebble.NoSync); err != nil {
		return fmt.Errorf("page store index: %w", err)
	}
	s.writes.Add(1)
	return nil
}

// applyChange applies b, which changes or deletes fid's metadata or deletes
// page records of fid, forgetting that fid is complete before the change
// and keeping CachedComplete from remembering it again from a read that
// raced with the change. The caller holds fid's stripe.
func (s *Store) applyChange(b *pebble.Batch, fid [32]byte) error {
	s.complete.begin(fid)
	defer s.complete.end(fid)
	if s.duringChange != nil {
		s.duringChange()
	}
	return s.apply(b)
}

// scan calls fn for each key in [lower, upper) until fn returns false.
func (s *Store) scan(lower, upper []byte, fn func(k, v []byte) bool) error {
	return s.withIter(lower, upper, func(it *pebble.Iterator) error {
		for it.First(); it.Valid(); it.Next() {
			if !fn(it.Key(), it.Value()) {
				break
			}
		}
		return nil
	})
}

// seekEach positions one iterator over [lower, upper) at each of n keys in
// increasing order (key(i) for i < n) and calls found with the value of each
// key present. Seeking forward reuses the iterator's position, which is far
// cheaper than a Get per key.
func (s *Store) seekEach(lower, upper []byte, n int, key func(int) []byte, found func(int, []byte) error) error {
	return s.withIter(lower, upper, func(it *pebble.Iterator) error {
		for i := 0; i < n; i++ {
			k := key(i)
			if !it.SeekGE(k) {
				return nil // nothing at or after k: no later key is present either
			}
			if bytes.Equal(it.Key(), k) {
				if err := found(i, it.Value()); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// withIter calls fn with an iterator over [lower, upper), the database
// kept open meanwhile, and closes the iterator.
func (s *Store) withIter(lower, upper []byte, fn func(*pebble.Iterator) error) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return ErrClosed
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("page store index: %w", err)
	}
	err = fn(it)
	if cerr := it.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("page store index: %w", cerr)
	}
	return err
}

func (s *Store) newBatch() *pebble.Batch { return s.db.NewBatch() }

func (s *Store) getMeta(fid [32]byte) (meta, bool, error) {
	v, ok, err := s.get(metaKey(fid))
	if err != nil || !ok {
		return meta{}, false, err
	}
	m, err := decodeMeta(v)
	return m, err == nil, err
}

func setMeta(b *pebble.Batch, fid [32]byte, m meta) {
	_ = b.Set(metaKey(fid), m.encode(), nil)
}

// metaBinary starts file metadata in its binary form: the URI, version and
// content hash as length-prefixed bytes (names are bytes, stored as they
// are), the numbers as varints, in the order of the meta struct. Stores
// written before it hold JSON objects (first byte '{'), still read.
const metaBinary = 0x01

func (m meta) encode() []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(m.URI)+len(m.Version)+len(m.ContentHash)+6*binary.MaxVarintLen64)
	b = append(b, metaBinary)
	b = appendBytes(b, m.URI)
	b = binary.AppendVarint(b, m.Size)
	b = appendBytes(b, m.Version)
	b = binary.AppendVarint(b, m.ModTimeNs)
	b = appendBytes(b, m.ContentHash)
	b = binary.AppendUvarint(b, m.Gen)
	b = binary.AppendVarint(b, m.Pages)
	b = binary.AppendVarint(b, m.Bytes)
	b = binary.AppendVarint(b, m.Evicted)
	return b
}

func appendBytes(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

var errCorruptMeta = errors.New("page store: corrupt file metadata")

func decodeMeta(v []byte) (meta, error) {
	var m meta
	switch {
	case len(v) > 0 && v[0] == '{':
		if err := json.Unmarshal(v, &m); err != nil {
			return meta{}, fmt.Errorf("%w: %w", errCorruptMeta, err)
		}
		m.URI = bytesjson.Decode(m.URI) // the JSON form kept other bytes marked
		return m, nil
	case len(v) == 0 || v[0] != metaBinary:
		return meta{}, errCorruptMeta
	}
	d := metaDecoder{b: v[1:]}
	m.URI = d.str()
	m.Size = d.varint()
	m.Version = d.str()
	m.ModTimeNs = d.varint()
	m.ContentHash = d.str()
	m.Gen = d.uvarint()
	m.Pages = d.varint()
	m.Bytes = d.varint()
	m.Evicted = d.varint()
	if d.bad || len(d.b) != 0 {
		return meta{}, errCorruptMeta
	}
	return m, nil
}

// metaDecoder reads the binary form; a short or malformed value sets bad.
type metaDecoder struct {
	b   []byte
	bad bool
}

func (d *metaDecoder) uvarint() uint64 { return decodeNext(d, binary.Uvarint) }

func (d *metaDecoder) varint() int64 { return decodeNext(d, binary.Varint) }

// decodeNext reads one number with read (binary.Uvarint or binary.Varint).
func decodeNext[T uint64 | int64](d *metaDecoder, read func([]byte) (T, int)) T {
	x, n := read(d.b)
	if n <= 0 {
		d.bad, d.b = true, nil
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *metaDecoder) str() string {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad, d.b = true, nil
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (s *Store) getRecord(fid [32]byte, idx int64) (record, bool, error) {
	v, ok, err := s.get(recordKey(fid, idx))
	if err != nil || !ok {
		return record{}, false, err
	}
	r, err := decodeRecord(v)
	return r, err == nil, err
}

func beUint64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func (s *Store) stripe(fid [32]byte) *sync.Mutex { return &s.stripes[fid[0]] }

// Page files.

func (s *Store) fileDir(fid [32]byte) string {
	h := hex.EncodeToString(fid[:])
	return filepath.Join(s.pageDir, h[:2], h)
}

// dataPath is the file holding the pages of one generation of a file, each
// at its offset in the file (a sparse file: pages not cached are holes). One
// file per cached file, not per page: creating a file costs more than
// writing a page into an existing one.
func (s *Store) dataPath(fid [32]byte, gen uint64) string {
	return filepath.Join(s.fileDir(fid), strconv.FormatUint(gen, 10))
}

// openData opens a data file for writing (and reading: copyRun checksums
// what it wrote), creating it and its directory when needed.
func (s *Store) openData(path string) (*os.File, error) {
	fh, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		fh, err = os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	}
	return fh, err
}

// inSegments reports whether f's pages go to the shared segments (a file of
// one page at most) rather than a data file of its own.
func (s *Store) inSegments(f File) bool { return f.Size <= f.PageSize }

// freePage frees the disk space of page idx of fid, whose record (rec) is
// gone from the index.
func (s *Store) freePage(fid [32]byte, idx int64, rec record) {
	if rec.seg != 0 {
		s.segs.release(rec.seg, rec.off, int64(rec.len))
		return
	}
	s.punch(s.dataPath(fid, rec.gen), idx*s.opts.PageSize, int64(rec.len))
}

// punch frees the disk space of a dropped page (a no-op where the file
// system cannot; the space then returns when the file is removed).
func (s *Store) punch(path string, off, n int64) {
	fh, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return // already gone
	}
	if err := punchHole(fh, off, n); err != nil {
		s.log.Debug("page store: free page space", "path", path, "err", err)
	}
	_ = fh.Close()
}

func (s *Store) removeFiles(paths []string) {
	for _, p := range paths {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("page store: remove data file", "path", p, "err", err)
		}
	}
}

func (s *Store) getBuf() *[]byte  { return s.bufs.Get().(*[]byte) }
func (s *Store) putBuf(b *[]byte) { s.bufs.Put(b) }

// pebbleLogger sends Pebble's chatter to debug level.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "component", "pebble")
	panic("pebble: " + msg)
}
