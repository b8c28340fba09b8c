package workflows

// Activity names. Activities are registered under these names by package
// worker; the workflow refers to them by name so that this package does not
// import the packages that do I/O. The names marked v1 serve only the
// frozen first engine (package legacy).
const (
	// ActivityPartition splits a job's source into listing partitions.
	ActivityPartition = "Partition"
	// ActivityListPage lists one page of one partition into the manifest
	// store and groups it by owning node.
	ActivityListPage = "ListPage"
	// ActivityPlanRange groups a range of a manifest by owning node on the
	// current ring, into a new manifest (re-planning, retry, verify).
	ActivityPlanRange = "PlanRange"
	// ActivityLiveNodes reads the membership of the cache ring.
	ActivityLiveNodes = "LiveNodes"
	// ActivitySaveBatchFailures records the failures of a batch whose node
	// could not report them (it died, or the work could not be placed).
	ActivitySaveBatchFailures = "SaveBatchFailures"
	// ActivityFinishJob writes a job's failure list and removes its working
	// manifests.
	ActivityFinishJob = "FinishJob"
	// ActivityListAndPlan (v1) lists one page of a job's source and groups its
	// entries by owning cache node. Runs on the coordinator queue.
	ActivityListAndPlan = "ListAndPlan"
	// ActivityCountSource counts the files and bytes of a job's source (the
	// count-only scan for totals). Runs on the coordinator queue.
	ActivityCountSource = "CountSource"
	// ActivityPlan (v1) groups entries by owning node on the current ring (used
	// for retries and for work whose node left). Runs on the coordinator.
	ActivityPlan = "Plan"
	// ActivitySaveFailures (v1) writes one batch's failed files to the job's
	// failure list. Runs on the coordinator queue.
	ActivitySaveFailures = "SaveFailures"
	// ActivityRemoveEmptyDirs removes the directories a move emptied. Runs
	// on the coordinator queue.
	ActivityRemoveEmptyDirs = "RemoveEmptyDirs"
	// ActivityLoadBatch loads a batch of files into the cache of the node
	// whose task queue it runs on.
	ActivityLoadBatch = "LoadBatch"
	// ActivityCopyBatch copies (or moves) a batch of files on a node.
	ActivityCopyBatch = "CopyBatch"
)

// Error types that activities return as Temporal application errors; the
// non-retryable ones are never retried by Temporal.
const (
	ErrTypeNotFound     = "NOT_FOUND"
	ErrTypePermission   = "PERMISSION_DENIED"
	ErrTypeInvalidPath  = "INVALID_PATH"
	ErrTypeExists       = "ALREADY_EXISTS"
	ErrTypeUnavailable  = "UNAVAILABLE"
	ErrTypeNoNodes      = "NO_CACHE_NODES"
	ErrTypeInternal     = "INTERNAL"
	ErrTypeChecksum     = "CHECKSUM_MISMATCH"
	ErrTypeInvalidInput = "INVALID_INPUT"
	// ErrTypeCacheTooSmall: a loaded file does not stay in its node's cache
	// (larger than the cache, or evicted before the job ended).
	ErrTypeCacheTooSmall = "CACHE_TOO_SMALL"
)

// NonRetryableErrorTypes are final: retrying cannot help.
var NonRetryableErrorTypes = []string{ErrTypeNotFound, ErrTypePermission, ErrTypeInvalidPath, ErrTypeExists, ErrTypeInvalidInput}

// ListInput asks for one page of a job's source (v1), or, for CountSource,
// for the count-only scan.
type ListInput struct {
	JobID     string  `json:"jobId"`
	Type      JobType `json:"type"`
	Path      string  `json:"path"`
	IndexFile string  `json:"indexFile,omitempty"`
	Cursor    string  `json:"cursor,omitempty"`
	Limit     int     `json:"limit"`
	// FileFilterRegx and Filter select entries (see Options).
	FileFilterRegx string `json:"fileFilterRegx,omitempty"`
	Filter         Filter `json:"filter,omitempty"`
	// CountBudget makes CountSource return after about this many entries
	// with its cursor, so the scan's progress is carried across runs; 0
	// scans to the end.
	CountBudget int `json:"countBudget,omitempty"`
}

