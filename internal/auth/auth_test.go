package auth

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokensFileRotation(t *testing.T) {
	f := filepath.Join(t.TempDir(), "tokens")
	a, b := strings.Repeat("a", 32), strings.Repeat("b", 32)
	if err := os.WriteFile(f, []byte("# comment\nops:write:"+a+"\n\nviewer:read:"+b+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tk, err := NewTokens(f, "ci:read:"+strings.Repeat("c", 20))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := tk.Lookup(a); !ok || p.Name != "ops" || p.Role != RoleWrite {
		t.Errorf("lookup a: %v %v", p, ok)
	}
	if p, ok := tk.Lookup(strings.Repeat("c", 20)); !ok || p.Role != RoleRead {
		t.Errorf("env token: %v %v", p, ok)
	}
	// Rotate: a new file (renamed into place) drops a.
	tmp := f + ".new"
	if err := os.WriteFile(tmp, []byte("ops:write:"+strings.Repeat("d", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f); err != nil {
		t.Fatal(err)
	}
	if _, ok := tk.Lookup(a); ok {
		t.Error("a rotated-out token is still accepted")
	}
	if _, ok := tk.Lookup(strings.Repeat("d", 32)); !ok {
		t.Error("the new token is refused")
	}
	// A broken file keeps the last good set, and its error never quotes a token.
	if err := os.WriteFile(f, []byte("ops:admin:"+strings.Repeat("e", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := tk.Lookup(strings.Repeat("d", 32)); !ok {
		t.Error("a malformed file dropped the last good tokens")
	}
	if err := tk.Err(); err == nil || strings.Contains(err.Error(), "eeee") {
		t.Errorf("error of a malformed file: %v", err)
	}
	if _, err := NewTokens("", "x:write:short"); err == nil {
		t.Error("a short token was accepted")
	}
}

func TestPolicy(t *testing.T) {
	tk, err := NewTokens("", "w:write:"+strings.Repeat("w", 32)+",r:read:"+strings.Repeat("r", 32))
	if err != nil {
		t.Fatal(err)
	}
	classify := func(r *http.Request) Route {
		switch r.URL.Path {
		case "/healthz":
			return Route{Name: "healthz"}
		case "/read":
			return Route{Name: "read", Role: RoleRead, AnonymousRead: true}
		case "/load":
			return Route{Name: "load", Role: RoleWrite, Mutating: true, GetWithToken: true, JSON: true}
		case "/policy":
			return Route{Name: "policy", Role: RoleWrite, Mutating: true, JSON: true, YAML: true}
		}
		return Route{Name: "write", Role: RoleWrite, Mutating: true, JSON: true}
	}
	srv := httptest.NewServer((&Policy{Tokens: tk, Classify: classify, AllowedHosts: []string{"ferry.internal"}}).Middleware(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })))
	defer srv.Close()
	w, r := "Bearer "+strings.Repeat("w", 32), "Bearer "+strings.Repeat("r", 32)
	for _, tc := range []struct {
		name, method, path, auth, ctype, origin, host string
		want                                          int
	}{
		{"open route", "GET", "/healthz", "", "", "", "", 200},
		{"no token", "GET", "/read", "", "", "", "", 401},
		{"bad scheme", "GET", "/read", "Basic x", "", "", "", 401},
		{"read token reads", "GET", "/read", r, "", "", "", 200},
		{"read token writes", "POST", "/write", r, "application/json", "", "", 403},
		{"write token writes", "POST", "/write", w, "application/json", "", "", 200},
		{"GET a mutating route", "GET", "/write", w, "", "", "", 405},
		{"GET with token where allowed", "GET", "/load", w, "", "", "", 200},
		{"text/plain", "POST", "/write", w, "text/plain", "", "", 415},
		{"form", "POST", "/write", w, "application/x-www-form-urlencoded; charset=utf-8", "", "", 415},
		{"multipart", "POST", "/write", w, "multipart/form-data; boundary=x", "", "", 415},
		{"xml on a JSON route", "POST", "/write", w, "application/xml", "", "", 415},
		{"yaml on a JSON route", "POST", "/write", w, "application/yaml", "", "", 415},
		{"yaml on a YAML route", "POST", "/policy", w, "application/yaml", "", "", 200},
		{"x-yaml on a YAML route", "POST", "/policy", w, "application/x-yaml", "", "", 200},
		{"text/plain on a YAML route", "POST", "/policy", w, "text/plain", "", "", 415},
		{"no type with token", "POST", "/write", w, "", "", "", 200},
		{"foreign origin", "GET", "/read", r, "", "http://evil.example", "", 403},
		{"null origin", "GET", "/read", r, "", "null", "", 403},
		{"own origin", "GET", "/read", r, "", "SELF", "", 200},
		{"foreign host", "GET", "/read", r, "", "", "evil.example", 403},
		{"configured host", "GET", "/read", r, "", "", "ferry.internal:19999", 200},
		{"localhost", "GET", "/read", r, "", "", "localhost:1", 200},
		{"preflight", "OPTIONS", "/write", "", "", "", "", 405},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader("{}"))
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		if tc.ctype != "" {
			req.Header.Set("Content-Type", tc.ctype)
		}
		if tc.origin == "SELF" {
			tc.origin = srv.URL
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:0": true, "localhost:1": true, "[::1]:2": true, "127.0.0.3:28080": true,
		":28080": false, "0.0.0.0:1": false, "10.0.0.1:1": false, "example.com:1": false,
	} {
		if IsLoopback(addr) != want {
			t.Errorf("IsLoopback(%q) != %v", addr, want)
		}
	}
}
