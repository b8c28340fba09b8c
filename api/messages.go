package api

import (
	"fmt"

	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// The messages below are worded as the Alluxio CLI and REST API word them,
// so scripts that match on them keep working. The CLI prints them as the
// API returns them.

// subject names a job inside a sentence: "Load 'p'" or "Copy from 's' to 'd'".
func subject(k jobs.Key) string {
	switch k.Type {
	case workflows.JobCopy:
		return fmt.Sprintf("Copy from '%s' to '%s'", k.Path, k.Dst)
	case workflows.JobMove:
		return fmt.Sprintf("Move from '%s' to '%s'", k.Path, k.Dst)
	}
	return fmt.Sprintf("Load '%s'", k.Path)
}

func submitMessage(k jobs.Key, res jobs.SubmitResult) string {
	switch res.Outcome {
	case jobs.AlreadyRunning:
		switch k.Type {
		case workflows.JobCopy:
			return fmt.Sprintf("Copy already running from '%s' to '%s'", k.Path, k.Dst)
		case workflows.JobMove:
			return fmt.Sprintf("Move already running from '%s' to '%s'", k.Path, k.Dst)
		}
		return fmt.Sprintf("Load already running for path '%s'", k.Path)
	case jobs.Resumed:
		msg := fmt.Sprintf("%s is resumed. JobId: %s", subject(k), res.JobID)
		if res.OptionsIgnored {
			msg += " (it keeps the options it was submitted with; the options given now are ignored)"
		}
		return msg
	}
	return fmt.Sprintf("%s is successfully submitted. JobId: %s", subject(k), res.JobID)
}

func stopMessage(k jobs.Key) string {
	return subject(k) + " is successfully stopped."
}

func stopNotFoundMessage(k jobs.Key) string {
	if k.Type == workflows.JobLoad {
		return fmt.Sprintf("Cannot find load job for path %s, it might have already been stopped or finished", k.Path)
	}
	return fmt.Sprintf("Cannot find %s job for path %s to %s, it might have already been stopped or finished", k.Type, k.Path, k.Dst)
}

func progressNotFoundMessage(k jobs.Key) string {
	switch k.Type {
	case workflows.JobCopy:
		return fmt.Sprintf("Copy from '%s' to '%s' cannot be found.", k.Path, k.Dst)
	case workflows.JobMove:
		return fmt.Sprintf("Move from '%s' to '%s' cannot be found.", k.Path, k.Dst)
	}
	return fmt.Sprintf("Load for path '%s' cannot be found.", k.Path)
}
