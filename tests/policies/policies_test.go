package policytest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/policies"
)

const everyDoc = `name: %s
schedule: {every: 10s}
action: move
src: file://%s
dst: file://%s
filter: {olderThan: 1h}
`

// TestPolicyLifecycle drives one policy through `ferry dev`: bad input,
// preview, add, runs on their own with cut-offs from their scheduled times,
// listings, pause with a trigger and a backfill, resume, and deletes that
// keep or stop running jobs.
func TestPolicyLifecycle(t *testing.T) {
	t.Parallel()
	start := time.Now()
	e := startDev(t)
	t.Logf("%v: ferry dev ready", time.Since(start).Round(time.Second))
	root := t.TempDir()
	src, dst := filepath.Join(root, "hot"), filepath.Join(root, "cold")
	now := time.Now()
	old := []file{
		{"old-a.txt", 100, now.Add(-2 * time.Hour)},
		{"sub dir/old b.csv", 2000, now.Add(-3 * time.Hour)},
		{"sub dir/deep/été-c.bin", 30000, now.Add(-90 * time.Minute)},
	}
	young := []file{
		{"young-a.txt", 10, now.Add(-10 * time.Minute)},
		{"sub dir/young b.csv", 20, now.Add(-30 * time.Minute)},
	}
	writeFiles(t, src, append(old, young...)...)
	doc := fmt.Sprintf(everyDoc, "tidy", src, dst)

	t.Run("bad input is refused and creates nothing", func(t *testing.T) {
		e := e
		e.t = t
		cases := []struct{ doc, field string }{
			{strings.Replace(doc, "every: 10s", "cron: '61 * * * *'", 1), "schedule.cron"},
			{doc + "  namePattern: '(['\n", ""}, // replaced below: YAML flow mapping
			{doc + "colour: red\n", "colour"},
			{fmt.Sprintf(everyDoc, "tidy", src, src), "dst"},
			{fmt.Sprintf(everyDoc, "tidy", filepath.Join(root, "nowhere"), dst), "src"},
		}
		cases[1] = struct{ doc, field string }{strings.Replace(doc, "{olderThan: 1h}", "{olderThan: 1h, namePattern: '(['}", 1), "filter.namePattern"}
		for _, c := range cases {
			code, m := e.call("POST", "/api/v1/policies", c.doc, nil)
			if code != http.StatusBadRequest || m["field"] != c.field {
				t.Errorf("add %s: %d %v, want 400 naming %s", c.field, code, m, c.field)
			}
			e.cliFails(c.field, "policy", "add", "-f", policyYAML(t, c.doc))
		}
		code, m := e.call("POST", "/api/v1/policies/nope/pause", map[string]string{"note": "x"}, nil)
		if code != http.StatusNotFound {
			t.Errorf("pause of an unknown policy: %d %v", code, m)
		}
		e.cliFails("policy not found", "policy", "pause", "nope")
		var list struct{ Policies []policies.Summary }
		if code, m := e.call("GET", "/api/v1/policies", nil, &list); code != 200 || len(list.Policies) != 0 {
			t.Fatalf("after bad input: %d %v %+v", code, m, list)
		}
	})

	t.Logf("%v: bad input checked", time.Since(start).Round(time.Second))
	// Preview first: what the first run will move.
	var pv policies.Preview
	if code, m := e.call("POST", "/api/v1/policies/preview?limit=2", doc, &pv); code != 200 {
		t.Fatalf("preview: %d %v", code, m)
	}
	if pv.Files != 3 || pv.Bytes != bytesOf(old...) || len(pv.Paths) != 2 || !pv.Truncated {
		t.Fatalf("preview %+v, want 3 files, %d bytes", pv, bytesOf(old...))
	}
	if out := e.cliOK("policy", "preview", "-f", policyYAML(t, doc)); !strings.Contains(out, "would select 3 files") {
		t.Fatalf("CLI preview: %s", out)
	}

	docFile := policyYAML(t, doc)
	e.cliOK("policy", "add", "-f", docFile)
	if code, m := e.call("POST", "/api/v1/policies", doc, nil); code != http.StatusConflict || m["field"] != "name" {
		t.Fatalf("duplicate add: %d %v", code, m)
	}
	e.cliFails("already exists", "policy", "add", "-f", docFile)

	t.Logf("%v: policy added", time.Since(start).Round(time.Second))
	// The first run happens on its own and moves exactly the old files.
	first := e.waitRun("tidy", 2*time.Minute, "first run", func(r policies.Run) bool { return r.Outcome == "STARTED" })
	if first.JobState != "SUCCEEDED" || first.Succeeded != 3 || first.Qualified != 3 || first.BytesDone != bytesOf(old...) {
		t.Fatalf("first run %+v, want 3 files and %d bytes (the preview)", first, bytesOf(old...))
	}
	expectIn(t, src, dst, "dst", old...)
	expectIn(t, src, dst, "src", young...)

	t.Logf("%v: first run done", time.Since(start).Round(time.Second))
	// Files added between runs, two of them on either side of the cut-off
	// of a run scheduled at least 4 s ahead.
	in, err := e.describe("tidy")
	if err != nil {
		t.Fatal(err)
	}
	var at time.Time
	for _, n := range in.NextRuns {
		if n.After(time.Now().Add(4 * time.Second)) {
			at = n
			break
		}
	}
	edgeIn := file{"edge-in.txt", 7, at.Add(-time.Hour - time.Second)}
	edgeOut := file{"edge-out.txt", 8, at.Add(-time.Hour + 2*time.Second)}
	late := file{"late/old.txt", 9, time.Now().Add(-3 * time.Hour)}
	writeFiles(t, src, edgeIn, edgeOut, late)
	atRun := e.waitRun("tidy", time.Minute, "the run at "+at.String(), func(r policies.Run) bool { return r.ScheduledTime.Equal(at) })
	if atRun.JobState != "SUCCEEDED" {
		t.Fatalf("run at %v: %+v", at, atRun)
	}
	expectIn(t, src, dst, "dst", edgeIn, late)
	expectIn(t, src, dst, "src", edgeOut)
	// edge-out is taken by the first run whose cut-off passes its mtime;
	// the file reaches dst before that run's job has ended, so wait for
	// the runs to say so too.
	var between, after int64
	var in2 policies.Info
	ferrytest.Eventually(t, time.Minute, func() error {
		if w := where(t, src, dst, edgeOut); w != "dst" {
			return fmt.Errorf("edge-out in %s", w)
		}
		var err error
		if in2, err = e.describe("tidy"); err != nil {
			return err
		}
		between, after = 0, 0
		for _, r := range in2.RecentRuns {
			switch {
			case r.ScheduledTime.After(first.ScheduledTime) && !r.ScheduledTime.After(at):
				between += r.Succeeded
			case r.ScheduledTime.After(at):
				after += r.Succeeded
			}
		}
		if after < 1 {
			return fmt.Errorf("edge-out is in dst but no finished run after %v counts it yet", at)
		}
		return nil
	})
	for _, r := range in2.RecentRuns {
		if r.JobState != "SUCCEEDED" && r.Status != "RUNNING" {
			t.Errorf("run %+v did not succeed", r)
		}
		if r.Qualified != r.Succeeded {
			t.Errorf("run %+v: qualified != succeeded", r)
		}
	}
	if between != 2 || after != 1 {
		t.Errorf("runs after the first up to %v moved %d files (want 2: late, edge-in), later runs %d (want 1: edge-out): %+v", at, between, after, in2.RecentRuns)
	}
	expectIn(t, src, dst, "src", young...)

	t.Logf("%v: cut-off runs done", time.Since(start).Round(time.Second))
	// Every run is a job tagged with the policy: REST, CLI, Temporal.
	var jobs struct {
		Jobs []struct {
			Policy   string `json:"policy"`
			JobState string `json:"jobState"`
		} `json:"jobs"`
	}
	if code, m := e.call("GET", "/api/v1/jobs?type=move", nil, &jobs); code != 200 || len(jobs.Jobs) != 1 || jobs.Jobs[0].Policy != "tidy" {
		t.Fatalf("REST job list: %d %v %+v", code, m, jobs)
	}
	if out := e.cliOK("job", "list", "--format", "JSON"); !strings.Contains(out, `"policy":"tidy"`) {
		t.Fatalf("CLI job list: %s", out)
	}
	tc, err := client.Dial(client.Options{HostPort: e.temporal})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	ferrytest.Eventually(t, 30*time.Second, func() error {
		resp, err := tc.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Query: "FerryPolicy = 'tidy' AND FerryJobType = 'move' AND ExecutionStatus = 'Completed'"})
		if err != nil {
			return err
		}
		if n := len(resp.GetExecutions()); n < 3 {
			return fmt.Errorf("%d job runs tagged FerryPolicy=tidy", n)
		}
		return nil
	})
	out := e.cliOK("policy", "describe", "tidy")
	for _, want := range []string{"Policy:", "every 10s", "olderThan 1h", "Next runs:", "Recent runs:", "SUCCEEDED"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
	if in.NextRuns == nil || len(in.NextRuns) != 5 {
		t.Errorf("describe shows %d next runs, want 5", len(in.NextRuns))
	}
	if out := e.cliOK("policy", "list"); !strings.Contains(out, "NAME") || !strings.Contains(out, "tidy") || !strings.Contains(out, "every 10s") {
		t.Errorf("list:\n%s", out)
	}

	t.Logf("%v: listings checked", time.Since(start).Round(time.Second))
	// Pause: no scheduled run starts; a trigger and a backfill still run.
	e.cliOK("policy", "pause", "tidy", "--note", "maintenance")
	pausedAt := time.Now()
	ferrytest.Eventually(t, time.Minute, func() error {
		in, err := e.describe("tidy")
		if err != nil {
			return err
		}
		if !in.Paused || in.Note != "maintenance" || in.Running != 0 {
			return fmt.Errorf("paused %v (%q), %d running", in.Paused, in.Note, in.Running)
		}
		return nil
	})
	in, _ = e.describe("tidy")
	actionsAtPause := in.Actions
	trig := file{"trig.txt", 11, time.Now().Add(-2 * time.Hour)}
	writeFiles(t, src, trig)
	e.cliOK("policy", "trigger", "tidy")
	trigRun := e.waitRun("tidy", time.Minute, "the triggered run", func(r policies.Run) bool { return r.StartTime.After(pausedAt) })
	if trigRun.Succeeded != 1 {
		t.Fatalf("triggered run %+v, want 1 file", trigRun)
	}
	expectIn(t, src, dst, "dst", trig)

	t.Logf("%v: trigger done", time.Since(start).Round(time.Second))
	base := pausedAt.Truncate(10 * time.Second)
	b1, b3 := base.Add(-40*time.Second), base.Add(-20*time.Second)
	bf := []file{
		{"bf/a.txt", 1, b1.Add(-time.Hour)},                 // the run at b1
		{"bf/b.txt", 2, b1.Add(10*time.Second - time.Hour)}, // at b1+10s
		{"bf/c.txt", 3, b3.Add(-time.Hour)},                 // at b3
		{"bf/d.txt", 4, b3.Add(time.Second - time.Hour)},    // none of them
	}
	writeFiles(t, src, bf...)
	backfillAt := time.Now()
	e.cliOK("policy", "backfill", "tidy", "--from", b1.UTC().Format(time.RFC3339), "--to", b3.UTC().Format(time.RFC3339))
	for i := 0; i < 3; i++ {
		s := b1.Add(time.Duration(i) * 10 * time.Second)
		r := e.waitRun("tidy", time.Minute, "backfill at "+s.String(), func(r policies.Run) bool {
			return r.ScheduledTime.Equal(s) && r.StartTime.After(backfillAt)
		})
		if r.JobState != "SUCCEEDED" || r.Succeeded != 1 {
			t.Errorf("backfilled run at %v: %+v, want 1 file", s, r)
		}
	}
	expectIn(t, src, dst, "dst", bf[:3]...)
	expectIn(t, src, dst, "src", bf[3])
	// The pause has covered at least one scheduled time before resuming.
	ferrytest.Eventually(t, 30*time.Second, func() error {
		if time.Since(pausedAt) < 11*time.Second {
			return fmt.Errorf("paused for %v", time.Since(pausedAt))
		}
		return nil
	})
	in, _ = e.describe("tidy")
	if in.Actions != actionsAtPause+4 {
		t.Errorf("%d actions while paused, want 4 (a trigger, 3 backfills)", in.Actions-actionsAtPause)
	}
	t.Logf("%v: backfill done", time.Since(start).Round(time.Second))
	e.cliOK("policy", "resume", "tidy")
	resumedAt := time.Now()
	in, _ = e.describe("tidy")
	for _, r := range in.RecentRuns {
		if r.StartTime.After(pausedAt) && r.StartTime.Before(resumedAt) && !r.StartTime.Equal(trigRun.StartTime) && r.ScheduledTime.After(base.Add(-time.Second)) {
			t.Errorf("a scheduled run started while paused: %+v", r)
		}
	}
	e.waitRun("tidy", time.Minute, "a run after resume", func(r policies.Run) bool { return r.ScheduledTime.After(resumedAt) })
	expectIn(t, src, dst, "dst", bf[3])
	expectIn(t, src, dst, "src", young...)

	var info policies.Info
	if err := json.Unmarshal([]byte(e.cliOK("policy", "describe", "tidy", "--format", "JSON")), &info); err != nil || len(info.NextRuns) != 5 || info.Paused {
		t.Fatalf("describe --format JSON: %v %+v", err, info)
	}
	updated := strings.Replace(doc, "{olderThan: 1h}", "{olderThan: 1h, exclude: ['**/*.tmp']}", 1)
	e.cliOK("policy", "update", "-f", policyYAML(t, updated))
	if in, err := e.describe("tidy"); err != nil || len(in.Policy.Filter.Exclude) != 1 || in.Paused || in.Actions < info.Actions {
		t.Fatalf("after update: %v %+v", err, in)
	}
	if code, m := e.call("PUT", "/api/v1/policies/other", updated, nil); code != http.StatusBadRequest || m["field"] != "name" {
		t.Errorf("PUT with another name: %d %v", code, m)
	}
	if code, m := e.call("PUT", "/api/v1/policies/nope", strings.Replace(updated, "name: tidy", "name: nope", 1), nil); code != http.StatusNotFound {
		t.Errorf("PUT of an unknown policy: %d %v", code, m)
	}
	t.Logf("%v: resume done", time.Since(start).Round(time.Second))
	t.Run("delete leaves running jobs alone unless asked", func(t *testing.T) {
		e := e
		e.t = t
		big := file{"big.bin", 6 << 20, time.Now()}
		slowSrc := filepath.Join(root, "slow")
		writeFiles(t, slowSrc, big)
		for i, stop := range []bool{false, true} {
			name := fmt.Sprintf("slow-%d", i)
			slowDst := filepath.Join(root, name)
			// allow-all: a second run while the first one's job runs must
			// find the job's workflow ID busy and start nothing.
			doc := fmt.Sprintf("name: %s\nschedule: {cron: '0 0 1 1 *', overlap: allow-all}\naction: copy\nsrc: file://%s\ndst: file://%s\noptions: {bandwidth: 1MB}\n", name, slowSrc, slowDst)
			e.cliOK("policy", "add", "-f", policyYAML(t, doc))
			e.cliOK("policy", "trigger", name)
			t.Logf("%v: %s triggered", time.Since(start).Round(time.Second), name)
			ferrytest.Eventually(t, time.Minute, func() error {
				in, err := e.describe(name)
				if err != nil {
					return err
				}
				if len(in.RecentRuns) == 0 || in.RecentRuns[0].JobState != "RUNNING" {
					return fmt.Errorf("runs %+v", in.RecentRuns)
				}
				return nil
			})
			if !stop {
				// A schedule names each run by the second it was triggered
				// in: a second trigger within the first's second would be
				// the same run. Wait for the clock to pass that second.
				in, err := e.describe(name)
				if err != nil {
					t.Fatal(err)
				}
				first := in.RecentRuns[0].StartTime.Truncate(time.Second)
				ferrytest.Eventually(t, 5*time.Second, func() error {
					if now := time.Now().Truncate(time.Second); !now.After(first) {
						return fmt.Errorf("still in the first run's second %v", first)
					}
					return nil
				})
				e.cliOK("policy", "trigger", name)
				busy := e.waitRun(name, 30*time.Second, "the second run", func(r policies.Run) bool { return r.Outcome == "ALREADY_RUNNING" })
				if busy.Status != "COMPLETED" || busy.JobState != "" {
					t.Errorf("second run while the job ran: %+v", busy)
				}
			}
			args := []string{"policy", "delete", name}
			if stop {
				args = append(args, "--stop-running")
			}
			t.Logf("%v: %s running", time.Since(start).Round(time.Second), name)
			out := e.cliOK(args...)
			if stop && !strings.Contains(out, "Asked 1 running job(s) to stop") {
				t.Errorf("delete --stop-running: %s", out)
			}
			if code, _ := e.call("GET", "/api/v1/policies/"+name, nil, nil); code != http.StatusNotFound {
				t.Errorf("describe after delete: %d", code)
			}
			want := "SUCCEEDED"
			if stop {
				want = "STOPPED"
			}
			ferrytest.Eventually(t, time.Minute, func() error {
				var p struct{ Message string }
				code, m := e.call("POST", "/api/v1/master/progress_job/copy", map[string]string{"src": "file://" + slowSrc, "dst": "file://" + slowDst, "format": "JSON"}, &p)
				if code != 200 {
					return fmt.Errorf("progress: %d %v", code, m)
				}
				if !strings.Contains(p.Message, `"mJobState":"`+want+`"`) {
					return fmt.Errorf("job: %s", p.Message)
				}
				return nil
			})
		}
	})

	t.Logf("%v: delete subtest done", time.Since(start).Round(time.Second))
	e.cliOK("policy", "delete", "tidy")
	var list struct{ Policies []policies.Summary }
	ferrytest.Eventually(t, 30*time.Second, func() error {
		if code, m := e.call("GET", "/api/v1/policies", nil, &list); code != 200 || len(list.Policies) != 0 {
			return fmt.Errorf("after delete: %d %v %+v", code, m, list)
		}
		return nil
	})
}
