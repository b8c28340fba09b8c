// Package jobs is the client side of Ferry's job engine: it validates job
// requests, turns raw options into workflows.Options, and submits, inspects,
// stops and lists job workflows through a Temporal client. The REST facade
// and the CLI both go through it, so they behave the same.
//
// Identity follows spec/jobs.md §1: a job is its type and path(s), i.e. its
// workflow ID. Submitting while a run is active answers AlreadyRunning;
// submitting after a STOPPED run starts a new run that resumes from the
// stopped state (same job id, counters kept); after SUCCEEDED or FAILED a
// fresh run with a new job id starts.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// Key addresses a job.
type Key struct {
	Type workflows.JobType
	// Path is the load path, or the copy/move source.
	Path string
	// Dst is the copy/move destination.
	Dst string
}

// WorkflowID is the job's Temporal workflow ID (see WorkflowID).
func (k Key) WorkflowID() string { return WorkflowID(k.Type, k.Path, k.Dst) }

// WorkflowID is the Temporal workflow ID of the job of type t on path (and
// dst, for copy and move): what a Go program passes to SignalWorkflow,
// QueryWorkflow or DescribeWorkflowExecution to drive a job that Ferry
// started. Every spelling of one location gives the same ID
// ("file:///x/small" and "file:///x/small/"). An ID is the job's identity
// in full ("load:file:///data/x", "copy:s3://b/in:gs://c/out") when that is
// printable ASCII of at most workflows.MaxReadableWorkflowID bytes, else a
// bounded, header-safe hash of it ("load:~<hash>:<readable prefix>"); the
// job's full path(s) are in its memo ("path", "dst") and its state.
func WorkflowID(t workflows.JobType, path, dst string) string {
	return workflows.JobWorkflowID(t, path, dst)
}

// MaxPathLength is the longest job path (or source, destination, index
// file) accepted, in bytes. Object keys reach 1,024 bytes and file paths
// 4,096; the bound keeps a job's memo, which carries its full paths, well
// inside Temporal's memo limit.
const MaxPathLength = 8192

// InputError is a request that can never succeed as given; Field names the
// offending field ("path", "src", "dst", or an option key).
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

// ForbiddenError is a job whose source or destination lies outside the
// storage mounts of the process (or in a read-only one): HTTP 403.
type ForbiddenError struct {
	Field   string
	Message string
}

func (e *ForbiddenError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Message) }

// ErrNotFound means no job with that key exists (for progress and stop).
var ErrNotFound = errors.New("job not found")

// ErrUnavailable means Temporal or the coordinator did not answer.
var ErrUnavailable = errors.New("job service unavailable")

// Outcome of a submit.
type Outcome string

// The outcomes of a submit.
const (
	Started        Outcome = "STARTED"
	AlreadyRunning Outcome = "ALREADY_RUNNING"
	Resumed        Outcome = "RESUMED"
)

// SubmitResult says what a submit did.
type SubmitResult struct {
	Outcome Outcome
	JobID   string
	// OptionsIgnored: a resumed job keeps the options it was started with,
	// and the ones given with this submit differ from them.
	OptionsIgnored bool
}

// Summary is one job in a listing.
type Summary struct {
	JobID     string
	Type      workflows.JobType
	Path      string
	Dst       string
	Status    workflows.JobStatus
	StartTime time.Time
	EndTime   time.Time
	Policy    string
	// SubmitTime is when the job was submitted: the start of its first run
	// (the run whose ID is the job id). StartTime is its latest run's.
	SubmitTime time.Time
}

// Service submits and inspects jobs.
type Service struct {
	client    client.Client
	resolver  *storage.Resolver
	now       func() time.Time
	liveNodes func(context.Context) (int, error)
}

// WithLiveNodes makes Submit refuse a load asking for more copies
// (replicas) than live reports cache nodes: each copy is on a node of its
// own, so every file of such a job would fail. A count that cannot be
// read, or of 0 (no node has joined yet), refuses nothing. It returns s.
func (s *Service) WithLiveNodes(live func(context.Context) (int, error)) *Service {
	s.liveNodes = live
	return s
}

