package policies

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// ErrNotFound means no policy has that name.
var ErrNotFound = errors.New("policy not found")

// ErrExists means a policy with that name exists already.
var ErrExists = errors.New("policy already exists")

// Service adds, inspects and operates policies through Temporal's schedule
// client. It keeps nothing itself: each policy is one schedule.
type Service struct {
	client   client.Client
	jobs     *jobs.Service
	resolver *storage.Resolver
	now      func() time.Time
}

// NewService returns a Service. js checks that a policy's source exists
// when it is added or updated; resolver serves previews.
func NewService(c client.Client, js *jobs.Service, resolver *storage.Resolver) *Service {
	return &Service{client: c, jobs: js, resolver: resolver, now: time.Now}
}

// Info describes a policy: its document, its schedule's state, the next
// run times and the recent runs.
type Info struct {
	Policy   Policy      `json:"policy"`
	Paused   bool        `json:"paused"`
	Note     string      `json:"note,omitempty"`
	NextRuns []time.Time `json:"nextRuns"`
	// RecentRuns are the latest runs, newest first.
	RecentRuns []Run      `json:"recentRuns"`
	Running    int        `json:"running"`
	Actions    int        `json:"actions"`
	Skipped    int        `json:"skippedOverlap"`
	Missed     int        `json:"missedCatchupWindow"`
	CreatedAt  time.Time  `json:"createdAt"`
	UpdatedAt  *time.Time `json:"updatedAt,omitempty"`
}

// Run is one run of a policy and the job it ran.
type Run struct {
	// ScheduledTime is the run's scheduled time: the reference of its age
	// filters.
	ScheduledTime time.Time `json:"scheduledTime"`
	StartTime     time.Time `json:"startTime"`
	// WorkflowID and RunID name the policy-run workflow.
	WorkflowID string `json:"workflowId"`
	RunID      string `json:"runId"`
	// Status is the policy run's: RUNNING, COMPLETED, FAILED, CANCELED, …
	Status string `json:"status"`
	// Outcome is STARTED, or ALREADY_RUNNING when the job was busy.
	Outcome string `json:"outcome,omitempty"`
	// Job is the job's workflow ID, JobID its job id, JobState its state.
	Job       string              `json:"job,omitempty"`
	JobID     string              `json:"jobId,omitempty"`
	JobState  workflows.JobStatus `json:"jobState,omitempty"`
	Qualified int64               `json:"qualified"`
	Succeeded int64               `json:"succeeded"`
	Skipped   int64               `json:"skipped"`
	Failed    int64               `json:"failed"`
	BytesDone int64               `json:"bytesDone"`
	// Error is why the run failed, when it did.
	Error string `json:"error,omitempty"`
}

// Summary is one policy in a list.
type Summary struct {
	Name     string     `json:"name"`
	Action   string     `json:"action"`
	Src      string     `json:"src"`
	Dst      string     `json:"dst,omitempty"`
	Schedule string     `json:"schedule"`
	Paused   bool       `json:"paused"`
	NextRun  *time.Time `json:"nextRun,omitempty"`
	LastRun  *time.Time `json:"lastRun,omitempty"`
	Running  int        `json:"running"`
}

// recentRunsShown bounds the runs Describe inspects.
const recentRunsShown = 10

// nextRunsShown is how many next run times Describe shows.
const nextRunsShown = 5

// Add validates p, checks that its source exists, and creates its
// schedule. ErrExists when the name is taken.
func (s *Service) Add(ctx context.Context, p Policy) error {
	if err := s.check(ctx, p); err != nil {
		return err
	}
	_, err := s.client.ScheduleClient().Create(ctx, p.ScheduleOptions())
	switch {
	case errors.Is(err, temporal.ErrScheduleAlreadyRunning):
		return fmt.Errorf("%w: %q", ErrExists, p.Name)
	case err != nil:
		return unavailable("create the schedule of "+p.Name, err)
	}
	return nil
}

// Update replaces the policy p.Name with p, keeping its schedule's state
// (paused or not, recent runs). ErrNotFound for an unknown name.
func (s *Service) Update(ctx context.Context, p Policy) error {
	if err := s.check(ctx, p); err != nil {
		return err
	}
	h := s.client.ScheduleClient().GetHandle(ctx, ScheduleID(p.Name))
	err := h.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			sched := in.Description.Schedule
			p.UpdateSchedule(&sched)
			return &client.ScheduleUpdate{Schedule: &sched}, nil
		},
	})
	return s.scheduleErr(p.Name, "update", err)
}

