// Package storage is Ferry's under-file-system layer: one small interface,
// Store, that every storage system (local disk, S3, GCS, HDFS) implements, the
// typed errors they return, and a Resolver that picks the Store for a URI.
//
// Data is named by full URIs: file:///data/x, s3://bucket/key,
// gs://bucket/key, hdfs://namenode:8020/path. The string is used as given:
// no percent-decoding, so names with spaces, '+', '%' or unicode are stored
// under exactly those bytes, and the URI string doubles as the cache key.
//
// The contract, which the conformance suite in storage/storagetest checks for
// every backend:
//
//   - List walks a directory in pages. A recursive listing returns files only,
//     in byte order of their path relative to the listed directory (the order
//     of object-store keys); a flat listing returns the immediate children,
//     directories included. Each page carries a cursor; passing it back resumes
//     strictly after the last entry returned, in a later process if need be.
//   - Open reads a byte range. Reading at offset == size yields no bytes;
//     offset beyond the size is ErrOutOfRange.
//   - Create returns a Writer whose bytes become visible under the final name
//     only at Commit, all at once. Abort, or a crash before Commit, leaves
//     nothing under the final name. Without Overwrite, Commit fails with
//     ErrExists when the name is taken.
//   - Errors wrap one of the sentinels below so callers decide by behaviour:
//     ErrNotFound, ErrPermission, ErrExists and ErrInvalidPath are final;
//     ErrUnavailable (throttling, timeouts) is worth retrying.
//
// Optional capabilities are small extra interfaces checked with a type
// assertion: Copier (server-side copy within one store).
package storage
