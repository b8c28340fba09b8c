package worker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// TestEngineThroughput measures the job engine alone (in-memory Temporal,
// stand-in caches) on many small files. It runs only with
// FERRY_ENGINE_FILES set, e.g. FERRY_ENGINE_FILES=20000.
func TestEngineThroughput(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("FERRY_ENGINE_FILES"))
	if n == 0 {
		t.Skip("set FERRY_ENGINE_FILES to run")
	}
	cl := enginetest.NewCluster(t, 3)
	dir := t.TempDir()
	buf := make([]byte, 16<<10)
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, fmt.Sprintf("d%03d", i%100), fmt.Sprintf("f%06d", i))
		if i < 100 {
			_ = os.MkdirAll(filepath.Dir(p), 0o755)
		}
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	key := jobs.Key{Type: workflows.JobLoad, Path: "file://" + dir}
	start := time.Now()
	if _, err := cl.Svc.Submit(context.Background(), key, workflows.Options{}); err != nil {
		t.Fatal(err)
	}
	st := cl.WaitEnd(key, 10*time.Minute)
	el := time.Since(start)
	enginetest.CheckExact(t, st, int64(n), int64(n)*int64(len(buf)))
	t.Logf("%d files in %v: %.0f files/s, %d runs, %d pages", n, el.Round(time.Millisecond), float64(n)/el.Seconds(), st.Runs, st.PagesListed)
}