// check validates p and checks its source and destination as a job submit
// would.
func (s *Service) check(ctx context.Context, p Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if s.jobs == nil {
		return nil
	}
	opts, err := p.jobOptions()
	if err != nil {
		return err
	}
	if err := s.jobs.Check(ctx, p.Key(), opts); err != nil {
		var ie *jobs.InputError
		if errors.As(err, &ie) {
			field := ie.Field
			if field == "path" {
				field = "src"
			}
			return &ValidationError{Problems: []Problem{{Field: optionFieldOr(field), Message: ie.Message}}}
		}
		return err
	}
	return nil
}

func optionFieldOr(field string) string {
	switch field {
	case "src", "dst":
		return field
	}
	return optionField(field)
}

// Describe returns the policy named name with its schedule's state, next
// run times and recent runs.
func (s *Service) Describe(ctx context.Context, name string) (Info, error) {
	if err := checkName(name); err != nil {
		return Info{}, err
	}
	h := s.client.ScheduleClient().GetHandle(ctx, ScheduleID(name))
	d, err := h.Describe(ctx)
	if err != nil {
		return Info{}, s.scheduleErr(name, "describe", err)
	}
	p, err := FromSchedule(&d.Schedule)
	if err != nil {
		return Info{}, fmt.Errorf("policy %q: %w", name, err)
	}
	in := Info{
		Policy: p, CreatedAt: d.Info.CreatedAt, UpdatedAt: nonZero(d.Info.LastUpdateAt),
		Running: len(d.Info.RunningWorkflows), Actions: d.Info.NumActions,
		Skipped: d.Info.NumActionsSkippedOverlap, Missed: d.Info.NumActionsMissedCatchupWindow,
		NextRuns: []time.Time{}, RecentRuns: []Run{},
	}
	if st := d.Schedule.State; st != nil {
		in.Paused, in.Note = st.Paused, st.Note
	}
	for i, t := range d.Info.NextActionTimes {
		if i == nextRunsShown {
			break
		}
		in.NextRuns = append(in.NextRuns, t.UTC())
	}
	recent := d.Info.RecentActions
	for i := len(recent) - 1; i >= 0 && len(in.RecentRuns) < recentRunsShown; i-- {
		a := recent[i]
		if a.StartWorkflowResult == nil {
			continue
		}
		r := s.run(ctx, a.StartWorkflowResult.WorkflowID, a.StartWorkflowResult.FirstExecutionRunID)
		if r.ScheduledTime.IsZero() {
			r.ScheduledTime = a.ScheduleTime.UTC()
		}
		r.StartTime = a.ActualTime.UTC()
		in.RecentRuns = append(in.RecentRuns, r)
	}
	return in, nil
}

// run reads one policy run and its job: the run's result once it has
// ended, a progress query on its job while it runs.
func (s *Service) run(ctx context.Context, workflowID, runID string) Run {
	r := Run{WorkflowID: workflowID, RunID: runID}
	d, err := s.client.DescribeWorkflowExecution(ctx, workflowID, runID)
	if err != nil {
		r.Status, r.Error = "UNKNOWN", oneLine(err.Error())
		return r
	}
	info := d.GetWorkflowExecutionInfo()
	r.Status = strings.TrimPrefix(info.GetStatus().String(), "WORKFLOW_EXECUTION_STATUS_")
	r.Status = strings.ToUpper(r.Status)
	if info.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		for _, c := range d.GetPendingChildren() {
			r.Outcome, r.Job = workflows.PolicyRunStarted, c.GetWorkflowId()
			r.JobState = workflows.StatusRunning
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			v, err := s.client.QueryWorkflow(qctx, c.GetWorkflowId(), c.GetRunId(), workflows.QueryProgress)
			cancel()
			var st workflows.JobState
			if err == nil && v.Get(&st) == nil {
				r.setJob(&st)
			}
		}
		return r
	}
	var res workflows.PolicyRunResult
	err = s.client.GetWorkflow(ctx, workflowID, runID).Get(ctx, &res)
	if err != nil {
		r.Error = oneLine(err.Error())
		var ae *temporal.ApplicationError
		var ce *temporal.CanceledError
		switch {
		case errors.As(err, &ae) && ae.HasDetails():
			_ = ae.Details(&res)
		case errors.As(err, &ce) && ce.HasDetails():
			_ = ce.Details(&res)
		}
	}
	r.ScheduledTime, r.Outcome, r.Job = res.ScheduledTime, res.Outcome, res.JobWorkflowID
	if res.Job != nil {
		r.setJob(res.Job)
	}
	return r
}

