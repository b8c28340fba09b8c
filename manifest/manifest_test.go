package manifest

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/workflows"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s, err := New(storage.NewResolver(st), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

// TestNamesSurviveAsBytes writes names that are not valid UTF-8: they come
// back byte for byte (encoding/json would have replaced them with U+FFFD).
func TestNamesSurviveAsBytes(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	in := []workflows.FileEntry{
		{URI: "file:///a/\xff\xfe-latin1-\xe9", RelPath: "\xff\xfe-latin1-\xe9", Size: 7, Version: "v1"},
		{URI: "file:///a/ok", RelPath: "ok", Size: 0},
		{URI: "file:///a/neg", Size: -1},
		{URI: "file:///a/pipe", RelPath: "pipe", Irregular: "a named pipe"},
	}
	if err := s.WriteEntries(ctx, "job", KindPages, "p000-00000001", in); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadEntries(ctx, "job", KindPages, "p000-00000001", 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("read %d entries, wrote %d", len(got), len(in))
	}
	for i := range in {
		if got[i] != in[i] {
			t.Fatalf("entry %d: %+q, wrote %+q", i, got[i].URI, in[i].URI)
		}
	}
	part, err := s.ReadEntries(ctx, "job", KindPages, "p000-00000001", 1, 1)
	if err != nil || len(part) != 1 || part[0] != in[1] {
		t.Fatalf("range read: %+v, %v", part, err)
	}
	// A retried write replaces the object, it does not add a second one.
	if err := s.WriteEntries(ctx, "job", KindPages, "p000-00000001", in[:1]); err != nil {
		t.Fatal(err)
	}
	keys, err := s.Keys(ctx, "job", KindPages, "", 0)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %v, %v", keys, err)
	}
}

func TestFailureListAndGC(t *testing.T) {
	s, dir := newStore(t)
	ctx := context.Background()
	for _, k := range []string{"b2", "b1"} {
		fs := []workflows.Failure{{Path: "file:///x/" + k + "\xff", Reason: "NOT_FOUND", Message: "gone\nreally"}, {Path: "file:///y/" + k, Reason: "INTERNAL", Retryable: true}}
		if err := s.WriteFailures(ctx, "job", k, fs); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WriteEntries(ctx, "job", KindRetry, "b1", []workflows.FileEntry{{URI: "file:///y/b1"}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadFailures(ctx, "job", "b1")
	if err != nil || len(got) != 2 || got[0].Path != "file:///x/b1\xff" || !got[1].Retryable {
		t.Fatalf("failures %+v, %v", got, err)
	}
	uri, lines, err := s.WriteFailureList(ctx, "job")
	if err != nil || lines != 4 {
		t.Fatalf("failure list %s: %d lines, %v", uri, lines, err)
	}
	b, err := os.ReadFile(strings.TrimPrefix(uri, "file://"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "file:///x/b1\xff\tNOT_FOUND\tgone really\n"; !strings.HasPrefix(string(b), want) {
		t.Fatalf("failure list starts %q, want %q", b, want)
	}
	if err := s.DeleteWork(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	left, err := filepath.Glob(filepath.Join(dir, "job", "*"))
	if err != nil || len(left) != 1 || filepath.Base(left[0]) != FailuresFile {
		t.Fatalf("after GC the job holds %v, %v", left, err)
	}
	// The job's last step run again (its worker lost before its end was
	// recorded) gives the same list, which it leaves as it was.
	again, lines2, err := s.WriteFailureList(ctx, "job")
	if err != nil || again != uri || lines2 != 4 {
		t.Fatalf("failure list written again: %s, %d lines, %v; want %s, 4", again, lines2, err, uri)
	}
	if b2, err := os.ReadFile(strings.TrimPrefix(uri, "file://")); err != nil || !bytes.Equal(b2, b) {
		t.Fatalf("the failure list changed when written again (%v)", err)
	}

	// A job without failures leaves nothing, not even its directory.
	if err := s.WriteEntries(ctx, "clean", KindRetry, "b1", []workflows.FileEntry{{URI: "file:///y/b1"}}); err != nil {
		t.Fatal(err)
	}
	if _, lines, err := s.WriteFailureList(ctx, "clean"); err != nil || lines != 0 {
		t.Fatalf("failure list of a clean job: %d lines, %v", lines, err)
	}
	if err := s.DeleteWork(ctx, "clean"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "clean")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the directory of a job without failures outlived its end: %v", err)
	}
}

func TestCorruptObjectIsAnError(t *testing.T) {
	s, dir := newStore(t)
	p := filepath.Join(dir, "job", KindPages, "bad")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(magicEntries+"\x05\x03ab"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadEntries(context.Background(), "job", KindPages, "bad", 0, -1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt object read: %v", err)
	}
}

// TestFailureListLinesHoldAnyName: whatever bytes a name holds (newlines,
// tabs, carriage returns, backslashes, invalid UTF-8, generated at random),
// each failure is one line of three tab-separated fields, and the path
// field gives the name's bytes back.
func TestFailureListLinesHoldAnyName(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	alphabet := []byte("ab\\\n\r\t\xff\xe9%/ ")
	var failures []workflows.Failure
	for i := 0; i < 500; i++ {
		name := make([]byte, 1+rng.IntN(12))
		for j := range name {
			if rng.IntN(3) == 0 {
				name[j] = byte(rng.IntN(256))
			} else {
				name[j] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		failures = append(failures, workflows.Failure{Path: "file:///d/" + string(name), Reason: workflows.ErrTypePermission, Message: "denied:\n\tline two"})
	}
	if err := s.WriteFailures(ctx, "job", "b-1", failures); err != nil {
		t.Fatal(err)
	}
	uri, lines, err := s.WriteFailureList(ctx, "job")
	if err != nil || lines != int64(len(failures)) {
		t.Fatalf("failure list: %d lines, %v", lines, err)
	}
	b, err := os.ReadFile(strings.TrimPrefix(uri, "file://"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(got) != len(failures) {
		t.Fatalf("%d lines for %d failures", len(got), len(failures))
	}
	for i, line := range got {
		fields := strings.Split(line, "\t")
		if len(fields) != 3 || fields[1] != workflows.ErrTypePermission || strings.ContainsRune(fields[0], '\r') {
			t.Fatalf("line %d: %q: want <path>\\t<reason>\\t<message>", i, line)
		}
		if p := UnescapeListPath(fields[0]); p != failures[i].Path {
			t.Fatalf("line %d names %q, want %q", i, p, failures[i].Path)
		}
	}
}
