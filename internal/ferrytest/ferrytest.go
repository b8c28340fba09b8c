// Package ferrytest runs the real ferry binary in tests: it builds
// ./cmd/ferry once per test process, starts subcommands as child processes,
// captures their output, and waits for lines with a deadline — never a fixed
// sleep.
//
// Every process it starts is secured as in production, with settings the
// test process shares: the accepted token Token() (FERRY_AUTH_TOKENS, with
// the write role, and FERRY_TOKEN for the process's own calls) and the
// storage mount Mounts (the system's temporary directory, where t.TempDir
// puts test data). A test overrides either by passing the variable in env.
// Transport sends Token() on requests from the test itself.
package ferrytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

var token struct {
	once sync.Once
	tok  string
}

// Token is the bearer token (write role) every process started here
// accepts, the same for the whole test process.
func Token() string {
	token.once.Do(func() {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			panic(err)
		}
		token.tok = hex.EncodeToString(b)
	})
	return token.tok
}

// Mounts is the FERRY_MOUNTS value processes started here get by default.
func Mounts() string { return "file://" + os.TempDir() }

// SecurityEnv is the environment that secures a process as described in
// the package comment.
func SecurityEnv() []string {
	return []string{
		"FERRY_AUTH_TOKENS=ferrytest:write:" + Token(),
		"FERRY_TOKEN=" + Token(),
		"FERRY_MOUNTS=" + Mounts(),
	}
}

// Transport sends Token() on every request; base nil means
// http.DefaultTransport.
type Transport struct{ Base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	if r.Header.Get("Authorization") == "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+Token())
	}
	return base.RoundTrip(r)
}

// Main runs a test package whose requests all carry Token() (call it from
// TestMain: os.Exit(ferrytest.Main(m))), then removes the binary Binary
// built.
func Main(m *testing.M) int {
	http.DefaultTransport = Transport{Base: http.DefaultTransport}
	defer RemoveBinary()
	return m.Run()
}

// RemoveBinary removes the binary Binary built for this test process (a
// few hundred MB; every test run would otherwise leave one behind). A
// package that uses Binary calls it from TestMain after m.Run, directly or
// through Main.
func RemoveBinary() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}

var build struct {
	once sync.Once
	dir  string // made by Binary, removed by RemoveBinary
	path string
	err  error
}

// RepoRoot is the directory holding go.mod, found by walking up from the
// working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of a ferry binary built from this checkout, once
// per test process. FERRY_TEST_BINARY names a prebuilt one instead.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("FERRY_TEST_BINARY"); p != "" {
		return p
	}
	build.once.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			build.err = err
			return
		}
		dir, err := os.MkdirTemp("", "ferry-bin-")
		if err != nil {
			build.err = err
			return
		}
		build.dir = dir
		build.path = filepath.Join(dir, "ferry")
		cmd := exec.CommandContext(context.Background(), "go", "build", "-o", build.path, "./cmd/ferry")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build ./cmd/ferry: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.path
}

// Proc is a running ferry process.
type Proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	mu   sync.Mutex
	cond *sync.Cond
	out  bytes.Buffer
	done bool
	err  error
}

// Start runs the ferry binary with args. The process is killed when the test
// ends if it is still running.
func Start(t testing.TB, args ...string) *Proc {
	t.Helper()
	return StartEnv(t, nil, args...)
}

// StartEnv is Start with extra environment variables ("KEY=value").
func StartEnv(t testing.TB, env []string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t}
	p.cond = sync.NewCond(&p.mu)
	p.cmd = exec.CommandContext(context.Background(), Binary(t), args...)
	p.cmd.Env = append(append(os.Environ(), SecurityEnv()...), env...)
	p.cmd.Stdout = (*procWriter)(p)
	p.cmd.Stderr = (*procWriter)(p)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start ferry %v: %v", args, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.done, p.err = true, err
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("output of ferry %v:\n%s", args, p.Output())
		}
	})
	return p
}

type procWriter Proc

func (w *procWriter) Write(b []byte) (int, error) {
	p := (*Proc)(w)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out.Write(b)
	p.cond.Broadcast()
	return len(b), nil
}

// Output is everything the process printed so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// WaitFor waits until the output matches re and returns the submatches of
// the first match. It fails the test at the deadline or when the process
// exits first.
func (p *Proc) WaitFor(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if m := re.FindStringSubmatch(p.out.String()); m != nil {
			return m
		}
		if p.done {
			p.t.Fatalf("ferry exited (%v) before printing %q:\n%s", p.err, re, p.out.String())
		}
		if ctx.Err() != nil {
			p.t.Fatalf("ferry did not print %q within %v:\n%s", re, timeout, p.out.String())
		}
		p.cond.Wait()
	}
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) {
	_ = p.cmd.Process.Signal(sig)
}

// Kill sends SIGKILL to the process group and waits for the exit.
func (p *Proc) Kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.Wait(30 * time.Second)
}

// Wait waits for the process to exit and returns its error, failing the test
// at the deadline.
func (p *Proc) Wait(timeout time.Duration) error {
	p.t.Helper()
	deadline := time.AfterFunc(timeout, func() {
		p.mu.Lock()
		p.cond.Broadcast()
		p.mu.Unlock()
	})
	defer deadline.Stop()
	start := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.done {
		if time.Since(start) >= timeout {
			p.t.Fatalf("ferry did not exit within %v", timeout)
		}
		p.cond.Wait()
	}
	return p.err
}

// Eventually polls cond until it returns nil or timeout passes, then fails
// the test with the last error.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	if err := Within(timeout, cond); err != nil {
		t.Fatalf("condition not met within %v: %v", timeout, err)
	}
}

// Within polls cond until it returns nil or timeout passes, and returns
// cond's last error then: for a test that acts on the timeout (a kill
// period, a job that may end first) rather than failing.
func Within(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not a wait for an outcome
	}
}
