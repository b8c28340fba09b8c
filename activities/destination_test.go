package activities_test

import (
	"testing"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/workflows"
)

// TestDestinationKeepsRelativeNames: two source keys that differ only by
// slashes ("coll//x.txt" and "coll/x.txt" under "coll") map to two
// destination keys, never to one (a file-system destination refuses the
// first by name before it gets here; see checkDestinationName).
func TestDestinationKeepsRelativeNames(t *testing.T) {
	for _, tc := range []struct{ dst, rel, want string }{
		{"s3://b/out", "", "s3://b/out"},
		{"s3://b/out", "x.txt", "s3://b/out/x.txt"},
		{"s3://b/out", "/x.txt", "s3://b/out//x.txt"},
		{"s3://b/out/", "a//x.txt", "s3://b/out/a//x.txt"},
		{"file:///d/out", "sub/f", "file:///d/out/sub/f"},
	} {
		if got := activities.DestinationOf(tc.dst, workflows.FileEntry{RelPath: tc.rel}); got != tc.want {
			t.Errorf("DestinationOf(%q, %q) = %q, want %q", tc.dst, tc.rel, got, tc.want)
		}
	}
}
