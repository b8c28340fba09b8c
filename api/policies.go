package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/internal/jsonerr"
	"github.com/ferryio/ferry/policies"
)

// PolicyService is what the API needs from the policy layer;
// *policies.Service implements it.
type PolicyService interface {
	Add(ctx context.Context, p policies.Policy) error
	Update(ctx context.Context, p policies.Policy) error
	Describe(ctx context.Context, name string) (policies.Info, error)
	List(ctx context.Context) ([]policies.Summary, error)
	Delete(ctx context.Context, name string, stopRunning bool) (int, error)
	Pause(ctx context.Context, name, note string) error
	Resume(ctx context.Context, name, note string) error
	Trigger(ctx context.Context, name string) error
	Backfill(ctx context.Context, name string, from, to time.Time) error
	Preview(ctx context.Context, p policies.Policy, at time.Time, maxPaths int) (policies.Preview, error)
}

var _ PolicyService = (*policies.Service)(nil)

// Preview path limits.
const (
	defaultPreviewPaths = 20
	maxPreviewPaths     = 1000
)

// policyRoutes registers /api/v1/policies. Policy names are [a-z0-9-], so
// "preview" (reserved) never shadows one.
func (s *Server) policyRoutes() {
	e := s.echo
	e.POST("/api/v1/policies", s.addPolicy)
	e.GET("/api/v1/policies", s.listPolicies)
	e.POST("/api/v1/policies/preview", s.previewPolicy)
	e.GET("/api/v1/policies/:name", s.describePolicy)
	e.PUT("/api/v1/policies/:name", s.updatePolicy)
	e.DELETE("/api/v1/policies/:name", s.deletePolicy)
	e.POST("/api/v1/policies/:name/pause", s.pausePolicy)
	e.POST("/api/v1/policies/:name/resume", s.resumePolicy)
	e.POST("/api/v1/policies/:name/trigger", s.triggerPolicy)
	e.POST("/api/v1/policies/:name/backfill", s.backfillPolicy)
}

// policyErrorBody is an error answer of the policy routes: the first
// problem's field, and every problem when the document had several.
type policyErrorBody struct {
	Message  string             `json:"message"`
	Field    string             `json:"field,omitempty"`
	Problems []policies.Problem `json:"problems,omitempty"`
}

// policyError answers the errors of the policy layer — 400 naming the
// field, 404 unknown policy, 409 name taken — and leaves the rest (503,
// 500) to the common error handler.
func policyError(c echo.Context, err error) error {
	var ve *policies.ValidationError
	switch {
	case errors.As(err, &ve):
		return c.JSON(http.StatusBadRequest, policyErrorBody{Message: ve.Error(), Field: ve.Field(), Problems: ve.Problems})
	case errors.Is(err, policies.ErrNotFound):
		return c.JSON(http.StatusNotFound, policyErrorBody{Message: err.Error(), Field: "name"})
	case errors.Is(err, policies.ErrExists):
		return c.JSON(http.StatusConflict, policyErrorBody{Message: err.Error(), Field: "name"})
	}
	return err
}

func (s *Server) policyService() (PolicyService, error) {
	if s.policies == nil {
		return nil, echo.NewHTTPError(http.StatusServiceUnavailable, "this API serves no policies")
	}
	return s.policies, nil
}

// readPolicy decodes the request body, YAML or JSON, as a policy document.
func readPolicy(c echo.Context) (policies.Policy, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return policies.Policy{}, badBody(err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return policies.Policy{}, &policies.ValidationError{Problems: []policies.Problem{{Field: "", Message: "the body must be a policy document (JSON or YAML)"}}}
	}
	return policies.Decode(b)
}

// badBody is a body that could not be read: too large (413) or cut off.
func badBody(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "request body is too large")
	}
	return badInput("", "cannot read the request body: %v", err)
}

