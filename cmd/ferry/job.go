package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/ferryio/ferry/api/report"
	"github.com/ferryio/ferry/internal/auth"
	"github.com/ferryio/ferry/manifest"
	"github.com/ferryio/ferry/workflows"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// The `ferry job` commands are clients of the REST API's coordinator-style
// routes, with the verbs, flags and messages of the Alluxio CLI. The API
// renders reports and words messages; the CLI prints them, so every client
// sees the same text.

// exitJobFailed is the exit status of --watch when the job ends FAILED;
// every other error exits 1 (see main).
const exitJobFailed = 2

// watchInterval is how often --watch polls the job's progress once it has
// run for a while; the first polls come sooner (firstWatchInterval, doubling),
// so that a job of a fraction of a second is reported when it ends, not up
// to half a second later.
const (
	watchInterval      = 500 * time.Millisecond
	firstWatchInterval = 25 * time.Millisecond
)

// defaultAPIWait is how long --watch and --progress ride out an unreachable
// or unavailable API (a restart, a coordinator still catching up, a Temporal
// failover) before giving up; --api-wait changes it.
const defaultAPIWait = time.Minute

func newJobCommand(g *globals) *cobra.Command {
	var apiURL string
	cmd := &cobra.Command{
		Use:   "job",
		Short: "Submit, watch, stop and list load, copy and move jobs",
		Long: `Submit, watch, stop and list jobs through Ferry's REST API (--api, env
FERRY_API). The verbs, flags and messages are those of the Alluxio CLI.

Exit status: 0 on success (also "already running" and stopping a job that is
not running), 1 on any error, 2 when a job watched with --watch ends FAILED.`,
		// Runnable so that a misspelt subcommand is an error with a
		// suggestion, not help and exit 0, which cobra gives a parent
		// command without Run.
		Args: cobra.ArbitraryArgs,
		RunE: helpOrUnknown,
	}
	cmd.PersistentFlags().StringVar(&apiURL, "api", envOr("FERRY_API", "http://"+defaultAPIAddress), "URL of the Ferry REST API (env FERRY_API)")
	api := func() (*apiClient, error) { return newAPIClient(apiURL, g) }
	cmd.AddCommand(
		newJobTypeCommand(workflows.JobLoad, api),
		newJobTypeCommand(workflows.JobCopy, api),
		newJobTypeCommand(workflows.JobMove, api),
		newJobListCommand(api),
	)
	return cmd
}

// optionFlag maps a CLI flag to the REST option key it sets.
type optionFlag struct {
	flag, key, usage string
	kind             string // "bool", "int", "string", "strings"
	types            []workflows.JobType
}

var (
	forAll      = []workflows.JobType{workflows.JobLoad, workflows.JobCopy, workflows.JobMove}
	forLoad     = []workflows.JobType{workflows.JobLoad}
	forCopyMove = []workflows.JobType{workflows.JobCopy, workflows.JobMove}
)

// optionFlags are the job options as flags, named as in the Alluxio CLI,
// plus Ferry's filters.
var optionFlags = []optionFlag{
	{"partial-listing", "partialListing", "start working while listing; totals are not reported", "bool", forAll},
	{"batch-size", "batchSize", "entries per listing page and per batch (default 200)", "int", forAll},
	{"bandwidth", "bandwidth", "bytes per second for the whole job: 100, 10MB, 1g, 2TiB (default unlimited)", "string", forAll},
	{"verify", "verify", "after the pass, re-list and process whatever is still missing", "bool", forAll},
	{"metadata-only", "loadMetadataOnly", "cache file metadata only", "bool", forLoad},
	{"skip-if-exists", "skipIfExists", "skip files fully cached for their current version", "bool", forLoad},
	{"replicas", "replicas", "number of distinct cache nodes that hold each file (default 1)", "int", forLoad},
	{"check-content", "check_content", "compare length and content hash of each file after copying it", "bool", forCopyMove},
	{"overwrite", "overwrite", "replace existing destination files", "bool", forCopyMove},
	{"file-filter-regx", "fileFilterRegx", "keep only files whose base name fully matches this regular expression", "string", forAll},
	{"dry-run", "dryRun", "list and plan, report what would be done, change nothing", "bool", forAll},
	{"older-than", "olderThan", "keep files modified at least this long ago: 90m, 720h, 30d", "string", forAll},
	{"newer-than", "newerThan", "keep files modified at most this long ago", "string", forAll},
	{"include", "include", "keep files whose relative path matches this glob (** for any depth; repeatable)", "strings", forAll},
	{"exclude", "exclude", "drop files whose relative path matches this glob (repeatable)", "strings", forAll},
	{"min-size", "minSize", "keep files at least this large: 1MB", "string", forAll},
	{"max-size", "maxSize", "keep files at most this large", "string", forAll},
}

