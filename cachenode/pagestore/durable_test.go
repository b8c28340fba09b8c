package pagestore_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

// killedFiles is how many small files the killed process loads: more index
// writes than one block of the index's log (32 KiB), so that some of them
// are still in the process's memory when it is killed unless synced.
const killedFiles = 400

// childEnv names the part of TestReportedCachedSurvivesSIGKILL that runs in
// the process it kills; childEnv_SRC and childEnv_DIR the directories that
// part uses.
const childEnv = "FERRY_PAGESTORE_KILLED_CHILD"

// TestReportedCachedSurvivesSIGKILL runs this test binary again as a process
// that loads small files into a store, is told that they are cached the way
// a caller that reports them is (SyncTo a WriteMark taken after the loads,
// as a batch before its heartbeat or result; or CachedComplete answering
// true, as the coordinator's check before it counts them skipped), and
// kills itself with SIGKILL at once, before the periodic sync of the index.
// The store opened again must hold every file so reported.
func TestReportedCachedSurvivesSIGKILL(t *testing.T) {
	if v := os.Getenv(childEnv); v != "" {
		runKilledChild(t, v, os.Getenv(childEnv+"_SRC"), os.Getenv(childEnv+"_DIR"))
		return
	}
	src := t.TempDir()
	for i := range killedFiles {
		p := filepath.Join(src, fmt.Sprintf("f%04d", i))
		if err := os.WriteFile(p, []byte(strings.Repeat(string(rune('a'+i%26)), 100+i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, how := range []string{"syncto", "cachedcomplete"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestReportedCachedSurvivesSIGKILL$", "-test.count=1")
			cmd.Env = append(os.Environ(), childEnv+"="+how, childEnv+"_SRC="+src, childEnv+"_DIR="+dir)
			out, err := cmd.CombinedOutput()
			if cmd.ProcessState == nil {
				t.Fatalf("the child did not start: %v", err)
			}
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the child did not end by SIGKILL (%v):\n%s", err, out)
			}
			if !strings.Contains(string(out), "reported") {
				t.Fatalf("the child was killed before it reported its files:\n%s", out)
			}
			s := openKilled(t, src, dir)
			defer s.Close()
			var lost []string
			for i := range killedFiles {
				uri := fmt.Sprintf("file://%s/f%04d", src, i)
				if f, ok, err := s.Lookup(uri); err != nil || !ok || !f.FullyCached() {
					lost = append(lost, filepath.Base(uri))
				}
			}
			if len(lost) > 0 {
				t.Fatalf("%d of the %d files reported cached before the kill are not in the store after it: %v", len(lost), killedFiles, lost)
			}
		})
	}
}

// runKilledChild is the killed process: it loads the files, reports them
// cached as how says, and kills itself.
func runKilledChild(t *testing.T, how, src, dir string) {
	s := openKilled(t, src, dir)
	ctx := context.Background()
	refs := make([]pagestore.FileRef, killedFiles)
	for i := range killedFiles {
		uri := fmt.Sprintf("file://%s/f%04d", src, i)
		if _, err := s.LoadFile(ctx, pagestore.FileRef{URI: uri}, pagestore.LoadOptions{}, nil); err != nil {
			t.Fatal(err)
		}
		f, _, err := s.Lookup(uri)
		if err != nil {
			t.Fatal(err)
		}
		refs[i] = pagestore.FileRef{URI: uri, Size: f.Size, Version: f.Version}
	}
	switch how {
	case "syncto":
		if err := s.SyncTo(s.WriteMark()); err != nil {
			t.Fatal(err)
		}
	case "cachedcomplete":
		cached, err := s.CachedComplete(refs)
		if err != nil {
			t.Fatal(err)
		}
		for i, c := range cached {
			if !c {
				t.Fatalf("%s is not cached complete", refs[i].URI)
			}
		}
	}
	fmt.Println("reported")
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

func openKilled(t *testing.T, src, dir string) *pagestore.Store {
	t.Helper()
	l, err := local.New(local.Options{Root: src})
	if err != nil {
		t.Fatal(err)
	}
	s, err := pagestore.Open(pagestore.Options{Dir: dir, PageSize: ps, Capacity: 1 << 30, Resolver: storage.NewResolver(l)})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
