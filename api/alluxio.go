package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/api/report"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// workerSubmitBody, workerStopBody and workerProgressBody are the exact
// shapes Alluxio workers answer /v1/load with; the fsspec client reads them.
type workerSubmitBody struct {
	Success bool   `json:"success"`
	JobID   string `json:"jobId"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

type workerStopBody struct {
	Success bool   `json:"success"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

type workerProgressBody struct {
	JobState       string            `json:"jobState"`
	Path           string            `json:"path"`
	Message        string            `json:"message"`
	RespProperties map[string]string `json:"respProperties"`
}

// workerLoad serves GET|POST /v1/load. Everything comes from the query:
// cache nodes forward the request as they received it.
func (s *Server) workerLoad(c echo.Context) error {
	q, err := query(c)
	if err != nil {
		code, body := classify(err)
		return c.JSON(code, workerSubmitBody{Message: body.Message})
	}
	key := jobs.Key{Type: workflows.JobLoad, Path: q.Get("path")}
	ctx := c.Request().Context()
	op := strings.ToLower(q.Get("opType"))
	if err := checkWorkerRequest(c, q, op); err != nil {
		code, body := classify(err)
		switch op {
		case "progress":
			return c.JSON(code, workerProgressBody{JobState: string(workflows.StatusFailed), Path: key.Path, Message: body.Message, RespProperties: map[string]string{}})
		case "stop":
			return c.JSON(code, workerStopBody{Path: key.Path, Message: body.Message})
		}
		return c.JSON(code, workerSubmitBody{Path: key.Path, Message: body.Message})
	}
	switch op {
	case "submit":
		fail := func(err error) error {
			code, body := classify(err)
			return c.JSON(code, workerSubmitBody{Path: key.Path, Message: "Failed to submit load job " + key.Path + ": " + body.Message})
		}
		opts, err := jobs.ParseOptions(workflows.JobLoad, queryOptions(q))
		if err != nil {
			return fail(err)
		}
		res, err := s.jobs.Submit(ctx, key, opts)
		if err != nil {
			return fail(err)
		}
		// "Already running" is a success: the job the caller wants is
		// running, and the fsspec client goes on to poll its progress.
		return c.JSON(http.StatusOK, workerSubmitBody{Success: true, JobID: res.JobID, Path: key.Path, Message: submitMessage(key, res)})

	case "stop":
		err := s.jobs.Stop(ctx, key)
		switch {
		case err == nil:
			return c.JSON(http.StatusOK, workerStopBody{Success: true, Path: key.Path, Message: stopMessage(key)})
		case errors.Is(err, jobs.ErrNotFound):
			return c.JSON(http.StatusOK, workerStopBody{Path: key.Path, Message: stopNotFoundMessage(key)})
		}
		code, body := classify(err)
		return c.JSON(code, workerStopBody{Path: key.Path, Message: "Failed to stop load job " + key.Path + ": " + body.Message})

	case "progress":
		fail := func(code int, msg string) error {
			return c.JSON(code, workerProgressBody{JobState: string(workflows.StatusFailed), Path: key.Path, Message: msg, RespProperties: map[string]string{}})
		}
		verbose, err := queryBool(q, "verbose")
		if err != nil {
			code, body := classify(err)
			return fail(code, body.Message)
		}
		format, err := report.ParseFormat(q.Get("progressFormat"))
		if err != nil {
			return fail(http.StatusBadRequest, "progressFormat: "+err.Error())
		}
		st, err := s.jobs.Progress(ctx, key)
		switch {
		case errors.Is(err, jobs.ErrNotFound):
			// Alluxio answers an unknown job with a FAILED state, not 404.
			return fail(http.StatusOK, progressNotFoundMessage(key))
		case err != nil:
			code, body := classify(err)
			return fail(code, "Failed to get progress for load job "+key.Path+": "+body.Message)
		}
		p := s.report.Build(st, verbose)
		text := s.report.Text(p)
		msg := text
		if format == report.JSON {
			if msg, err = s.report.Render(st, report.JSON, verbose); err != nil {
				return err
			}
		}
		return c.JSON(http.StatusOK, workerProgressBody{JobState: string(st.Status), Path: key.Path, Message: msg, RespProperties: report.Properties(text)})
	}
	return badInput("opType", "must be submit, progress or stop, got %q", q.Get("opType"))
}

// submitBody answers a submit on the coordinator-style and Ferry routes.
type submitBody struct {
	Success bool              `json:"success"`
	Outcome jobs.Outcome      `json:"outcome"`
	JobID   string            `json:"jobId"`
	JobType workflows.JobType `json:"jobType"`
	Path    string            `json:"path"`
	Dst     string            `json:"dst,omitempty"`
	Message string            `json:"message"`
}

// stopBody answers a stop.
type stopBody struct {
	Success bool              `json:"success"`
	JobType workflows.JobType `json:"jobType"`
	Path    string            `json:"path"`
	Dst     string            `json:"dst,omitempty"`
	Message string            `json:"message"`
}

// progressBody answers a progress request: the report in the requested
// format as message, and its facts as progress.
type progressBody struct {
	JobID    string            `json:"jobId,omitempty"`
	JobType  workflows.JobType `json:"jobType"`
	JobState string            `json:"jobState"`
	Path     string            `json:"path"`
	Dst      string            `json:"dst,omitempty"`
	Format   report.Format     `json:"format,omitempty"`
	Message  string            `json:"message"`
	Progress *report.Progress  `json:"progress,omitempty"`
}

// listBody answers a listing.
type listBody struct {
	Jobs []jobSummary `json:"jobs"`
}

type jobSummary struct {
	JobID     string    `json:"jobId"`
	JobType   string    `json:"jobType"`
	JobState  string    `json:"jobState"`
	Path      string    `json:"path"`
	Dst       string    `json:"dst,omitempty"`
	StartTime time.Time `json:"startTime,omitzero"`
	EndTime   time.Time `json:"endTime,omitzero"`
	Policy    string    `json:"policy,omitempty"`
	// SubmitTime is the start of the job's first run; StartTime is its
	// latest run's (later when the job was resumed).
	SubmitTime time.Time `json:"submitTime,omitzero"`
}

func (s *Server) masterSubmit(c echo.Context) error {
	rt, err := parseType("type", c.Param("type"))
	if err != nil {
		return err
	}
	t, req, err := parseRequest(c, opSubmit, rt)
	if err != nil {
		return err
	}
	body, err := s.submit(c, t, req)
	if err != nil {
		return err
	}
	// Alluxio answers every accepted submit with 200, "already running"
	// included; the outcome field tells them apart.
	return c.JSON(http.StatusOK, body)
}

// submit parses options and submits; shared by the coordinator-style and
// Ferry routes.
func (s *Server) submit(c echo.Context, t workflows.JobType, req *jobRequest) (submitBody, error) {
	key := req.key(t)
	if err := key.Validate(); err != nil {
		return submitBody{}, err
	}
	opts, err := req.options(t)
	if err != nil {
		return submitBody{}, err
	}
	res, err := s.jobs.Submit(c.Request().Context(), key, opts)
	if err != nil {
		return submitBody{}, err
	}
	return submitBody{
		// Already running counts as success, as on /v1/load: the job the
		// caller asked for is running. Outcome tells the cases apart.
		Success: true,
		Outcome: res.Outcome, JobID: res.JobID, JobType: t,
		Path: key.Path, Dst: key.Dst, Message: submitMessage(key, res),
	}, nil
}

func (s *Server) masterProgress(c echo.Context) error {
	rt, err := parseType("type", c.Param("type"))
	if err != nil {
		return err
	}
	t, req, err := parseRequest(c, opProgress, rt)
	if err != nil {
		return err
	}
	return s.progress(c, t, req)
}

// progress answers a progress request; an unknown job is a 404 that still
// carries jobState FAILED and Alluxio's message.
func (s *Server) progress(c echo.Context, t workflows.JobType, req *jobRequest) error {
	key := req.key(t)
	format, err := req.reportFormat()
	if err != nil {
		return err
	}
	st, err := s.jobs.Progress(c.Request().Context(), key)
	if errors.Is(err, jobs.ErrNotFound) {
		return c.JSON(http.StatusNotFound, progressBody{
			JobType: t, JobState: string(workflows.StatusFailed), Path: key.Path, Dst: key.Dst,
			Message: progressNotFoundMessage(key),
		})
	}
	if err != nil {
		return err
	}
	p := s.report.Build(st, req.Verbose.value)
	msg, err := s.report.Render(st, format, req.Verbose.value)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, progressBody{
		JobID: st.JobID, JobType: t, JobState: string(st.Status), Path: key.Path, Dst: key.Dst,
		Format: format, Message: msg, Progress: &p,
	})
}