// ListResult is one page, already grouped by node (v1).
type ListResult struct {
	// Batches hold the page's qualifying entries, one batch per node.
	Batches []NodeBatch `json:"batches,omitempty"`
	// Cursor resumes after this page; Done means the listing is complete.
	Cursor string `json:"cursor,omitempty"`
	Done   bool   `json:"done,omitempty"`
	// Qualified and QualifiedSize count the entries in Batches.
	Qualified     int64 `json:"qualified"`
	QualifiedSize int64 `json:"qualifiedSize"`
	// LiveNodes is how many cache nodes the ring had; Nodes are their IDs.
	LiveNodes int      `json:"liveNodes"`
	Nodes     []string `json:"nodes,omitempty"`
}

// CountResult is the outcome of the count-only scan: the sums of this call
// and, with a budget, where to go on (Done when the scan is complete).
type CountResult struct {
	Files  int64  `json:"files"`
	Bytes  int64  `json:"bytes"`
	Cursor string `json:"cursor,omitempty"`
	Done   bool   `json:"done,omitempty"`
}

// PlanInput asks for entries to be grouped by node on the current ring.
type PlanInput struct {
	Type    JobType     `json:"type"`
	Entries []FileEntry `json:"entries"`
}

// PlanResult is the grouping.
type PlanResult struct {
	Batches   []NodeBatch `json:"batches"`
	LiveNodes int         `json:"liveNodes"`
	Nodes     []string    `json:"nodes,omitempty"`
}

// NodeBatch is work for one cache node.
type NodeBatch struct {
	NodeID    string      `json:"node"`
	TaskQueue string      `json:"queue"`
	Entries   []FileEntry `json:"entries"`
}

// BatchInput runs on a node: load (or copy) the entries of Ref, read from
// the manifest store (v1 sent Entries inline).
type BatchInput struct {
	JobID   string      `json:"jobId"`
	Type    JobType     `json:"type"`
	Source  string      `json:"source"`
	Dst     string      `json:"dst,omitempty"`
	Entries []FileEntry `json:"entries,omitempty"`
	Ref     *BatchRef   `json:"ref,omitempty"`
	// Bandwidth is this batch's share of the job's limit, bytes/s; 0 is
	// unlimited. Nodes that know JobBandwidth ignore it; it paces batches
	// of the first engine and nodes of builds before job-wide limits.
	Bandwidth int64 `json:"bandwidth,omitempty"`
	// JobBandwidth is the whole job's limit, bytes/s (0: unlimited): the
	// node takes the batch's bytes from the job's budget (package
	// bandwidth), shared by every batch of the job on every node.
	JobBandwidth int64 `json:"jobBandwidth,omitempty"`
	// BandwidthVersion orders the job's limits when it is changed while the
	// job runs: the budget follows the limit of the highest version.
	BandwidthVersion int64 `json:"bandwidthVersion,omitempty"`
	MetadataOnly     bool  `json:"metadataOnly,omitempty"`
	SkipIfExists     bool  `json:"skipIfExists,omitempty"`
	Replicas         int   `json:"replicas,omitempty"`
	CheckContent     bool  `json:"checkContent,omitempty"`
	Overwrite        bool  `json:"overwrite,omitempty"`
	// LastAttempt: retryable failures are final (the job's retry pass).
	LastAttempt bool `json:"lastAttempt,omitempty"`
	// Verify marks a verify pass: it retries nothing, and its failures are
	// counted apart from the main pass's (VerifyFailed).
	Verify bool `json:"verify,omitempty"`
	// Resumed marks the rest of a batch whose earlier attempt ended before
	// it could report every file (cancelled, failed, its node lost): a
	// destination found then may be that attempt's committed copy.
	Resumed bool `json:"resumed,omitempty"`
}

