package api

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// Ferry's resource-style routes. They take the job type in the request
// rather than the URL, and their status codes say what happened, so a
// client needs no message parsing.

// createJob serves POST /api/v1/jobs: 201 when a run started, 200 when a
// stopped job resumed, 409 when the job is already running.
func (s *Server) createJob(c echo.Context) error {
	t, req, err := parseRequest(c, opSubmit, "")
	if err != nil {
		return err
	}
	body, err := s.submit(c, t, req)
	if err != nil {
		return err
	}
	switch body.Outcome {
	case jobs.AlreadyRunning:
		body.Success = false
		return c.JSON(http.StatusConflict, body)
	case jobs.Resumed:
		return c.JSON(http.StatusOK, body)
	}
	c.Response().Header().Set(echo.HeaderLocation, progressURL(body))
	return c.JSON(http.StatusCreated, body)
}

// progressURL is where a new job's progress is read.
func progressURL(b submitBody) string {
	q := url.Values{"type": {string(b.JobType)}, "path": {b.Path}}
	if b.JobType != workflows.JobLoad {
		q = url.Values{"type": {string(b.JobType)}, "src": {b.Path}, "dst": {b.Dst}}
	}
	return "/api/v1/jobs/progress?" + q.Encode()
}

// listJobs serves GET /api/v1/jobs?type=&state=.
func (s *Server) listJobs(c echo.Context) error {
	q, err := listQuery(c, "type", "state")
	if err != nil {
		return err
	}
	f, err := listFilter("type", q.Get("type"), "state", q.Get("state"))
	if err != nil {
		return err
	}
	body, err := s.list(c, f, strings.ToLower)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, body)
}

// jobProgress serves GET /api/v1/jobs/progress?type=&path=|src=&dst=&format=&verbose=.
func (s *Server) jobProgress(c echo.Context) error {
	t, req, err := parseRequest(c, opProgress, "")
	if err != nil {
		return err
	}
	return s.progress(c, t, req)
}

// stopJob serves POST /api/v1/jobs/stop: 200 when stopped, 404 when no run
// of the job is active.
func (s *Server) stopJob(c echo.Context) error {
	t, req, err := parseRequest(c, opStop, "")
	if err != nil {
		return err
	}
	body, found, err := s.stop(c, t, req)
	if err != nil {
		return err
	}
	if !found {
		return c.JSON(http.StatusNotFound, body)
	}
	return c.JSON(http.StatusOK, body)
}