// NewService returns a Service. resolver is used to check, before a job
// starts, that its source exists; nil skips that check (the job then fails
// fast in its first listing instead).
func NewService(c client.Client, resolver *storage.Resolver) *Service {
	return &Service{client: c, resolver: resolver, now: time.Now}
}

// Validate checks a key: full URIs without wildcards, a destination for
// copy/move that is neither the source nor inside it.
func (k Key) Validate() error {
	if !k.Type.Valid() {
		return &InputError{"type", fmt.Sprintf("unknown job type %q (want load, copy or move)", k.Type)}
	}
	srcField := "src"
	if k.Type == workflows.JobLoad {
		srcField = "path"
	}
	if strings.TrimSpace(k.Path) == "" {
		return &InputError{srcField, "is required"}
	}
	if err := checkJobPath(k.Path); err != nil {
		return &InputError{srcField, err.Error()}
	}
	if k.Type == workflows.JobLoad {
		if k.Dst != "" {
			return &InputError{"dst", "load jobs take no destination"}
		}
		return nil
	}
	if strings.TrimSpace(k.Dst) == "" {
		return &InputError{"dst", "is required for " + string(k.Type) + " jobs"}
	}
	if err := checkJobPath(k.Dst); err != nil {
		return &InputError{"dst", err.Error()}
	}
	return overlap(canonical(k.Path), canonical(k.Dst), "")
}

// overlap refuses a destination that is the source, lies inside it, or
// holds it: the job would read what it writes. how says by which route the
// two locations were found to overlap ("" for their spelling).
func overlap(src, dst, how string) error {
	switch {
	case src == dst:
		return &InputError{"dst", "is the same as the source" + how}
	case strings.HasPrefix(dst, strings.TrimSuffix(src, "/")+"/"):
		return &InputError{"dst", "is inside the source" + how}
	case strings.HasPrefix(src, strings.TrimSuffix(dst, "/")+"/"):
		return &InputError{"dst", "holds the source" + how}
	}
	return nil
}

// checkJobPath checks a path as a user typed it: a full URI, no longer
// than MaxPathLength, naming one file or directory. Wildcards are refused
// here only; names found by listing may hold any byte.
func checkJobPath(p string) error {
	if len(p) > MaxPathLength {
		return fmt.Errorf("is %d bytes long; the longest path a job takes is %d bytes", len(p), MaxPathLength)
	}
	u, err := storage.ParseURI(p)
	if err != nil {
		return err
	}
	if strings.ContainsAny(u.Authority+u.Path, "*?[") {
		return fmt.Errorf("%w: %q contains a wildcard; name a file or a directory", storage.ErrInvalidPath, p)
	}
	return nil
}

// canonical spells a URI one way for comparing locations (see
// workflows.CanonicalLocation), so that FILE://a, file://localhost/a and
// file:///a//b/ compare as they should.
func canonical(uri string) string { return workflows.CanonicalLocation(uri) }

// runLocation is the spelling a job runs on: a file-system URI (local or
// HDFS) in its canonical spelling (file:///a, not FILE:///a,
// file://localhost/a or file:///a//; hdfs://nn/a, not hdfs://nn/a//), since
// every spelling addresses one job (its workflow ID) and the names the job
// derives from it key the cache nodes' pages: a load of file:///a//b would
// cache every file of file:///a/b a second time, under other names. Other
// URIs are kept as given: in an object store "a//x" and "a/x" are two
// keys, and a trailing "/" can matter. An HDFS root keeps its "/".
func runLocation(uri string) string {
	c := canonical(uri)
	if strings.HasPrefix(c, "file:///") {
		return c
	}
	if host, ok := strings.CutPrefix(c, "hdfs://"); ok && strings.Contains(host, "/") {
		return c
	}
	return uri
}

