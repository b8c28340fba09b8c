package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Route is what a request does, as the listener's classifier sees it.
type Route struct {
	// Name identifies the route in audit lines ("submit_job", "rm").
	Name string
	// Role is the least role that may call it.
	Role Role
	// Mutating routes change state: they are audited and must be sent as a
	// browser cannot send them cross-origin (see Policy).
	Mutating bool
	// GetWithToken lets a mutating route be called with GET when the
	// request carries a bearer token (the Alluxio worker route /v1/load).
	GetWithToken bool
	// YAML JSON routes also take YAML bodies (policy documents).
	YAML bool
	// JSON routes take JSON bodies; other mutating routes take raw bytes
	// (application/octet-stream).
	JSON bool
	// AnonymousRead marks a read route an anonymous client may call when
	// the listener allows anonymous reads (the alluxiofs client).
	AnonymousRead bool
	// Targets are the storage URIs the request names, for the audit line.
	Targets []string
}

// Classifier describes a request. It may read the body as long as it puts
// back an equivalent one.
type Classifier func(r *http.Request) Route

// Policy is the access policy of one HTTP listener.
type Policy struct {
	// Tokens are the accepted bearer tokens. Nil accepts none.
	Tokens *Tokens
	// NoAuth lets every request in as the anonymous writer
	// (--insecure-no-auth; the caller makes sure the listener is loopback).
	NoAuth bool
	// AnonymousReads lets requests without a token call the routes marked
	// AnonymousRead (--anonymous-reads, for alluxiofs): from loopback
	// clients only, or from anywhere.
	AnonymousReads AnonymousReads
	// AllowedHosts are host names (besides IP literals, localhost and this
	// machine's name) accepted in the Host header.
	AllowedHosts []string
	// AllowedOrigins are extra origins ("https://ui.example") accepted in
	// an Origin header besides the listener's own.
	AllowedOrigins []string
	// Classify describes requests. Required.
	Classify Classifier
	// Logger receives the audit lines and refusals. Default slog.Default().
	Logger *slog.Logger
}

// AnonymousReads says which clients without a token may read.
type AnonymousReads string

// The anonymous-read settings.
const (
	AnonymousReadsOff      AnonymousReads = ""
	AnonymousReadsLoopback AnonymousReads = "loopback"
	AnonymousReadsAll      AnonymousReads = "all"
)

// ParseAnonymousReads reads "", "off", "loopback" or "all".
func ParseAnonymousReads(s string) (AnonymousReads, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "off", "false", "no":
		return AnonymousReadsOff, nil
	case "loopback":
		return AnonymousReadsLoopback, nil
	case "all":
		return AnonymousReadsAll, nil
	}
	return AnonymousReadsOff, fmt.Errorf("anonymous reads %q: want off, loopback or all", s)
}

