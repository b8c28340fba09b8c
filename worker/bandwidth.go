package worker

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/ferryio/ferry/workflows"
)

// BandwidthRefresh reads a job's current bandwidth limit with its
// workflow's bandwidth query, for the job's bandwidth authority
// (bandwidth.Authority.Refresh), so that a limit changed while the job
// runs reaches the batches already running.
func BandwidthRefresh(c client.Client) func(ctx context.Context, workflowID string) (int64, int64, error) {
	return func(ctx context.Context, workflowID string) (int64, int64, error) {
		v, err := c.QueryWorkflow(ctx, workflowID, "", workflows.QueryBandwidth)
		if err != nil {
			return 0, 0, fmt.Errorf("query the bandwidth of %s: %w", workflowID, err)
		}
		var s workflows.BandwidthSetting
		if err := v.Get(&s); err != nil {
			return 0, 0, fmt.Errorf("bandwidth of %s: %w", workflowID, err)
		}
		return s.Limit, s.Version, nil
	}
}