// Submit starts, resumes or reports an already running job.
func (s *Service) Submit(ctx context.Context, key Key, opts workflows.Options) (SubmitResult, error) {
	if err := key.Validate(); err != nil {
		return SubmitResult{}, err
	}
	key.Path, key.Dst = runLocation(key.Path), runLocation(key.Dst)
	opts = opts.WithDefaults(key.Type)
	if err := s.checkReplicas(ctx, opts); err != nil {
		return SubmitResult{}, err
	}
	if err := s.checkSources(ctx, key, opts); err != nil {
		return SubmitResult{}, err
	}
	if opts.Filter.ReferenceTime.IsZero() && (opts.Filter.OlderThan > 0 || opts.Filter.NewerThan > 0) {
		opts.Filter.ReferenceTime = s.now().UTC()
	}

	input := workflows.JobInput{Type: key.Type, Path: key.Path, Dst: key.Dst, Options: opts}
	outcome := Started
	ignored := false
	last, err := s.lastRun(ctx, key, stateIfStopped)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return SubmitResult{}, err
	case last.status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING:
		return SubmitResult{Outcome: AlreadyRunning, JobID: last.jobID}, nil
	case last.state != nil && last.state.Status == workflows.StatusStopped:
		input.Resume = last.state
		// A resumed job keeps its settings; options given now are ignored.
		defaults, _ := ParseOptions(key.Type, nil)
		given := comparableOptions(opts)
		ignored = !reflect.DeepEqual(given, comparableOptions(last.state.Options)) &&
			!reflect.DeepEqual(given, comparableOptions(defaults))
		input.Options = last.state.Options
		outcome = Resumed
	}

	attrs := []temporal.SearchAttributeUpdate{
		temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrJobType).ValueSet(string(key.Type)),
		temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrJobPath).ValueSet(searchablePath(key.Path)),
		temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrJobState).ValueSet(string(workflows.StatusRunning)),
	}
	if opts.Policy != "" {
		attrs = append(attrs, temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrPolicy).ValueSet(opts.Policy))
	}
	sa := temporal.NewSearchAttributes(attrs...)
	run, err := s.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       key.WorkflowID(),
		TaskQueue:                workflows.CoordinatorTaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		TypedSearchAttributes:    sa,
		// Where the coordinator's worker shares this client (ferry dev,
		// one process), the job's first workflow task comes back with the
		// start's answer instead of through the task queue.
		EnableEagerStart: true,
		// What the job is, in Temporal's UI without a click: the list
		// shows the summary, the workflow's page both.
		StaticSummary: workflows.JobSummary(key.Type, key.Path, key.Dst),
		StaticDetails: workflows.JobDetails(key.Type, key.Path, key.Dst, input.Options),
		// The full paths, byte for byte: the ID may be a hash of them and
		// the search attribute a shortened, UTF-8 spelling.
		Memo: map[string]any{MemoPath: key.Path, MemoDst: key.Dst},
	}, workflows.JobWorkflowName, input)
	if err != nil {
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			// Another submit won the race: same answer as a running job.
			jobID := started.RunId
			if winner, err := s.lastRun(ctx, key, stateNever); err == nil {
				jobID = winner.jobID
			}
			return SubmitResult{Outcome: AlreadyRunning, JobID: jobID}, nil
		}
		return SubmitResult{}, fmt.Errorf("%w: start %s: %s", ErrUnavailable, key.WorkflowID(), err.Error())
	}
	jobID := run.GetRunID()
	if input.Resume != nil && input.Resume.JobID != "" {
		jobID = input.Resume.JobID
	}
	return SubmitResult{Outcome: outcome, JobID: jobID, OptionsIgnored: ignored}, nil
}

// Check validates key and checks, as Submit does before it starts a job,
// that the source (or index file) exists and that a backend serves the
// destination. Policies use it when they are added.
func (s *Service) Check(ctx context.Context, key Key, opts workflows.Options) error {
	if err := key.Validate(); err != nil {
		return err
	}
	return s.checkSources(ctx, key, opts)
}

// Memo fields every job run carries, besides "jobId".
const (
	// MemoPath is the job's path (load) or source (copy, move), in full.
	MemoPath = "path"
	// MemoDst is the destination of a copy or move, in full.
	MemoDst = "dst"
)

// maxSearchablePath bounds the FerryJobPath search attribute, in bytes
// (Temporal bounds the size of a search attribute's value).
const maxSearchablePath = 1000

// searchablePath is p as the FerryJobPath keyword search attribute holds
// it: valid UTF-8 (other bytes become U+FFFD), cut to maxSearchablePath
// bytes on a character boundary. The memo holds the exact path.
func searchablePath(p string) string {
	p = strings.ToValidUTF8(p, "\uFFFD")
	if len(p) <= maxSearchablePath {
		return p
	}
	cut := maxSearchablePath
	for cut > 0 && !utf8.RuneStart(p[cut]) {
		cut--
	}
	return p[:cut]
}