// BatchResult is what a batch did. Entries are accounted exactly once:
// Succeeded + Skipped + Failed + Retry == entries done. With a Ref, the
// batch wrote its failures (Failed) and its entries to retry (Retry) to the
// manifest store and Failures holds at most MaxResultFailures of them for
// the recent-failures view; without (v1), Failures holds every failure and
// Failed and Retry are 0.
type BatchResult struct {
	Succeeded    int64     `json:"succeeded"`
	Skipped      int64     `json:"skipped"`
	Failed       int64     `json:"failed,omitempty"`
	Retry        int64     `json:"retry,omitempty"`
	BytesDone    int64     `json:"bytesDone"`
	BytesSkipped int64     `json:"bytesSkipped"`
	Failures     []Failure `json:"failures,omitempty"`
	// SkipReasons count Skipped by reason; SkippedEntries are the first
	// MaxResultSkipped entries skipped as not regular files.
	SkipReasons    []SkipCount    `json:"skipReasons,omitempty"`
	SkippedEntries []SkippedEntry `json:"skippedEntries,omitempty"`
}

// MaxResultFailures bounds the failures a batch result carries.
const MaxResultFailures = 20

// BatchProgress is a batch activity's heartbeat (and the details of its
// cancellation): the first Done entries are finished with the outcomes in
// Result, whose Failures are every failure among them (so that the
// workflow can record them if the node dies). A re-planned batch skips them.
type BatchProgress struct {
	Done   int         `json:"done"`
	Result BatchResult `json:"result"`
	// BytesInFlight is what the entries after Done have read so far: the
	// progress view adds it, and Result's counts, while the batch runs.
	BytesInFlight int64 `json:"bytesInFlight,omitempty"`
}

// Partition is one part of a job's source that is listed on its own, with
// its own cursor: a set of top-level directories listed recursively one
// after the other, the files at the top of the source, an index file, or
// the manifests a retry or verify pass reads back.
type Partition struct {
	// ID numbers the partition within its pass; it is part of the keys of
	// the manifests it writes.
	ID   int    `json:"id"`
	Kind string `json:"kind"`
	// Dirs are the directory URIs of a PartitionTree, listed in order;
	// DirIndex is the one being listed. A tree with no Dirs lists the
	// source itself.
	Dirs     []string `json:"dirs,omitempty"`
	DirIndex int      `json:"dirIndex,omitempty"`
	Cursor   string   `json:"cursor,omitempty"`
	// Seq counts the pages listed from this partition.
	Seq  int64 `json:"seq,omitempty"`
	Done bool  `json:"done,omitempty"`
}

// Partition kinds.
const (
	// PartitionTree lists directories recursively (the source itself when
	// Dirs is empty, which also serves a single-file source).
	PartitionTree = "tree"
	// PartitionTop lists the files directly in the source directory.
	PartitionTop = "top"
	// PartitionIndex reads an index file.
	PartitionIndex = "index"
	// PartitionPages reads back the listing's pages (verify pass).
	PartitionPages = "pages"
	// PartitionRetry reads the entries set aside for the retry pass.
	PartitionRetry = "retry"
)

// PartitionInput asks for a job's source to be split into partitions.
type PartitionInput struct {
	JobID     string  `json:"jobId"`
	Type      JobType `json:"type"`
	Path      string  `json:"path"`
	IndexFile string  `json:"indexFile,omitempty"`
	// Max bounds the number of partitions.
	Max int `json:"max"`
}

// PartitionResult is the split.
type PartitionResult struct {
	Partitions []Partition `json:"partitions"`
}

// ManifestRef names an object of the manifest store: kind and key within
// a job's directory.
type ManifestRef struct {
	Kind string `json:"kind"`
	Key  string `json:"key"`
}

