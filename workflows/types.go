package workflows

import (
	"time"

	"github.com/ferryio/ferry/filter"
)

// Names shared by the workflows, the workers and the clients. They are part
// of Ferry's public surface: a Go program can stop a job with
// client.SignalWorkflow(ctx, JobWorkflowID(...), "", SignalStop, nil) and
// read its state with client.QueryWorkflow(ctx, id, "", QueryProgress).
const (
	// CoordinatorTaskQueue runs job workflows and the listing/planning
	// activities.
	CoordinatorTaskQueue = "ferry-coordinator"
	// JobWorkflowName is the registered name of JobWorkflow. The "2" marks
	// the cut-over from the first engine (package legacy, "FerryJob"),
	// whose histories carry file lists: see README "Jobs and Temporal".
	JobWorkflowName = "FerryJob2"
	// SignalStop asks a job to stop: no new batch is dispatched, batches
	// in flight are cancelled and their progress counted, the rest is kept
	// for the resume, and the run ends STOPPED (Temporal status Canceled).
	// Temporal's cancellation request does the same.
	SignalStop = "stop"
	// QueryProgress returns the job's JobState, its progress view.
	QueryProgress = "progress"
)

// Search attributes set on every job run (registered by temporal-dev; a
// production namespace needs them added once, see README).
const (
	SearchAttrJobType  = "FerryJobType"
	SearchAttrJobPath  = "FerryJobPath"
	SearchAttrJobState = "FerryJobState"
	SearchAttrPolicy   = "FerryPolicy"
	// SearchAttrJobProgress is the job's progress line (ProgressLine),
	// kept current every progressEvery while it runs, for a column of the
	// UI's workflow list.
	SearchAttrJobProgress = "FerryJobProgress"
)

// JobType is load, copy or move.
type JobType string

// The job types.
const (
	JobLoad JobType = "load"
	JobCopy JobType = "copy"
	JobMove JobType = "move"
)

// Valid reports whether t is a known job type.
func (t JobType) Valid() bool { return t == JobLoad || t == JobCopy || t == JobMove }

// JobStatus is the state users see (spec/jobs.md §1).
type JobStatus string

// The job statuses.
const (
	StatusRunning   JobStatus = "RUNNING"
	StatusVerifying JobStatus = "VERIFYING"
	StatusStopped   JobStatus = "STOPPED"
	StatusSucceeded JobStatus = "SUCCEEDED"
	StatusFailed    JobStatus = "FAILED"
	// StatusTerminated is a job whose run was terminated in Temporal (by
	// hand, outside Ferry): its progress shows the last counters the run
	// recorded. A new submit starts the job afresh.
	StatusTerminated JobStatus = "TERMINATED"
)

// Active reports whether a run in this status is still going.
func (s JobStatus) Active() bool { return s == StatusRunning || s == StatusVerifying }

// Stage is what a running job is doing (shown with --verbose).
type Stage string

// The stages of a running job.
const (
	StageListing   Stage = "LISTING"
	StageLoading   Stage = "LOADING"
	StageCopying   Stage = "COPYING"
	StageMoving    Stage = "MOVING"
	StageRetrying  Stage = "RETRYING"
	StageVerifying Stage = "VERIFYING"
)