// comparableOptions drops what a submit fills in itself, so that two submits
// with the same flags compare equal.
func comparableOptions(o workflows.Options) workflows.Options {
	o.Filter.ReferenceTime = time.Time{}
	return o
}

// checkSources fails fast, before any workflow exists, on a source or index
// file that does not exist or a scheme nobody serves.
// checkReplicas refuses more copies than live cache nodes (see
// WithLiveNodes).
func (s *Service) checkReplicas(ctx context.Context, opts workflows.Options) error {
	if opts.Replicas <= 1 || s.liveNodes == nil {
		return nil
	}
	n, err := s.liveNodes(ctx)
	if err != nil || n == 0 || opts.Replicas <= n {
		return nil
	}
	return &InputError{"replicas", fmt.Sprintf("%d copies of each file asked, but only %d cache nodes are live, and each copy is on a node of its own", opts.Replicas, n)}
}

func (s *Service) checkSources(ctx context.Context, key Key, opts workflows.Options) error {
	if s.resolver == nil {
		return nil
	}
	field := "src"
	if key.Type == workflows.JobLoad {
		field = "path"
	}
	check := func(field, uri string) error {
		st, err := s.resolver.For(uri)
		if err != nil {
			return &InputError{field, err.Error()}
		}
		if _, err := st.Stat(ctx, uri); err != nil {
			switch {
			case errors.Is(err, storage.ErrNotFound):
				return &InputError{field, fmt.Sprintf("%s does not exist", uri)}
			case errors.Is(err, storage.ErrPermission):
				return &ForbiddenError{field, err.Error()}
			case errors.Is(err, storage.ErrInvalidPath):
				return &InputError{field, err.Error()}
			}
			return fmt.Errorf("%w: %s", ErrUnavailable, err.Error())
		}
		return nil
	}
	if opts.IndexFile != "" {
		return check("indexFile", opts.IndexFile)
	}
	if err := check(field, key.Path); err != nil {
		return err
	}
	if key.Type != workflows.JobLoad {
		if err := s.resolver.Check(key.Dst, storage.Write); err != nil {
			if errors.Is(err, storage.ErrPermission) {
				return &ForbiddenError{"dst", err.Error()}
			}
			return &InputError{"dst", err.Error()}
		}
		dst, err := s.resolver.For(key.Dst)
		if err != nil {
			return &InputError{"dst", err.Error()}
		}
		if src, _ := s.resolver.For(key.Path); src == dst {
			return realOverlap(ctx, dst, key)
		}
	}
	return nil
}

// realOverlap refuses a source and destination that overlap once symbolic
// links are resolved (a destination reached through a link into the
// source, a source through a link into the destination), as Validate
// refuses their spelling.
func realOverlap(ctx context.Context, st storage.Store, key Key) error {
	rl, ok := st.(storage.RealLocator)
	if !ok {
		return nil
	}
	src, err := rl.RealURI(ctx, key.Path)
	if err != nil {
		return &InputError{"src", err.Error()}
	}
	dst, err := rl.RealURI(ctx, key.Dst)
	if err != nil {
		return &InputError{"dst", err.Error()}
	}
	return overlap(canonical(src), canonical(dst), fmt.Sprintf(" once symbolic links are resolved (%s and %s)", src, dst))
}

type runInfo struct {
	runID  string
	jobID  string
	status enumspb.WorkflowExecutionStatus
	state  *workflows.JobState
}

// stateWanted says when lastRun reads an ended run's state (its result, a
// history read besides the description).
type stateWanted int

const (
	// stateNever: the caller needs the status only.
	stateNever stateWanted = iota
	// stateIfStopped: the caller resumes a stopped job; a run whose state
	// search attribute says it succeeded or failed is not read.
	stateIfStopped
	// stateAlways: the caller reports the state.
	stateAlways
)

