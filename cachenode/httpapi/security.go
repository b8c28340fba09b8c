package httpapi

import (
	"net/http"
	"strings"

	"github.com/ferryio/ferry/internal/auth"
)

// Classify describes a request to the node's HTTP API for the access
// policy (package internal/auth). Reads of files, pages, listings and the
// ring need the read role and may be served to anonymous clients (the
// alluxiofs client sends no credentials) when the node allows anonymous
// reads; writes, deletes, moves and copies need the write role; /v1/load
// follows its opType (progress reads, submit and stop write, and may come
// as GET only with a token). The storage URIs it names are read from the
// raw query, as the handlers read them.
func Classify(r *http.Request) auth.Route {
	p := r.URL.Path
	q := r.URL.Query()
	rq := parseQuery(r.URL.RawQuery)
	targets := auth.Targets(q.Get("path"), rq["ufsFullPath"], rq["srcPath"], rq["dstPath"])
	seg := strings.Split(strings.Trim(p, "/"), "/")
	switch {
	case p == "/healthz":
		return auth.Route{Name: "healthz", Role: auth.RoleNone}
	case p == "/metrics":
		return auth.Route{Name: "metrics", Role: auth.RoleRead}
	case p == "/v1/load":
		return auth.LoadRoute(q.Get("opType"), targets)
	case len(seg) >= 2 && seg[0] == "v1" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		return auth.Route{Name: seg[1], Role: auth.RoleRead, AnonymousRead: true, Targets: targets}
	case len(seg) >= 2 && seg[0] == "v1":
		return auth.Route{Name: seg[1], Role: auth.RoleWrite, Mutating: true, Targets: targets}
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		return auth.Route{Name: p, Role: auth.RoleRead}
	}
	return auth.Route{Name: p, Role: auth.RoleWrite, Mutating: true}
}
