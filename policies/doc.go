// Package policies is Ferry's scheduled, rule-based layer over the job
// engine (spec/policies.md): a policy runs a load, copy or move job on a
// schedule over the files of its source that match its filter.
//
// A policy is a YAML or JSON document (Policy; unknown keys are errors).
// Decode parses and validates it, reporting every problem at once with the
// field it is about ("schedule.cron", "filter.minSize", "options.bandwidth").
//
// Each policy is one Temporal Schedule, ID "policy:<name>" (ScheduleOptions,
// UpdateSchedule, FromSchedule): Temporal decides when runs start — this
// package has no timer of its own — and Temporal is the only store. The
// schedule's action starts the policy-run workflow (workflows.PolicyRunWorkflow)
// with the policy document as its argument and in its memo. That workflow
// reads its scheduled time from the TemporalScheduledStartTime search
// attribute Temporal sets, asks PrepareRun (a local activity) for the job,
// and runs the ordinary job workflow as a child under the job's usual ID,
// tagged with the FerryPolicy search attribute. The age filters are measured
// from the scheduled time, so every page and every retry of a run uses the
// same cut-off, and a backfilled run selects what it would have selected at
// its time.
//
// Overlap: the schedule's overlap policy (skip by default) keeps runs of one
// policy apart, and the job's workflow ID does the rest — a run whose job is
// already running (by hand, or allow-all) starts nothing. Service implements
// the operations: add, list, describe, update, pause, resume, trigger,
// backfill, delete and preview, which lists what a run at a given time would
// select through the job engine's own listing code.
package policies
