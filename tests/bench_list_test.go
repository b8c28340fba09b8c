package tests

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/ferryio/ferry/internal/ferrytest"
)

// `ferry bench list` lists the tree it creates through a coordinator
// process of its own, which reaches only the tree (a read-only mount): it
// used to be given no mount, list nothing and still report success.
func TestBenchListListsItsTree(t *testing.T) {
	cmd := exec.Command(ferrytest.Binary(t), "bench", "list", "--entries", "2500", "--dir", t.TempDir(), "--log-level", "warn")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "listed 2500 entries") {
		t.Fatalf("ferry bench list: %v\n%s", err, out)
	}
}
