package activities_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"go.temporal.io/sdk/testsuite"

	"github.com/ferryio/ferry/activities"
	"github.com/ferryio/ferry/manifest"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/workflows"
)

// failingCache fails files whose name says so: "gone" for good, "flaky"
// in a way worth retrying.
type failingCache struct{}

func (failingCache) Load(ctx context.Context, f activities.CacheFile, _ activities.CacheLoadOptions) (activities.CacheLoadResult, error) {
	switch {
	case strings.Contains(f.URI, "gone"):
		return activities.CacheLoadResult{}, storage.NewError("load", f.URI, storage.ErrNotFound, nil)
	case strings.Contains(f.URI, "flaky"):
		return activities.CacheLoadResult{}, storage.NewError("load", f.URI, storage.ErrUnavailable, fmt.Errorf("try later"))
	}
	return activities.CacheLoadResult{BytesLoaded: f.Size}, nil
}

// TestBatchByReference runs a batch read from the manifest store: its
// result carries counts and a bounded list of failures; its permanent
// failures and its entries to retry are in the store under its key.
func TestBatchByReference(t *testing.T) {
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.New(storage.NewResolver(st), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var entries []workflows.FileEntry
	for i := 0; i < 90; i++ {
		kind := []string{"ok", "gone", "flaky"}[i%3]
		entries = append(entries, workflows.FileEntry{URI: fmt.Sprintf("file:///src/%s-%02d", kind, i), Size: 10})
	}
	ctx := context.Background()
	if err := m.WriteEntries(ctx, "job", workflows.ManifestPages, "p000-00000000", entries); err != nil {
		t.Fatal(err)
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	node := &activities.Node{Cache: failingCache{}, Manifests: m, FileAttempts: 1}
	env.RegisterActivity(node.LoadBatch)
	ref := workflows.BatchRef{Src: workflows.ManifestRef{Kind: workflows.ManifestPages, Key: "p000-00000000"}, Start: 0, Count: 90, Key: "p000-00000000-0"}
	v, err := env.ExecuteActivity(node.LoadBatch, workflows.BatchInput{JobID: "job", Type: workflows.JobLoad, Ref: &ref})
	if err != nil {
		t.Fatal(err)
	}
	var res workflows.BatchResult
	if err := v.Get(&res); err != nil {
		t.Fatal(err)
	}
	if res.Succeeded != 30 || res.Failed != 30 || res.Retry != 30 || res.BytesDone != 300 {
		t.Fatalf("result %+v", res)
	}
	if len(res.Failures) != workflows.MaxResultFailures {
		t.Fatalf("result carries %d failures, want at most %d", len(res.Failures), workflows.MaxResultFailures)
	}
	failed, err := m.ReadFailures(ctx, "job", ref.Key)
	if err != nil || len(failed) != 30 || failed[0].Reason != workflows.ErrTypeNotFound {
		t.Fatalf("failures in the store: %d, %v", len(failed), err)
	}
	retry, err := m.ReadEntries(ctx, "job", workflows.ManifestRetry, ref.Key, 0, -1)
	if err != nil || len(retry) != 30 || !strings.Contains(retry[0].URI, "flaky") {
		t.Fatalf("entries to retry in the store: %d, %v", len(retry), err)
	}
}