func (s *Server) masterStop(c echo.Context) error {
	rt, err := parseType("type", c.Param("type"))
	if err != nil {
		return err
	}
	t, req, err := parseRequest(c, opStop, rt)
	if err != nil {
		return err
	}
	// An unknown or finished job is not an error here, as in Alluxio: the
	// answer is 200 with success false and "Cannot find …".
	body, _, err := s.stop(c, t, req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, body)
}

// stop signals the job; found is false when no run of it is active.
func (s *Server) stop(c echo.Context, t workflows.JobType, req *jobRequest) (stopBody, bool, error) {
	key := req.key(t)
	err := s.jobs.Stop(c.Request().Context(), key)
	body := stopBody{JobType: t, Path: key.Path, Dst: key.Dst}
	switch {
	case err == nil:
		body.Success, body.Message = true, stopMessage(key)
		return body, true, nil
	case errors.Is(err, jobs.ErrNotFound):
		body.Message = stopNotFoundMessage(key)
		return body, false, nil
	}
	return stopBody{}, false, err
}

func (s *Server) masterList(c echo.Context) error {
	q, err := listQuery(c, "job-type", "job-state")
	if err != nil {
		return err
	}
	f, err := listFilter("job-type", q.Get("job-type"), "job-state", q.Get("job-state"))
	if err != nil {
		return err
	}
	body, err := s.list(c, f, strings.ToUpper)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, body)
}