// ListPageInput lists the next page of a partition.
type ListPageInput struct {
	JobID     string  `json:"jobId"`
	Type      JobType `json:"type"`
	Path      string  `json:"path"`
	IndexFile string  `json:"indexFile,omitempty"`
	// Dst is the destination of a copy or move, where the listing
	// recreates the source's empty directories (file systems only).
	Dst       string    `json:"dst,omitempty"`
	Partition Partition `json:"partition"`
	// Out is where the page's entries are written, grouped by node.
	Out   ManifestRef `json:"out"`
	Limit int         `json:"limit"`
	// FileFilterRegx and Filter select entries (see Options).
	FileFilterRegx string `json:"fileFilterRegx,omitempty"`
	Filter         Filter `json:"filter,omitzero"`
	// CountOnly lists and counts without writing or planning (dry run).
	CountOnly bool `json:"countOnly,omitempty"`
	// CheckCached (a load) asks each owner node which of the page's files
	// it already holds complete at the listed version: those are returned
	// in Plan.Cached instead of being planned for dispatch.
	CheckCached bool `json:"checkCached,omitempty"`
}

// ListPageResult is one page: where it went and how it is placed.
type ListPageResult struct {
	// Partition is the partition with its cursor moved past this page
	// (without its Dirs, which the workflow keeps).
	Partition     Partition `json:"partition"`
	Qualified     int64     `json:"qualified"`
	QualifiedSize int64     `json:"qualifiedSize"`
	// Plan is the page's grouping; Plan.Planned is false when no node was
	// live, and the page must be planned later from Out.
	Plan Plan `json:"plan"`
	// Fetched says which attempts of the activity listed which pieces of
	// the page, as the manifest store recorded them: a retry continues
	// after the pieces stored before it, so no piece is listed twice.
	// Empty for the read-back passes (retry, verify), which list nothing.
	Fetched []PageFetch `json:"fetched,omitempty"`
	// Unread counts, in a dry run's page (which keeps no entry), the
	// entries its listing could not read (a directory that cannot be
	// opened…): counted in Qualified, and failed as a run would fail them.
	// UnreadFailures are the first MaxResultFailures of them.
	Unread         int64     `json:"unread,omitempty"`
	UnreadFailures []Failure `json:"unreadFailures,omitempty"`
}

// PageFetch is the run of pieces of a listing page that one attempt of its
// ListPage activity listed and stored.
type PageFetch struct {
	Attempt int `json:"attempt"`
	// First is the index of its first piece in the page, Pieces how many
	// it stored, Entries the qualifying entries in them.
	First   int   `json:"first"`
	Pieces  int   `json:"pieces"`
	Entries int64 `json:"entries"`
	// Cut says the attempt ended (killed, or failed) after it started
	// listing one more piece and before it stored it: a later attempt
	// listed that piece again. At most one piece per cut attempt.
	Cut bool `json:"cut,omitempty"`
}

// Plan groups the entries of one manifest, in order, by node.
type Plan struct {
	Planned bool        `json:"planned,omitempty"`
	Groups  []NodeGroup `json:"groups,omitempty"`
	// Nodes are the IDs of the live nodes the plan saw, as of NodesAsOf
	// (Unix nanoseconds of the registry's clock; 0: not known).
	Nodes     []string `json:"nodes,omitempty"`
	NodesAsOf int64    `json:"nodesAsOf,omitempty"`
	// Cached are the ranges of the manifest that their node already holds
	// complete at the listed version (asked with CheckCached): they are
	// not in Groups, never dispatched, and CachedResult counts them as a
	// batch would have (skipped, already cached).
	Cached       []NodeGroup  `json:"cached,omitempty"`
	CachedResult *BatchResult `json:"cachedResult,omitempty"`
}

// NodeGroup is a contiguous range of a manifest that one node owns.
type NodeGroup struct {
	NodeID    string `json:"node"`
	TaskQueue string `json:"queue"`
	Start     int    `json:"start"`
	Count     int    `json:"count"`
}

