package policies

import (
	"errors"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/ferryio/ferry/workflows"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeYAMLAndJSONAgree(t *testing.T) {
	y, err := Decode(readTestdata(t, "archive.yaml"))
	if err != nil {
		t.Fatalf("yaml: %v", err)
	}
	j, err := Decode(readTestdata(t, "archive.json"))
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	if !reflect.DeepEqual(y, j) {
		t.Fatalf("YAML and JSON differ:\n%+v\n%+v", y, j)
	}
	// The canonical JSON reads back to the same policy.
	back, err := Decode([]byte(y.JSON()))
	if err != nil || !reflect.DeepEqual(back, y) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, y)
	}
	if y.Filter.MinSize != "1KiB" || y.Options["bandwidth"] != "200MB" || y.Options["checkContent"] != true {
		t.Fatalf("decoded %+v", y)
	}
}

// base is a valid policy; each case changes it.
const base = `
name: p1
schedule: {every: 10s}
action: move
src: file:///data/hot
dst: file:///data/cold
`

func TestDecodeReportsEveryProblem(t *testing.T) {
	cases := []struct {
		name   string
		doc    string
		fields []string
	}{
		{"valid", base, nil},
		{"numbers as sizes", base + "filter: {minSize: 1024, maxSize: 2048}", nil},
		{"unknown top key", base + "colour: red", []string{"colour"}},
		{"unknown filter key", base + "filter: {olderThn: 1h}", []string{"filter.olderThn"}},
		{"unknown schedule key", strings.Replace(base, "every: 10s", "every: 10s, jitter: 1s", 1), []string{"schedule.jitter"}},
		{"wrong type", base + "filter: {include: 3}", []string{"filter.include"}},
		{"not a mapping", "- a\n- b", []string{""}},
		{"bad yaml", "name: [", []string{""}},
		{"missing name", strings.Replace(base, "name: p1", "", 1), []string{"name"}},
		{"bad name", strings.Replace(base, "name: p1", "name: Bad_Name", 1), []string{"name"}},
		{"reserved name", strings.Replace(base, "name: p1", "name: preview", 1), []string{"name"}},
		{"no schedule", strings.Replace(base, "schedule: {every: 10s}", "", 1), []string{"schedule"}},
		{"cron and every", strings.Replace(base, "every: 10s", "every: 10s, cron: '* * * * *'", 1), []string{"schedule"}},
		{"bad cron", strings.Replace(base, "every: 10s", "cron: '61 * * * *'", 1), []string{"schedule.cron"}},
		{"cron fields", strings.Replace(base, "every: 10s", "cron: '* * *'", 1), []string{"schedule.cron"}},
		{"bad every", strings.Replace(base, "every: 10s", "every: soon", 1), []string{"schedule.every"}},
		{"tiny every", strings.Replace(base, "every: 10s", "every: 10ms", 1), []string{"schedule.every"}},
		{"bad timezone", strings.Replace(base, "every: 10s", "every: 10s, timezone: Mars/Olympus", 1), []string{"schedule.timezone"}},
		{"bad overlap", strings.Replace(base, "every: 10s", "every: 10s, overlap: never", 1), []string{"schedule.overlap"}},
		{"short catch-up", strings.Replace(base, "every: 10s", "every: 10s, catchupWindow: 1s", 1), []string{"schedule.catchupWindow"}},
		{"bad action", strings.Replace(base, "action: move", "action: shred", 1), []string{"action"}},
		{"src = dst", strings.Replace(base, "file:///data/cold", "file:///data/hot/", 1), []string{"dst"}},
		{"dst inside src", strings.Replace(base, "file:///data/cold", "file:///data/hot/sub", 1), []string{"dst"}},
		{"no dst", strings.Replace(base, "dst: file:///data/cold", "", 1), []string{"dst"}},
		{"bad src", strings.Replace(base, "file:///data/hot", "data/hot", 1), []string{"src"}},
		{"load with dst", strings.Replace(base, "action: move", "action: load", 1), []string{"dst"}},
		{"bad regex", base + "filter: {namePattern: '(['}", []string{"filter.namePattern"}},
		{"bad glob", base + "filter: {include: ['a/[b']}", []string{"filter.include[0]"}},
		{"bad size", base + "filter: {minSize: 3 parsecs}", []string{"filter.minSize"}},
		{"min > max", base + "filter: {minSize: 2KiB, maxSize: 1KiB}", []string{"filter.minSize"}},
		{"bad age", base + "filter: {olderThan: yesterday}", []string{"filter.olderThan"}},
		{"empty window", base + "filter: {olderThan: 2h, newerThan: 1h}", []string{"filter.newerThan"}},
		{"unknown option", base + "options: {speed: fast}", []string{"options.speed"}},
		{"option of another type", base + "options: {replicas: 2}", []string{"options.replicas"}},
		{"bad option value", base + "options: {bandwidth: lots}", []string{"options.bandwidth"}},
		{"filter as option", base + "options: {olderThan: 1h}", []string{"options.olderThan"}},
		{"all at once", `
name: "X"
schedule: {cron: "bad", overlap: sometimes}
action: move
src: file:///a
dst: file:///a
filter: {namePattern: "(", minSize: huge, extra: 1}
options: {bandwidth: lots}
`, []string{"filter.extra", "name", "schedule.cron", "schedule.overlap", "dst", "filter.namePattern", "filter.minSize", "options.bandwidth"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.doc))
			var got []string
			if err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("error %T %v, want a *ValidationError", err, err)
				}
				for _, p := range ve.Problems {
					got = append(got, p.Field)
					if p.Message == "" {
						t.Errorf("problem of %q has no message", p.Field)
					}
				}
			}
			want := append([]string(nil), c.fields...)
			sort.Strings(got)
			sort.Strings(want)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("problem fields %q, want %q (%v)", got, want, err)
			}
		})
	}
}

