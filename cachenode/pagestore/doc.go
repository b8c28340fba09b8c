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
//	<Dir>/pages/<id[:2]>/<id>/<gen>  the cached pages of generation gen of the
//	                                 file, each at its own offset (a sparse file)
//
// One data file per cached file rather than one per page: creating a file
// costs more than writing a page (on ext4, 1 MiB pages as separate files
// filled at a third of the speed). An evicted page's space is freed by
// punching a hole (Linux); a file's data files go when it is dropped or
// its version changes.
//
// Pebble holds, under one-byte key prefixes:
//
//	'f' id            file metadata: URI, size, source version, modification
//	                  time, content hash, generation, cached pages and bytes
//	'p' id n          page record: generation, length, CRC-32C, access sequence
//	'a' seq           access order: oldest first, the page it names
//	'u' URI           the id, so that a URI prefix can be evicted
//	'm' name          store settings (page size)
//
// The page records of a file are its cached-page bitmap: one key per page, so
// storing a page never rewrites a per-file value that grows with the file; the
// file metadata keeps the counts that IsCached and the HTTP API report.
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
//   - Restart: everything the cache holds is in Pebble and the data files;
//     Open rebuilds its counters from Pebble alone (no scan of the page
//     directory). Page bytes whose record was never committed (a crash between
//     the two writes) are overwritten by the next fill of that page or removed
//     with their data file.
//
// Loads (LoadFile) and reads (Resolve, ReadRange) share one fill path.
// Errors wrap the storage sentinels (storage.ErrNotFound, …), so a caller
// can tell final failures from retryable ones with storage.IsRetryable.
package pagestore
