// Package report renders a job's progress (a workflows.JobState) as the
// report users of the Alluxio job service know (spec/jobs.md §3): a TEXT
// layout of a header and TAB-indented lines, one for load and one for copy
// and move, and a JSON object that carries the same facts under Alluxio's
// field names plus Ferry's own in camelCase.
//
// Rendering lives on the server side, next to the REST facade, so every
// client (the CLI, curl, a cache node forwarding /v1/load) gets the same
// report. Both formats are built from one Progress value: TEXT is a view of
// it, so the two never disagree.
//
// The clock is injected (Renderer.Now): a running job's elapsed time and
// throughput depend on "now", and tests need to fix it.
package report

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/ferryio/ferry/workflows"
)

// Renderer renders progress reports. The zero value uses time.Now and
// time.Local.
type Renderer struct {
	// Now is "now" for jobs that are still running. Default time.Now.
	Now func() time.Time
	// Location is the time zone of the dates in TEXT reports. Default
	// time.Local, as the Alluxio CLI prints them.
	Location *time.Location
}

// Format is a report format.
type Format string

// Report formats, as the REST API and the CLI spell them.
const (
	Text Format = "TEXT"
	JSON Format = "JSON"
)

// ParseFormat accepts TEXT or JSON in any case; empty means TEXT.
func ParseFormat(s string) (Format, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "TEXT":
		return Text, nil
	case "JSON":
		return JSON, nil
	}
	return "", fmt.Errorf("unknown format %q (want TEXT or JSON)", s)
}

