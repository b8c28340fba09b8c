package workflows

import (
	"time"
)

// Names shared by the workflows, the workers and the clients. They are part
// of Ferry's public surface: a Go program can stop a job with
// client.SignalWorkflow(ctx, JobWorkflowID(...), "", SignalStop, nil) and
// read its state with client.QueryWorkflow(ctx, id, "", QueryProgress).
const (
	// CoordinatorTaskQueue runs job workflows and the listing/planning
	// activities.
	CoordinatorTaskQueue = "ferry-coordinator"
	// JobWorkflowName is the registered name of JobWorkflow.
	JobWorkflowName = "FerryJob"
	// SignalStop asks a job to stop: no new batch is dispatched, batches
	// already on a node finish and are counted, the run ends STOPPED.
	SignalStop = "stop"
	// QueryProgress returns the job's JobState.
	QueryProgress = "progress"
)

// Search attributes set on every job run (registered by temporal-dev; a
// production namespace needs them added once, see README).
const (
	SearchAttrJobType  = "FerryJobType"
	SearchAttrJobPath  = "FerryJobPath"
	SearchAttrJobState = "FerryJobState"
	SearchAttrPolicy   = "FerryPolicy"
)

// JobType is load, copy or move.
type JobType string

const (
	JobLoad JobType = "load"
	JobCopy JobType = "copy"
	JobMove JobType = "move"
)

// Valid reports whether t is a known job type.
func (t JobType) Valid() bool { return t == JobLoad || t == JobCopy || t == JobMove }

// JobStatus is the state users see (spec/jobs.md §1).
type JobStatus string

const (
	StatusRunning   JobStatus = "RUNNING"
	StatusVerifying JobStatus = "VERIFYING"
	StatusStopped   JobStatus = "STOPPED"
	StatusSucceeded JobStatus = "SUCCEEDED"
	StatusFailed    JobStatus = "FAILED"
)

// Active reports whether a run in this status is still going.
func (s JobStatus) Active() bool { return s == StatusRunning || s == StatusVerifying }

// Stage is what a running job is doing (shown with --verbose).
type Stage string

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
// tree. Times are measured against ReferenceTime, fixed when the run is
// submitted, so every page of one run uses the same cut-off.
type Filter struct {
	// Include and Exclude are globs on the path relative to the source
	// ("**" matches any number of segments).
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
	// OlderThan keeps files modified at least this long before
	// ReferenceTime; NewerThan at most this long before it. 0 is off.
	OlderThan time.Duration `json:"olderThan,omitempty"`
	NewerThan time.Duration `json:"newerThan,omitempty"`
	// MinSize and MaxSize bound the file size in bytes; 0 is off.
	MinSize int64 `json:"minSize,omitempty"`
	MaxSize int64 `json:"maxSize,omitempty"`
	// ReferenceTime is "now" for OlderThan/NewerThan.
	ReferenceTime time.Time `json:"referenceTime,omitzero"`
}

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
	// Resume is the state to continue from: set by continue-as-new, and by
	// a submit that resumes a STOPPED job.
	Resume *JobState `json:"resume,omitempty"`
}

// JobState is a job's whole state: what the progress query returns, what a
// run returns when it ends, and what continue-as-new carries.
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
	Cursor      string `json:"cursor,omitempty"`
	ListingDone bool   `json:"listingDone,omitempty"`
	PagesListed int64  `json:"pagesListed,omitempty"`
	// Totals from the count-only scan; TotalsKnown is false with
	// partialListing or until the scan ends.
	TotalsKnown bool  `json:"totalsKnown,omitempty"`
	TotalFiles  int64 `json:"totalFiles,omitempty"`
	TotalBytes  int64 `json:"totalBytes,omitempty"`

	// Counters. Qualified = listed entries that passed the filters; when
	// the job has ended, Qualified == Succeeded + Skipped + Failed.
	Qualified     int64 `json:"qualified"`
	QualifiedSize int64 `json:"qualifiedSize"`
	Succeeded     int64 `json:"succeeded"`
	Skipped       int64 `json:"skipped"`
	Failed        int64 `json:"failed"`
	// BytesDone is bytes loaded, copied or moved; BytesSkipped bytes of
	// skipped files.
	BytesDone    int64 `json:"bytesDone"`
	BytesSkipped int64 `json:"bytesSkipped"`

	// RecentFailures are the latest RecentFailuresKept permanent failures.
	RecentFailures []Failure `json:"recentFailures,omitempty"`
	// FailuresLocation is where the full list of failed files is saved.
	FailuresLocation string `json:"failuresLocation,omitempty"`

	// Work carried across continue-as-new and stop/resume: entries listed
	// but not yet finished, and entries to retry after the listing.
	Pending []FileEntry `json:"pending,omitempty"`
	Retry   []FileEntry `json:"retry,omitempty"`
	// VerifyPass counts verify passes done; VerifyLoadedFiles and
	// VerifyLoadedBytes what they found missing and loaded again.
	VerifyPass        int   `json:"verifyPass,omitempty"`
	VerifyLoadedFiles int64 `json:"verifyLoadedFiles,omitempty"`
	VerifyLoadedBytes int64 `json:"verifyLoadedBytes,omitempty"`
	// Nodes are the cache nodes of the ring last seen; LostNodes those that
	// left it while the job ran. A load whose nodes left verifies at the end,
	// so that files finished on a lost node are cached on their new owner.
	Nodes     []string `json:"nodes,omitempty"`
	LostNodes []string `json:"lostNodes,omitempty"`
	// Runs counts the workflow runs this job took (continue-as-new, resume).
	Runs int `json:"runs"`
}

// Processed is the number of files finished, whatever the outcome.
func (s *JobState) Processed() int64 { return s.Succeeded + s.Skipped + s.Failed }