// lastRun describes the latest run of the job's workflow ID, with its state
// once it has ended, as want says.
func (s *Service) lastRun(ctx context.Context, key Key, want stateWanted) (runInfo, error) {
	desc, err := s.client.DescribeWorkflowExecution(ctx, key.WorkflowID(), "")
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return runInfo{}, ErrNotFound
		}
		return runInfo{}, fmt.Errorf("%w: describe %s: %s", ErrUnavailable, key.WorkflowID(), err.Error())
	}
	info := desc.GetWorkflowExecutionInfo()
	ri := runInfo{
		runID:  info.GetExecution().GetRunId(),
		status: info.GetStatus(),
		jobID:  memoString(info.GetMemo(), "jobId"),
	}
	if ri.jobID == "" {
		ri.jobID = ri.runID
	}
	if want == stateNever || want == stateIfStopped && ri.jobID != ri.runID && endedNotStopped(info) {
		return ri, nil
	}
	switch ri.status {
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		// SUCCEEDED runs complete, FAILED ones fail and STOPPED ones end
		// canceled, each with the job's state (workflows.JobResult).
		var st workflows.JobState
		err := s.client.GetWorkflow(ctx, key.WorkflowID(), ri.runID).Get(ctx, &st)
		if !workflows.JobResult(err, &st) {
			if ri.status == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED || !isRunOutcome(err) {
				// Guessing here could restart a stopped job from zero.
				return runInfo{}, fmt.Errorf("%w: read the result of %s: %s", ErrUnavailable, key.WorkflowID(), err.Error())
			}
			return ri, nil // ended outside Ferry's logic: no state
		}
		ri.state = &st
		if st.JobID != "" {
			ri.jobID = st.JobID
		}
	}
	return ri, nil
}

// endedNotStopped reports whether a run's state search attribute says the
// job ended for good (succeeded or failed), not stopped: there is nothing to
// resume.
func endedNotStopped(info *workflowpb.WorkflowExecutionInfo) bool {
	p, ok := info.GetSearchAttributes().GetIndexedFields()[workflows.SearchAttrJobState]
	if !ok {
		return false
	}
	var st string
	if err := converter.GetDefaultDataConverter().FromPayload(p, &st); err != nil {
		return false
	}
	return st == string(workflows.StatusSucceeded) || st == string(workflows.StatusFailed)
}

func memoString(m *commonpb.Memo, key string) string {
	p, ok := m.GetFields()[key]
	if !ok {
		return ""
	}
	var s string
	if err := bytesjson.DataConverter().FromPayload(p, &s); err != nil {
		return ""
	}
	return s
}

// Progress returns the job's current state: by query while it runs, from its
// result once it has ended.
func (s *Service) Progress(ctx context.Context, key Key) (workflows.JobState, error) {
	if err := key.Validate(); err != nil {
		return workflows.JobState{}, err
	}
	last, err := s.lastRun(ctx, key, stateAlways)
	if err != nil {
		return workflows.JobState{}, err
	}
	if last.state != nil {
		return *last.state, nil
	}
	if last.status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return s.endedOutside(ctx, key, last), nil
	}
	qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	resp, err := s.client.QueryWorkflow(qctx, key.WorkflowID(), last.runID, workflows.QueryProgress)
	if err != nil {
		return workflows.JobState{}, fmt.Errorf("%w: query %s (is a coordinator running?): %s", ErrUnavailable, key.WorkflowID(), err.Error())
	}
	var st workflows.JobState
	if err := resp.Get(&st); err != nil {
		return workflows.JobState{}, fmt.Errorf("decode progress of %s: %w", key.WorkflowID(), err)
	}
	s.addInFlight(ctx, key, last.runID, &st)
	return st, nil
}

// addInFlight adds to st what the batches running now have done and read
// so far, from their last heartbeats (Temporal's pending activities). It is
// called after the query that produced st: a batch whose result st counts
// had completed before the query, so it is no longer pending here and is
// never counted twice. Without an answer, st stays as the query gave it.
func (s *Service) addInFlight(ctx context.Context, key Key, runID string, st *workflows.JobState) {
	if !st.Status.Active() {
		return
	}
	desc, err := s.client.DescribeWorkflowExecution(ctx, key.WorkflowID(), runID)
	if err != nil {
		return
	}
	dc := bytesjson.DataConverter()
	var files, bytes int64
	for _, a := range desc.GetPendingActivities() {
		switch a.GetActivityType().GetName() {
		case workflows.ActivityLoadBatch, workflows.ActivityCopyBatch:
		default:
			continue
		}
		var p workflows.BatchProgress
		if a.GetHeartbeatDetails() == nil || dc.FromPayloads(a.GetHeartbeatDetails(), &p) != nil {
			continue
		}
		files += int64(max(p.Done, 0))
		bytes += p.Result.BytesDone + p.BytesInFlight
	}
	// Within what the listing found: never more than exists.
	st.InFlightFiles = min(files, max(st.Qualified-st.Processed(), 0))
	st.InFlightBytes = min(bytes, max(st.QualifiedSize-st.BytesDone-st.BytesSkipped, 0))
}

