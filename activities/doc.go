// Package activities holds everything with I/O that Ferry's job workflow asks
// for. Activities are methods on structs that hold their dependencies:
//
//   - Coordinator (task queue ferry-coordinator): partition a job's source,
//     list a page of a partition into the manifest store grouped by owning
//     cache node, re-plan a manifest range on the current ring, read
//     membership, count a source for totals, record failures a node could
//     not, write a job's failure list and remove its manifests.
//   - Node (each cache node's own task queue): load, copy or move a batch of
//     files, read by reference from the manifest store, writing its
//     failures and its entries to retry back to it.
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
