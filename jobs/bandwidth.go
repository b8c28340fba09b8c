package jobs

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/ferryio/ferry/workflows"
)

// SetBandwidth changes the bandwidth limit of a running job (bytes/s, 0:
// unlimited) with the workflow's bandwidth update: batches started from
// then on carry the new limit, and the job's bandwidth authority reads it
// within a few seconds for the batches already running. It returns
// ErrNotFound when no run of the job is active.
func (s *Service) SetBandwidth(ctx context.Context, key Key, limit int64) (workflows.BandwidthSetting, error) {
	if err := key.Validate(); err != nil {
		return workflows.BandwidthSetting{}, err
	}
	if limit < 0 {
		return workflows.BandwidthSetting{}, errors.New("bandwidth must not be negative")
	}
	last, err := s.lastRun(ctx, key, stateNever)
	if err != nil {
		return workflows.BandwidthSetting{}, err
	}
	if last.status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return workflows.BandwidthSetting{}, ErrNotFound
	}
	h, err := s.client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   key.WorkflowID(),
		UpdateName:   workflows.UpdateBandwidth,
		Args:         []any{limit},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return workflows.BandwidthSetting{}, ErrNotFound
		}
		return workflows.BandwidthSetting{}, fmt.Errorf("%w: update the bandwidth of %s: %s", ErrUnavailable, key.WorkflowID(), err.Error())
	}
	var set workflows.BandwidthSetting
	if err := h.Get(ctx, &set); err != nil {
		// The workflow refused it: the job is stopping or has ended.
		return workflows.BandwidthSetting{}, fmt.Errorf("%w: %s", ErrNotFound, err.Error())
	}
	return set, nil
}