func TestCron(t *testing.T) {
	valid := []string{"0 2 * * *", "*/5 * * * *", "0 9-17/2 * * mon-fri", "0 0 1 jan,jul *", "30 0 2 * * * 2030",
		"0 0 * * * 2027", "@daily", "@every 90s", "@every 1h/15m", "0 0 * * 7", "15 10 * * sun # comment"}
	invalid := []string{"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8",
		"*/0 * * * *", "5-1 * * * *", "a * * * *", "@sometimes", "@every 10ms", "TZ=UTC 0 2 * * *", "* * * * * * * *"}
	for _, c := range valid {
		if err := checkCron(c); err != nil {
			t.Errorf("checkCron(%q) = %v, want valid", c, err)
		}
	}
	for _, c := range invalid {
		if err := checkCron(c); err == nil {
			t.Errorf("checkCron(%q) accepted it", c)
		}
	}
}

func mustDecode(t *testing.T, doc string) Policy {
	t.Helper()
	p, err := Decode([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestScheduleMapping(t *testing.T) {
	p := mustDecode(t, string(readTestdata(t, "archive.yaml")))
	o := p.ScheduleOptions()
	if o.ID != "policy:archive-warm" || o.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_SKIP || o.CatchupWindow != time.Hour {
		t.Fatalf("options %+v", o)
	}
	if !reflect.DeepEqual(o.Spec.CronExpressions, []string{"0 2 * * *"}) || o.Spec.TimeZoneName != "UTC" {
		t.Fatalf("spec %+v", o.Spec)
	}
	a := o.Action.(*client.ScheduleWorkflowAction)
	if a.Workflow != workflows.PolicyRunWorkflowName || a.TaskQueue != workflows.CoordinatorTaskQueue || a.ID != "policy-run:archive-warm" {
		t.Fatalf("action %+v", a)
	}
	if v, ok := a.TypedSearchAttributes.GetKeyword(temporal.NewSearchAttributeKeyKeyword(workflows.SearchAttrPolicy)); !ok || v != p.Name {
		t.Fatalf("FerryPolicy %q %v", v, ok)
	}

	// Read back as a Describe answers it: arguments as payloads.
	payload, err := converter.GetDefaultDataConverter().ToPayload(a.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	described := client.Schedule{Action: &client.ScheduleWorkflowAction{Workflow: a.Workflow, Args: []any{payload}}}
	back, err := FromSchedule(&described)
	if err != nil || !reflect.DeepEqual(back, p) {
		t.Fatalf("FromSchedule: %v\n%+v\n%+v", err, back, p)
	}
	if _, err := FromSchedule(&client.Schedule{Action: &client.ScheduleWorkflowAction{Workflow: "Other"}}); err == nil {
		t.Fatal("FromSchedule took a schedule that is not a policy's")
	}

	// every and the other overlap policies.
	for overlap, want := range map[string]enumspb.ScheduleOverlapPolicy{
		"buffer-one": enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE, "cancel-other": enumspb.SCHEDULE_OVERLAP_POLICY_CANCEL_OTHER,
		"allow-all": enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL, "": enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
	} {
		q := mustDecode(t, strings.Replace(base, "every: 10s", "every: 10s, overlap: '"+overlap+"'", 1))
		o := q.ScheduleOptions()
		if o.Overlap != want || len(o.Spec.Intervals) != 1 || o.Spec.Intervals[0].Every != 10*time.Second {
			t.Errorf("overlap %q: %+v", overlap, o)
		}
	}

	// An update keeps the schedule's state and replaces the rest.
	s := client.Schedule{State: &client.ScheduleState{Paused: true, Note: "held"}, Policy: &client.SchedulePolicies{}}
	q := mustDecode(t, strings.Replace(base, "every: 10s", "every: 1m, overlap: buffer-one, pauseOnFailure: true", 1))
	q.UpdateSchedule(&s)
	if !s.State.Paused || s.Policy.Overlap != enumspb.SCHEDULE_OVERLAP_POLICY_BUFFER_ONE || !s.Policy.PauseOnFailure || s.Spec.Intervals[0].Every != time.Minute {
		t.Fatalf("updated schedule %+v %+v %+v", s.State, s.Policy, s.Spec)
	}
}

func TestJobRequestMeasuresAgesFromTheScheduledTime(t *testing.T) {
	p := mustDecode(t, base+`filter: {olderThan: 1h, newerThan: 2d, namePattern: '.*\.csv', include: ["**/x/**"], minSize: 1KiB}
options: {checkContent: true, batchSize: 50}`)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	key, opts, err := p.JobRequest(at)
	if err != nil {
		t.Fatal(err)
	}
	if key.WorkflowID() != "move:file:///data/hot:file:///data/cold" {
		t.Fatalf("workflow ID %q", key.WorkflowID())
	}
	f := opts.Filter
	if !f.ReferenceTime.Equal(at) || f.ReferenceTime.Location() != time.UTC || f.OlderThan != time.Hour || f.NewerThan != 48*time.Hour ||
		f.MinSize != 1024 || !reflect.DeepEqual(f.Include, []string{"**/x/**"}) {
		t.Fatalf("filter %+v", f)
	}
	if opts.FileFilterRegx != `.*\.csv` || !opts.CheckContent || opts.BatchSize != 50 || opts.Policy != "p1" {
		t.Fatalf("options %+v", opts)
	}

	res, err := PrepareRun(t.Context(), workflows.PreparePolicyRunInput{Document: p.JSON(), ScheduledTime: at})
	if err != nil || res.WorkflowID != key.WorkflowID() || !res.Job.Options.Filter.ReferenceTime.Equal(at) || res.Job.Type != workflows.JobMove {
		t.Fatalf("PrepareRun: %+v %v", res, err)
	}
	_, err = PrepareRun(t.Context(), workflows.PreparePolicyRunInput{Document: `{"name": "x"}`, ScheduledTime: at})
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) || !ae.NonRetryable() || ae.Type() != workflows.ErrTypeInvalidInput {
		t.Fatalf("PrepareRun of a bad document: %v", err)
	}
}