func (o optionFlag) appliesTo(t workflows.JobType) bool {
	for _, x := range o.types {
		if x == t {
			return true
		}
	}
	return false
}

// jobCommand holds the flags of `ferry job load|copy|move`.
type jobCommand struct {
	typ                    workflows.JobType
	path, src, dst         string
	indexFile              string
	submit, progress, stop bool
	watch, verbose         bool
	format                 string
	apiWait                time.Duration
	flags                  *pflag.FlagSet
	api                    *apiClient
	out                    *output
	// errOut takes the status lines of a wait for the API.
	errOut io.Writer
}

// output is a command's stdout. It keeps the first write error, so that a
// closed pipe fails the command rather than being ignored line by line.
type output struct {
	w   io.Writer
	err error
}

func (o *output) printf(format string, args ...any) {
	if o.err == nil {
		_, o.err = fmt.Fprintf(o.w, format, args...)
	}
}

func (o *output) println(s string) { o.printf("%s\n", s) }

// Write lets the progress bar draw through o.
func (o *output) Write(b []byte) (int, error) {
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(b)
	o.err = err
	return n, err
}

func newJobTypeCommand(t workflows.JobType, api func() (*apiClient, error)) *cobra.Command {
	j := &jobCommand{typ: t}
	var use, short, example string
	switch t {
	case workflows.JobLoad:
		use, short = "load", "Load files (or only their metadata) into the cache"
		example = `  ferry job load --path s3://bucket/data/ --submit --bandwidth 100MB --verify
  ferry job load --path s3://bucket/data/ --progress --verbose
  ferry job load --path s3://bucket/data/ --submit --watch
  ferry job load --path s3://bucket/data/ --bandwidth 20MB     # change the running job's limit
  ferry job load --path s3://bucket/data/ --stop`
	case workflows.JobCopy:
		use, short = "copy", "Copy files from one storage system to another"
		example = `  ferry job copy --src file:///data/in --dst s3://bucket/in --submit --check-content
  ferry job copy --src file:///data/in --dst s3://bucket/in --progress --format JSON`
	case workflows.JobMove:
		use, short = "move", "Move files: copy, verify, then delete the source"
		example = `  ferry job move --src s3://bucket/hot --dst gs://archive/cold --submit --watch`
	}
	cmd := &cobra.Command{
		Use:     use,
		Short:   short,
		Example: example,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := api()
			if err != nil {
				return err
			}
			j.api, j.out, j.flags, j.errOut = c, &output{w: cmd.OutOrStdout()}, cmd.Flags(), cmd.ErrOrStderr()
			return flagError(j.run(cmd.Context()), j.fieldFlags())
		},
	}
	f := cmd.Flags()
	if t == workflows.JobLoad {
		f.StringVar(&j.path, "path", "", "full URI of the file or directory to load (s3://bucket/prefix/, file:///data)")
	} else {
		f.StringVar(&j.src, "src", "", "full URI of the source file or directory")
		f.StringVar(&j.dst, "dst", "", "full URI of the destination")
	}
	names := "--src"
	if t == workflows.JobLoad {
		names = "--path"
	}
	f.StringVar(&j.indexFile, "index-file", "", "a file listing the URIs to process, one per line; without "+names+" it also names the job")
	f.BoolVar(&j.submit, "submit", false, "submit the job (resumes it when it was stopped)")
	f.BoolVar(&j.progress, "progress", false, "print the job's progress report")
	f.BoolVar(&j.stop, "stop", false, "stop the job; batches already running finish")
	f.BoolVar(&j.watch, "watch", false, "show a live progress bar until the job ends (alone: of the job already submitted; with --submit: of the new job)")
	f.BoolVar(&j.verbose, "verbose", false, "add the running stage and the recent failures to the report")
	f.StringVar(&j.format, "format", "TEXT", "report format: TEXT or JSON")
	f.DurationVar(&j.apiWait, "api-wait", defaultAPIWait, "with --watch or --progress: how long to wait for an API or coordinator that is not answering yet (0: fail at once)")
	for _, o := range optionFlags {
		if !o.appliesTo(t) {
			continue
		}
		switch o.kind {
		case "bool":
			f.Bool(o.flag, false, o.usage)
		case "int":
			f.Int(o.flag, 0, o.usage)
		case "string":
			f.String(o.flag, "", o.usage)
		case "strings":
			f.StringArray(o.flag, nil, o.usage)
		}
	}
	return cmd
}

