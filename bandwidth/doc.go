// Package bandwidth enforces a job's bandwidth limit across the whole job:
// every batch of the job, on every cache node, takes its bytes from one
// budget.
//
// The budget of a job is kept by its authority: the cache node that owns
// the key AuthorityKey(jobID) on the placement ring (every node computes
// the same one). The authority grants small leases of bytes (about 50 ms
// worth of the limit) over the nodes' authenticated gRPC service; a node
// shares one lease holder per job among all its batches. The authority
// schedules leases like a token bucket with a 100 ms burst (a generic cell
// rate algorithm): over any window the bytes it grants are at most
// limit × window + 100 ms worth, and as long as the batches ask, it grants
// that much, so the job runs at its limit when storage allows. A lease not
// used within 100 ms of its grant is dropped, so a node that stops asking
// does not carry old bytes into a burst later.
//
// While a node cannot reach the authority it paces the job's batches on
// its own at limit / (nodes in its view of the ring), so that nodes that
// all lose the authority together stay within the limit; it asks the
// authority again a second later.
//
// A job's limit may change while it runs (the job workflow's bandwidth
// update): the authority reads it from the workflow every RefreshEvery
// (Authority.Refresh) and hands it to the nodes with their leases.
//
// What the limit covers: the bytes read from the source storage system
// (file content; listings, metadata and writes to the destination are not
// counted), per job.
package bandwidth
