package workflows

import (
	"errors"

	"go.temporal.io/sdk/workflow"
)

const (
	// UpdateBandwidth changes the bandwidth limit of a running job: its
	// argument is the new limit in bytes/s (0: unlimited), its result the
	// job's BandwidthSetting. Batches started from then on carry it, and
	// the job's bandwidth authority reads it with QueryBandwidth for the
	// batches already running.
	UpdateBandwidth = "bandwidth"
	// QueryBandwidth returns the job's BandwidthSetting.
	QueryBandwidth = "bandwidth"
)

// BandwidthSetting is a job's current bandwidth limit.
type BandwidthSetting struct {
	// Limit in bytes/s; 0 is unlimited.
	Limit int64 `json:"limit"`
	// Version counts the changes of the limit since the job was
	// submitted; a higher version replaces a lower one.
	Version int64 `json:"version"`
}

// errNotRunning refuses a limit change for a job that no longer runs.
var errNotRunning = errors.New("the job is not running")

// registerBandwidth lets the job's limit be read and changed while it
// runs. Neither handler issues a command: histories without a change
// replay as before.
func (r *jobRun) registerBandwidth(ctx workflow.Context) error {
	setting := func() BandwidthSetting {
		return BandwidthSetting{Limit: r.c.Options.Bandwidth, Version: r.c.BandwidthVersion}
	}
	if err := workflow.SetQueryHandler(ctx, QueryBandwidth, func() (BandwidthSetting, error) {
		return setting(), nil
	}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateBandwidth,
		func(_ workflow.Context, limit int64) (BandwidthSetting, error) {
			r.c.Options.Bandwidth = limit
			r.c.BandwidthVersion++
			r.log.Info("bandwidth limit changed", "limit", limit, "version", r.c.BandwidthVersion)
			return setting(), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, limit int64) error {
			if limit < 0 {
				return errors.New("bandwidth must not be negative")
			}
			if !r.status.Active() || r.stopReq {
				return errNotRunning
			}
			return nil
		}})
}