// target names the job in a request body.
func (j *jobCommand) target() map[string]any {
	// Names are bytes: a path that is not UTF-8 travels in the marked
	// form of package bytesjson, which the API decodes.
	b := map[string]any{}
	if j.typ == workflows.JobLoad {
		if j.path != "" {
			b["path"] = bytesjson.Encode(j.path)
		}
	} else {
		if j.src != "" {
			b["src"] = bytesjson.Encode(j.src)
		}
		b["dst"] = bytesjson.Encode(j.dst)
	}
	if j.indexFile != "" {
		b["indexFile"] = bytesjson.Encode(j.indexFile)
	}
	return b
}

// validate checks the flags before anything is sent.
func (j *jobCommand) validate() error {
	ops := 0
	for _, on := range []bool{j.submit, j.progress, j.stop} {
		if on {
			ops++
		}
	}
	if ops == 0 && j.setsBandwidth() {
		ops = 1 // --bandwidth alone changes the running job's limit
	}
	if ops == 0 && j.watch {
		ops = 1 // --watch alone watches the job, as with --progress
	}
	if ops != 1 {
		return errors.New("give exactly one of --submit, --progress or --stop (or only --bandwidth, to change the limit of a running job)")
	}
	if j.typ == workflows.JobLoad && j.path == "" && j.indexFile == "" {
		return errors.New("--path is required")
	}
	if j.typ != workflows.JobLoad {
		if j.src == "" && j.indexFile == "" {
			return errors.New("--src is required")
		}
		if j.dst == "" {
			return errors.New("--dst is required")
		}
	}
	if j.watch && j.stop {
		return errors.New("--watch goes with --submit or --progress, not --stop")
	}
	if _, err := report.ParseFormat(j.format); err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	if !j.progress && !j.watch && (j.flags.Changed("verbose") || j.flags.Changed("format")) {
		return errors.New("--verbose and --format go with --progress or --watch")
	}
	if !j.submit && !j.setsBandwidth() {
		for _, o := range optionFlags {
			if fl := j.flags.Lookup(o.flag); fl != nil && fl.Changed {
				if o.flag == "bandwidth" {
					return errors.New("--bandwidth applies only with --submit, or alone to change the limit of a running job")
				}
				return fmt.Errorf("--%s applies only with --submit", o.flag)
			}
		}
	}
	return nil
}

// setsBandwidth reports whether the command changes the limit of a running
// job: --bandwidth and the job, with no action and no other option.
func (j *jobCommand) setsBandwidth() bool {
	if j.submit || j.progress || j.stop || j.watch {
		return false
	}
	set := false
	for _, o := range optionFlags {
		if fl := j.flags.Lookup(o.flag); fl != nil && fl.Changed {
			if o.flag != "bandwidth" {
				return false
			}
			set = true
		}
	}
	return set
}

