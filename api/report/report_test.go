package report

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/workflows"
)

func TestFormatSize(t *testing.T) {
	const k, m, g, tb, pb = int64(1) << 10, int64(1) << 20, int64(1) << 30, int64(1) << 40, int64(1) << 50
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{0, "0B"},
		{1, "1B"},
		{1024, "1024B"},
		{5 * k, "5120B"},    // the boundary itself stays in bytes
		{5*k + 1, "5.00KB"}, // one byte more switches unit
		{2570035, "2509.80KB"},
		{5 * m, "5120.00KB"},
		{5*m + 1, "5.00MB"},
		{10 * m, "10.00MB"},
		{5 * g, "5120.00MB"},
		{5*g + 1, "5.00GB"},
		{5 * tb, "5120.00GB"},
		{5*tb + 1, "5.00TB"},
		{5 * pb, "5120.00TB"},
		{5*pb + pb, "6.00PB"},
		{math.MaxInt64, "8192.00PB"},
	} {
		if got := FormatSize(tc.n); got != tc.want {
			t.Errorf("FormatSize(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestPercent(t *testing.T) {
	for _, tc := range []struct {
		part, whole int64
		want        string
	}{
		{0, 0, "0.00%"}, // nothing counted yet: never NaN
		{5, 0, "0.00%"},
		{0, 10, "0.00%"},
		{1, 3, "33.33%"},
		{1, 8, "12.50%"},
		{2, 3, "66.67%"},
		{10, 10, "100.00%"},
	} {
		if got := FormatPercent(Percent(tc.part, tc.whole)); got != tc.want {
			t.Errorf("Percent(%d, %d) = %q, want %q", tc.part, tc.whole, got, tc.want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := FormatPercent(f); got != "0.00%" {
			t.Errorf("FormatPercent(%v) = %q", f, got)
		}
	}
}

func TestFormatElapsed(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "00:00:00"},
		{-time.Second, "00:00:00"},
		{999 * time.Millisecond, "00:00:00"},
		{59*time.Second + 900*time.Millisecond, "00:00:59"},
		{time.Minute, "00:01:00"},
		{time.Hour + time.Minute + time.Second, "01:01:01"},
		{25 * time.Hour, "25:00:00"},
		{100*time.Hour + 59*time.Minute + 59*time.Second, "100:59:59"},
	} {
		if got := FormatElapsed(tc.d); got != tc.want {
			t.Errorf("FormatElapsed(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestFormatDate(t *testing.T) {
	base := time.Date(2026, 3, 1, 9, 8, 7, 0, time.UTC)
	for _, tc := range []struct {
		ms   int
		want string
	}{
		{0, "2026-03-01 09:08:07.0"},
		{5, "2026-03-01 09:08:07.5"},
		{50, "2026-03-01 09:08:07.50"},
		{123, "2026-03-01 09:08:07.123"},
	} {
		got := FormatDate(base.Add(time.Duration(tc.ms)*time.Millisecond), time.UTC)
		if got != tc.want {
			t.Errorf("FormatDate(+%dms) = %q, want %q", tc.ms, got, tc.want)
		}
	}
	if got := FormatDate(time.Time{}, time.UTC); got != "-" {
		t.Errorf("zero date = %q", got)
	}
	// Dates print in the renderer's zone.
	paris, err := time.LoadLocation("Europe/Paris")
	if err == nil {
		if got := FormatDate(base, paris); got != "2026-03-01 10:08:07.0" {
			t.Errorf("Paris date = %q", got)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": Text, "text": Text, "TEXT": Text, " json ": JSON, "Json": JSON} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("yaml"); err == nil || !strings.Contains(err.Error(), "yaml") {
		t.Errorf("ParseFormat(yaml) error = %v", err)
	}
}

var (
	submitted = time.Date(2026, 3, 1, 10, 0, 0, 5*int(time.Millisecond), time.UTC)
	now       = submitted.Add(10 * time.Second)
	renderer  = Renderer{Now: func() time.Time { return now }, Location: time.UTC}
)

const mib = 1 << 20

type layoutCase struct {
	name    string
	st      workflows.JobState
	verbose bool
	want    string
	// contains, when set instead of want, is a line the report holds.
	contains string
}

func layoutCases() []layoutCase {
	loadBase := func() workflows.JobState {
		return workflows.JobState{
			JobID: "5b3f0c1e-0000-4000-8000-000000000001", Type: workflows.JobLoad, Path: "file:///data/a",
			Status: workflows.StatusRunning, Stage: workflows.StageLoading,
			SubmitTime: submitted, RunStartTime: submitted, Runs: 1,
			TotalsKnown: true, TotalFiles: 10, TotalBytes: 10 * mib,
			Qualified: 6, QualifiedSize: 6 * mib, Succeeded: 4, Failed: 1, BytesDone: 4 * mib,
		}
	}
	copyBase := func(t workflows.JobType) workflows.JobState {
		return workflows.JobState{
			JobID: "5b3f0c1e-0000-4000-8000-000000000002", Type: t, Path: "file:///src", Dst: "file:///dst",
			Status: workflows.StatusRunning, Stage: workflows.StageCopying,
			SubmitTime: submitted, RunStartTime: submitted, Runs: 1,
			Qualified: 8, QualifiedSize: 8 * mib, Succeeded: 5, Skipped: 1, Failed: 1, BytesDone: 5 * mib,
		}
	}
	var cases []layoutCase

	cases = append(cases, layoutCase{name: "load running with totals", st: loadBase(), want: "" +
		"Progress for loading path 'file:///data/a':\n" +
		"\tSettings:\tbandwidth: unlimited\tverify: false\tmetadata-only: false\n" +
		"\tTime Elapsed: 00:00:10\n" +
		"\tJob State: RUNNING\n" +
		"\tFiles Processed: 5 out of 10\n" +
		"\tBytes Loaded: 4096.00KB out of 10.00MB\n" +
		"\tThroughput: 409.60KB/s\n" +
		"\tFile Failure rate: 20.00%\n" +
		"\tFiles Failed: 1\n"})

	verbose := loadBase()
	verbose.Options.Bandwidth = mib
	verbose.Options.Verify = true
	verbose.RecentFailures = []workflows.Failure{
		{Path: "file:///data/a/x", Reason: "PERMISSION_DENIED", Message: "open x:\npermission denied"},
	}
	verbose.FailuresLocation = "file:///var/ferry/failures/load-a.txt"
	cases = append(cases, layoutCase{name: "load verbose with stage and failures", st: verbose, verbose: true, want: "" +
		"Progress for loading path 'file:///data/a':\n" +
		"\tSettings:\tbandwidth: 1048576\tverify: true\tmetadata-only: false\n" +
		"\tTime Elapsed: 00:00:10\n" +
		"\tJob State: RUNNING\n" +
		"\tStage: LOADING\n" +
		"\tFiles Processed: 5 out of 10\n" +
		"\tBytes Loaded: 4096.00KB out of 10.00MB\n" +
		"\tThroughput: 409.60KB/s\n" +
		"\tFile Failure rate: 20.00%\n" +
		"\tFiles Failed: 1\n" +
		"\tRecent failed files:\n" +
		"\t\tfile:///data/a/x: Reason: PERMISSION_DENIED, message: open x: permission denied\n" +
		"\tFailed files saved to: file:///var/ferry/failures/load-a.txt\n"})

	nonVerbose := verbose
	cases = append(cases, layoutCase{name: "load not verbose hides stage and failures", st: nonVerbose, want: "" +
		"Progress for loading path 'file:///data/a':\n" +
		"\tSettings:\tbandwidth: 1048576\tverify: true\tmetadata-only: false\n" +
		"\tTime Elapsed: 00:00:10\n" +
		"\tJob State: RUNNING\n" +
		"\tFiles Processed: 5 out of 10\n" +
		"\tBytes Loaded: 4096.00KB out of 10.00MB\n" +
		"\tThroughput: 409.60KB/s\n" +
		"\tFile Failure rate: 20.00%\n" +
		"\tFiles Failed: 1\n" +
		"\tFailed files saved to: file:///var/ferry/failures/load-a.txt\n"})

	skip := loadBase()
	skip.Options.SkipIfExists = true
	skip.Options.PartialListing = true
	skip.TotalsKnown, skip.TotalFiles, skip.TotalBytes = false, 0, 0
	skip.Skipped, skip.BytesSkipped = 2, 2048
	cases = append(cases, layoutCase{name: "load skip-if-exists partial listing", st: skip, want: "" +
		"Progress for loading path 'file:///data/a':\n" +
		"\tSettings:\tbandwidth: unlimited\tverify: false\tmetadata-only: false\n" +
		"\tTime Elapsed: 00:00:10\n" +
		"\tJob State: RUNNING\n" +
		"\tFiles Processed: 7\n" +
		"\tBytes Skipped: 2048B\n" +
		"\tBytes Loaded: 4096.00KB\n" +
		"\tThroughput: 409.60KB/s\n" +
		"\tFile Failure rate: 14.29%\n" +
		"\tFiles Failed: 1\n"})

	meta := workflows.JobState{
		JobID: "id", Type: workflows.JobLoad, Path: "s3://bucket/p/", Status: workflows.StatusRunning,
		Stage: workflows.StageListing, Options: workflows.Options{MetadataOnly: true},
		SubmitTime: now.Add(-500 * time.Millisecond), RunStartTime: now.Add(-500 * time.Millisecond),
	}
	cases = append(cases, layoutCase{name: "load metadata-only just started", st: meta, verbose: true, want: "" +
		"Progress for loading path 's3://bucket/p/':\n" +
		"\tSettings:\tbandwidth: unlimited\tverify: false\tmetadata-only: true\n" +
		"\tTime Elapsed: 00:00:00\n" +
		"\tJob State: RUNNING\n" +
		"\tStage: LISTING\n" +
		"\tFiles Processed: 0\n" +
		"\tFile Failure rate: 0.00%\n" +
		"\tFiles Failed: 0\n"})

	failed := loadBase()
	failed.Status, failed.Reason = workflows.StatusFailed, "Job partially failed."
	failed.ListingDone = true
	failed.ElapsedBefore = 30 * time.Minute
	failed.RunStartTime = submitted.Add(time.Hour)
	failed.EndTime = failed.RunStartTime.Add(time.Hour + 2*time.Minute + 3*time.Second)
	failed.Succeeded, failed.Failed, failed.Qualified = 9, 1, 10
	failed.BytesDone = 9 * mib
	cases = append(cases, layoutCase{name: "load failed after a resume", st: failed, verbose: true, want: "" +
		"Progress for loading path 'file:///data/a':\n" +
		"\tSettings:\tbandwidth: unlimited\tverify: false\tmetadata-only: false\n" +
		"\tTime Elapsed: 01:32:03\n" +
		"\tJob State: FAILED (Job partially failed.)\n" +
		"\tFiles Processed: 10 out of 10\n" +
		"\tBytes Loaded: 9.00MB out of 10.00MB\n" +
		"\tThroughput: 1708B/s\n" +
		"\tFile Failure rate: 10.00%\n" +
		"\tFiles Failed: 1\n"})

	// A job FAILED by its verify pass: its main counters have no failure,
	// the verify line says what the pass found.
	verified := loadBase()
	verified.Status, verified.Reason = workflows.StatusFailed, "1 loaded file(s) were no longer cached whole when verified (see the failure list)."
	verified.Options.Verify = true
	verified.ListingDone = true
	verified.EndTime = verified.RunStartTime.Add(10 * time.Second)
	verified.Succeeded, verified.Failed, verified.Qualified, verified.BytesDone = 10, 0, 10, 10*mib
	verified.VerifyPass, verified.VerifyLoadedFiles, verified.VerifyLoadedBytes, verified.VerifyFailed = 1, 2, 2*mib, 1
	cases = append(cases, layoutCase{name: "load failed by its verify pass", st: verified, want: "" +
		"Progress for loading path 'file:///data/a':\n" +
		"\tSettings:\tbandwidth: unlimited\tverify: true\tmetadata-only: false\n" +
		"\tTime Elapsed: 00:00:10\n" +
		"\tJob State: FAILED (1 loaded file(s) were no longer cached whole when verified (see the failure list).)\n" +
		"\tFiles Processed: 10 out of 10\n" +
		"\tBytes Loaded: 10.00MB out of 10.00MB\n" +
		"\tThroughput: 1024.00KB/s\n" +
		"\tFile Failure rate: 0.00%\n" +
		"\tFiles Failed: 0\n" +
		"\tVerify: 1 pass(es), 2 file(s) loaded again (2048.00KB), 1 failed\n"})

	cases = append(cases, layoutCase{name: "copy running", st: copyBase(workflows.JobCopy), want: "" +
		"Progress for jobId 5b3f0c1e-0000-4000-8000-000000000002 copying path 'file:///src' to 'file:///dst':\n" +
		"\tSettings: \"check-content: false\"\n" +
		"\tJob Submitted: 2026-03-01 10:00:00.5\n" +
		"\tJob Id: 5b3f0c1e-0000-4000-8000-000000000002\n" +
		"\tJob State: RUNNING\n" +
		"\tFiles qualified so far: 8, 8.00MB\n" +
		"\tFiles Failed: 1\n" +
		"\tFiles Skipped: 1\n" +
		"\tFiles Succeeded: 5\n" +
		"\tBytes Copied: 5120.00KB\n" +
		"\tThroughput: 512.00KB/s\n" +
		"\tFiles failure rate: 14.29%\n"})

	done := copyBase(workflows.JobCopy)
	done.Options.CheckContent = true
	done.Status, done.ListingDone = workflows.StatusSucceeded, true
	done.Qualified, done.Succeeded, done.Skipped, done.Failed = 8, 7, 1, 0
	done.BytesDone = 7 * mib
	done.EndTime = submitted.Add(2 * time.Second).Add(120 * time.Millisecond)
	cases = append(cases, layoutCase{name: "copy succeeded", st: done, verbose: true, want: "" +
		"Progress for jobId 5b3f0c1e-0000-4000-8000-000000000002 copying path 'file:///src' to 'file:///dst':\n" +
		"\tSettings: \"check-content: true\"\n" +
		"\tJob Submitted: 2026-03-01 10:00:00.5\n" +
		"\tJob Id: 5b3f0c1e-0000-4000-8000-000000000002\n" +
		"\tJob State: SUCCEEDED, finished at 2026-03-01 10:00:02.125\n" +
		"\tFiles qualified: 8, 8.00MB\n" +
		"\tFiles Failed: 0\n" +
		"\tFiles Skipped: 1\n" +
		"\tFiles Succeeded: 7\n" +
		"\tBytes Copied: 7.00MB\n" +
		"\tThroughput: 3381.13KB/s\n" +
		"\tFiles failure rate: 0.00%\n"})

	mv := copyBase(workflows.JobMove)
	mv.Skipped = 0
	mv.Stage = workflows.StageMoving
	mv.RecentFailures = []workflows.Failure{{Path: "file:///src/b", Reason: "ALREADY_EXISTS", Message: "file:///dst/b already exists"}}
	cases = append(cases, layoutCase{name: "move running verbose", st: mv, verbose: true, want: "" +
		"Progress for jobId 5b3f0c1e-0000-4000-8000-000000000002 moving path 'file:///src' to 'file:///dst':\n" +
		"\tSettings: \"check-content: false\"\n" +
		"\tJob Submitted: 2026-03-01 10:00:00.5\n" +
		"\tJob Id: 5b3f0c1e-0000-4000-8000-000000000002\n" +
		"\tJob State: RUNNING\n" +
		"\tStage: MOVING\n" +
		"\tFiles qualified so far: 8, 8.00MB\n" +
		"\tFiles Failed: 1\n" +
		"\tFiles Succeeded: 5\n" +
		"\tBytes Moved: 5120.00KB\n" +
		"\tThroughput: 512.00KB/s\n" +
		"\tFiles failure rate: 16.67%\n" +
		"\tRecent failed files:\n" +
		"\t\tfile:///src/b: Reason: ALREADY_EXISTS, message: file:///dst/b already exists\n"})

	stopped := copyBase(workflows.JobMove)
	stopped.Status = workflows.StatusStopped
	stopped.EndTime = submitted.Add(4 * time.Second)
	cases = append(cases, layoutCase{name: "move stopped mid-listing", st: stopped, want: "" +
		"Progress for jobId 5b3f0c1e-0000-4000-8000-000000000002 moving path 'file:///src' to 'file:///dst':\n" +
		"\tSettings: \"check-content: false\"\n" +
		"\tJob Submitted: 2026-03-01 10:00:00.5\n" +
		"\tJob Id: 5b3f0c1e-0000-4000-8000-000000000002\n" +
		"\tJob State: STOPPED, finished at 2026-03-01 10:00:04.5\n" +
		"\tFiles qualified so far: 8, 8.00MB\n" +
		"\tFiles Failed: 1\n" +
		"\tFiles Skipped: 1\n" +
		"\tFiles Succeeded: 5\n" +
		"\tBytes Moved: 5120.00KB\n" +
		"\tThroughput: 1280.00KB/s\n" +
		"\tFiles failure rate: 14.29%\n"})

	// A copy that ended for a reason says it, as a load does: a dry run, a
	// failure. A stop's reason ("stopped") adds nothing to STOPPED.
	for _, tc := range []struct {
		name, reason, state string
		status              workflows.JobStatus
	}{
		{"copy dry run", "dry run: nothing was changed", "SUCCEEDED (dry run: nothing was changed)", workflows.StatusSucceeded},
		{"copy failed early", "listing failed: list file:///src: permission denied", "FAILED (listing failed: list file:///src: permission denied)", workflows.StatusFailed},
		{"copy stopped with its reason", "stopped", "STOPPED", workflows.StatusStopped},
	} {
		st := copyBase(workflows.JobCopy)
		st.Status, st.Reason, st.ListingDone = tc.status, tc.reason, true
		st.Qualified, st.Succeeded, st.Skipped, st.Failed = 0, 0, 0, 0
		st.BytesDone = 0
		st.EndTime = submitted.Add(4 * time.Second)
		cases = append(cases, layoutCase{name: tc.name, st: st, contains: "\tJob State: " + tc.state + ", finished at 2026-03-01 10:00:04.5\n"})
	}

	// A move skips what is not a regular file: its count heads the reasons,
	// so that qualified = failed + skipped + succeeded reads off the report.
	special := copyBase(workflows.JobMove)
	special.Status, special.ListingDone = workflows.StatusSucceeded, true
	special.Qualified, special.Succeeded, special.Skipped, special.Failed = 8, 5, 3, 0
	special.SkipReasons = []workflows.SkipCount{{Reason: "not a regular file: named pipe", Count: 2}, {Reason: "not a regular file: socket", Count: 1}}
	special.EndTime = submitted.Add(4 * time.Second)
	cases = append(cases, layoutCase{name: "move skipping special files", st: special, want: "" +
		"Progress for jobId 5b3f0c1e-0000-4000-8000-000000000002 moving path 'file:///src' to 'file:///dst':\n" +
		"\tSettings: \"check-content: false\"\n" +
		"\tJob Submitted: 2026-03-01 10:00:00.5\n" +
		"\tJob Id: 5b3f0c1e-0000-4000-8000-000000000002\n" +
		"\tJob State: SUCCEEDED, finished at 2026-03-01 10:00:04.5\n" +
		"\tFiles qualified: 8, 8.00MB\n" +
		"\tFiles Failed: 0\n" +
		"\tFiles Skipped: 3\n" +
		"\t\tSkipped, not a regular file: named pipe: 2\n" +
		"\t\tSkipped, not a regular file: socket: 1\n" +
		"\tFiles Succeeded: 5\n" +
		"\tBytes Moved: 5120.00KB\n" +
		"\tThroughput: 1280.00KB/s\n" +
		"\tFiles failure rate: 0.00%\n"})
	return cases
}

func TestTextLayouts(t *testing.T) {
	for _, tc := range layoutCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := renderer.Render(tc.st, Text, tc.verbose)
			if err != nil {
				t.Fatal(err)
			}
			if tc.contains != "" {
				if !strings.Contains(got, tc.contains) {
					t.Errorf("report:\n%s\nwant a line:\n%s", show(got), show(tc.contains))
				}
			} else if got != tc.want {
				t.Errorf("report:\n%s\nwant:\n%s", show(got), show(tc.want))
			}
		})
	}
}

// show makes tabs visible in failure output.
func show(s string) string { return strings.ReplaceAll(s, "\t", "→") }

// TestJSONAgreesWithText checks that both formats state the same facts for
// the same state: every TEXT line is compared with the JSON field it shows.
func TestJSONAgreesWithText(t *testing.T) {
	for _, tc := range layoutCases() {
		t.Run(tc.name, func(t *testing.T) {
			text, err := renderer.Render(tc.st, Text, tc.verbose)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := renderer.Render(tc.st, JSON, tc.verbose)
			if err != nil {
				t.Fatal(err)
			}
			var j map[string]any
			if err := json.Unmarshal([]byte(raw), &j); err != nil {
				t.Fatalf("JSON report does not parse: %v\n%s", err, raw)
			}
			props := Properties(text)
			num := func(key string) int64 {
				t.Helper()
				v, ok := j[key].(float64)
				if !ok {
					t.Fatalf("JSON %s = %v (%T), want a number", key, j[key], j[key])
				}
				return int64(v)
			}
			check := func(line, want string) {
				t.Helper()
				if got, ok := props[line]; !ok || got != want {
					t.Errorf("TEXT %q = %q (present %v), JSON says %q", line, got, ok, want)
				}
			}
			state := j["mJobState"].(string)
			if !strings.HasPrefix(props["Job State"], state) {
				t.Errorf("Job State %q, mJobState %q", props["Job State"], state)
			}
			check("Files Failed", strconv.FormatInt(num("mFailedFileCount"), 10))
			if tp, ok := j["mThroughput"].(float64); ok {
				check("Throughput", FormatSize(int64(tp))+"/s")
			} else if _, ok := props["Throughput"]; ok {
				t.Errorf("TEXT shows Throughput, JSON mThroughput is %v", j["mThroughput"])
			}
			if stage, _ := j["mRunningStage"].(string); stage != "" {
				check("Stage", stage)
			} else if _, ok := props["Stage"]; ok {
				t.Errorf("TEXT shows a Stage, JSON mRunningStage is empty")
			}
			failures := j["mRecentFailedSubtasksWithReasons"].([]any)
			reasons, _ := j["skipReasons"].([]any)
			entries, _ := j["skippedEntries"].([]any)
			if got := strings.Count(text, "\t\t") - len(reasons) - len(entries); got != len(failures) {
				t.Errorf("TEXT lists %d failures, JSON %d", got, len(failures))
			}
			if loc, _ := j["mFailedFileSavedPath"].(string); loc != "" {
				check("Failed files saved to", loc)
			}
			if tc.st.Type == workflows.JobLoad {
				check("Time Elapsed", FormatElapsed(time.Duration(num("mTimeElapsed"))*time.Millisecond))
				check("Time Elapsed", j["timeElapsed"].(string))
				check("File Failure rate", FormatPercent(j["mFailureFilesPercentage"].(float64)))
				out := func(total string) string {
					if total == "" {
						return ""
					}
					return " out of " + total
				}
				totalFiles, totalBytes := "", ""
				if tb, ok := j["mTotalByteCount"].(float64); ok {
					totalFiles, totalBytes = strconv.FormatInt(num("totalFiles"), 10), FormatSize(int64(tb))
				}
				check("Files Processed", strconv.FormatInt(num("mProcessedInodesCount"), 10)+out(totalFiles))
				if j["mMetadataOnly"].(bool) {
					if _, ok := props["Bytes Loaded"]; ok {
						t.Error("metadata-only report shows Bytes Loaded")
					}
				} else {
					check("Bytes Loaded", FormatSize(num("mLoadedByteCount"))+out(totalBytes))
				}
				if j["mSkipIfExists"].(bool) {
					check("Bytes Skipped", FormatSize(num("mSkippedByteCount"))+out(totalBytes))
				}
				check("verify", strconv.FormatBool(j["mVerificationEnabled"].(bool)))
				check("metadata-only", strconv.FormatBool(j["mMetadataOnly"].(bool)))
				if bw, ok := j["mBandwidth"].(float64); ok {
					check("bandwidth", strconv.FormatInt(int64(bw), 10))
				} else {
					check("bandwidth", "unlimited")
				}
				return
			}
			check("Job Id", j["mJobId"].(string))
			check("Job Submitted", FormatDate(time.UnixMilli(num("mStartTime")), time.UTC))
			if end, ok := j["mEndTime"].(float64); ok {
				shown := state
				if reason, _ := j["reason"].(string); reason != "" && !strings.EqualFold(reason, state) {
					shown += " (" + reason + ")"
				}
				check("Job State", fmt.Sprintf("%s, finished at %s", shown, FormatDate(time.UnixMilli(int64(end)), time.UTC)))
			}
			check("Files Succeeded", strconv.FormatInt(num("mSuccessFileCount"), 10))
			check("Files failure rate", FormatPercent(j["mFailureFilesPercentage"].(float64)))
			check("check-content", strconv.FormatBool(j["mCheckContent"].(bool)))
			qualified := strconv.FormatInt(num("mScannedInodesCount"), 10) + ", " + FormatSize(num("qualifiedSize"))
			if _, ok := props["Files qualified so far"]; ok {
				check("Files qualified so far", qualified)
			} else {
				check("Files qualified", qualified)
			}
			if tc.st.Type == workflows.JobMove {
				check("Bytes Moved", FormatSize(num("mByteCount")))
				if _, ok := props["Files Skipped"]; ok != (num("mSkippedFileCount") > 0) {
					t.Errorf("move report shows Files Skipped: %t, with %d skipped", ok, num("mSkippedFileCount"))
				}
			} else {
				check("Bytes Copied", FormatSize(num("mByteCount")))
				check("Files Skipped", strconv.FormatInt(num("mSkippedFileCount"), 10))
			}
		})
	}
}

func TestJSONFieldsPerLayout(t *testing.T) {
	st := workflows.JobState{Type: workflows.JobLoad, Path: "file:///a", Status: workflows.StatusRunning}
	raw, _ := renderer.Render(st, JSON, false)
	for _, k := range []string{"mLoadedByteCount", "mSkippedByteCount", "mSkipIfExists", "mMetadataOnly", "mJobState", "mTimeElapsed", "mTotalByteCount", "mThroughput", "jobType", "options"} {
		if !strings.Contains(raw, `"`+k+`":`) {
			t.Errorf("load JSON lacks %s: %s", k, raw)
		}
	}
	for _, k := range []string{"mByteCount", "mCheckContent"} {
		if strings.Contains(raw, `"`+k+`":`) {
			t.Errorf("load JSON has copy field %s", k)
		}
	}
	// Unknown totals and sub-second runs are null, not zero.
	if !strings.Contains(raw, `"mTotalByteCount":null`) || !strings.Contains(raw, `"mThroughput":null`) {
		t.Errorf("want null totals and throughput: %s", raw)
	}
	st.Type, st.Dst = workflows.JobCopy, "file:///b"
	raw, _ = renderer.Render(st, JSON, false)
	for _, k := range []string{"mByteCount", "mCheckContent", "mSuccessFileCount", "mSkippedFileCount", "mStartTime", "mEndTime"} {
		if !strings.Contains(raw, `"`+k+`":`) {
			t.Errorf("copy JSON lacks %s: %s", k, raw)
		}
	}
	if strings.Contains(raw, `"mLoadedByteCount"`) {
		t.Errorf("copy JSON has load field: %s", raw)
	}
}

func TestProperties(t *testing.T) {
	text := "Progress for loading path 'file:///a':\n" +
		"\tSettings:\tbandwidth: unlimited\tverify: false\tmetadata-only: false\n" +
		"\tJob State: FAILED (reason: with colon)\n" +
		"\tRecent failed files:\n" +
		"\t\tfile:///a/x: Reason: NOT_FOUND, message: gone\n"
	got := Properties(text)
	want := map[string]string{"bandwidth": "unlimited", "verify": "false", "metadata-only": "false", "Job State": "FAILED (reason: with colon)"}
	if len(got) != len(want) {
		t.Errorf("Properties = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Properties[%q] = %q, want %q", k, got[k], v)
		}
	}
}
