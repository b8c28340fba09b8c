// Package pagestore is a cache node's page store: files from any storage
// system cached as fixed-size pages on local disk, indexed in Pebble.
//
// # Layout
//
// A file is named by its full URI and identified by the SHA-256 of that
// string (the "file id" of the HTTP API). Page n of a file holds bytes
// [n·PageSize, (n+1)·PageSize); the last page is short. On disk:
//
//	<Dir>/index/                     Pebble: the index, file metadata, access order
//	<Dir>/segments/<n>.seg           pages of small files (one page at most),
//	                                 appended one after the other
//	<Dir>/pages/<id[:2]>/<id>/<gen>  the cached pages of generation gen of a
//	                                 larger file, each at its own offset (a
//	                                 sparse file)
//
// A small file pays no file-system metadata of its own: its page is appended
// to the active segment (a shared, append-only file, 256 MiB at most, then
// the next one), and its page record says where. Creating a file and its
// directory per cached file cost more than writing a 16 KiB page (~38 % of a
// small-file load went there). A larger file gets one data file rather than
// one per page: writing a page into an existing file costs less than
// creating one (on ext4, 1 MiB pages as separate files filled at a third of
// the speed). An evicted page's space is freed by punching a hole (Linux),
// in its segment or its data file; a segment none of whose pages is left is
// removed, and a file's data files go when it is dropped or its version
// changes. Segments are never written in place: after a restart appends go
// to a new segment, so a page that a record names is never overwritten.
//
// A larger file read from a local source (a stream that is a section of a
// local file) is loaded without reading it into this process on the way
// in: the kernel copies each page into the data file (copy_file_range), and
// the page's CRC-32C is computed from what landed, read back 128 KiB at a
// time into a buffer that stays in the CPU's caches. A large load is
// limited by passes over memory: this makes one where reading,
// checksumming and writing a 1 MiB buffer made three. While few loads of
// the process copy at once, a goroutine copies a page or two ahead of the
// checksum, so that a lone load keeps two CPUs busy; with more, each load
// copies 128 KiB and reads it back at once on one CPU, where it is still
// cached (a page handed to another CPU is read from memory again).
//
// Pebble holds, under one-byte key prefixes:
//
//	'f' id            file metadata: URI, size, source version, modification
//	                  time, content hash, generation, cached pages and bytes
//	'p' id n          page record: generation, length, CRC-32C, access
//	                  sequence, and for a small file its segment and offset
//	'a' seq           access order: oldest first, the page it names
//	'u' URI           the id, so that a URI prefix can be evicted
//	'm' name          store settings (page size)
//
// The page records of a file are its cached-page bitmap: one key per page, so
// storing a page never rewrites a per-file value that grows with the file; the
// file metadata keeps the counts that IsCached and the HTTP API report.
//
// In memory, the store also remembers which files are cached complete, at
// which size and version (up to Options.CompleteFiles of them, empty at
// each start): CachedComplete, which a reload asks for hundreds of files
// at once, answers those without the index (a lookup of a file's metadata
// costs microseconds: the keys of one call are scattered over the whole
// index). A file is remembered when a load commits its last page or
// CachedComplete finds it complete in the index, and forgotten before any
// change of its metadata or deletion of one of its pages is applied; a
// CachedComplete whose index read may have raced such a change does not
// remember what it read.
//
// # Guarantees
//
//   - Integrity: every page has a CRC-32C in its record and is checked on
//     every read. A page that fails the check, is short or is missing is
//     dropped and read again from the source; it is never served.
//   - Versions: cached pages belong to one source version (ETag, generation,
//     or size and mtime). Resolve asks the source for its version (on every
//     read by default, see Options.RevalidateAfter); when it differs, the old
//     pages are dropped before anything is served. A version change starts a
//     new generation, and data files carry the generation in their names, so
//     a fill of the old version still in flight can never overwrite a page of
//     the new one; it is discarded when it tries to commit.
//   - Read-through: a read of missing pages fetches exactly those pages from
//     the source, stores them and serves them. Concurrent readers of one
//     missing page fetch it once.
//   - Capacity: page bytes never exceed Options.Capacity. Space is reserved
//     before a page is written; least recently used pages are evicted to make
//     room. Access order is kept with a resolution of one second per page, so
//     a hot page costs one index write per second, not one per read.
//   - Restart: everything the cache holds is in Pebble, the segments and the
//     data files; Open rebuilds its counters from Pebble alone (no scan of
//     the page directory). Page bytes are written before their record is
//     committed, so a crash (kill -9) between the two leaves bytes no record
//     names: in a data file they are overwritten by the next fill of that
//     page or removed with the file; in a segment they are dead space,
//     removed with the segment. A record never names bytes that were not
//     completely written, and every read checks the CRC-32C anyway.
//   - Reports: index writes are synced every IndexSyncInterval, not one
//     by one, so a kill -9 loses the records of the last interval. Nothing
//     that tells another process a file is cached runs ahead of that: a
//     caller that reports loads takes a WriteMark after them and waits
//     for Durable (or SyncTo) before it reports (a batch's heartbeat and
//     result), and CachedComplete syncs before it answers that a file is
//     cached while writes it may have seen are not on disk.
//   - Loads: a file already fully cached at the version the listing gives
//     (or, without one, the version one Stat reports) is not read again
//     (AlreadyCached); only missing pages are ever fetched. A load leaves
//     the whole file cached or fails: a file larger than the capacity fails
//     at once (ErrTooLarge), one whose pages were evicted before its load
//     ended fails with what stayed (ErrEvicted); evictions are counted per
//     file, so a later check (LoadOptions.FailIfEvicted) tells a file that
//     was cached and lost from one never loaded here.
//   - Drops: a dropped or evicted-by-prefix file's space is freed only
//     after its index deletion is synced, so a kill -9 cannot bring back
//     records that name freed bytes.
//
// Loads (LoadFile) and reads (Resolve, ReadRange) share one fill path.
// Errors wrap the storage sentinels (storage.ErrNotFound, …), so a caller
// can tell final failures from retryable ones with storage.IsRetryable.
package pagestore