// options are the option flags that were set, as REST option values.
func (j *jobCommand) options() map[string]any {
	opts := map[string]any{}
	for _, o := range optionFlags {
		fl := j.flags.Lookup(o.flag)
		if fl == nil || !fl.Changed {
			continue
		}
		if o.kind == "strings" {
			list, _ := j.flags.GetStringArray(o.flag)
			opts[o.key] = list
			continue
		}
		opts[o.key] = fl.Value.String()
	}
	return opts
}

func (j *jobCommand) run(ctx context.Context) error {
	if err := j.validate(); err != nil {
		return err
	}
	switch {
	case j.submit:
		body := j.target()
		body["options"] = j.options()
		var res struct {
			Message string `json:"message"`
		}
		if err := j.api.post(ctx, "/api/v1/master/submit_job/"+string(j.typ), body, &res); err != nil {
			return err
		}
		j.out.println(res.Message)
		if j.watch && j.out.err == nil {
			return j.watchJob(ctx)
		}
		return j.out.err
	case j.setsBandwidth():
		body := j.target()
		body["type"] = string(j.typ)
		body["options"] = j.options()
		var res struct {
			Message string `json:"message"`
		}
		if err := j.api.post(ctx, "/api/v1/jobs/bandwidth", body, &res); err != nil {
			return err
		}
		j.out.println(res.Message)
		return j.out.err
	case j.stop:
		var res struct {
			Message string `json:"message"`
		}
		if err := j.api.post(ctx, "/api/v1/master/stop_job/"+string(j.typ), j.target(), &res); err != nil {
			return err
		}
		j.out.println(res.Message)
		return j.out.err
	}
	if j.watch {
		return j.watchJob(ctx)
	}
	res, err := j.awaitProgress(ctx, j.format, j.verbose)
	if err != nil {
		return err
	}
	j.printReport(res.Message)
	return j.out.err
}

