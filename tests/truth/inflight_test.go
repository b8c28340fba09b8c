package truth

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ferryio/ferry/api/report"
	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// TestBytesInFlightAreVisible is issue 12 case 3: a load of three large
// files showed "Files Processed: 0 out of 3, Bytes Loaded: 0B, Throughput:
// 0B/s" for minutes while data flowed. The three files here are each read
// in part and then held (no file ends): within seconds the progress (and
// the report and --watch bar built from it) shows the bytes read so far;
// once the files end, the bytes are counted once, exactly.
func TestBytesInFlightAreVisible(t *testing.T) {
	cl, f := newCluster(t)
	dir := t.TempDir()
	const size = 3 << 20
	for i := 0; i < 3; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("big-%d.bin", i)), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := "file://" + dir
	key := jobs.Key{Type: workflows.JobLoad, Path: src}
	g := f.add(src, func(kind, _ string, _ int) bool { return kind == "midread" }, nil)
	submit(t, cl, key, nil)
	ferryWait := func(what string, cond func(workflows.JobState) bool) workflows.JobState {
		return waitFor(t, cl, key, what, cond)
	}
	ferryWait("three reads held mid-file", func(workflows.JobState) bool { return f.heldReads(g) == 3 })
	held := time.Now()
	st := ferryWait("bytes in flight", func(s workflows.JobState) bool { return s.InFlightBytes > 0 && f.heldReads(g) == 3 })
	t.Logf("bytes in flight visible %s after the reads stalled: %d bytes, %d files done", time.Since(held).Round(10e6), st.InFlightBytes, st.Processed())
	// Each held file has given its first read: io.Copy's 32 KiB buffer in
	// the node's cache (enginetest.MemCache).
	if st.Processed() != 0 || st.BytesDone != 0 || st.InFlightBytes != 3*32<<10 {
		t.Fatalf("in flight: %d processed, %d bytes done, %d bytes in flight of %d", st.Processed(), st.BytesDone, st.InFlightBytes, 3*size)
	}
	p := report.Renderer{Now: time.Now}.Build(st, false)
	if p.LoadedByteCount == nil || *p.LoadedByteCount != st.InFlightBytes || p.BytesDone != st.InFlightBytes {
		t.Fatalf("report shows %v bytes loaded (%d), want the %d in flight", p.LoadedByteCount, p.BytesDone, st.InFlightBytes)
	}
	f.open(g)
	end := cl.WaitEnd(key, jobTimeout)
	enginetest.CheckExact(t, end, 3, 3*size)
	if end.InFlightBytes != 0 || end.InFlightFiles != 0 {
		t.Fatalf("ended job still shows %d bytes, %d files in flight", end.InFlightBytes, end.InFlightFiles)
	}
	p = report.Renderer{Now: time.Now}.Build(end, false)
	if *p.LoadedByteCount != 3*size {
		t.Fatalf("report of the ended job: %d bytes loaded, want %d", *p.LoadedByteCount, 3*size)
	}
}