// Options are a job's settings (spec/jobs.md §2). The zero value of each
// field is its default, except BatchSize and Replicas, which
// Options.WithDefaults fills in.
type Options struct {
	// IndexFile is a file listing URIs, one per line, processed instead of
	// listing Path.
	IndexFile string `json:"indexFile,omitempty"`
	// PartialListing starts work without counting totals first.
	PartialListing bool `json:"partialListing,omitempty"`
	// BatchSize is the number of entries per listing page and per batch.
	BatchSize int `json:"batchSize,omitempty"`
	// Bandwidth limits the whole job to this many bytes per second; 0 is
	// unlimited.
	Bandwidth int64 `json:"bandwidth,omitempty"`
	// Verify re-lists after the pass and processes whatever is missing,
	// until a pass finds nothing (bounded).
	Verify bool `json:"verify,omitempty"`
	// MetadataOnly caches file metadata only (load).
	MetadataOnly bool `json:"loadMetadataOnly,omitempty"`
	// SkipIfExists skips files fully cached for the current source version
	// (load).
	SkipIfExists bool `json:"skipIfExists,omitempty"`
	// Replicas is the number of distinct cache nodes holding each file (load).
	Replicas int `json:"replicas,omitempty"`
	// FileFilterRegx keeps only entries whose base name fully matches.
	FileFilterRegx string `json:"fileFilterRegx,omitempty"`
	// CheckContent compares length and content hash of each copied file.
	CheckContent bool `json:"checkContent,omitempty"`
	// Overwrite replaces existing destination files (copy, move).
	Overwrite bool `json:"overwrite,omitempty"`
	// DryRun lists and plans, reports what would be done, changes nothing.
	DryRun bool `json:"dryRun,omitempty"`
	// FailureCountThreshold ends the job FAILED once this many files failed
	// permanently; 0 is off.
	FailureCountThreshold int64 `json:"failureCountThreshold,omitempty"`
	// FailureRatioThreshold ends the job FAILED once this fraction (0..1) of
	// processed files failed permanently; 0 is off.
	FailureRatioThreshold float64 `json:"failureRatioThreshold,omitempty"`
	// Filter narrows the listing (policies and the --older-than … flags).
	Filter Filter `json:"filter,omitzero"`
	// Policy names the policy that started this run, if any.
	Policy string `json:"policy,omitempty"`
	// TestContinueAsNewAfter makes the workflow continue as new after this
	// many batches. Tests use it to record histories with a continue-as-new;
	// it is not a user option.
	TestContinueAsNewAfter int `json:"testContinueAsNewAfter,omitempty"`
}

// Filter selects entries while listing, so a run never materialises the
// tree: the rules of package filter, carried in the options. Times are
// measured against ReferenceTime, fixed when the run is submitted, so every
// page of one run uses the same cut-off.
type Filter = filter.Rules

// Defaults.
const (
	DefaultBatchSize = 200
	MaxBatchSize     = 10_000
	// RecentFailuresKept is how many failures with reasons the state keeps.
	RecentFailuresKept = 1000
	// MaxVerifyPasses bounds the verify loop.
	MaxVerifyPasses = 3
)

// WithDefaults returns o with unset fields defaulted for job type t.
func (o Options) WithDefaults(t JobType) Options {
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	return o
}

// FileEntry is one file to process: what the listing saw.
type FileEntry struct {
	URI string `json:"u"`
	// RelPath is the path relative to the job's source ("" for a single-file
	// source); copy and move map it onto the destination.
	RelPath string `json:"r,omitempty"`
	Size    int64  `json:"s"`
	Version string `json:"v,omitempty"`
	// Irregular says what the entry is when it is neither a regular file
	// nor a directory (a named pipe, a dangling symbolic link…): batches
	// count it as skipped and never open it.
	Irregular string `json:"x,omitempty"`
}

// SkipCount is how many entries were skipped for one stated reason
// ("already at the destination", "not a regular file: named pipe"…).
type SkipCount struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// SkippedEntry is an entry skipped because it is not a regular file, with
// what it is: listed, never opened, reported like a failure.
type SkippedEntry struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// RecentSkippedKept is how many skipped entries (not regular files) a job
// keeps for its report; MaxResultSkipped how many a batch result carries.
const (
	RecentSkippedKept = 1000
	MaxResultSkipped  = 100
)

// AddSkips adds the counts of add to those of into, reason by reason, in
// order of first appearance (deterministic: no map).
func AddSkips(into, add []SkipCount) []SkipCount {
	for _, a := range add {
		found := false
		for i := range into {
			if into[i].Reason == a.Reason {
				into[i].Count += a.Count
				found = true
				break
			}
		}
		if !found {
			into = append(into, a)
		}
	}
	return into
}