// listFilter parses a type and a state filter; empty and ALL match all.
func listFilter(typeField, typ, stateField, state string) (jobs.ListFilter, error) {
	var f jobs.ListFilter
	if typ != "" && !strings.EqualFold(typ, "ALL") {
		t, err := parseType(typeField, typ)
		if err != nil {
			return f, err
		}
		f.Type = t
	}
	if state != "" && !strings.EqualFold(state, "ALL") {
		st := workflows.JobStatus(strings.ToUpper(state))
		switch st {
		case workflows.StatusRunning, workflows.StatusVerifying, workflows.StatusStopped, workflows.StatusSucceeded, workflows.StatusFailed, workflows.StatusTerminated:
		default:
			return f, badInput(stateField, "unknown job state %q (want RUNNING, VERIFYING, STOPPED, SUCCEEDED, FAILED, TERMINATED or ALL)", state)
		}
		f.Status = st
	}
	return f, nil
}

// list returns the jobs matching f. The state is matched here, on each
// job's latest run, rather than in the visibility query, which would also
// match an older run of a job (a STOPPED run of a job now RUNNING again).
func (s *Server) list(c echo.Context, f jobs.ListFilter, typeCase func(string) string) (listBody, error) {
	all, err := s.jobs.List(c.Request().Context(), jobs.ListFilter{Type: f.Type})
	if err != nil {
		return listBody{}, err
	}
	out := listBody{Jobs: []jobSummary{}}
	for _, j := range all {
		if f.Status != "" && j.Status != f.Status {
			continue
		}
		out.Jobs = append(out.Jobs, jobSummary{
			JobID: j.JobID, JobType: typeCase(string(j.Type)), JobState: string(j.Status),
			Path: j.Path, Dst: j.Dst, StartTime: j.StartTime, EndTime: j.EndTime, Policy: j.Policy,
			SubmitTime: j.SubmitTime,
		})
	}
	return out, nil
}
