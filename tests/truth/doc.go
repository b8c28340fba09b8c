// Package truth holds the acceptance tests of issue 12's "the job tells the
// truth" cases: counters that stay exact through a stop and resume at every
// stage, a stop that takes effect within seconds even when a batch is stuck
// in a read, and Temporal statuses and FerryJobState search attributes that
// say what `ferry job list` says. They drive the real job engine of package
// internal/enginetest (in-memory Temporal, the real coordinator and node
// workers) over local disk, with faults injected into the real read path.
package truth