// AddSkipped appends add to into, keeping the last max entries.
func AddSkipped(into, add []SkippedEntry, max int) []SkippedEntry {
	into = append(into, add...)
	if n := len(into) - max; n > 0 {
		into = append([]SkippedEntry(nil), into[n:]...)
	}
	return into
}

// Failure is one file that failed, with why.
type Failure struct {
	Path string `json:"path"`
	// Reason is a stable code: NOT_FOUND, PERMISSION_DENIED, ALREADY_EXISTS,
	// INVALID_PATH, UNAVAILABLE, CHECKSUM_MISMATCH, INTERNAL.
	Reason    string `json:"reason"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
}

// JobInput starts a run of JobWorkflow.
type JobInput struct {
	Type    JobType `json:"type"`
	Path    string  `json:"path"`
	Dst     string  `json:"dst,omitempty"`
	Options Options `json:"options"`
	// Carry is what the previous run handed over (continue-as-new).
	Carry *JobCarry `json:"carry,omitempty"`
	// Resume is the result of a STOPPED run, given by a submit that resumes
	// it; its Carry holds the work to continue.
	Resume *JobState `json:"resume,omitempty"`
}

// Counters are a job's exact counts. Qualified = listed entries that passed
// the filters; when the job has ended, Qualified == Succeeded + Skipped +
// Failed.
type Counters struct {
	Qualified     int64 `json:"qualified"`
	QualifiedSize int64 `json:"qualifiedSize"`
	Succeeded     int64 `json:"succeeded"`
	Skipped       int64 `json:"skipped"`
	Failed        int64 `json:"failed"`
	// BytesDone is bytes loaded, copied or moved; BytesSkipped bytes of
	// skipped files.
	BytesDone    int64 `json:"bytesDone"`
	BytesSkipped int64 `json:"bytesSkipped"`
	// PagesListed counts listing pages; TotalFiles and TotalBytes are the
	// count-only scan's totals, known when TotalsKnown.
	PagesListed int64 `json:"pagesListed,omitempty"`
	TotalsKnown bool  `json:"totalsKnown,omitempty"`
	TotalFiles  int64 `json:"totalFiles,omitempty"`
	TotalBytes  int64 `json:"totalBytes,omitempty"`
	// VerifyLoadedFiles and VerifyLoadedBytes are what verify passes found
	// missing and loaded again.
	VerifyLoadedFiles int64 `json:"verifyLoadedFiles,omitempty"`
	VerifyLoadedBytes int64 `json:"verifyLoadedBytes,omitempty"`
	// VerifyFailed counts files a verify pass found not as the job left
	// them and could not restore (evicted before the job ended: the
	// working set does not fit the cache). They make the job FAILED; the
	// main counters still count each file once.
	VerifyFailed int64 `json:"verifyFailed,omitempty"`
}

// JobCarry is what a job carries from one run to the next (continue-as-new,
// stop and resume): its identity, counters and the references to its
// unfinished work. It never holds file lists: those live in the manifest
// store (package manifest) and Queue, Partitions and Unplanned only name
// them. Everything a run needs to go on is here; nothing else survives.
type JobCarry struct {
	JobID   string  `json:"jobId"`
	Type    JobType `json:"type"`
	Path    string  `json:"path"`
	Dst     string  `json:"dst,omitempty"`
	Options Options `json:"options"`
	// BandwidthVersion counts the changes of Options.Bandwidth made while
	// the job ran (UpdateBandwidth).
	BandwidthVersion int64 `json:"bandwidthVersion,omitempty"`
	Stage            Stage `json:"stage"`

	SubmitTime    time.Time     `json:"submitTime"`
	RunStartTime  time.Time     `json:"runStartTime"`
	ElapsedBefore time.Duration `json:"elapsedBefore,omitempty"`

	Counters Counters `json:"counters"`
	// RecentFailures are the latest RecentFailuresKept permanent failures.
	RecentFailures []Failure `json:"recentFailures,omitempty"`
	// SkipReasons count the skipped entries by reason; SkippedEntries are
	// the latest RecentSkippedKept entries skipped as not regular files.
	SkipReasons    []SkipCount    `json:"skipReasons,omitempty"`
	SkippedEntries []SkippedEntry `json:"skippedEntries,omitempty"`
	// Retries counts entries set aside for the retry pass (in the
	// manifest store's retry objects).
	Retries int64 `json:"retries,omitempty"`

	// Partitions are the listing's partitions, each with its own cursor;
	// nil until the source has been partitioned.
	Partitions []Partition `json:"partitions,omitempty"`
	// PassPartitioned is set once Partitions describe the current pass.
	PassPartitioned bool `json:"passPartitioned,omitempty"`
	// Queue is planned work not yet dispatched; Unplanned work waiting for
	// the ring (no node was live when it was listed or re-planned).
	Queue     []BatchRef  `json:"queue,omitempty"`
	Unplanned []PlanRange `json:"unplanned,omitempty"`
	// Running are batches running as child workflows, handed over by the
	// previous run at continue-as-new; their outcomes arrive as signals.
	Running []RunningBatch `json:"running,omitempty"`
	// Placed are the ranges of a load's manifests finished on each node
	// (merged), so that a node that leaves has only its own files placed
	// again; PlacedMode says whether this job tracks them (see replace.go).
	Placed     []PlacedRange `json:"placed,omitempty"`
	PlacedMode int           `json:"placedMode,omitempty"`
	// Seq numbers the plan objects of the job, so their keys never repeat.
	Seq int64 `json:"seq,omitempty"`
	// Count is the count-only scan's progress.
	Count CountProgress `json:"count,omitzero"`

	// Pass is the pass the job is in: PassMain, PassRetry or PassVerify;
	// VerifyPass counts verify passes, VerifyFound what the current one found.
	Pass        string `json:"pass,omitempty"`
	VerifyPass  int    `json:"verifyPass,omitempty"`
	VerifyFound int64  `json:"verifyFound,omitempty"`
	// Nodes are the cache nodes last seen; NodesChanged records that the
	// ring changed while a load ran, so that a verify pass puts files on
	// their new owners.
	Nodes        []string `json:"nodes,omitempty"`
	LostNodes    []string `json:"lostNodes,omitempty"`
	NodesChanged bool     `json:"nodesChanged,omitempty"`
	// NodesAsOf is when the view of Nodes was current, in Unix
	// nanoseconds of the registry's clock (0: not known).
	NodesAsOf int64 `json:"nodesAsOf,omitempty"`
	// Rings are the rings (sorted node IDs) the load's batches were planned
	// on, each once; BatchRef.Ring points into it (see replace.go).
	Rings [][]string `json:"rings,omitempty"`
	// Warnings are errors that did not change what happened to the files
	// but that the report must show (a failure list that could not be
	// written, directories a move could not remove).
	Warnings []string `json:"warnings,omitempty"`
	Runs     int      `json:"runs"`
}

// Passes of a job.
const (
	PassMain   = ""
	PassRetry  = "retry"
	PassVerify = "verify"
)

// CountProgress is the count-only scan's cursor and sums so far.
type CountProgress struct {
	Cursor string `json:"cursor,omitempty"`
	Files  int64  `json:"files,omitempty"`
	Bytes  int64  `json:"bytes,omitempty"`
	Done   bool   `json:"done,omitempty"`
}

// JobState is a job's progress view: what the progress query returns and
// what a run returns when it ends. The REST API and the CLI render it.
// It is computed from the carried state; it is never carried itself.
type JobState struct {
	// JobID is the UUID of the job: the run ID of its first run, kept
	// across continue-as-new and across a resume after STOPPED.
	JobID   string  `json:"jobId"`
	Type    JobType `json:"type"`
	Path    string  `json:"path"`
	Dst     string  `json:"dst,omitempty"`
	Options Options `json:"options"`

	Status JobStatus `json:"status"`
	// Reason explains FAILED or STOPPED ("Job partially failed.").
	Reason string `json:"reason,omitempty"`
	Stage  Stage  `json:"stage"`

	// SubmitTime is when the job was first submitted; RunStartTime when the
	// current run (after a resume) started; EndTime when it ended.
	SubmitTime   time.Time `json:"submitTime"`
	RunStartTime time.Time `json:"runStartTime"`
	EndTime      time.Time `json:"endTime,omitempty"`
	// ElapsedBefore is the running time of earlier runs (before a stop).
	ElapsedBefore time.Duration `json:"elapsedBefore,omitempty"`

	// Listing progress.
	ListingDone bool  `json:"listingDone,omitempty"`
	PagesListed int64 `json:"pagesListed,omitempty"`
	Partitions  int   `json:"partitions,omitempty"`
	// Totals from the count-only scan; TotalsKnown is false with
	// partialListing or until the scan ends.
	TotalsKnown bool  `json:"totalsKnown,omitempty"`
	TotalFiles  int64 `json:"totalFiles,omitempty"`
	TotalBytes  int64 `json:"totalBytes,omitempty"`

	// Counters (see Counters).
	Qualified     int64 `json:"qualified"`
	QualifiedSize int64 `json:"qualifiedSize"`
	Succeeded     int64 `json:"succeeded"`
	Skipped       int64 `json:"skipped"`
	Failed        int64 `json:"failed"`
	BytesDone     int64 `json:"bytesDone"`
	BytesSkipped  int64 `json:"bytesSkipped"`

	// RecentFailures are the latest RecentFailuresKept permanent failures.
	RecentFailures []Failure `json:"recentFailures,omitempty"`
	// SkipReasons count the skipped entries by reason (Skipped is their
	// sum); SkippedEntries are the latest entries skipped as not regular
	// files (pipes, sockets, devices, links not followed).
	SkipReasons    []SkipCount    `json:"skipReasons,omitempty"`
	SkippedEntries []SkippedEntry `json:"skippedEntries,omitempty"`
	// FailuresLocation is where the full list of failed files is saved
	// (in the manifest store), once the job has ended.
	FailuresLocation string `json:"failuresLocation,omitempty"`
	// InFlight is the number of batches running; Queued the planned ones
	// waiting for a slot.
	InFlight int `json:"inFlight,omitempty"`
	Queued   int `json:"queued,omitempty"`
	// InFlightFiles and InFlightBytes are what the batches running now
	// have finished and read so far (their last heartbeats), not yet in the
	// counters above: the client adds them (jobs.Service.Progress) from
	// Temporal's pending activities, and reports show BytesDone +
	// InFlightBytes while the job runs. Zero once it has ended.
	InFlightFiles int64 `json:"inFlightFiles,omitempty"`
	InFlightBytes int64 `json:"inFlightBytes,omitempty"`

	// VerifyPass counts verify passes done; VerifyLoadedFiles and
	// VerifyLoadedBytes what they found missing and loaded again.
	VerifyPass        int   `json:"verifyPass,omitempty"`
	VerifyLoadedFiles int64 `json:"verifyLoadedFiles,omitempty"`
	VerifyLoadedBytes int64 `json:"verifyLoadedBytes,omitempty"`
	// VerifyFailed is Counters.VerifyFailed.
	VerifyFailed int64 `json:"verifyFailed,omitempty"`
	// Nodes are the cache nodes of the ring last seen; LostNodes those that
	// left it while the job runs (cleared when a verify pass has put their
	// files on the new owners).
	Nodes     []string `json:"nodes,omitempty"`
	LostNodes []string `json:"lostNodes,omitempty"`
	// Warnings are errors the job met that did not change its files'
	// outcomes but deserve attention.
	Warnings []string `json:"warnings,omitempty"`
	// Runs counts the workflow runs this job took (continue-as-new, resume).
	Runs int `json:"runs"`
	// Carry is set on the result of a STOPPED run: what a resume continues
	// from. The progress query leaves it out.
	Carry *JobCarry `json:"carry,omitempty"`
}

// Processed is the number of files finished, whatever the outcome.
func (s *JobState) Processed() int64 { return s.Succeeded + s.Skipped + s.Failed }
