// Package workflows holds Ferry's deterministic workflow code: the job
// workflow that runs load, copy and move jobs, and the types that cross the
// workflow boundary (inputs, state, names of signals and queries).
//
// Everything here must replay identically from history, so this package does
// no I/O and never reads the clock, the environment or a random source except
// through the workflow API; it does not import storage SDKs, os, net/http or
// math/rand, starts no goroutines and never ranges over a map without sorting.
// TestDeterministicImports enforces the imports.
//
// # The job workflow
//
// A job lists its source in pages (an activity returning entries and a
// cursor), groups each page by the cache node that owns every entry (an
// activity that reads the placement ring, so the grouping is recorded in
// history), and runs one batch activity per node on that node's own task
// queue, keeping a sliding window of batches in flight. Results fold into
// JobState, which the progress query returns. When Temporal suggests it, the
// workflow stops dispatching, lets in-flight batches finish, and continues as
// new carrying the state — listed-but-unfinished entries included — so no page
// is listed twice and no finished batch is redone. A batch whose node died
// (its heartbeat or schedule-to-start timeout fires) is re-planned onto the
// current ring, skipping the files its last heartbeat reported done. After the
// listing, retryable failures are tried once more; a verify pass may follow.
// The run ends SUCCEEDED when no file failed permanently, else FAILED.
package workflows
