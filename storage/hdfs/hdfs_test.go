package hdfs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/storagetest"
)

// TestConformance runs the suite against a real namenode. It needs a
// cluster: FERRY_TEST_HDFS=host:port (and FERRY_TEST_HDFS_USER, default
// "hdfs"). It writes below /tmp/ferry-test-<random> and removes it.
func TestConformance(t *testing.T) {
	addr := os.Getenv("FERRY_TEST_HDFS")
	if addr == "" {
		t.Skip("FERRY_TEST_HDFS does not name a namenode (host:port); no HDFS cluster to test against")
	}
	user := os.Getenv("FERRY_TEST_HDFS_USER")
	if user == "" {
		user = "hdfs"
	}
	s, err := New(Options{User: user})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	var b [6]byte
	_, _ = rand.Read(b[:])
	base := "/tmp/ferry-test-" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		if c, err := s.client(addr); err == nil {
			if cf, ok := c.(clientFS); ok {
				_ = cf.c.RemoveAll(base)
			}
		}
	})
	n := 0
	storagetest.Run(t, storagetest.Harness{
		Store: s,
		NewDir: func(t *testing.T) string {
			n++
			dir := fmt.Sprintf("hdfs://%s%s/t%d", addr, base, n)
			if err := s.MakeDir(context.Background(), dir); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		LargeFileSize: 16 << 20,
	})
}

