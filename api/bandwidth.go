package api

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/api/report"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// bandwidthBody answers POST /api/v1/jobs/bandwidth.
type bandwidthBody struct {
	Success bool              `json:"success"`
	JobType workflows.JobType `json:"jobType"`
	Path    string            `json:"path"`
	Dst     string            `json:"dst,omitempty"`
	// Bandwidth is the job's new limit in bytes/s; null is unlimited.
	Bandwidth *int64 `json:"bandwidth"`
	// Version counts the changes of the job's limit.
	Version int64  `json:"version,omitempty"`
	Message string `json:"message"`
}

// setBandwidth serves POST /api/v1/jobs/bandwidth: the job as for a stop,
// and options holding only bandwidth, the new limit ("unlimited" removes
// it). 200 when the running job took it, 404 when no run of the job is
// active.
func (s *Server) setBandwidth(c echo.Context) error {
	t, req, err := parseRequest(c, opBandwidth, "")
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(req.Options)) {
		if k != "bandwidth" {
			return badInput("options."+k, "only the bandwidth of a running job can be changed, not %s", k)
		}
	}
	// An empty value (null, "") says nothing, as in every other request:
	// it must not remove the job's limit, which takes "unlimited".
	raw, ok := req.Options["bandwidth"]
	if s, isString := raw.(string); raw == nil || isString && strings.TrimSpace(s) == "" {
		ok = false
	}
	if !ok {
		return badInput("options.bandwidth", "is required: the new limit, e.g. \"10MB\" or \"unlimited\"")
	}
	o, err := jobs.ParseOptions(t, map[string]any{"bandwidth": raw})
	if err != nil {
		return err
	}
	key := req.key(t)
	set, err := s.jobs.SetBandwidth(c.Request().Context(), key, o.Bandwidth)
	body := bandwidthBody{JobType: t, Path: key.Path, Dst: key.Dst}
	switch {
	case err == nil:
		body.Success, body.Version = true, set.Version
		body.Message = "bandwidth of the running job set to unlimited"
		if set.Limit > 0 {
			body.Bandwidth = &set.Limit
			body.Message = "bandwidth of the running job set to " + report.FormatSize(set.Limit) + "/s"
		}
		return c.JSON(http.StatusOK, body)
	case errors.Is(err, jobs.ErrNotFound):
		body.Message = "no run of the job is active"
		return c.JSON(http.StatusNotFound, body)
	}
	return err
}
