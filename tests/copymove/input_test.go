package copymove

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/workflows"
)

// TestBadInputNamesTheField submits copy and move jobs that can never
// succeed as given, through jobs.Service as the REST API and the CLI do:
// each must be refused before any workflow starts, with a *jobs.InputError
// naming the offending field.
func TestBadInputNamesTheField(t *testing.T) {
	s3srv := s3test.Start(t)
	cl := enginetest.NewCluster(t, 1, s3test.NewStore(t, s3test.Options(s3srv.URL)))
	bucket := s3srv.NewBucket(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "sub", "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := "file://" + src
	for _, typ := range []workflows.JobType{workflows.JobCopy, workflows.JobMove} {
		for _, tc := range []struct {
			name, src, dst, field string
			// gap marks spellings of the same place that jobs.Key.Validate
			// compares as text and so does not catch yet; the case is
			// skipped while the submit is accepted (as a dry run, so
			// nothing is copied) and checked as soon as it is refused.
			gap bool
		}{
			{"dst is the source", s, s, "dst", false},
			{"dst is the source with a trailing slash", s + "/", s, "dst", false},
			{"dst inside the source", s, s + "/sub/deeper", "dst", false},
			{"dst inside the source, trailing slash", s + "/", s + "/x", "dst", false},
			{"dst inside an S3 source", "s3://" + bucket, "s3://" + bucket + "/x", "dst", false},
			{"missing dst", s, "", "dst", false},
			{"blank dst", s, "  ", "dst", false},
			{"dst without scheme", s, dir + "/out", "dst", false},
			{"dst with a wildcard", s, "file://" + dir + "/out*", "dst", false},
			{"dst with an unknown scheme", s, "ftp://host/out", "dst", false},
			{"dst on a scheme not configured", s, "gs://bucket/out", "dst", false},
			{"missing src", "", "file://" + dir + "/out", "src", false},
			{"src with an unknown scheme", "ftp://host/in", "file://" + dir + "/out", "src", false},
			{"src on a scheme not configured", "hdfs://nn:8020/in", "file://" + dir + "/out", "src", false},
			{"src does not exist", "file://" + dir + "/nothing", "file://" + dir + "/out", "src", false},
			{"src bucket does not exist", "s3://no-such-bucket/in", "file://" + dir + "/out", "src", false},
			{"src with a dot-dot segment", s + "/../src", "file://" + dir + "/out", "src", false},
			{"dst is the source, scheme in capitals", s, "FILE://" + src, "dst", true},
			{"dst inside the source, scheme in capitals", s, "FILE://" + src + "/sub/x", "dst", true},
			{"dst inside the source, file://localhost", s, "file://localhost" + src + "/x", "dst", true},
			{"dst inside the source, doubled slash", s, "file://" + dir + "//src/x", "dst", true},
			{"dst is the source, two trailing slashes", s + "//", s, "dst", true},
		} {
			t.Run(string(typ)+"/"+tc.name, func(t *testing.T) {
				key := jobs.Key{Type: typ, Path: tc.src, Dst: tc.dst}
				opts, err := jobs.ParseOptions(typ, map[string]any{"dryRun": "true"})
				if err != nil {
					t.Fatal(err)
				}
				res, err := cl.Svc.Submit(context.Background(), key, opts)
				var ie *jobs.InputError
				if tc.gap && err == nil {
					cl.WaitEnd(key, jobTimeout)
					t.Skipf("known gap: jobs.Key.Validate accepts %q → %q (%s)", tc.src, tc.dst, res.Outcome)
				}
				if !errors.As(err, &ie) {
					t.Fatalf("submit %q → %q: %+v, %v; want an input error on %q", tc.src, tc.dst, res, err, tc.field)
				}
				if ie.Field != tc.field {
					t.Fatalf("submit %q → %q: error on %q (%v), want on %q", tc.src, tc.dst, ie.Field, err, tc.field)
				}
				t.Logf("%s", err)
				if _, err := cl.Client.DescribeWorkflowExecution(context.Background(), key.WorkflowID(), ""); err == nil {
					t.Fatalf("a workflow %s exists after a refused submit", key.WorkflowID())
				}
			})
		}
	}
}
