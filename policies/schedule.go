package policies

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// ScheduleIDPrefix starts the ID of every policy's Temporal Schedule.
const ScheduleIDPrefix = "policy:"

// RunWorkflowIDPrefix starts the workflow ID of every policy run; Temporal
// appends the scheduled time ("policy-run:archive-2026-01-02T03:04:05Z").
const RunWorkflowIDPrefix = "policy-run:"

// ScheduleID is the Temporal Schedule ID of the policy named name.
func ScheduleID(name string) string { return ScheduleIDPrefix + name }

// NameOf returns the policy name of a schedule ID, and whether the ID is a
// policy's.
func NameOf(scheduleID string) (string, bool) {
	return strings.CutPrefix(scheduleID, ScheduleIDPrefix)
}

// overlapPolicy maps a policy's overlap to Temporal's.
func overlapPolicy(s string) (enumspb.ScheduleOverlapPolicy, error) {
	switch s {
	case "", OverlapSkip:
		return enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, nil
	case OverlapBufferOne:
		return enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE, nil
	case OverlapCancelOther:
		return enumspb.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER, nil
	case OverlapAllowAll:
		return enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL, nil
	}
	return 0, fmt.Errorf("%q: want skip, buffer-one, cancel-other or allow-all", s)
}

// spec is the policy's schedule as Temporal's.
func (p Policy) spec() client.ScheduleSpec {
	s := client.ScheduleSpec{TimeZoneName: p.Schedule.Timezone}
	if p.Schedule.Cron != "" {
		s.CronExpressions = []string{p.Schedule.Cron}
	} else {
		d, _ := jobs.ParseDuration(string(p.Schedule.Every))
		s.Intervals = []client.ScheduleIntervalSpec{{Every: d}}
	}
	return s
}

// action is the schedule's action: start the policy-run workflow with the
// policy document. The document lives here — the schedule's action, which an
// update replaces as a whole — and in the memo of every run it starts.
// (Temporal's workflow-backed schedules refuse memo updates, so the
// schedule's own memo could not follow an update.)
func (p Policy) action() *client.ScheduleWorkflowAction {
	doc := p.JSON()
	return &client.ScheduleWorkflowAction{
		ID:        RunWorkflowIDPrefix + p.Name,
		Workflow:  workflows.PolicyRunWorkflowName,
		Args:      []any{workflows.PolicyRunInput{Policy: p.Name, Document: doc}},
		TaskQueue: workflows.CoordinatorTaskQueue,
		Memo:      map[string]any{"policy": doc},
		TypedSearchAttributes: temporal.NewSearchAttributes(
			temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrPolicy).ValueSet(p.Name)),
	}
}

// catchupWindow is the policy's catch-up window; 0 leaves Temporal's
// default.
func (p Policy) catchupWindow() time.Duration {
	if p.Schedule.CatchupWindow == "" {
		return 0
	}
	d, _ := jobs.ParseDuration(string(p.Schedule.CatchupWindow))
	return d
}

// ScheduleOptions is the Temporal Schedule of a valid policy.
func (p Policy) ScheduleOptions() client.ScheduleOptions {
	overlap, _ := overlapPolicy(p.Schedule.Overlap)
	return client.ScheduleOptions{
		ID:             ScheduleID(p.Name),
		Spec:           p.spec(),
		Action:         p.action(),
		Overlap:        overlap,
		CatchupWindow:  p.catchupWindow(),
		PauseOnFailure: p.Schedule.PauseOnFailure,
		Note:           "Ferry policy " + p.Name,
	}
}

// UpdateSchedule replaces what p defines in an existing schedule (spec,
// action and policies) and keeps its state: paused, notes, recent runs.
func (p Policy) UpdateSchedule(s *client.Schedule) {
	overlap, _ := overlapPolicy(p.Schedule.Overlap)
	spec := p.spec()
	s.Spec = &spec
	s.Action = p.action()
	if s.Policy == nil {
		s.Policy = &client.SchedulePolicies{}
	}
	s.Policy.Overlap = overlap
	s.Policy.CatchupWindow = p.catchupWindow()
	s.Policy.PauseOnFailure = p.Schedule.PauseOnFailure
}

// FromSchedule reads the policy document back from a schedule's action.
func FromSchedule(s *client.Schedule) (Policy, error) {
	if s == nil {
		return Policy{}, fmt.Errorf("the schedule has no definition")
	}
	a, ok := s.Action.(*client.ScheduleWorkflowAction)
	if !ok || a.Workflow != workflows.PolicyRunWorkflowName || len(a.Args) != 1 {
		return Policy{}, fmt.Errorf("the schedule does not start a %s workflow", workflows.PolicyRunWorkflowName)
	}
	var in workflows.PolicyRunInput
	switch v := a.Args[0].(type) {
	case workflows.PolicyRunInput:
		in = v
	case *commonpb.Payload:
		if err := converter.GetDefaultDataConverter().FromPayload(v, &in); err != nil {
			return Policy{}, fmt.Errorf("decode the schedule's policy document: %w", err)
		}
	default:
		b, err := json.Marshal(v)
		if err != nil || json.Unmarshal(b, &in) != nil {
			return Policy{}, fmt.Errorf("the schedule's action argument is a %T, not a policy document", v)
		}
	}
	p, err := Parse([]byte(in.Document))
	if err != nil {
		return p, fmt.Errorf("the schedule's policy document: %w", err)
	}
	return p, nil
}
