package storage_test

import (
	"strings"
	"testing"

	"github.com/ferryio/ferry/storage"
)

// Every partial name fits in a file name, holds the marker, is the same for
// the same base and differs between bases, whatever their length.
func TestPartialNameFits(t *testing.T) {
	seen := map[string]string{}
	for n := 1; n <= storage.MaxNameLength; n++ {
		for _, c := range []string{"a", "\xff", "é"} {
			base := strings.Repeat(c, n)[:n]
			for _, suffix := range []string{"", "-0123456789ab"} {
				name := storage.PartialName(base, ".ferry-partial", suffix)
				if len(name) > storage.MaxNameLength || !strings.HasPrefix(name, ".") || !strings.Contains(name, ".ferry-partial"+suffix) {
					t.Fatalf("base of %d bytes: partial name %q (%d bytes)", n, name, len(name))
				}
				if name != storage.PartialName(base, ".ferry-partial", suffix) {
					t.Fatalf("base of %d bytes: partial name not stable", n)
				}
				if other, ok := seen[name]; ok && other != base {
					t.Fatalf("bases %q and %q share the partial name %q", other, base, name)
				}
				seen[name] = base
			}
		}
	}
	if got := storage.PartialName("f", ".ferry-partial", ""); got != ".f.ferry-partial" {
		t.Fatalf("short name: %q", got)
	}
}