// awaitProgress is fetchProgress that rides out an API or coordinator that
// does not answer yet (no connection, 502, 503, 504) for up to --api-wait,
// with a status line on stderr for each new reason to wait.
func (j *jobCommand) awaitProgress(ctx context.Context, format string, verbose bool) (progressAnswer, error) {
	deadline := time.Now().Add(j.apiWait)
	said := ""
	for {
		res, err := j.fetchProgress(ctx, format, verbose)
		if err == nil || !transient(err) {
			return res, err
		}
		if ctx.Err() != nil {
			return res, errInterrupted
		}
		left := time.Until(deadline)
		if left <= 0 {
			if j.apiWait <= 0 {
				return res, err
			}
			return res, fmt.Errorf("%w (waited %s; --api-wait waits longer)", err, j.apiWait)
		}
		if msg := oneLine(err); msg != said {
			said = msg
			_, _ = fmt.Fprintf(j.errOut, "ferry: waiting for the API: %s (retrying for up to %s)\n", msg, left.Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return res, errInterrupted
		case <-time.After(min(watchInterval, left)):
		}
	}
}

// errInterrupted ends a watch or a wait on Ctrl-C.
var errInterrupted = errors.New("interrupted: stopped watching; the job keeps running (use --stop to stop it)")

// progressAnswer is the part of the progress_job answer the CLI reads.
type progressAnswer struct {
	JobState string           `json:"jobState"`
	Message  string           `json:"message"`
	Progress *report.Progress `json:"progress"`
}

func (j *jobCommand) fetchProgress(ctx context.Context, format string, verbose bool) (progressAnswer, error) {
	body := j.target()
	body["format"] = strings.ToUpper(format)
	body["verbose"] = verbose
	var res progressAnswer
	err := j.api.post(ctx, "/api/v1/master/progress_job/"+string(j.typ), body, &res)
	return res, err
}

// printReport prints a report with exactly one final newline (TEXT reports
// end with one, JSON does not).
func (j *jobCommand) printReport(msg string) {
	j.out.println(strings.TrimRight(msg, "\n"))
}

// watchJob polls the job until it ends, drawing a progress bar on a
// terminal or a plain line per change elsewhere, then prints the final
// report. It exits 0 when the job SUCCEEDED or STOPPED, 2 when it FAILED.
func (j *jobCommand) watchJob(ctx context.Context) error {
	w := newWatchView(j.out)
	var final *report.Progress
	for wait := firstWatchInterval; ; wait = min(2*wait, watchInterval) {
		// A coordinator that is still catching up after a restart answers
		// 503 for a while: awaitProgress rides that out, at the start of
		// the watch as in its middle.
		res, err := j.awaitProgress(ctx, "JSON", false)
		switch {
		case ctx.Err() != nil:
			w.close()
			return errInterrupted
		case err != nil:
			w.close()
			return err
		case res.Progress == nil:
			w.close()
			return fmt.Errorf("the Ferry API answered progress without a progress object (is it older than this CLI?)")
		default:
			w.update(*res.Progress)
			if !res.Progress.Active() {
				final = res.Progress
			}
		}
		if final != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
	w.close()
	res, err := j.awaitProgress(ctx, j.format, j.verbose)
	if err != nil {
		return err
	}
	j.printReport(res.Message)
	switch final.Status {
	case workflows.StatusFailed:
		reason := ""
		if final.Reason != "" {
			reason = ": " + final.Reason
		}
		return exitError{code: exitJobFailed, err: fmt.Errorf("the %s job ended FAILED%s", j.typ, reason)}
	case workflows.StatusTerminated:
		return exitError{code: exitJobFailed, err: fmt.Errorf("the %s job was terminated in Temporal", j.typ)}
	case workflows.StatusStopped:
		j.out.printf("The %s job was stopped; submit it again to resume it.\n", j.typ)
	}
	return j.out.err
}

// watchView draws --watch updates: a progress bar on a terminal (files
// processed out of the total when the total is known, else a spinner with
// counts), or one plain line per change when the output is not a terminal.
type watchView struct {
	out      *output
	tty      bool
	bar      *progressbar.ProgressBar
	barTotal int64
	lastLine string
}

func newWatchView(out *output) *watchView {
	f, ok := out.w.(*os.File)
	return &watchView{out: out, tty: ok && term.IsTerminal(int(f.Fd()))}
}

func (w *watchView) update(p report.Progress) {
	if !w.tty {
		if line := plainLine(p); line != w.lastLine {
			w.out.println(line)
			w.lastLine = line
		}
		return
	}
	total := int64(-1) // a spinner until the totals are known
	if p.TotalsKnown {
		total = p.TotalFiles
	}
	if w.bar == nil || total != w.barTotal {
		if w.bar != nil {
			_ = w.bar.Exit()
			w.out.println("")
		}
		w.bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(w.out),
			progressbar.OptionSetWidth(30),
			progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("files"),
			progressbar.OptionSetPredictTime(false),
			// The job's own elapsed time is in the description; the bar's
			// would count from when the watch began.
			progressbar.OptionSetElapsedTime(false),
			progressbar.OptionSetDescription(barDescription(p)),
			progressbar.OptionSpinnerType(14),
			// The spinner turns on each poll; no goroutine redraws it.
			progressbar.OptionSetSpinnerChangeInterval(0),
		)
		w.barTotal = total
	}
	_ = w.bar.Set64(p.Processed)
	w.bar.Describe(barDescription(p))
}

func (w *watchView) close() {
	if w.bar != nil {
		_ = w.bar.Exit()
		w.out.println("")
		w.bar = nil
	}
}

func barDescription(p report.Progress) string {
	s := string(p.Status)
	if p.Stage != "" && p.Active() {
		s = string(p.Stage)
	}
	d := fmt.Sprintf("%-9s %s %s", s, p.TimeElapsed, report.FormatSize(p.BytesDone))
	if p.Failed > 0 {
		d += fmt.Sprintf(", %d failed", p.Failed)
	}
	return d
}

// plainLine is one --watch update when the output is not a terminal.
func plainLine(p report.Progress) string {
	state := string(p.Status)
	if p.Stage != "" && p.Active() {
		state += " " + string(p.Stage)
	}
	files := fmt.Sprintf("%d", p.Processed)
	bytes := report.FormatSize(p.BytesDone)
	if p.TotalsKnown {
		files += fmt.Sprintf(" of %d", p.TotalFiles)
		bytes += " of " + report.FormatSize(p.TotalBytes)
	}
	return fmt.Sprintf("%s: %s files processed, %d failed, %s", state, files, p.Failed, bytes)
}

func newJobListCommand(api func() (*apiClient, error)) *cobra.Command {
	var typ, state, format string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List jobs (the latest run of each), newest first",
		Example: `  ferry job list
  ferry job list --type load --state RUNNING
  ferry job list --format JSON`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := report.ParseFormat(format)
			if err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			c, err := api()
			if err != nil {
				return err
			}
			q := url.Values{}
			if typ != "" {
				q.Set("job-type", strings.ToUpper(typ))
			}
			if state != "" {
				q.Set("job-state", strings.ToUpper(state))
			}
			var raw json.RawMessage
			if err := c.do(cmd.Context(), http.MethodGet, "/api/v1/master/list_job?"+q.Encode(), nil, &raw); err != nil {
				return flagError(err, listFieldFlags)
			}
			out := &output{w: cmd.OutOrStdout()}
			if f == report.JSON {
				out.println(string(raw))
				return out.err
			}
			return printJobTable(out, raw)
		},
	}
	f := cmd.Flags()
	f.StringVar(&typ, "type", "", "only jobs of this type: load, copy or move")
	f.StringVar(&state, "state", "", "only jobs in this state: RUNNING, VERIFYING, STOPPED, SUCCEEDED, FAILED, TERMINATED or ALL")
	f.StringVar(&format, "format", "TEXT", "output format: TEXT (a table) or JSON")
	return cmd
}