func (a AnonymousReads) allows(remote string) bool {
	switch a {
	case AnonymousReadsAll:
		return true
	case AnonymousReadsLoopback:
		host, _, err := net.SplitHostPort(remote)
		if err != nil {
			host = remote
		}
		ip := net.ParseIP(host)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

// IsLoopback reports whether a listen address ("host:port") binds only
// loopback interfaces.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type ctxKey int

const (
	principalKey ctxKey = iota
	credentialKey
)

// PrincipalFrom returns the principal a request was authenticated as.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

// credentialFrom is the Authorization header a request came with, for
// forwarding it.
func credentialFrom(ctx context.Context) string {
	s, _ := ctx.Value(credentialKey).(string)
	return s
}

// Middleware wraps next with the policy. Checks, in order: Host (no DNS
// rebinding), Origin (no foreign web page), no CORS preflight, the bearer
// token and the route's role, then for mutating routes the method and
// content type. Every refusal answers {"message": ...} with 400-415 and
// names the rule; every mutating request, refused or not, writes one audit
// line.
func (p *Policy) Middleware(next http.Handler) http.Handler {
	log := p.Logger
	if log == nil {
		log = slog.Default()
	}
	hostname, _ := os.Hostname()
	hosts := map[string]bool{}
	for _, h := range append([]string{hostname}, p.AllowedHosts...) {
		if h != "" {
			hosts[strings.ToLower(strings.TrimSuffix(h, "."))] = true
		}
	}
	origins := map[string]bool{}
	for _, o := range p.AllowedOrigins {
		origins[strings.ToLower(strings.TrimSuffix(o, "/"))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if msg := checkHost(r.Host, hosts); msg != "" {
			refuse(w, log, r, nil, Route{}, http.StatusForbidden, msg)
			return
		}
		if msg := checkOrigin(r, origins); msg != "" {
			refuse(w, log, r, nil, Route{}, http.StatusForbidden, msg)
			return
		}
		if r.Method == http.MethodOptions {
			refuse(w, log, r, nil, Route{}, http.StatusMethodNotAllowed, "OPTIONS: cross-origin requests (CORS) are not supported")
			return
		}
		route := p.Classify(r)
		header := r.Header.Get("Authorization")
		var who Principal
		switch {
		case header != "":
			tok, ok := bearer(header)
			if !ok {
				refuse(w, log, r, nil, route, http.StatusUnauthorized, "the Authorization header must be \"Bearer <token>\"")
				return
			}
			pr, found := p.Tokens.lookup(tok)
			if !found {
				refuse(w, log, r, nil, route, http.StatusUnauthorized, "the bearer token is not valid")
				return
			}
			who = pr
		case p.NoAuth:
			who = Principal{Name: Anonymous, Role: RoleWrite}
		case route.Role == RoleNone:
			who = Principal{Name: Anonymous, Role: RoleNone}
		case route.AnonymousRead && route.Role == RoleRead && p.AnonymousReads.allows(r.RemoteAddr):
			who = Principal{Name: Anonymous, Role: RoleRead}
		default:
			refuse(w, log, r, nil, route, http.StatusUnauthorized, "authentication required: send \"Authorization: Bearer <token>\" (ferry dev keeps one in <data-dir>/token)")
			return
		}
		if who.Role < route.Role {
			refuse(w, log, r, &who, route, http.StatusForbidden, fmt.Sprintf("principal %q has the %s role; %s needs %s", who.Name, who.Role, route.Name, route.Role))
			return
		}
		if route.Mutating {
			if code, msg := checkMutating(r, route); code != 0 {
				refuse(w, log, r, &who, route, code, msg)
				return
			}
		}
		ctx := context.WithValue(r.Context(), principalKey, who)
		if header != "" {
			ctx = context.WithValue(ctx, credentialKey, header)
		}
		r = r.WithContext(ctx)
		if !route.Mutating {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			log.Info("audit", "principal", who.Name, "role", who.Role.String(), "method", r.Method, "route", route.Name,
				"targets", route.Targets, "status", sw.status, "remote", r.RemoteAddr, "ms", time.Since(start).Milliseconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

func (t *Tokens) lookup(tok string) (Principal, bool) {
	if t == nil {
		return Principal{}, false
	}
	return t.Lookup(tok)
}

func bearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// checkHost accepts IP literals, localhost names, this machine's name and
// the configured names; anything else may be a DNS-rebinding attack (a
// foreign name resolving to this machine).
func checkHost(hostport string, allowed map[string]bool) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	switch {
	case host == "":
		return "" // HTTP/1.0 without Host: nothing to rebind
	case net.ParseIP(host) != nil, host == "localhost", strings.HasSuffix(host, ".localhost"), allowed[host]:
		return ""
	}
	return fmt.Sprintf("host %q is not allowed (DNS rebinding protection): use an IP address or add the name with --allowed-hosts", host)
}

// checkOrigin refuses requests from web pages of another origin. Requests
// without Origin (command-line and program clients) pass.
func checkOrigin(r *http.Request, allowed map[string]bool) string {
	origin := r.Header.Get("Origin")
	if origin == "" {
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			return "cross-site requests are refused"
		}
		return ""
	}
	o := strings.ToLower(strings.TrimSuffix(origin, "/"))
	if allowed[o] {
		return ""
	}
	u, err := url.Parse(o)
	if err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		if u.Scheme == scheme {
			return ""
		}
	}
	return fmt.Sprintf("origin %q is refused: only the listener's own origin and --allowed-origins may call it", origin)
}

// checkMutating lets through only requests a web page cannot send without
// a CORS preflight (which is never granted): POST, PUT or DELETE with a
// content type outside the CORS-safelisted ones, or with a bearer token.
func checkMutating(r *http.Request, route Route) (int, string) {
	hasToken := r.Header.Get("Authorization") != ""
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodDelete:
	case http.MethodGet, http.MethodHead:
		if route.GetWithToken && hasToken {
			return 0, ""
		}
		if route.GetWithToken {
			return http.StatusMethodNotAllowed, fmt.Sprintf("%s changes state: send it as POST, or as GET with a bearer token", route.Name)
		}
		return http.StatusMethodNotAllowed, fmt.Sprintf("%s changes state: %s is not accepted, use POST", route.Name, r.Method)
	default:
		return http.StatusMethodNotAllowed, fmt.Sprintf("%s: method %s is not accepted", route.Name, r.Method)
	}
	ct := r.Header.Get("Content-Type")
	mt := ""
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return http.StatusUnsupportedMediaType, fmt.Sprintf("%s: unreadable Content-Type", route.Name)
		}
	}
	switch mt {
	case "text/plain", "application/x-www-form-urlencoded", "multipart/form-data":
		want := "application/json"
		if !route.JSON {
			want = "application/octet-stream"
		}
		return http.StatusUnsupportedMediaType, fmt.Sprintf("%s: Content-Type %s is not accepted for a request that changes state; send %s", route.Name, mt, want)
	case "":
		if !hasToken {
			return http.StatusUnsupportedMediaType, fmt.Sprintf("%s: a request that changes state needs a Content-Type (application/json) or a bearer token", route.Name)
		}
	case "application/json":
	case "application/yaml", "application/x-yaml", "text/yaml":
		// Not a type a cross-origin page can send without a preflight,
		// which no Ferry listener answers with CORS headers.
		if route.JSON && !route.YAML {
			return http.StatusUnsupportedMediaType, fmt.Sprintf("%s: Content-Type %s is not accepted; send application/json", route.Name, mt)
		}
	default:
		if route.JSON {
			return http.StatusUnsupportedMediaType, fmt.Sprintf("%s: Content-Type %s is not accepted; send application/json", route.Name, mt)
		}
	}
	return 0, ""
}

func refuse(w http.ResponseWriter, log *slog.Logger, r *http.Request, who *Principal, route Route, code int, msg string) {
	name := Anonymous
	if who != nil {
		name = who.Name
	}
	log.Warn("request refused", "principal", name, "method", r.Method, "route", route.Name, "path", r.URL.Path,
		"targets", route.Targets, "status", code, "reason", msg, "remote", r.RemoteAddr)
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// statusWriter records the status of an answer for the audit line.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusWriter) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	s.wrote = true
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer (Flush).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush passes flushes on.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Transport sends the token of src on every request, and forwards the
// Authorization header of the request being served when the outgoing
// request's context carries one (a cache node relaying /v1/load for its
// caller). Base nil means http.DefaultTransport.
type Transport struct {
	Base   http.RoundTripper
	Source *TokenSource
	// ForwardOnly sends only the caller's credential, never Source's: a
	// relay must not lend its own rights to an anonymous caller.
	ForwardOnly bool
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if r.Header.Get("Authorization") != "" {
		return base.RoundTrip(r)
	}
	h := credentialFrom(r.Context())
	if h == "" && !t.ForwardOnly {
		tok, err := t.Source.Token()
		if err != nil {
			return nil, err
		}
		if tok != "" {
			h = "Bearer " + tok
		}
	}
	if h == "" {
		return base.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", h)
	return base.RoundTrip(r)
}

// Targets keeps the non-empty URIs, for Route.Targets.
func Targets(uris ...string) []string {
	var out []string
	for _, v := range uris {
		if v != "" {
			out = append(out, v)
		}
	}
	return out
}

// LoadRoute classifies the Alluxio worker route /v1/load: progress reads;
// submit and stop write, and may come as GET only with a token.
func LoadRoute(opType string, targets []string) Route {
	rt := Route{Name: "load:" + strings.ToLower(opType), Role: RoleRead, Targets: targets}
	if !strings.EqualFold(opType, "progress") {
		rt.Role, rt.Mutating, rt.GetWithToken, rt.JSON = RoleWrite, true, true, true
	}
	return rt
}