// PlanRange is a range of a manifest to plan (again) onto the ring.
type PlanRange struct {
	Src   ManifestRef `json:"src"`
	Start int         `json:"start"`
	Count int         `json:"count"`
	// Out is where the grouped entries go.
	Out ManifestRef `json:"out"`
	// Attempts is how often this work was re-planned after its node failed.
	Attempts int    `json:"attempts,omitempty"`
	Pass     string `json:"pass,omitempty"`
	// Only, when set, keeps the entries whose owner on the current ring is
	// one of these nodes (files whose owner changed when they joined).
	Only []string `json:"only,omitempty"`
}

// PlanRangeInput plans a range.
type PlanRangeInput struct {
	JobID string    `json:"jobId"`
	Type  JobType   `json:"type"`
	Range PlanRange `json:"range"`
}

// BatchRef is one batch by reference: a range of a manifest, the node it
// goes to, and a key unique in the job (the names of its failure and retry
// objects).
type BatchRef struct {
	Src       ManifestRef `json:"src"`
	Start     int         `json:"start"`
	Count     int         `json:"count"`
	NodeID    string      `json:"node"`
	TaskQueue string      `json:"queue"`
	Key       string      `json:"key"`
	Attempts  int         `json:"attempts,omitempty"`
	Pass      string      `json:"pass,omitempty"`
	// Ring is 1 + the index in JobCarry.Rings of the ring the batch was
	// planned on (0: not recorded).
	Ring int `json:"ring,omitempty"`
}

// LiveNodesResult is the membership as the coordinator reads it. OK is
// false when it could not be read (the registry is briefly unavailable):
// the workflow then keeps its last view instead of taking nodes as lost.
type LiveNodesResult struct {
	OK    bool     `json:"ok"`
	Nodes []string `json:"nodes,omitempty"`
	// AsOf is when the membership read was current, in Unix nanoseconds
	// of the registry's clock (0: not known).
	AsOf int64 `json:"asOf,omitempty"`
}

// SaveBatchFailuresInput records failures of a batch that its node did not
// record: Failures from its last heartbeat, or, with FailAll, every entry
// of the batch's range with Reason and Message.
type SaveBatchFailuresInput struct {
	JobID    string    `json:"jobId"`
	Batch    BatchRef  `json:"batch"`
	Key      string    `json:"key"`
	Failures []Failure `json:"failures,omitempty"`
	FailAll  bool      `json:"failAll,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Message  string    `json:"message,omitempty"`
	// LastAttempt makes retryable failures final.
	LastAttempt bool `json:"lastAttempt,omitempty"`
}

// SaveBatchFailuresResult counts what was recorded.
type SaveBatchFailuresResult struct {
	Failed   int64     `json:"failed"`
	Retry    int64     `json:"retry"`
	Failures []Failure `json:"failures,omitempty"`
}

// FinishJobInput ends a job's use of the manifest store.
type FinishJobInput struct {
	JobID string `json:"jobId"`
	// KeepWork keeps the working manifests (a STOPPED job resumes from
	// them); otherwise they are removed.
	KeepWork bool `json:"keepWork,omitempty"`
}

// FinishJobResult says where the failure list is.
type FinishJobResult struct {
	FailuresLocation string `json:"failuresLocation,omitempty"`
	FailureLines     int64  `json:"failureLines,omitempty"`
}

// RemoveEmptyDirsInput names the source of a move.
type RemoveEmptyDirsInput struct {
	Path string `json:"path"`
}

// SaveFailuresInput appends failures to a job's failure list.
type SaveFailuresInput struct {
	JobID    string    `json:"jobId"`
	Seq      int64     `json:"seq"`
	Failures []Failure `json:"failures"`
}

// SaveFailuresResult says where the list lives.
type SaveFailuresResult struct {
	Location string `json:"location"`
}

// Manifest kinds: the directories of a job in the manifest store (package
// manifest documents the layout).
const (
	ManifestPages    = "pages"
	ManifestPlans    = "plans"
	ManifestRetry    = "retry"
	ManifestFailures = "failures"
)
