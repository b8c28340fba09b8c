package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/ferryio/ferry/internal/auth"
)

// maxAuditBody is how much of a JSON body Classify reads to name a
// request's targets; larger bodies are refused by the API anyway.
const maxAuditBody = 1 << 20

// Classify describes a REST request for the access policy (package
// internal/auth): the role it needs, whether it changes state, and the
// storage URIs it names. Liveness and the OpenAPI document are open;
// progress, lists and metrics need the read role; submit, stop and every
// other state-changing route (policies included) need the write role and
// a JSON body.
func Classify(r *http.Request) auth.Route {
	p := r.URL.Path
	switch {
	case p == "/healthz" || p == "/openapi.json":
		return auth.Route{Name: strings.TrimPrefix(p, "/"), Role: auth.RoleNone}
	case p == "/v1/load":
		q := r.URL.Query()
		return auth.LoadRoute(q.Get("opType"), auth.Targets(q.Get("path")))
	case strings.HasPrefix(p, "/api/v1/master/progress_job/"), p == "/api/v1/master/list_job",
		p == "/api/v1/jobs/progress", p == "/metrics":
		return auth.Route{Name: routeName(p), Role: auth.RoleRead}
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		// Every other GET reads (job lists, policies); a GET on a route that
		// only has POST is answered 405 by the router after this.
		return auth.Route{Name: routeName(p), Role: auth.RoleRead}
	}
	// Policy documents may come as YAML (add, update, preview).
	yaml := p == "/api/v1/policies" || p == "/api/v1/policies/preview" ||
		(r.Method == http.MethodPut && strings.HasPrefix(p, "/api/v1/policies/"))
	return auth.Route{Name: routeName(p), Role: auth.RoleWrite, Mutating: true, JSON: true, YAML: yaml, Targets: bodyTargets(r)}
}

func routeName(p string) string {
	return strings.Trim(strings.TrimPrefix(strings.TrimPrefix(p, "/api/v1"), "/master"), "/")
}

// bodyTargets reads the path fields of a JSON body and puts the body back.
func bodyTargets(r *http.Request) []string {
	if r.Body == nil || r.Body == http.NoBody {
		return auth.Targets(r.URL.Query().Get("path"))
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxAuditBody+1))
	rest := r.Body
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(raw), rest), rest}
	if err != nil || len(raw) > maxAuditBody {
		return nil
	}
	var b struct {
		Path, Src, Dst, IndexFile string
		Name                      string
	}
	_ = json.Unmarshal(raw, &b)
	return auth.Targets(b.Path, b.Src, b.Dst, b.IndexFile, b.Name)
}
