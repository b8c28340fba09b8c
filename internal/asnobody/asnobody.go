//go:build unix

// Package asnobody runs a test again as the user nobody, for tests of
// permission errors: root may read anything, so a test that needs the
// system to deny it something runs itself again, as nobody, on files the
// first run made.
package asnobody

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Dir returns a new temporary directory that the user nobody may enter
// (t.TempDir, with it and its parent opened to others).
func Dir(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

// Run runs the test named name of this test binary again as the user
// nobody, in base (from Dir), with the environment variables env added
// ("K=V"), and fails t unless it passes. It skips t when nobody cannot
// reach base.
func Run(t *testing.T, base, name string, env ...string) {
	t.Helper()
	for p := filepath.Dir(base); p != "/"; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o001 == 0 {
			t.Skipf("%s is not searchable by others: cannot run as nobody", p)
		}
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, filepath.Base(os.Args[0]))
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = base
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name+" ") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}
