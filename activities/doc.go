// Package activities holds everything with I/O that Ferry's job workflow asks
// for. Activities are methods on structs that hold their dependencies:
//
//   - Coordinator (task queue ferry-coordinator): list a page of a job's
//     source and group it by owning cache node, count a source for totals,
//     re-plan entries on the current ring, save failure lists.
//   - Node (each cache node's own task queue): load a batch of files into
//     that node's cache.
//
// Errors are classified once, here, by behaviour: storage not-found,
// permission and invalid-path errors become non-retryable Temporal
// application errors with a stable type (workflows.ErrType*), everything else
// is retryable. Per-file failures inside a batch are not activity errors:
// they come back in the batch result with a reason, so one bad file never
// fails its batch.
//
// Long activities heartbeat resumable progress (a listing cursor, the number
// of batch entries done with their outcomes) and, when retried, continue from
// the last heartbeat.
package activities