func printJobTable(out *output, raw json.RawMessage) error {
	var list struct {
		Jobs []struct {
			JobID      string    `json:"jobId"`
			JobType    string    `json:"jobType"`
			JobState   string    `json:"jobState"`
			Path       string    `json:"path"`
			Dst        string    `json:"dst"`
			SubmitTime time.Time `json:"submitTime"`
			StartTime  time.Time `json:"startTime"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("the Ferry API answered an unreadable job list: %w", err)
	}
	if len(list.Jobs) == 0 {
		out.println("No jobs.")
		return out.err
	}
	// The table goes through a buffer so tabwriter can align it; the
	// buffer's writes cannot fail.
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	// SUBMITTED is when the job was submitted (its first run), STARTED when
	// its latest run began: later when it was stopped and resumed.
	_, _ = fmt.Fprintln(tw, "JOB ID\tTYPE\tSTATE\tSUBMITTED\tSTARTED\tPATH\tDESTINATION")
	for _, j := range list.Jobs {
		submitted := j.SubmitTime
		if submitted.IsZero() {
			submitted = j.StartTime // an API older than submitTime
		}
		dst := j.Dst
		if dst == "" {
			dst = "-"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.JobID, j.JobType, j.JobState,
			tableTime(submitted), tableTime(j.StartTime), tableText(j.Path), tableText(dst))
	}
	_ = tw.Flush()
	out.printf("%s", buf.String())
	return out.err
}

// tableText is a path as the job table shows it: its bytes, but for a
// backslash, newline, carriage return or tab, escaped as in a failure list
// (\\, \n, \r, \t), which would break the table's rows and columns.
func tableText(path string) string { return manifest.EscapeListPath(path) }

// tableTime formats a time for the job table in local time; "-" when unset.
func tableTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// apiClient calls the Ferry REST API.
type apiClient struct {
	base string
	http *http.Client
}

// newAPIClient checks the --api URL; "host:port" means http://host:port.
func newAPIClient(raw string, g *globals) (*apiClient, error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--api %q: want a URL such as http://127.0.0.1:19999", raw)
	}
	// Progress answers within the API's own query timeout (15 s); the rest
	// is slack for a slow Temporal.
	rt, err := g.sec.cliTransport()
	if err != nil {
		return nil, err
	}
	return &apiClient{base: strings.TrimRight(u.String(), "/"), http: &http.Client{Timeout: time.Minute, Transport: rt}}, nil
}

// unreachableError is a request that never got an HTTP answer.
type unreachableError struct {
	base string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Ferry API at %s: %v", e.base, e.err)
}

// statusError is an HTTP error answer.
type statusError struct {
	code    int
	message string
	// field is the request field or option the API names as at fault
	// (REST names: "job-state", "bandwidth"), if any.
	field string
}

func (e *statusError) Error() string {
	if e.code >= 500 {
		return fmt.Sprintf("the Ferry API failed (%d %s): %s", e.code, http.StatusText(e.code), e.message)
	}
	return e.message
}

// flagError rewrites an API error that names a request field (the REST
// name, such as "job-state" or "bandwidth") to name the CLI flag that set it
// (--state, --bandwidth), by flags: REST field → flag name. Other errors are
// returned as they are.
func flagError(err error, flags map[string]string) error {
	var se *statusError
	if !errors.As(err, &se) || se.field == "" {
		return err
	}
	flag, ok := flags[se.field]
	if !ok {
		return err
	}
	msg := se.message
	for _, prefix := range []string{se.field + ": ", fmt.Sprintf("option %q: ", se.field)} {
		msg = strings.TrimPrefix(msg, prefix)
	}
	// The message may name other options by their REST names ("is larger
	// than maxSize"): those with a capital are not words, name their flags.
	for field, f := range flags {
		if strings.ToLower(field) != field && !strings.Contains(field, ".") {
			msg = regexp.MustCompile(`\b`+regexp.QuoteMeta(field)+`\b`).ReplaceAllLiteralString(msg, "--"+f)
		}
	}
	return &statusError{code: se.code, message: "--" + flag + ": " + msg, field: se.field}
}

// fieldFlags maps the REST names of a job command's fields and options to
// its flags.
func (j *jobCommand) fieldFlags() map[string]string {
	m := map[string]string{"path": "path", "src": "src", "dst": "dst", "indexFile": "index-file", "format": "format"}
	if j.typ != workflows.JobLoad {
		// copy and move name their source --src; a load's is --path.
		m["path"] = "src"
	}
	for _, o := range optionFlags {
		if o.appliesTo(j.typ) {
			// Options are named bare or, by the bandwidth change of a
			// running job, as members of "options".
			m[o.key], m["options."+o.key] = o.flag, o.flag
		}
	}
	return m
}

// listFieldFlags maps the list_job query parameters to `ferry job list`'s
// flags.
var listFieldFlags = map[string]string{"job-type": "type", "job-state": "state"}

// transient reports errors --watch waits out: no answer, or 429/502/503/504.
func transient(err error) bool {
	var u *unreachableError
	var s *statusError
	return errors.As(err, &u) || errors.As(err, &s) && (s.code == 429 || s.code == 502 || s.code == 503 || s.code == 504)
}

func (a *apiClient) post(ctx context.Context, path string, body, out any) error {
	return a.do(ctx, http.MethodPost, path, body, out)
}

// do sends body as JSON and decodes a 2xx answer into out. An error answer
// becomes a *statusError with the API's message.
func (a *apiClient) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, auth.ErrTokenFile) {
			return err // this client's setting, not the API, is at fault
		}
		return &unreachableError{base: a.base, err: err}
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return &unreachableError{base: a.base, err: err}
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Message string `json:"message"`
			Field   string `json:"field"`
		}
		if json.Unmarshal(raw, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(raw))
			if e.Message == "" {
				e.Message = http.StatusText(resp.StatusCode)
			}
		}
		return &statusError{code: resp.StatusCode, message: e.Message, field: e.Field}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("the Ferry API at %s answered %s %s with something that is not JSON: %w", a.base, method, path, err)
		}
	}
	return nil
}