// endedOutside is the state of a run that ended outside Ferry's own logic
// (terminated, timed out, or cancelled or failed by an engine that did not
// record a state): TERMINATED for a terminated run, FAILED otherwise, with
// Temporal's status as the reason and the last counters the run recorded,
// read by the progress query, which Temporal answers for a closed run by
// replaying its history on a coordinator.
func (s *Service) endedOutside(ctx context.Context, key Key, last runInfo) workflows.JobState {
	how := strings.ToLower(strings.TrimPrefix(last.status.String(), "WORKFLOW_EXECUTION_STATUS_"))
	st := workflows.JobState{JobID: last.jobID, Type: key.Type, Path: key.Path, Dst: key.Dst}
	qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if resp, err := s.client.QueryWorkflow(qctx, key.WorkflowID(), last.runID, workflows.QueryProgress); err == nil {
		var q workflows.JobState
		if resp.Get(&q) == nil {
			st = q
		}
	}
	st.Status, st.Reason, st.Stage, st.InFlight = workflows.StatusFailed, "workflow "+strings.ReplaceAll(how, "_", " "), "", 0
	if last.status == enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED {
		st.Status = workflows.StatusTerminated
	}
	return st
}

// isRunOutcome reports whether err is how a run ended (as opposed to a
// failure to read it).
func isRunOutcome(err error) bool {
	var ae *temporal.ApplicationError
	var ce *temporal.CanceledError
	var te *temporal.TimeoutError
	return errors.As(err, &ae) || errors.As(err, &ce) || errors.As(err, &te)
}

// Stop signals a running job to stop. It returns ErrNotFound when no run of
// the job is active.
func (s *Service) Stop(ctx context.Context, key Key) error {
	if err := key.Validate(); err != nil {
		return err
	}
	last, err := s.lastRun(ctx, key, stateNever)
	if err != nil {
		return err
	}
	if last.status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return ErrNotFound
	}
	if err := s.client.SignalWorkflow(ctx, key.WorkflowID(), "", workflows.SignalStop, nil); err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return ErrNotFound
		}
		return fmt.Errorf("%w: signal %s: %s", ErrUnavailable, key.WorkflowID(), err.Error())
	}
	return nil
}

// ListFilter selects jobs; zero fields match everything.
type ListFilter struct {
	Type   workflows.JobType
	Status workflows.JobStatus
}

// StateQuery is the Temporal visibility query (for `temporal workflow
// list --query` or the UI's search) of the job runs in state st, as `ferry
// job list --state` counts them: a run's FerryJobState is exact once it has
// ended (a run that continued as new says CONTINUED_AS_NEW), but a run
// terminated in Temporal could not record it, so the active states also ask
// that the run be open and TERMINATED is Temporal's own status. Closed runs
// cannot change: a run that ended STOPPED (or SUCCEEDED, FAILED) keeps that
// state after its job is resubmitted, while `ferry job list` shows each
// job's latest run only.
func StateQuery(st workflows.JobStatus) string {
	state := func(s workflows.JobStatus) string {
		return fmt.Sprintf("%s = '%s'", workflows.SearchAttrJobState, s)
	}
	q := fmt.Sprintf("%s IS NOT NULL AND ", workflows.SearchAttrJobType)
	switch st {
	case workflows.StatusRunning, workflows.StatusVerifying:
		return q + state(st) + " AND ExecutionStatus = 'Running'"
	case workflows.StatusTerminated:
		return q + "ExecutionStatus = 'Terminated'"
	case workflows.StatusFailed:
		// Runs that failed or timed out outside Ferry's logic too.
		return q + "(" + state(st) + " OR ExecutionStatus = 'Failed' OR ExecutionStatus = 'TimedOut')"
	}
	return q + state(st) + " AND ExecutionStatus != 'Terminated'"
}