// addPolicy serves POST /api/v1/policies: 201 with the policy.
func (s *Server) addPolicy(c echo.Context) error {
	svc, err := s.policyService()
	if err != nil {
		return err
	}
	p, err := readPolicy(c)
	if err != nil {
		return policyError(c, err)
	}
	if err := svc.Add(c.Request().Context(), p); err != nil {
		return policyError(c, err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/policies/"+p.Name)
	return c.JSON(http.StatusCreated, map[string]any{"message": "Policy '" + p.Name + "' added.", "policy": p})
}

// listPolicies serves GET /api/v1/policies.
func (s *Server) listPolicies(c echo.Context) error {
	svc, err := s.policyService()
	if err != nil {
		return err
	}
	list, err := svc.List(c.Request().Context())
	if err != nil {
		return policyError(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"policies": list})
}

// describePolicy serves GET /api/v1/policies/{name}.
func (s *Server) describePolicy(c echo.Context) error {
	svc, err := s.policyService()
	if err != nil {
		return err
	}
	info, err := svc.Describe(c.Request().Context(), c.Param("name"))
	if err != nil {
		return policyError(c, err)
	}
	return c.JSON(http.StatusOK, info)
}

// updatePolicy serves PUT /api/v1/policies/{name}; the body's name, when
// given, must be the one in the path.
func (s *Server) updatePolicy(c echo.Context) error {
	svc, err := s.policyService()
	if err != nil {
		return err
	}
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return badBody(err)
	}
	p, perr := policies.Parse(b)
	if perr == nil && p.Name == "" {
		p.Name = c.Param("name")
	} else if perr == nil && p.Name != c.Param("name") {
		return policyError(c, &policies.ValidationError{Problems: []policies.Problem{{Field: "name", Message: "\"" + p.Name + "\" is not the policy in the path, \"" + c.Param("name") + "\""}}})
	}
	if perr != nil {
		return policyError(c, perr)
	}
	if err := p.Validate(); err != nil {
		return policyError(c, err)
	}
	if err := svc.Update(c.Request().Context(), p); err != nil {
		return policyError(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"message": "Policy '" + p.Name + "' updated.", "policy": p})
}

// deletePolicy serves DELETE /api/v1/policies/{name}[?stopRunning=true].
func (s *Server) deletePolicy(c echo.Context) error {
	svc, err := s.policyService()
	if err != nil {
		return err
	}
	stop := false
	if v := c.QueryParam("stopRunning"); v != "" {
		if stop, err = strconv.ParseBool(v); err != nil {
			return policyError(c, fieldError("stopRunning", "want true or false, got "+strconv.Quote(v)))
		}
	}
	n, err := svc.Delete(c.Request().Context(), c.Param("name"), stop)
	if err != nil {
		return policyError(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"message": "Policy '" + c.Param("name") + "' deleted.", "stoppedJobs": n})
}

// noteBody is the optional body of pause and resume.
type noteBody struct {
	Note string `json:"note"`
}

// backfillBody is the body of backfill.
type backfillBody struct {
	From string `json:"from"`
	To   string `json:"to"`
}

func (s *Server) pausePolicy(c echo.Context) error  { return s.notePolicy(c, true) }
func (s *Server) resumePolicy(c echo.Context) error { return s.notePolicy(c, false) }

// notePolicy serves pause and resume, body {"note": …} (optional).
func (s *Server) notePolicy(c echo.Context, pause bool) error {
	svc, err := s.policyService()
	if err != nil {
		return err
	}
	var body noteBody
	if err := decodeOptional(c, &body); err != nil {
		return err
	}
	name, ctx := c.Param("name"), c.Request().Context()
	verb := "resumed"
	if pause {
		verb = "paused"
		err = svc.Pause(ctx, name, body.Note)
	} else {
		err = svc.Resume(ctx, name, body.Note)
	}
	if err != nil {
		return policyError(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"message": "Policy '" + name + "' " + verb + "."})
}

// triggerPolicy serves POST /api/v1/policies/{name}/trigger.
func (s *Server) triggerPolicy(c echo.Context) error {
	svc, err := s.policyService()
	if err != nil {
		return err
	}
	name := c.Param("name")
	if err := svc.Trigger(c.Request().Context(), name); err != nil {
		return policyError(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"message": "Policy '" + name + "' triggered."})
}

// backfillPolicy serves POST /api/v1/policies/{name}/backfill, body
// {"from": RFC 3339, "to": RFC 3339}.
func (s *Server) backfillPolicy(c echo.Context) error {
	svc, err := s.policyService()
	if err != nil {
		return err
	}
	var body backfillBody
	if err := decodeOptional(c, &body); err != nil {
		return err
	}
	from, err := parseTime("from", body.From)
	if err != nil {
		return policyError(c, err)
	}
	to, err := parseTime("to", body.To)
	if err != nil {
		return policyError(c, err)
	}
	name := c.Param("name")
	if err := svc.Backfill(c.Request().Context(), name, from, to); err != nil {
		return policyError(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"message": "Policy '" + name + "' backfilled from " + from.Format(time.RFC3339) + " to " + to.Format(time.RFC3339) + "."})
}

// previewPolicy serves POST /api/v1/policies/preview[?at=RFC 3339][&limit=N]
// with a policy document as the body.
func (s *Server) previewPolicy(c echo.Context) error {
	svc, err := s.policyService()
	if err != nil {
		return err
	}
	at, err := parseTime("at", c.QueryParam("at"))
	if err != nil {
		return policyError(c, err)
	}
	limit := defaultPreviewPaths
	if v := c.QueryParam("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 0 || limit > maxPreviewPaths {
			return policyError(c, fieldError("limit", "want a whole number from 0 to "+strconv.Itoa(maxPreviewPaths)+", got "+strconv.Quote(v)))
		}
	}
	p, err := readPolicy(c)
	if err != nil {
		return policyError(c, err)
	}
	pv, err := svc.Preview(c.Request().Context(), p, at, limit)
	if err != nil {
		return policyError(c, err)
	}
	return c.JSON(http.StatusOK, pv)
}

// decodeOptional decodes a JSON body into v when there is one.
func decodeOptional(c echo.Context, v any) error {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return badBody(err)
	}
	if strings.TrimSpace(string(b)) == "" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		field, msg := jsonerr.Describe(err)
		if field == "" {
			field = "body"
		}
		return policyError(c, fieldError(field, "malformed JSON body: "+msg))
	}
	return nil
}

func fieldError(field, msg string) error {
	return &policies.ValidationError{Problems: []policies.Problem{{Field: field, Message: msg}}}
}

// parseTime reads an RFC 3339 time; empty is the zero time.
func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fieldError(field, "want an RFC 3339 time such as 2026-01-02T03:04:05Z, got "+strconv.Quote(v))
	}
	return t, nil
}
