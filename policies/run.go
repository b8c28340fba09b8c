package policies

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// This file is the one seam between policies and the job engine. A run's
// job is what a hand-submitted job with the same options would be: the
// policy's filter becomes job options by their REST keys, parsed by
// jobs.ParseOptions, and the age filters are measured from the run's
// scheduled time (workflows.Filter.ReferenceTime), so every page and every
// retry of one run uses the same absolute cut-offs. The engine types used
// here are jobs.Key, jobs.ParseOptions, workflows.Options (Filter.ReferenceTime
// and Policy), workflows.JobInput and workflows.ListInput with
// activities.Select (preview); nothing else in this package builds job
// options or lists a source.

// optionsMap is the policy's job options with its filter folded in, by the
// job engine's REST keys.
func (p Policy) optionsMap() map[string]any {
	raw := make(map[string]any, len(p.Options)+7)
	for k, v := range p.Options {
		raw[k] = v
	}
	f := p.Filter
	set := func(key string, v Text) {
		if v != "" {
			raw[key] = string(v)
		}
	}
	if f.NamePattern != "" {
		raw["fileFilterRegx"] = f.NamePattern
	}
	if len(f.Include) > 0 {
		raw["include"] = f.Include
	}
	if len(f.Exclude) > 0 {
		raw["exclude"] = f.Exclude
	}
	set("olderThan", f.OlderThan)
	set("newerThan", f.NewerThan)
	set("minSize", f.MinSize)
	set("maxSize", f.MaxSize)
	return raw
}

// jobOptions parses the policy's options as the job engine does.
func (p Policy) jobOptions() (workflows.Options, error) {
	return jobs.ParseOptions(workflows.JobType(p.Action), p.optionsMap())
}

// Key is the job a run of p works on.
func (p Policy) Key() jobs.Key {
	return jobs.Key{Type: workflows.JobType(p.Action), Path: p.Src, Dst: p.Dst}
}

// JobRequest is the job of a run of p scheduled at scheduled: its key and
// its options, with the age filters measured from scheduled and the run
// tagged with the policy's name.
func (p Policy) JobRequest(scheduled time.Time) (jobs.Key, workflows.Options, error) {
	if err := p.Validate(); err != nil {
		return jobs.Key{}, workflows.Options{}, err
	}
	opts, err := p.jobOptions()
	if err != nil {
		return jobs.Key{}, workflows.Options{}, err
	}
	opts.Filter.ReferenceTime = scheduled.UTC()
	opts.Policy = p.Name
	return p.Key(), opts, nil
}

// PrepareRun is the local activity ActivityPreparePolicyRun: the job of one
// run of the policy document in.Document at in.ScheduledTime. A document
// that no longer validates fails the run without retries.
func PrepareRun(_ context.Context, in workflows.PreparePolicyRunInput) (workflows.PreparePolicyRunResult, error) {
	p, err := Decode([]byte(in.Document))
	if err != nil {
		return workflows.PreparePolicyRunResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("policy %q: %v", p.Name, err), workflows.ErrTypeInvalidInput, nil)
	}
	key, opts, err := p.JobRequest(in.ScheduledTime)
	if err != nil {
		return workflows.PreparePolicyRunResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("policy %q: %v", p.Name, err), workflows.ErrTypeInvalidInput, nil)
	}
	return workflows.PreparePolicyRunResult{
		WorkflowID: key.WorkflowID(),
		Job:        workflows.JobInput{Type: key.Type, Path: key.Path, Dst: key.Dst, Options: opts},
	}, nil
}

// selection runs the job engine's listing and filters over the source of a
// run of p scheduled at at, as its listing activity would, without starting
// anything.
func (p Policy) selection(ctx context.Context, resolver *storage.Resolver, at time.Time, maxPaths int) (activities.Selection, error) {
	key, opts, err := p.JobRequest(at)
	if err != nil {
		return activities.Selection{}, err
	}
	in := workflows.ListInput{
		Type: key.Type, Path: key.Path, IndexFile: opts.IndexFile, Limit: opts.BatchSize,
		FileFilterRegx: opts.FileFilterRegx, Filter: opts.Filter,
	}
	return activities.Select(ctx, resolver, in, maxPaths)
}