// List returns the latest run of every job matching f, newest first.
func (s *Service) List(ctx context.Context, f ListFilter) ([]Summary, error) {
	// The state filter applies to each job's latest run, so it is applied
	// here rather than in the query (an old STOPPED run of a job running
	// again must not list it as STOPPED).
	// Runs that continued as new are listed too, for the start time of a
	// job's first run; they are never a job's latest run.
	q := []string{fmt.Sprintf("%s IS NOT NULL", workflows.SearchAttrJobType)}
	if f.Type != "" {
		q = append(q, fmt.Sprintf("%s = '%s'", workflows.SearchAttrJobType, f.Type))
	}
	query := strings.Join(q, " AND ")
	latest := map[string]Summary{}
	runStart := map[string]time.Time{} // run ID → start time
	var out []Summary
	var token []byte
	for {
		resp, err := s.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query, NextPageToken: token, PageSize: 1000})
		if err != nil {
			return nil, fmt.Errorf("%w: list jobs: %s", ErrUnavailable, err.Error())
		}
		for _, e := range resp.GetExecutions() {
			id := e.GetExecution().GetWorkflowId()
			if e.GetStartTime() != nil {
				runStart[e.GetExecution().GetRunId()] = e.GetStartTime().AsTime()
			}
			if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
				continue
			}
			sum := summaryOf(e)
			if prev, ok := latest[id]; ok && !sum.StartTime.After(prev.StartTime) {
				continue // an older run of a job already seen
			}
			latest[id] = sum
		}
		token = resp.GetNextPageToken()
		if len(token) == 0 {
			break
		}
	}
	ids := make([]string, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		sum := latest[id]
		sum.SubmitTime = sum.StartTime
		if t, ok := runStart[sum.JobID]; ok {
			sum.SubmitTime = t
		}
		if f.Status == "" || sum.Status == f.Status {
			out = append(out, sum)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].StartTime.After(out[j].StartTime) })
	return out, nil
}

func summaryOf(e *workflowpb.WorkflowExecutionInfo) Summary {
	sum := Summary{JobID: memoString(e.GetMemo(), "jobId")}
	if sum.JobID == "" {
		sum.JobID = e.GetExecution().GetRunId()
	}
	dc := bytesjson.DataConverter()
	get := func(name string) string {
		p, ok := e.GetSearchAttributes().GetIndexedFields()[name]
		if !ok {
			return ""
		}
		var v string
		_ = dc.FromPayload(p, &v)
		return v
	}
	sum.Type = workflows.JobType(get(workflows.SearchAttrJobType))
	sum.Path = get(workflows.SearchAttrJobPath)
	sum.Status = workflows.JobStatus(get(workflows.SearchAttrJobState))
	sum.Policy = get(workflows.SearchAttrPolicy)
	if p := memoString(e.GetMemo(), MemoPath); p != "" {
		sum.Path = p
		sum.Dst = memoString(e.GetMemo(), MemoDst)
	} else if sum.Type != workflows.JobLoad {
		// A run started before the memo held the paths: its ID spells them.
		prefix := string(sum.Type) + ":" + sum.Path + ":"
		sum.Dst = strings.TrimPrefix(e.GetExecution().GetWorkflowId(), prefix)
	}
	if e.GetStartTime() != nil {
		sum.StartTime = e.GetStartTime().AsTime()
	}
	if e.GetCloseTime() != nil {
		sum.EndTime = e.GetCloseTime().AsTime()
	}
	switch e.GetStatus() {
	case enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED:
		// Ended outside Ferry's own logic: its search attribute still says
		// what it was doing, not that it is over.
		sum.Status = workflows.StatusTerminated
	case enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED:
		// A stopped run ends canceled, its state STOPPED; a run of the
		// first engine cancelled by hand says what it was doing.
		if sum.Status != workflows.StatusStopped {
			sum.Status = workflows.StatusFailed
		}
	case enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED:
		sum.Status = workflows.StatusFailed
	}
	return sum
}
