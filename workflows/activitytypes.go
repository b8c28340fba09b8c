package workflows

// Activity names. Activities are registered under these names by package
// worker; the workflow refers to them by name so that this package does not
// import the packages that do I/O.
const (
	// ActivityListAndPlan lists one page of a job's source and groups its
	// entries by owning cache node. Runs on the coordinator queue.
	ActivityListAndPlan = "ListAndPlan"
	// ActivityCountSource counts the files and bytes of a job's source (the
	// count-only scan for totals). Runs on the coordinator queue.
	ActivityCountSource = "CountSource"
	// ActivityPlan groups entries by owning node on the current ring (used
	// for retries and for work whose node left). Runs on the coordinator.
	ActivityPlan = "Plan"
	// ActivitySaveFailures writes one batch's failed files to the job's
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
)

// NonRetryableErrorTypes are final: retrying cannot help.
var NonRetryableErrorTypes = []string{ErrTypeNotFound, ErrTypePermission, ErrTypeInvalidPath, ErrTypeExists, ErrTypeInvalidInput}

// ListInput asks for one page of a job's source.
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
}

// ListResult is one page, already grouped by node.
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

// CountResult is the outcome of the count-only scan.
type CountResult struct {
	Files int64 `json:"files"`
	Bytes int64 `json:"bytes"`
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

// BatchInput runs on a node: load (or copy) Entries.
type BatchInput struct {
	JobID   string      `json:"jobId"`
	Type    JobType     `json:"type"`
	Source  string      `json:"source"`
	Dst     string      `json:"dst,omitempty"`
	Entries []FileEntry `json:"entries"`
	// Bandwidth is this batch's share of the job's limit, bytes/s; 0 is
	// unlimited.
	Bandwidth    int64 `json:"bandwidth,omitempty"`
	MetadataOnly bool  `json:"metadataOnly,omitempty"`
	SkipIfExists bool  `json:"skipIfExists,omitempty"`
	Replicas     int   `json:"replicas,omitempty"`
	CheckContent bool  `json:"checkContent,omitempty"`
	Overwrite    bool  `json:"overwrite,omitempty"`
	// LastAttempt: retryable failures are final (the job's retry pass).
	LastAttempt bool `json:"lastAttempt,omitempty"`
}

// BatchResult is what a batch did. Entries are accounted exactly once:
// Succeeded + Skipped + len(Failures) == entries done.
type BatchResult struct {
	Succeeded    int64     `json:"succeeded"`
	Skipped      int64     `json:"skipped"`
	BytesDone    int64     `json:"bytesDone"`
	BytesSkipped int64     `json:"bytesSkipped"`
	Failures     []Failure `json:"failures,omitempty"`
}

// Add folds r into b.
func (b *BatchResult) Add(r BatchResult) {
	b.Succeeded += r.Succeeded
	b.Skipped += r.Skipped
	b.BytesDone += r.BytesDone
	b.BytesSkipped += r.BytesSkipped
	b.Failures = append(b.Failures, r.Failures...)
}

// BatchProgress is a batch activity's heartbeat: the first Done entries are
// finished with the outcomes in Result. A retried or re-planned batch skips
// them.
type BatchProgress struct {
	Done   int         `json:"done"`
	Result BatchResult `json:"result"`
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
