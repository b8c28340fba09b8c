// Package bandwidth tests a job's bandwidth limit end to end: Ferry as
// separate processes (Temporal, cache nodes, a coordinator, the REST API),
// copy jobs local → local and local → S3 (an in-process S3 server), on one
// and three nodes, one large file and many small ones. The job's rate is
// measured from the nodes' metric of bytes read from sources over a fixed
// window once the job runs, and must be within ±10 % of its limit; the same
// job without a limit must be at least three times faster.
//
// CI runs a subset of the combinations; FERRY_BANDWIDTH_FULL=1 runs all of
// them.
package bandwidth