func (r *Run) setJob(st *workflows.JobState) {
	r.JobID, r.JobState = st.JobID, st.Status
	r.Qualified, r.Succeeded, r.Skipped, r.Failed, r.BytesDone = st.Qualified, st.Succeeded, st.Skipped, st.Failed, st.BytesDone
}

// List returns every policy, by name.
func (s *Service) List(ctx context.Context) ([]Summary, error) {
	it, err := s.client.ScheduleClient().List(ctx, client.ScheduleListOptions{PageSize: 1000})
	if err != nil {
		return nil, unavailable("list schedules", err)
	}
	var ids []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, unavailable("list schedules", err)
		}
		if _, ok := NameOf(e.ID); ok {
			ids = append(ids, e.ID)
		}
	}
	sort.Strings(ids)
	out := []Summary{}
	for _, id := range ids {
		d, err := s.client.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
		if err != nil {
			var nf *serviceerror.NotFound
			if errors.As(err, &nf) {
				continue // deleted since it was listed
			}
			return nil, unavailable("describe "+id, err)
		}
		p, err := FromSchedule(&d.Schedule)
		if err != nil {
			continue // not one of ours after all
		}
		sum := Summary{Name: p.Name, Action: p.Action, Src: p.Src, Dst: p.Dst, Schedule: p.Schedule.String(), Running: len(d.Info.RunningWorkflows)}
		if d.Schedule.State != nil {
			sum.Paused = d.Schedule.State.Paused
		}
		if len(d.Info.NextActionTimes) > 0 {
			t := d.Info.NextActionTimes[0].UTC()
			sum.NextRun = &t
		}
		if n := len(d.Info.RecentActions); n > 0 {
			t := d.Info.RecentActions[n-1].ScheduleTime.UTC()
			sum.LastRun = &t
		}
		out = append(out, sum)
	}
	return out, nil
}

// String is the schedule in one line: "cron 0 2 * * * (UTC)" or "every 10s".
func (s Schedule) String() string {
	if s.Cron != "" {
		tz := s.Timezone
		if tz == "" {
			tz = "UTC"
		}
		return "cron " + s.Cron + " (" + tz + ")"
	}
	return "every " + string(s.Every)
}

// Delete removes the policy's schedule. Runs in progress keep running unless
// stopRunning, which asks every running job of the policy to stop; it
// returns how many were asked.
func (s *Service) Delete(ctx context.Context, name string, stopRunning bool) (int, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	h := s.client.ScheduleClient().GetHandle(ctx, ScheduleID(name))
	if err := s.scheduleErr(name, "delete", h.Delete(ctx)); err != nil {
		return 0, err
	}
	if !stopRunning {
		return 0, nil
	}
	return s.stopJobs(ctx, name)
}

// stopJobs signals stop to every running job started by the policy.
func (s *Service) stopJobs(ctx context.Context, name string) (int, error) {
	q := fmt.Sprintf("%s = '%s' AND %s IS NOT NULL AND ExecutionStatus = 'Running'",
		workflows.SearchAttrPolicy, name, workflows.SearchAttrJobType)
	stopped := 0
	var token []byte
	for {
		resp, err := s.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: q, NextPageToken: token})
		if err != nil {
			return stopped, unavailable("list the running jobs of "+name, err)
		}
		for _, e := range resp.GetExecutions() {
			ex := e.GetExecution()
			err := s.client.SignalWorkflow(ctx, ex.GetWorkflowId(), ex.GetRunId(), workflows.SignalStop, nil)
			var nf *serviceerror.NotFound
			switch {
			case err == nil:
				stopped++
			case errors.As(err, &nf):
				// ended meanwhile
			default:
				return stopped, unavailable("stop "+ex.GetWorkflowId(), err)
			}
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return stopped, nil
		}
	}
}

