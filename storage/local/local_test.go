package local_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/storage/storagetest"
)

func TestConformance(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	s, err := local.New(local.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	storagetest.Run(t, storagetest.Harness{
		Store: s,
		NewDir: func(t *testing.T) string {
			n++
			dir := filepath.Join(s.Root(), fmt.Sprintf("t%d", n))
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			return "file://" + dir
		},
		ForeignURI:  "file://" + outside,
		ForeignKind: storage.ErrPermission,
	})
}

func TestSymlinkOutOfRootIsRefused(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "filelink")); err != nil {
		t.Fatal(err)
	}
	s, err := local.New(local.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, uri := range []string{
		"file://" + root + "/link/secret",
		"file://" + root + "/filelink",
		"file://" + root + "/link/new-file",
	} {
		if _, err := s.Stat(ctx, uri); !errors.Is(err, storage.ErrPermission) {
			t.Errorf("stat %s: %v, want ErrPermission", uri, err)
		}
		if _, err := s.Create(ctx, uri, storage.CreateOptions{Overwrite: true}); !errors.Is(err, storage.ErrPermission) {
			t.Errorf("create %s: %v, want ErrPermission", uri, err)
		}
	}
	// Links that lead outside are listed, so that they are accounted for,
	// as irregular entries: no size, no version, never opened.
	for _, e := range storagetest.ListAll(t, s, "file://"+root, true, 10) {
		if e.Irregular == "" || e.Size != 0 || e.Version != "" {
			t.Errorf("listing shows %+v, want only irregular entries for links that lead outside the root", e)
		}
	}
}

// TestCrashMidWrite kills a process that is writing a file and checks that
// nothing appears under the final name, and that a later write succeeds and
// leaves no partial file behind.
func TestCrashMidWrite(t *testing.T) {
	if os.Getenv("FERRY_CRASH_WRITER") != "" {
		crashWriter(os.Getenv("FERRY_CRASH_WRITER"))
		return
	}
	root := t.TempDir()
	final := filepath.Join(root, "out", "big.bin")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashMidWrite$")
	cmd.Env = append(os.Environ(), "FERRY_CRASH_WRITER="+final)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "written") {
				ready <- sc.Text()
				return
			}
		}
		close(ready)
	}()
	select {
	case line, ok := <-ready:
		if !ok {
			t.Fatal("writer process ended before writing")
		}
		t.Log(line)
	case <-time.After(30 * time.Second):
		t.Fatal("writer process did not start writing within 30s")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after a crash mid-write the final name exists (err %v)", err)
	}
	s, _ := local.New(local.Options{Root: root})
	uri := "file://" + final
	if entries := storagetest.ListAll(t, s, "file://"+root, true, 10); len(entries) != 0 {
		t.Fatalf("listing after crash shows %v", entries)
	}
	storagetest.Put(t, s, uri, []byte("complete"))
	des, _ := os.ReadDir(filepath.Dir(final))
	if len(des) != 1 {
		var names []string
		for _, d := range des {
			names = append(names, d.Name())
		}
		t.Fatalf("directory holds %v after the retried write, want only the final file", names)
	}
}

func crashWriter(final string) {
	s, err := local.New(local.Options{Root: "/"})
	if err != nil {
		panic(err)
	}
	w, err := s.Create(context.Background(), "file://"+final, storage.CreateOptions{})
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 1<<20)
	for i := 0; i < 4; i++ {
		if _, err := w.Write(buf); err != nil {
			panic(err)
		}
	}
	fmt.Println("written 4 MiB")
	select {} // wait to be killed
}

func TestParseURIRejectsBadInput(t *testing.T) {
	for _, bad := range []string{"", "/abs/path", "file:/x", "file:///a/../b", "file:///a/./b"} {
		if _, err := storage.ParseURI(bad); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("ParseURI(%q) = %v, want ErrInvalidPath", bad, err)
		}
	}
	// Glob characters are ordinary characters of listed names.
	u, err := storage.ParseURI("s3://bucket/a b+c%d/ü/photo[1]*?.jpg")
	if err != nil || u.Authority != "bucket" || u.Path != "/a b+c%d/ü/photo[1]*?.jpg" {
		t.Fatalf("ParseURI kept %+v, %v", u, err)
	}
}