// TestConformanceLocalStandIn runs the suite over localFS, a stand-in for
// the namenode that behaves as the client library does (name-ordered
// listings in batches, exclusive create, overwriting rename, the same error
// values). It checks the store's own logic — listing order across batches
// and held-back directories, cursors, partial files, the rename commit —
// not the wire protocol, which TestConformanceWire (and TestConformance
// against a real cluster) exercises.
func TestConformanceLocalStandIn(t *testing.T) {
	root := t.TempDir()
	s := newStore(Options{}, func(authority string) (fileSystem, error) {
		if authority != "nn:8020" {
			return nil, fmt.Errorf("no namenode %q", authority)
		}
		return localFS{root: root, batch: 7}, nil
	})
	n := 0
	storagetest.Run(t, storagetest.Harness{
		Store: s,
		NewDir: func(t *testing.T) string {
			n++
			dir := fmt.Sprintf("hdfs://nn:8020/t%d", n)
			if err := s.MakeDir(context.Background(), dir); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		ForeignURI:  "hdfs://unknown:9000/x",
		ForeignKind: storage.ErrUnavailable,
	})
}

// TestStalePartialReused: a crashed writer's partial file is reused once it
// is older than StaleTempAge, and left aside (unique name) while younger.
func TestStalePartialReused(t *testing.T) {
	root := t.TempDir()
	s := newStore(Options{StaleTempAge: time.Minute}, func(string) (fileSystem, error) { return localFS{root: root, batch: 100}, nil })
	ctx := context.Background()
	leftover := filepath.Join(root, "d", ".f"+PartialMarker)
	if err := os.MkdirAll(filepath.Dir(leftover), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leftover, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	storagetest.Put(t, s, "hdfs://nn/d/f", []byte("one"))
	names := dirNames(t, filepath.Dir(leftover))
	if len(names) != 2 {
		t.Fatalf("with a fresh leftover: %v, want the file and the leftover left aside", names)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(leftover, old, old); err != nil {
		t.Fatal(err)
	}
	storagetest.Put(t, s, "hdfs://nn/d/f", []byte("two"))
	if names := dirNames(t, filepath.Dir(leftover)); len(names) != 1 || names[0] != "f" {
		t.Fatalf("with a stale leftover: %v, want only f (leftover reused)", names)
	}
	if got := storagetest.Get(t, s, "hdfs://nn/d/f", 0, -1); string(got) != "two" {
		t.Fatalf("content %q", got)
	}
	if entries := storagetest.ListAll(t, s, "hdfs://nn/d", true, 10); len(entries) != 1 {
		t.Fatalf("listing shows %v", entries)
	}
	_, err := s.Stat(ctx, "hdfs://nn/d/.f"+PartialMarker)
	if !errors.Is(err, storage.ErrInvalidPath) {
		t.Fatalf("stat of a partial name: %v, want ErrInvalidPath", err)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range des {
		out = append(out, d.Name())
	}
	return out
}

func TestOptionsNeverShowSecrets(t *testing.T) {
	o := Options{User: "u", Kerberos: &Kerberos{Principal: "u@R", Password: "SUPERSECRET123"}}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{o, &o, *o.Kerberos, o.Kerberos} {
			if out := fmt.Sprintf(format, v); strings.Contains(out, "SUPERSECRET123") || strings.Contains(out, fmt.Sprintf("%x", "SUPERSECRET123")) {
				t.Errorf("%s of %T reveals the password: %s", format, v, out)
			}
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	err := Options{
		Namenodes:              map[string][]string{"c": {"nn1"}, "d": nil},
		DataTransferProtection: "maximum",
		Kerberos:               &Kerberos{KeytabFile: "k", Password: "p"},
	}.Validate()
	for _, want := range []string{"no port", "no address", "data transfer protection", "principal", "exclude"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; does not mention %q", err, want)
		}
	}
}

// localFS stands in for a namenode connection, on a local directory.
type localFS struct {
	root  string
	batch int // entries per Readdir call at most, like dfs.ls.limit
}

func (l localFS) real(name string) string { return filepath.Join(l.root, filepath.FromSlash(name)) }

func (l localFS) Stat(name string) (os.FileInfo, error) { return os.Stat(l.real(name)) }

func (l localFS) Open(name string) (file, error) {
	f, err := os.Open(l.real(name))
	if err != nil {
		return nil, err
	}
	return &localFile{File: f, batch: l.batch}, nil
}

func (l localFS) Create(name string) (io.WriteCloser, error) {
	return os.OpenFile(l.real(name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
}

func (l localFS) Rename(o, n string) error { return os.Rename(l.real(o), l.real(n)) }
func (l localFS) Remove(name string) error { return os.Remove(l.real(name)) }
func (l localFS) MkdirAll(name string, perm os.FileMode) error {
	return os.MkdirAll(l.real(name), perm)
}
func (l localFS) Close() error { return nil }

// localFile lists a directory the way the namenode does: sorted by name,
// in batches, continuing where the last call stopped.
type localFile struct {
	*os.File
	batch int
	names []string
	read  bool
}

func (f *localFile) Readdir(n int) ([]os.FileInfo, error) {
	if !f.read {
		names, err := f.Readdirnames(-1)
		if err != nil {
			return nil, err
		}
		sort.Strings(names)
		f.names, f.read = names, true
	}
	if len(f.names) == 0 {
		return nil, io.EOF
	}
	k := min(n, f.batch, len(f.names))
	var out []os.FileInfo
	for _, name := range f.names[:k] {
		fi, err := os.Lstat(filepath.Join(f.Name(), name))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, fi)
	}
	f.names = f.names[k:]
	return out, nil
}

func (f *localFile) Checksum() ([]byte, error) { return nil, errors.New("no checksum in the stand-in") }

// TestCursorResumeWithoutCache resumes every page from its cursor in a new
// store, as a restarted process would: the walk must seek to the cursor
// (through held-back directories such as "a" behind "a-b") and produce the
// same sequence as one uninterrupted listing.
func TestCursorResumeWithoutCache(t *testing.T) {
	root := t.TempDir()
	dial := func(string) (fileSystem, error) { return localFS{root: root, batch: 2}, nil }
	s := newStore(Options{}, dial)
	for _, name := range []string{
		"a-b/c", "a-b/c-d", "a-c", "a.b/x", "a/b", "a/b-c/d", "a/b/c", "a/b0", "a0", "b/a/b/c/d", "b/a-b", "c", "ü/x", "日本/語",
	} {
		storagetest.Put(t, s, "hdfs://nn/"+strings.Replace(name, "a/b/c", "a/bb/c", 1), []byte(name))
	}
	for _, recursive := range []bool{true, false} {
		want := storagetest.ListAll(t, s, "hdfs://nn/", recursive, 1000)
		var got []storage.Entry
		cursor := ""
		for {
			fresh := newStore(Options{}, dial)
			p, err := fresh.List(context.Background(), "hdfs://nn/", storage.ListOptions{Recursive: recursive, Cursor: cursor, Limit: 3})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, p.Entries...)
			if p.Cursor == "" {
				break
			}
			cursor = p.Cursor
		}
		if len(got) != len(want) {
			t.Fatalf("recursive=%v: resumed listing has %d entries, want %d", recursive, len(got), len(want))
		}
		for i := range want {
			if got[i].RelPath != want[i].RelPath || got[i].IsDir != want[i].IsDir {
				t.Fatalf("recursive=%v: entry %d is %q (dir %v), want %q (dir %v)", recursive, i, got[i].RelPath, got[i].IsDir, want[i].RelPath, want[i].IsDir)
			}
		}
		var keys []string
		for _, e := range want {
			k := e.RelPath
			if e.IsDir {
				k += "/"
			}
			keys = append(keys, k)
		}
		if !sort.StringsAreSorted(keys) {
			t.Fatalf("recursive=%v: keys not in byte order: %v", recursive, keys)
		}
	}
}

// TestUnreachableNamenode goes through the real client: a namenode address
// where nothing listens gives one clear, retryable error naming the URI.
func TestUnreachableNamenode(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s, err := New(Options{Namenodes: map[string][]string{"": {addr}}, User: "ferry", DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, uri := range []string{"hdfs:///data/x", "hdfs://" + addr + "/data/x"} {
		_, err := s.Stat(context.Background(), uri)
		if !errors.Is(err, storage.ErrUnavailable) || !strings.Contains(err.Error(), uri) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("stat %s: %v, want ErrUnavailable naming the URI and the refused connection", uri, err)
		}
		t.Log(err)
	}
}