// FailedFile is one recent permanent failure.
type FailedFile struct {
	Path    string `json:"path"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// Progress is every fact of a report. Fields named m… keep the names of
// Alluxio's JSON report; fields that only one layout has (load, or copy and
// move) are omitted from the other. The camelCase fields are Ferry's.
type Progress struct {
	// Alluxio fields common to every job type.
	JobID                  string       `json:"mJobId"`
	JobState               string       `json:"mJobState"`
	Verbose                bool         `json:"mVerbose"`
	Bandwidth              *int64       `json:"mBandwidth"` // bytes/s; null is unlimited
	VerificationEnabled    bool         `json:"mVerificationEnabled"`
	ScannedInodesCount     int64        `json:"mScannedInodesCount"`   // files qualified so far
	ProcessedInodesCount   int64        `json:"mProcessedInodesCount"` // succeeded + skipped + failed
	TotalByteCount         *int64       `json:"mTotalByteCount"`       // null until the totals are known
	Throughput             *int64       `json:"mThroughput"`           // bytes/s; null under one second
	FailureFilesPercentage float64      `json:"mFailureFilesPercentage"`
	FailedFileCount        int64        `json:"mFailedFileCount"`
	RecentFailures         []FailedFile `json:"mRecentFailedSubtasksWithReasons"` // only when verbose
	RunningStage           string       `json:"mRunningStage"`                    // only when verbose and running
	TimeElapsedMillis      int64        `json:"mTimeElapsed"`
	FailedFileSavedPath    string       `json:"mFailedFileSavedPath,omitempty"`
	StartTimeMillis        int64        `json:"mStartTime"` // submit time, Unix ms
	EndTimeMillis          *int64       `json:"mEndTime"`   // null while the job runs
	SkippedFileCount       int64        `json:"mSkippedFileCount"`
	SuccessFileCount       int64        `json:"mSuccessFileCount"`

	// Alluxio fields of the load layout.
	LoadedByteCount  *int64 `json:"mLoadedByteCount,omitempty"`
	SkippedByteCount *int64 `json:"mSkippedByteCount,omitempty"`
	SkipIfExists     *bool  `json:"mSkipIfExists,omitempty"`
	MetadataOnly     *bool  `json:"mMetadataOnly,omitempty"`

	// Alluxio fields of the copy and move layout.
	ByteCount    *int64 `json:"mByteCount,omitempty"`
	CheckContent *bool  `json:"mCheckContent,omitempty"`

	// Ferry's fields.
	Type          workflows.JobType   `json:"jobType"`
	Path          string              `json:"path"`
	Dst           string              `json:"dst,omitempty"`
	Status        workflows.JobStatus `json:"status"`
	Reason        string              `json:"reason,omitempty"`
	Stage         workflows.Stage     `json:"stage,omitempty"`
	ListingDone   bool                `json:"listingDone"`
	TotalsKnown   bool                `json:"totalsKnown"`
	TotalFiles    int64               `json:"totalFiles"`
	TotalBytes    int64               `json:"totalBytes"`
	Qualified     int64               `json:"qualified"`
	QualifiedSize int64               `json:"qualifiedSize"`
	Processed     int64               `json:"processed"`
	Succeeded     int64               `json:"succeeded"`
	Skipped       int64               `json:"skipped"`
	Failed        int64               `json:"failed"`
	BytesDone     int64               `json:"bytesDone"`
	BytesSkipped  int64               `json:"bytesSkipped"`
	TimeElapsed   string              `json:"timeElapsed"` // HH:mm:ss, as in the TEXT report
	SubmitTime    time.Time           `json:"submitTime,omitzero"`
	RunStartTime  time.Time           `json:"runStartTime,omitzero"`
	EndTime       time.Time           `json:"endTime,omitzero"`
	Runs          int                 `json:"runs"`
	// VerifyPasses counts the verify passes run; VerifyLoaded is what they
	// found missing and loaded, VerifyFailed what they found not as the
	// job left it (in the failure list, not in failed: the main counters
	// count each file once).
	VerifyPasses      int   `json:"verifyPasses"`
	VerifyLoadedFiles int64 `json:"verifyLoadedFiles"`
	VerifyLoadedBytes int64 `json:"verifyLoadedBytes"`
	VerifyFailed      int64 `json:"verifyFailed"`
	// SkipReasons count the skipped files by reason; SkippedEntries (only
	// when verbose) list those skipped as not regular files.
	SkipReasons    []workflows.SkipCount    `json:"skipReasons,omitempty"`
	SkippedEntries []workflows.SkippedEntry `json:"skippedEntries,omitempty"`
	DryRun         bool                     `json:"dryRun"`
	Options        workflows.Options        `json:"options"`
}

// Active reports whether the job is still running (RUNNING or VERIFYING).
func (p Progress) Active() bool { return p.Status.Active() }

// Build computes the facts of st's report. verbose adds the running stage
// and the recent failures.
func (r Renderer) Build(st workflows.JobState, verbose bool) Progress {
	elapsed := r.elapsed(st)
	// While the job runs, bytes count the files in flight too: a few
	// large files otherwise show nothing until each ends.
	bytesDone := st.BytesDone
	if st.Status.Active() {
		bytesDone += st.InFlightBytes
	}
	p := Progress{
		JobID:                st.JobID,
		JobState:             string(st.Status),
		Verbose:              verbose,
		VerificationEnabled:  st.Options.Verify,
		ScannedInodesCount:   st.Qualified,
		ProcessedInodesCount: st.Processed(),
		FailedFileCount:      st.Failed,
		RecentFailures:       []FailedFile{},
		TimeElapsedMillis:    elapsed.Milliseconds(),
		FailedFileSavedPath:  st.FailuresLocation,
		SkippedFileCount:     st.Skipped,
		SuccessFileCount:     st.Succeeded,

		Type:          st.Type,
		Path:          st.Path,
		Dst:           st.Dst,
		Status:        st.Status,
		Reason:        st.Reason,
		Stage:         st.Stage,
		ListingDone:   st.ListingDone,
		TotalsKnown:   st.TotalsKnown,
		Qualified:     st.Qualified,
		QualifiedSize: st.QualifiedSize,
		Processed:     st.Processed(),
		Succeeded:     st.Succeeded,
		Skipped:       st.Skipped,
		Failed:        st.Failed,
		BytesDone:     bytesDone,
		BytesSkipped:  st.BytesSkipped,
		TimeElapsed:   FormatElapsed(elapsed),
		SubmitTime:    st.SubmitTime,
		RunStartTime:  st.RunStartTime,
		EndTime:       st.EndTime,
		Runs:          st.Runs,
		SkipReasons:   st.SkipReasons,

		VerifyPasses:      st.VerifyPass,
		VerifyLoadedFiles: st.VerifyLoadedFiles,
		VerifyLoadedBytes: st.VerifyLoadedBytes,
		VerifyFailed:      st.VerifyFailed,
		DryRun:            st.Options.DryRun,
		Options:           st.Options,
	}
	if st.Options.Bandwidth > 0 {
		p.Bandwidth = ptr(st.Options.Bandwidth)
	}
	if st.TotalsKnown {
		p.TotalByteCount = ptr(st.TotalBytes)
		p.TotalFiles, p.TotalBytes = st.TotalFiles, st.TotalBytes
	}
	// Throughput over the job's whole running time, the same span as Time
	// Elapsed: BytesDone counts every run of a resumed job, so dividing by
	// the current run alone would overstate it.
	if elapsed >= time.Second {
		p.Throughput = ptr(int64(float64(bytesDone) / elapsed.Seconds()))
	}
	p.FailureFilesPercentage = Percent(st.Failed, st.Processed())
	if verbose {
		if st.Status.Active() {
			p.RunningStage = string(st.Stage)
		}
		for _, f := range st.RecentFailures {
			p.RecentFailures = append(p.RecentFailures, FailedFile{Path: f.Path, Reason: f.Reason, Message: f.Message})
		}
		p.SkippedEntries = st.SkippedEntries
	}
	if !st.SubmitTime.IsZero() {
		p.StartTimeMillis = st.SubmitTime.UnixMilli()
	}
	if !st.EndTime.IsZero() && !st.Status.Active() {
		p.EndTimeMillis = ptr(st.EndTime.UnixMilli())
	}
	if st.Type == workflows.JobLoad {
		p.LoadedByteCount = ptr(bytesDone)
		p.SkippedByteCount = ptr(st.BytesSkipped)
		p.SkipIfExists = ptr(st.Options.SkipIfExists)
		p.MetadataOnly = ptr(st.Options.MetadataOnly)
	} else {
		p.ByteCount = ptr(bytesDone)
		p.CheckContent = ptr(st.Options.CheckContent)
	}
	return p
}

// elapsed is the job's running time: earlier runs (before a stop) plus the
// current run up to its end, or up to now while it runs.
func (r Renderer) elapsed(st workflows.JobState) time.Duration {
	d := st.ElapsedBefore
	if !st.RunStartTime.IsZero() {
		end := st.EndTime
		if end.IsZero() || st.Status.Active() {
			end = r.now()
		}
		// The workflow's clock and ours may differ slightly: never negative.
		if run := end.Sub(st.RunStartTime); run > 0 {
			d += run
		}
	}
	return max(d, 0)
}

func (r Renderer) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r Renderer) location() *time.Location {
	if r.Location != nil {
		return r.Location
	}
	return time.Local
}

// Render returns st's report in format f.
func (r Renderer) Render(st workflows.JobState, f Format, verbose bool) (string, error) {
	p := r.Build(st, verbose)
	if f == JSON {
		b, err := json.Marshal(p)
		if err != nil {
			return "", fmt.Errorf("encode progress report: %w", err)
		}
		return string(b), nil
	}
	return r.Text(p), nil
}

// Text renders p in the TEXT layout of its job type.
func (r Renderer) Text(p Progress) string {
	if p.Type == workflows.JobLoad {
		return r.loadText(p)
	}
	return r.transferText(p)
}

func (r Renderer) loadText(p Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Progress for loading path '%s':\n", p.Path)
	bandwidth := "unlimited"
	if p.Bandwidth != nil {
		bandwidth = strconv.FormatInt(*p.Bandwidth, 10)
	}
	fmt.Fprintf(&b, "\tSettings:\tbandwidth: %s\tverify: %t\tmetadata-only: %t\n", bandwidth, p.VerificationEnabled, *p.MetadataOnly)
	fmt.Fprintf(&b, "\tTime Elapsed: %s\n", p.TimeElapsed)
	if p.Reason != "" {
		fmt.Fprintf(&b, "\tJob State: %s (%s)\n", p.JobState, p.Reason)
	} else {
		fmt.Fprintf(&b, "\tJob State: %s\n", p.JobState)
	}
	if p.RunningStage != "" {
		fmt.Fprintf(&b, "\tStage: %s\n", p.RunningStage)
	}
	fmt.Fprintf(&b, "\tFiles Processed: %d%s\n", p.ProcessedInodesCount, p.outOfFiles())
	p.skipsText(&b)
	if *p.SkipIfExists {
		fmt.Fprintf(&b, "\tBytes Skipped: %s%s\n", FormatSize(*p.SkippedByteCount), p.outOfBytes())
	}
	if !*p.MetadataOnly {
		fmt.Fprintf(&b, "\tBytes Loaded: %s%s\n", FormatSize(*p.LoadedByteCount), p.outOfBytes())
	}
	if p.Throughput != nil {
		fmt.Fprintf(&b, "\tThroughput: %s/s\n", FormatSize(*p.Throughput))
	}
	fmt.Fprintf(&b, "\tFile Failure rate: %s\n", FormatPercent(p.FailureFilesPercentage))
	fmt.Fprintf(&b, "\tFiles Failed: %d\n", p.FailedFileCount)
	if p.VerifyLoadedFiles > 0 || p.VerifyFailed > 0 {
		// Without these lines a job FAILED by its verify pass reads
		// "Files Failed: 0".
		fmt.Fprintf(&b, "\tVerify: %d pass(es), %d file(s) loaded again (%s), %d failed\n",
			p.VerifyPasses, p.VerifyLoadedFiles, FormatSize(p.VerifyLoadedBytes), p.VerifyFailed)
	}
	p.failuresText(&b)
	return b.String()
}

// transferText is the copy and move layout. A move shows Files Skipped only
// when it skipped something (Alluxio's move report has no such line: its
// moves fail an existing destination, but Ferry's also skip what is not a
// regular file, and without the count the skip reasons below it would read
// as failures and qualified would not add up).
func (r Renderer) transferText(p Progress) string {
	var b strings.Builder
	verb, bytesLabel := "copying", "Bytes Copied"
	if p.Type == workflows.JobMove {
		verb, bytesLabel = "moving", "Bytes Moved"
	}
	fmt.Fprintf(&b, "Progress for jobId %s %s path '%s' to '%s':\n", p.JobID, verb, p.Path, p.Dst)
	fmt.Fprintf(&b, "\tSettings: \"check-content: %t\"\n", *p.CheckContent)
	fmt.Fprintf(&b, "\tJob Submitted: %s\n", FormatDate(p.SubmitTime, r.location()))
	fmt.Fprintf(&b, "\tJob Id: %s\n", p.JobID)
	// Why a job ended as it did (a dry run, a failure threshold, a listing
	// that failed), as the load layout shows it; "stopped" says no more
	// than STOPPED.
	state := p.JobState
	if p.Reason != "" && !strings.EqualFold(p.Reason, p.JobState) {
		state += " (" + p.Reason + ")"
	}
	if p.EndTimeMillis != nil {
		fmt.Fprintf(&b, "\tJob State: %s, finished at %s\n", state, FormatDate(p.EndTime, r.location()))
	} else {
		fmt.Fprintf(&b, "\tJob State: %s\n", state)
	}
	if p.RunningStage != "" {
		fmt.Fprintf(&b, "\tStage: %s\n", p.RunningStage)
	}
	soFar := ""
	if p.qualifiedSoFar() {
		soFar = " so far"
	}
	fmt.Fprintf(&b, "\tFiles qualified%s: %d, %s\n", soFar, p.ScannedInodesCount, FormatSize(p.QualifiedSize))
	fmt.Fprintf(&b, "\tFiles Failed: %d\n", p.FailedFileCount)
	if p.Type != workflows.JobMove || p.SkippedFileCount > 0 {
		fmt.Fprintf(&b, "\tFiles Skipped: %d\n", p.SkippedFileCount)
	}
	p.skipsText(&b)
	fmt.Fprintf(&b, "\tFiles Succeeded: %d\n", p.SuccessFileCount)
	fmt.Fprintf(&b, "\t%s: %s\n", bytesLabel, FormatSize(*p.ByteCount))
	if p.Throughput != nil {
		fmt.Fprintf(&b, "\tThroughput: %s/s\n", FormatSize(*p.Throughput))
	}
	fmt.Fprintf(&b, "\tFiles failure rate: %s\n", FormatPercent(p.FailureFilesPercentage))
	p.failuresText(&b)
	return b.String()
}

// qualifiedSoFar is true while more files may still qualify: the listing has
// not finished and the job has not reached a final state.
func (p Progress) qualifiedSoFar() bool {
	return !p.ListingDone && (p.Status.Active() || p.Status == workflows.StatusStopped)
}

func (p Progress) outOfFiles() string {
	if !p.TotalsKnown {
		return ""
	}
	return fmt.Sprintf(" out of %d", p.TotalFiles)
}

func (p Progress) outOfBytes() string {
	if p.TotalByteCount == nil {
		return ""
	}
	return " out of " + FormatSize(*p.TotalByteCount)
}

// skipsText writes why files were skipped, reason by reason, and (when
// verbose) the entries skipped as not regular files.
func (p Progress) skipsText(b *strings.Builder) {
	for _, s := range p.SkipReasons {
		fmt.Fprintf(b, "\t\tSkipped, %s: %d\n", s.Reason, s.Count)
	}
	if len(p.SkippedEntries) > 0 {
		b.WriteString("\tSkipped entries (not regular files):\n")
		for _, s := range p.SkippedEntries {
			fmt.Fprintf(b, "\t\t%s: %s\n", s.Path, s.Reason)
		}
	}
}

func (p Progress) failuresText(b *strings.Builder) {
	if len(p.RecentFailures) > 0 {
		b.WriteString("\tRecent failed files:\n")
		for _, f := range p.RecentFailures {
			fmt.Fprintf(b, "\t\t%s: Reason: %s, message: %s\n", f.Path, f.Reason, oneLine(f.Message))
		}
	}
	if p.FailedFileSavedPath != "" {
		fmt.Fprintf(b, "\tFailed files saved to: %s\n", p.FailedFileSavedPath)
	}
}

// oneLine keeps a failure message on its report line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// FormatSize formats a byte count as Alluxio does: whole bytes with "B" up
// to 5×1024 bytes, otherwise divided by 1024 with two decimals, switching to
// the next unit (KB, MB, GB, TB, PB) only above 5×1024 of the current one.
func FormatSize(n int64) string {
	if n <= 5*1024 {
		return strconv.FormatInt(n, 10) + "B"
	}
	v := float64(n) / 1024
	for _, unit := range []string{"KB", "MB", "GB", "TB"} {
		if v <= 5*1024 {
			return fmt.Sprintf("%.2f%s", v, unit)
		}
		v /= 1024
	}
	return fmt.Sprintf("%.2fPB", v)
}

// Percent is part/whole as a percentage, 0 when whole is 0 (never NaN).
func Percent(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(part) / float64(whole) * 100
}

// FormatPercent prints a percentage with two decimals ("12.50%"); NaN and
// infinities print as 0.00%.
func FormatPercent(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		f = 0
	}
	return fmt.Sprintf("%.2f%%", f)
}

// FormatElapsed prints a duration as HH:mm:ss; hours go past 24 rather than
// rolling into days, as Alluxio's report does.
func FormatElapsed(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d / time.Second)
	return fmt.Sprintf("%02d:%02d:%02d", s/3600, s/60%60, s%60)
}

// FormatDate prints t as Java's "yyyy-MM-dd HH:mm:ss.S" does, which the
// Alluxio CLI uses: the milliseconds are printed without zero padding
// (5 ms is ".5", 50 ms ".50"). A zero time prints as "-".
func FormatDate(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "-"
	}
	t = t.In(loc)
	return t.Format("2006-01-02 15:04:05") + "." + strconv.Itoa(t.Nanosecond()/int(time.Millisecond))
}

// Properties turns a TEXT report into key/value pairs, one per "key: value"
// line (the respProperties of the worker-style /v1/load progress answer).
// Only the first ": " splits a line, so values keep their own colons.
func Properties(text string) map[string]string {
	props := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "\t\t") {
			continue // a recent failure, keyed by its path: not a property
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "Progress for ") {
			continue
		}
		if strings.HasPrefix(line, "Settings:") {
			// "Settings:\tbandwidth: 1\tverify: false…" holds several pairs.
			for _, kv := range strings.Split(strings.TrimPrefix(line, "Settings:"), "\t") {
				if k, v, ok := strings.Cut(strings.Trim(strings.TrimSpace(kv), `"`), ": "); ok {
					props[k] = v
				}
			}
			continue
		}
		if k, v, ok := strings.Cut(line, ": "); ok {
			props[k] = v
		}
	}
	return props
}

func ptr[T any](v T) *T { return &v }