// Pause stops new runs of the policy until Resume; note says why.
func (s *Service) Pause(ctx context.Context, name, note string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if note == "" {
		note = "paused through Ferry"
	}
	h := s.client.ScheduleClient().GetHandle(ctx, ScheduleID(name))
	return s.scheduleErr(name, "pause", h.Pause(ctx, client.SchedulePauseOptions{Note: note}))
}

// Resume lets a paused policy run again.
func (s *Service) Resume(ctx context.Context, name, note string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if note == "" {
		note = "resumed through Ferry"
	}
	h := s.client.ScheduleClient().GetHandle(ctx, ScheduleID(name))
	return s.scheduleErr(name, "resume", h.Unpause(ctx, client.ScheduleUnpauseOptions{Note: note}))
}

// Trigger starts a run now, following the policy's overlap rule.
func (s *Service) Trigger(ctx context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	h := s.client.ScheduleClient().GetHandle(ctx, ScheduleID(name))
	return s.scheduleErr(name, "trigger", h.Trigger(ctx, client.ScheduleTriggerOptions{}))
}

// Backfill starts one run for every scheduled time in [from, to] (both
// included) that the schedule would have had. The runs are queued one after another (Temporal's
// buffer-all), whatever the policy's overlap, so each missed time gets its
// run and no two of them write at once.
func (s *Service) Backfill(ctx context.Context, name string, from, to time.Time) error {
	if err := checkName(name); err != nil {
		return err
	}
	switch {
	case from.IsZero():
		return &ValidationError{Problems: []Problem{{"from", "is required (RFC 3339, e.g. 2026-01-02T03:04:05Z)"}}}
	case to.IsZero():
		return &ValidationError{Problems: []Problem{{"to", "is required (RFC 3339, e.g. 2026-01-02T03:04:05Z)"}}}
	case !to.After(from):
		return &ValidationError{Problems: []Problem{{"to", "must be after from"}}}
	}
	h := s.client.ScheduleClient().GetHandle(ctx, ScheduleID(name))
	return s.scheduleErr(name, "backfill", h.Backfill(ctx, client.ScheduleBackfillOptions{
		// Temporal takes the times after Start: start just before from so
		// that a time equal to from is included.
		Backfill: []client.ScheduleBackfill{{Start: from.Add(-time.Millisecond), End: to, Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ALL}},
	}))
}

// Preview is what a run of a policy at a given time would select.
type Preview struct {
	Policy string    `json:"policy"`
	At     time.Time `json:"at"`
	Files  int64     `json:"files"`
	Bytes  int64     `json:"bytes"`
	// Paths are the first selected URIs, in listing order.
	Paths     []string `json:"paths"`
	Truncated bool     `json:"truncated"`
}

// Preview lists what a run of p scheduled at at would select, with the job
// engine's own listing and filters, without starting anything. A zero at
// means now.
func (s *Service) Preview(ctx context.Context, p Policy, at time.Time, maxPaths int) (Preview, error) {
	if err := s.check(ctx, p); err != nil {
		return Preview{}, err
	}
	if s.resolver == nil {
		return Preview{}, fmt.Errorf("%w: this API has no storage backends to preview with", jobs.ErrUnavailable)
	}
	if at.IsZero() {
		at = s.now()
	}
	at = at.UTC().Truncate(time.Second) // as Temporal records a scheduled time
	sel, err := p.selection(ctx, s.resolver, at, maxPaths)
	if err != nil {
		return Preview{}, err
	}
	out := Preview{Policy: p.Name, At: at, Files: sel.Files, Bytes: sel.Bytes, Paths: sel.Paths, Truncated: sel.Files > int64(len(sel.Paths))}
	if out.Paths == nil {
		out.Paths = []string{}
	}
	return out, nil
}

func checkName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return nil
}

func nonZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// scheduleErr words an error of a schedule operation.
func (s *Service) scheduleErr(name, op string, err error) error {
	if err == nil {
		return nil
	}
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	var ia *serviceerror.InvalidArgument
	if errors.As(err, &ia) {
		return &ValidationError{Problems: []Problem{{"schedule", "Temporal refused it: " + ia.Error()}}}
	}
	return unavailable(op+" policy "+name, err)
}

func unavailable(what string, err error) error {
	return fmt.Errorf("%w: %s: %s", jobs.ErrUnavailable, what, err.Error())
}