// Copy (the kernel's copy within the file system) keeps Create's rules and
// Open's: a source that is not a regular file is refused without blocking
// on it, and one that does not hold the size the caller expects (it changed
// since it was listed) leaves nothing under the destination's name, nor a
// partial file.
func TestCopyChecksSourceTypeAndSize(t *testing.T) {
	root := t.TempDir()
	s, err := local.New(local.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := []byte(strings.Repeat("ferry ", 50000))
	src := filepath.Join(root, "src")
	if err := os.WriteFile(src, data, 0o640); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(root, "out", "dst")
	e, err := s.Copy(ctx, "file://"+src, "file://"+dst, storage.CreateOptions{Size: int64(len(data)), Mode: 0o640})
	if err != nil || e.Size != int64(len(data)) {
		t.Fatalf("copy: %+v %v", e, err)
	}
	if got, err := os.ReadFile(dst); err != nil || string(got) != string(data) {
		t.Fatalf("copied bytes differ: %v", err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode: %v %v", fi, err)
	}

	other := filepath.Join(root, "out", "other")
	if _, err := s.Copy(ctx, "file://"+src, "file://"+other, storage.CreateOptions{Size: int64(len(data)) + 1}); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("copy of a source of another size: %v, want a retryable error", err)
	}
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Copy(ctx, "file://"+fifo, "file://"+other, storage.CreateOptions{Size: -1}); !errors.Is(err, storage.ErrInvalidPath) {
		t.Fatalf("copy of a named pipe: %v, want invalid path", err)
	}
	left, err := os.ReadDir(filepath.Join(root, "out"))
	if err != nil || len(left) != 1 || left[0].Name() != "dst" {
		t.Fatalf("the failed copies left %v (%v); want only dst", left, err)
	}
}

// TestListReusesTheCallersSlice: a page listed with Reuse is put in the
// caller's slice, and lists the same entries as a page without it.
func TestListReusesTheCallersSlice(t *testing.T) {
	dir := t.TempDir()
	for i := range 5 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d", i)), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	uri := "file://" + dir
	want, err := st.List(ctx, uri, storage.ListOptions{Recursive: true})
	if err != nil {
		t.Fatal(err)
	}
	reuse := make([]storage.Entry, 3, 8)
	got, err := st.List(ctx, uri, storage.ListOptions{Recursive: true, Reuse: reuse})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != 5 || &got.Entries[0] != &reuse[:1][0] {
		t.Fatalf("listed %d entries, in the caller's slice: %v", len(got.Entries), len(got.Entries) > 0 && &got.Entries[0] == &reuse[:1][0])
	}
	for i, e := range got.Entries {
		if e.URI != want.Entries[i].URI || e.RelPath != want.Entries[i].RelPath || e.Size != want.Entries[i].Size {
			t.Fatalf("entry %d: %+v, want %+v", i, e, want.Entries[i])
		}
	}
}

// Names up to the longest a file system takes are written, even when the
// partial file's name ("." + name + marker) would be longer; a writer's
// leftover under such a name is skipped by listings and removed by
// RemoveLeftovers.
func TestLongNamesAreWritten(t *testing.T) {
	root := t.TempDir()
	s, err := local.New(local.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, n := range []int{200, 240, 241, 254, 255} {
		for _, dir := range []string{"", "sub/"} {
			name := strings.Repeat("\xe9", n)
			uri := "file://" + root + "/" + dir + name
			storagetest.Put(t, s, uri, []byte(name[:10]))
			got, err := os.ReadFile(filepath.Join(root, dir, name))
			if err != nil || string(got) != name[:10] {
				t.Fatalf("%d-byte name in %q: read back %q, %v", n, dir, got, err)
			}
			// A crashed writer's leftover.
			leftover := filepath.Join(root, dir, storage.PartialName(name, local.PartialMarker, ""))
			if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, e := range storagetest.ListAll(t, s, "file://"+root, true, 10) {
				if strings.Contains(e.RelPath, local.PartialMarker) {
					t.Fatalf("listing shows the partial file %q", e.RelPath)
				}
			}
			if err := s.RemoveLeftovers(ctx, uri); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(leftover); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%d-byte name: the leftover is still there (%v)", n, err)
			}
		}
	}
}
