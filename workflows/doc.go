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
// JobWorkflow (type FerryJob2) records decisions, not file lists. It splits
// the source into partitions (activity Partition), lists up to four of them
// at once a page at a time (ListPage: the activity writes the page, grouped
// by the node that owns each entry, to the manifest store and returns the
// groups), cuts each node's share into batches and runs them on the nodes'
// own task queues as references to manifest ranges, a sliding window of
// batchesPerNode per node. Batch results carry counts and a few failures;
// the nodes write the rest to the manifest store. Results fold into
// JobCarry, the state a run carries to the next one (continue-as-new, stop
// and resume); the progress query returns JobState, a view computed from it.
//
// Liveness comes from membership: while batches are out the workflow reads
// the ring every livenessEvery and re-plans the unfinished work of a node
// that left (PlanRange); a load also places again what a node that left had
// finished and what a node that joined now owns, and nothing else
// (replace.go). The run continues as new when Temporal suggests it or its
// history passes historySizeLimit or historyLengthLimit, carrying its queue
// by reference and handing its running batches over without a pause
// (handover.go). After the listing, a retry pass and verify passes read
// the manifests back; FinishJob writes the failure list and removes the
// job's working manifests. The run ends SUCCEEDED when no file failed
// permanently, else FAILED.
//
// The first engine (type FerryJob) is kept frozen in package legacy so that
// its running jobs finish after an upgrade.
package workflows
