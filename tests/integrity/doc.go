// Package integrity holds the acceptance tests of issue 11: every entry a
// listing finds ends transferred, skipped with a stated reason, or failed
// with a reason, and a move never deletes a source it has not faithfully
// copied. The tests drive the real job engine of package
// internal/enginetest (in-memory Temporal, the real coordinator and node
// workers, the real CopyBatch and LoadBatch) over local disk and the
// in-process S3 server, and check exact counters and the bytes at both ends.
package integrity
