package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/ferryio/ferry/api/report"
	"github.com/ferryio/ferry/policies"
)

// The `ferry policy` commands are clients of the REST API's
// /api/v1/policies routes. Every command prints a short text answer, or the
// API's JSON answer with --format JSON; every error is one line and exit 1.

func newPolicyCommand(g *globals) *cobra.Command {
	var apiURL, format string
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Add, inspect and operate policies: jobs that run on a schedule over the files matching rules",
		Long: `A policy runs a load, copy or move job on a schedule (a Temporal Schedule
named policy:<name>) over the files of its source that match its filter.
Policies are YAML or JSON documents (see the README); the commands talk to
Ferry's REST API (--api, env FERRY_API).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&apiURL, "api", envOr("FERRY_API", "http://"+defaultAPIAddress), "URL of the Ferry REST API (env FERRY_API)")
	pf.StringVar(&format, "format", "TEXT", "output format: TEXT or JSON")
	pc := &policyCLI{apiURL: &apiURL, format: &format, g: g}
	cmd.AddCommand(
		pc.addCommand(), pc.listCommand(), pc.describeCommand(), pc.updateCommand(),
		pc.pauseCommand(true), pc.pauseCommand(false), pc.triggerCommand(), pc.backfillCommand(),
		pc.deleteCommand(), pc.previewCommand(),
	)
	return cmd
}

// policyCLI holds what every policy subcommand shares.
type policyCLI struct {
	apiURL, format *string
	g              *globals
}

// call sends one request and prints the answer: the raw JSON with --format
// JSON, else what text renders from it.
func (pc *policyCLI) call(cmd *cobra.Command, method, path string, body any, text func(*output, json.RawMessage) error) error {
	f, err := report.ParseFormat(*pc.format)
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	c, err := newAPIClient(*pc.apiURL, pc.g)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(cmd.Context(), method, path, body, &raw); err != nil {
		return err
	}
	out := &output{w: cmd.OutOrStdout()}
	if f == report.JSON {
		out.println(string(raw))
		return out.err
	}
	if err := text(out, raw); err != nil {
		return err
	}
	return out.err
}

// message prints the API's "message".
func message(out *output, raw json.RawMessage) error {
	var m struct {
		Message string `json:"message"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return unreadable(err)
	}
	out.println(m.Message)
	return nil
}

func unreadable(err error) error {
	return fmt.Errorf("the Ferry API answered something unreadable: %w", err)
}

// readPolicyFile reads a policy document (YAML or JSON; "-" is stdin) and
// returns it as JSON for the API, with its name. Only the syntax is checked
// here; the API validates the rest and names every problem.
func readPolicyFile(file string) (json.RawMessage, string, error) {
	if file == "" {
		return nil, "", fmt.Errorf("-f FILE is required (a policy in YAML or JSON; - reads stdin)")
	}
	var b []byte
	var err error
	if file == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, "", fmt.Errorf("-f: %w", err)
	}
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, "", fmt.Errorf("%s: not a YAML or JSON document: %w", file, err)
	}
	j, err := json.Marshal(doc)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", file, err)
	}
	var named struct {
		Name any `json:"name"`
	}
	_ = json.Unmarshal(j, &named)
	name, _ := named.Name.(string)
	return j, name, nil
}

func policyPath(name string) string { return "/api/v1/policies/" + url.PathEscape(name) }

func (pc *policyCLI) addCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:     "add -f FILE",
		Short:   "Add a policy: validate it, check its source, create its schedule",
		Example: "  ferry policy add -f archive.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, _, err := readPolicyFile(file)
			if err != nil {
				return err
			}
			return pc.call(cmd, http.MethodPost, "/api/v1/policies", doc, message)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "policy document, YAML or JSON (- for stdin)")
	return cmd
}

func (pc *policyCLI) updateCommand() *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:     "update -f FILE",
		Short:   "Replace a policy (named in the file), keeping its schedule's state and history",
		Example: "  ferry policy update -f archive.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, name, err := readPolicyFile(file)
			if err != nil {
				return err
			}
			if name == "" {
				return fmt.Errorf("%s: name: is required", file)
			}
			return pc.call(cmd, http.MethodPut, policyPath(name), doc, message)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "policy document, YAML or JSON (- for stdin)")
	return cmd
}

