// Package auth is Ferry's access control for its listeners: bearer tokens
// with a read and a write role, checked on the REST API, the cache node
// HTTP API and the cache node gRPC service; the browser-safety rules of
// the HTTP listeners (Host and Origin checks, no CORS, state-changing
// requests only as non-simple POST/PUT/DELETE); the audit line of every
// state-changing request; TLS and mutual TLS configuration; and the client
// side of all of it (a token source that re-reads its file, an HTTP
// transport and gRPC credentials that send the token).
//
// Tokens are never logged: the audit line names the principal, not the
// token, and a token file that cannot be parsed is reported by line number
// only.
package auth

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Role is what a principal may do. Write includes Read.
type Role int

// The roles, weakest first.
const (
	// RoleNone is a route anyone reaching the listener may call (/healthz).
	RoleNone Role = iota
	// RoleRead: progress, listings, cache reads, cluster views, metrics.
	RoleRead
	// RoleWrite: submit and stop jobs, policies, cache writes and deletes.
	RoleWrite
)

func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleWrite:
		return "write"
	}
	return "none"
}

// ParseRole reads "read" or "write".
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "read":
		return RoleRead, nil
	case "write":
		return RoleWrite, nil
	}
	return RoleNone, fmt.Errorf("role %q: want read or write", s)
}

// Principal is who made a request.
type Principal struct {
	// Name is the token's name from the token file ("anonymous" for a
	// request let in without a token).
	Name string
	Role Role
}

// Anonymous is the principal of requests without a token where those are
// allowed.
const Anonymous = "anonymous"

// Tokens is a set of accepted bearer tokens, from a file that is re-read
// whenever it changes (so tokens rotate without a restart) plus fixed ones
// given at start (environment, ferry dev's own). Only SHA-256 digests of
// the tokens are kept.
type Tokens struct {
	file  string
	fixed map[[32]byte]Principal

	mu       sync.Mutex
	stamp    fileStamp
	fromFile map[[32]byte]Principal
	loadErr  error
}

type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

// NewTokens reads file (may be empty: no file) and the fixed spec, a list of
// "name:role:token" separated by commas or newlines (FERRY_AUTH_TOKENS).
// The file holds one "name:role:token" per line; blank lines and lines
// starting with '#' are ignored.
func NewTokens(file, spec string) (*Tokens, error) {
	t := &Tokens{file: file, fixed: map[[32]byte]Principal{}}
	entries, err := parseTokens(strings.NewReader(strings.ReplaceAll(spec, ",", "\n")), "FERRY_AUTH_TOKENS")
	if err != nil {
		return nil, err
	}
	for k, p := range entries {
		t.fixed[k] = p
	}
	if file != "" {
		t.mu.Lock()
		t.reload()
		err := t.loadErr
		t.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Add accepts one more fixed token.
func (t *Tokens) Add(name string, role Role, token string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.fixed[digest(token)] = Principal{Name: name, Role: role}
}

// Count is how many tokens are accepted now.
func (t *Tokens) Count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reload()
	return len(t.fixed) + len(t.fromFile)
}

// Lookup returns the principal of token. The file is re-read first when it
// changed; a file that has become unreadable or malformed keeps the last
// good set (and the error is reported by Err).
func (t *Tokens) Lookup(token string) (Principal, bool) {
	if token == "" {
		return Principal{}, false
	}
	d := digest(token)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reload()
	if p, ok := t.fixed[d]; ok {
		return p, true
	}
	p, ok := t.fromFile[d]
	return p, ok
}

// Err is the error of the last reading of the token file, if it failed.
func (t *Tokens) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.loadErr
}

// reload re-reads the file when its stamp changed. t.mu is held.
func (t *Tokens) reload() {
	if t.file == "" {
		return
	}
	fi, err := os.Stat(t.file)
	if err != nil {
		t.loadErr = fmt.Errorf("token file %s: %w", t.file, err)
		return
	}
	st := stampOf(fi)
	if st == t.stamp && t.fromFile != nil {
		return
	}
	data, err := os.ReadFile(t.file)
	if err != nil {
		t.loadErr = fmt.Errorf("token file %s: %w", t.file, err)
		return
	}
	entries, err := parseTokens(bytes.NewReader(data), t.file)
	if err != nil {
		t.loadErr = err
		return
	}
	t.fromFile, t.stamp, t.loadErr = entries, st, nil
}

func stampOf(fi fs.FileInfo) fileStamp {
	st := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino = sys.Ino
	}
	return st
}

func parseTokens(r interface{ Read([]byte) (int, error) }, source string) (map[[32]byte]Principal, error) {
	out := map[[32]byte]Principal{}
	sc := bufio.NewScanner(r)
	var errs []error
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		// Never quote the line: it holds a token.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || parts[0] == "" || len(parts[2]) < 16 {
			errs = append(errs, fmt.Errorf("%s: entry %d: want name:role:token with a token of at least 16 characters", source, n))
			continue
		}
		role, err := ParseRole(parts[1])
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: entry %d: %w", source, n, err))
			continue
		}
		out[digest(parts[2])] = Principal{Name: parts[0], Role: role}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", source, err))
	}
	return out, errors.Join(errs...)
}

func digest(token string) [32]byte { return sha256.Sum256([]byte(token)) }

// NewToken returns a fresh random token (256 bits, hex).
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// EnsureTokenFile returns the token stored in path, creating the file with
// a fresh token (mode 0600) when it does not exist. created reports that.
func EnsureTokenFile(path string) (token string, created bool, err error) {
	if data, err := os.ReadFile(path); err == nil {
		tok := firstLine(data)
		if len(tok) < 16 {
			return "", false, fmt.Errorf("token file %s: no token of at least 16 characters on its first line", path)
		}
		return tok, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("token file: %w", err)
	}
	tok, err := NewToken()
	if err != nil {
		return "", false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", false, fmt.Errorf("token file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, fmt.Errorf("token file: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		_ = f.Close()
		return "", false, fmt.Errorf("token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", false, fmt.Errorf("token file: %w", err)
	}
	return tok, true, nil
}

func firstLine(data []byte) string {
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(line)
}

// TokenSource is a client's token: a fixed one, or the first line of a file
// re-read when the file changes, so a client follows a rotation.
type TokenSource struct {
	fixed string
	file  string

	mu    sync.Mutex
	stamp fileStamp
	tok   string
}

// StaticToken is a source of one fixed token.
func StaticToken(tok string) *TokenSource { return &TokenSource{fixed: tok} }

// ErrTokenFile marks a token file that cannot be read: the client's own
// setting is wrong, not the server it calls.
var ErrTokenFile = errors.New("cannot read the token file")

// FileToken is a source that reads the first line of path.
func FileToken(path string) *TokenSource { return &TokenSource{file: path} }

// Token returns the current token ("" from a nil source).
func (s *TokenSource) Token() (string, error) {
	if s == nil {
		return "", nil
	}
	if s.file == "" {
		return s.fixed, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fi, err := os.Stat(s.file)
	if err != nil {
		return "", fmt.Errorf("%w %s: %w", ErrTokenFile, s.file, errors.Unwrap(err))
	}
	if st := stampOf(fi); st != s.stamp || s.tok == "" {
		data, err := os.ReadFile(s.file)
		if err != nil {
			return "", fmt.Errorf("%w %s: %w", ErrTokenFile, s.file, errors.Unwrap(err))
		}
		s.tok, s.stamp = firstLine(data), st
	}
	return s.tok, nil
}