func (pc *policyCLI) listCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the policies",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return pc.call(cmd, http.MethodGet, "/api/v1/policies", nil, printPolicyTable)
		},
	}
}

func printPolicyTable(out *output, raw json.RawMessage) error {
	var list struct {
		Policies []policies.Summary `json:"policies"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return unreadable(err)
	}
	if len(list.Policies) == 0 {
		out.println("No policies.")
		return nil
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "NAME\tACTION\tSCHEDULE\tSTATE\tRUNNING\tNEXT RUN\tLAST RUN\tSOURCE\tDESTINATION")
	for _, p := range list.Policies {
		state := "active"
		if p.Paused {
			state = "paused"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", p.Name, p.Action, p.Schedule, state, p.Running,
			timeOrDash(p.NextRun), timeOrDash(p.LastRun), p.Src, orDash(p.Dst))
	}
	_ = tw.Flush()
	out.printf("%s", buf.String())
	return nil
}

func timeOrDash(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (pc *policyCLI) describeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a policy, its schedule, the next 5 run times and the recent runs with their jobs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return pc.call(cmd, http.MethodGet, policyPath(args[0]), nil, printPolicyInfo)
		},
	}
}

func printPolicyInfo(out *output, raw json.RawMessage) error {
	var in policies.Info
	if err := json.Unmarshal(raw, &in); err != nil {
		return unreadable(err)
	}
	p := in.Policy
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	line := func(k, v string) { _, _ = fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	line("Policy:", p.Name+"  (Temporal schedule "+policies.ScheduleID(p.Name)+")")
	target := p.Src
	if p.Dst != "" {
		target += " -> " + p.Dst
	}
	line("Action:", p.Action+" "+target)
	sched := p.Schedule.String()
	overlap := p.Schedule.Overlap
	if overlap == "" {
		overlap = policies.OverlapSkip
	}
	sched += ", overlap " + overlap
	if p.Schedule.CatchupWindow != "" {
		sched += ", catch-up window " + string(p.Schedule.CatchupWindow)
	}
	if p.Schedule.PauseOnFailure {
		sched += ", pause on failure"
	}
	line("Schedule:", sched)
	if f := filterText(p.Filter); f != "" {
		line("Filter:", f)
	}
	if len(p.Options) > 0 {
		b, _ := json.Marshal(p.Options)
		line("Options:", string(b))
	}
	state := "active"
	if in.Paused {
		state = "paused"
	}
	if in.Note != "" {
		state += " (" + in.Note + ")"
	}
	line("State:", state)
	line("Runs:", fmt.Sprintf("%d started, %d running, %d skipped (overlap), %d missed (catch-up window)", in.Actions, in.Running, in.Skipped, in.Missed))
	for i, t := range in.NextRuns {
		k := ""
		if i == 0 {
			k = "Next runs:"
		}
		line(k, t.Local().Format("2006-01-02 15:04:05 MST"))
	}
	if len(in.NextRuns) == 0 {
		line("Next runs:", "-")
	}
	_ = tw.Flush()
	out.printf("%s", buf.String())
	if len(in.RecentRuns) == 0 {
		out.println("Recent runs: none")
		return nil
	}
	out.println("Recent runs:")
	buf.Reset()
	tw = tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "  SCHEDULED\tRUN\tJOB STATE\tQUALIFIED\tSUCCEEDED\tSKIPPED\tFAILED\tBYTES\tJOB ID")
	for _, r := range in.RecentRuns {
		run := r.Status
		if r.Outcome == "ALREADY_RUNNING" {
			run += " (job was busy)"
		}
		_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.ScheduledTime.Local().Format("2006-01-02 15:04:05"), run,
			orDash(string(r.JobState)), r.Qualified, r.Succeeded, r.Skipped, r.Failed, r.BytesDone, orDash(r.JobID))
	}
	_ = tw.Flush()
	out.printf("%s", buf.String())
	return nil
}

func filterText(f policies.Filter) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+" "+v)
		}
	}
	add("namePattern", f.NamePattern)
	add("include", strings.Join(f.Include, ","))
	add("exclude", strings.Join(f.Exclude, ","))
	add("olderThan", string(f.OlderThan))
	add("newerThan", string(f.NewerThan))
	add("minSize", string(f.MinSize))
	add("maxSize", string(f.MaxSize))
	return strings.Join(parts, ", ")
}

func (pc *policyCLI) pauseCommand(pause bool) *cobra.Command {
	var note string
	use, short, op := "resume NAME", "Let a paused policy run again", "resume"
	if pause {
		use, short, op = "pause NAME", "Pause a policy: no run starts until it is resumed", "pause"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return pc.call(cmd, http.MethodPost, policyPath(args[0])+"/"+op, map[string]string{"note": note}, message)
		},
	}
	cmd.Flags().StringVar(&note, "note", "", "why (shown by describe and in the Temporal UI)")
	return cmd
}

func (pc *policyCLI) triggerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "trigger NAME",
		Short: "Start a run of a policy now (following its overlap rule)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return pc.call(cmd, http.MethodPost, policyPath(args[0])+"/trigger", nil, message)
		},
	}
}

func (pc *policyCLI) backfillCommand() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:     "backfill NAME --from T --to T",
		Short:   "Run a policy once for every scheduled time in a past range, one run after another",
		Example: "  ferry policy backfill archive --from 2026-01-01T00:00:00Z --to 2026-01-02T00:00:00Z",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" || to == "" {
				return fmt.Errorf("--from and --to are required (RFC 3339 times, e.g. 2026-01-02T03:04:05Z)")
			}
			return pc.call(cmd, http.MethodPost, policyPath(args[0])+"/backfill", map[string]string{"from": from, "to": to}, message)
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "start of the range (RFC 3339)")
	cmd.Flags().StringVar(&to, "to", "", "end of the range (RFC 3339)")
	return cmd
}

func (pc *policyCLI) deleteCommand() *cobra.Command {
	var stop bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a policy; its running jobs keep running unless --stop-running",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := policyPath(args[0])
			if stop {
				path += "?stopRunning=true"
			}
			return pc.call(cmd, http.MethodDelete, path, nil, func(out *output, raw json.RawMessage) error {
				var m struct {
					Message     string `json:"message"`
					StoppedJobs int    `json:"stoppedJobs"`
				}
				if err := json.Unmarshal(raw, &m); err != nil {
					return unreadable(err)
				}
				if stop {
					m.Message += fmt.Sprintf(" Asked %d running job(s) to stop.", m.StoppedJobs)
				}
				out.println(m.Message)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&stop, "stop-running", false, "also stop the policy's running jobs")
	return cmd
}

func (pc *policyCLI) previewCommand() *cobra.Command {
	var file, at string
	var limit int
	cmd := &cobra.Command{
		Use:   "preview -f FILE [--at T]",
		Short: "Show what a run of a policy at a given time would select, without changing anything",
		Example: `  ferry policy preview -f archive.yaml
  ferry policy preview -f archive.yaml --at 2026-01-02T02:00:00Z --limit 100`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			doc, _, err := readPolicyFile(file)
			if err != nil {
				return err
			}
			q := url.Values{"limit": {fmt.Sprint(limit)}}
			if at != "" {
				q.Set("at", at)
			}
			return pc.call(cmd, http.MethodPost, "/api/v1/policies/preview?"+q.Encode(), doc, printPreview)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "policy document, YAML or JSON (- for stdin)")
	cmd.Flags().StringVar(&at, "at", "", "the run's scheduled time (RFC 3339; default now)")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many of the selected paths to show")
	return cmd
}

func printPreview(out *output, raw json.RawMessage) error {
	var pv policies.Preview
	if err := json.Unmarshal(raw, &pv); err != nil {
		return unreadable(err)
	}
	out.printf("A run of policy '%s' at %s would select %d files, %s.\n", pv.Policy, pv.At.Format(time.RFC3339), pv.Files, report.FormatSize(pv.Bytes))
	for _, p := range pv.Paths {
		out.printf("\t%s\n", p)
	}
	if pv.Truncated {
		out.printf("\t… and %d more\n", pv.Files-int64(len(pv.Paths)))
	}
	return nil
}
