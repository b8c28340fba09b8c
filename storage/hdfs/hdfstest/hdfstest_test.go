package hdfstest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"
)

func client(t *testing.T, s *Server) *hdfs.Client {
	t.Helper()
	c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: s.Addrs(), User: "ferry"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func write(t *testing.T, c *hdfs.Client, name string, data []byte) {
	t.Helper()
	w, err := c.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 {
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestNamespaceCalls drives the calls of the client library the Ferry
// store does not make, through the client itself: content summary, times,
// renames over files and directories, recursive delete, exclusive create
// against another writer's lease, and what a lost lease allows.
func TestNamespaceCalls(t *testing.T) {
	s := Start(t, Config{BlockSize: 4096, ListLimit: 3})
	c := client(t, s)
	if err := c.MkdirAll("/a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 1000) // 3 blocks
	write(t, c, "/a/b/f", data)
	write(t, c, "/a/g", nil)
	got, err := c.ReadFile("/a/b/f")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}

	cs, err := c.GetContentSummary("/a")
	if err != nil || cs.Size() != int64(len(data)) || cs.FileCount() != 2 || cs.DirectoryCount() != 2 {
		t.Fatalf("content summary %+v, %v", cs, err)
	}
	when := time.UnixMilli(1_700_000_000_000)
	if err := c.Chtimes("/a/g", when, when); err != nil {
		t.Fatal(err)
	}
	if fi, err := c.Stat("/a/g"); err != nil || !fi.ModTime().Equal(when) {
		t.Fatalf("stat after chtimes: %v, %v", fi, err)
	}

	// Listing in batches of 3, continued from the last name.
	if err := c.Mkdir("/many", 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 7; i++ {
		write(t, c, "/many/"+string(rune('a'+i)), []byte{byte(i)})
	}
	fis, err := c.ReadDir("/many")
	if err != nil || len(fis) != 7 || fis[0].Name() != "a" || fis[6].Name() != "g" {
		t.Fatalf("readdir: %d entries, %v", len(fis), err)
	}

	// rename2 with overwrite replaces a file, refuses a non-empty
	// directory.
	if err := c.Rename("/a/g", "/a/b/f"); err != nil {
		t.Fatal(err)
	}
	if fi, err := c.Stat("/a/b/f"); err != nil || fi.Size() != 0 {
		t.Fatalf("renamed over: %v, %v", fi, err)
	}
	if err := c.Rename("/many", "/a"); err == nil {
		t.Fatal("rename over a non-empty directory succeeded")
	}
	if err := c.Remove("/many"); err == nil {
		t.Fatal("non-recursive delete of a non-empty directory succeeded")
	}
	if err := c.RemoveAll("/many"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stat("/many/a"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat after RemoveAll: %v", err)
	}

	// A file another client is writing cannot be created again; once that
	// writer's lease is gone, the name is just taken.
	other := client(t, s)
	w, err := other.Create("/open")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("partial")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFile("/open", 1, 4096, 0o644); !errors.Is(err, os.ErrExist) {
		t.Fatalf("create over another writer's file: %v, want ErrExist", err)
	}
	if names := s.OpenFiles(t, "/"); len(names) != 1 || names[0] != "open" {
		t.Fatalf("open files %v", names)
	}
	s.ExpireLeases()
	s.Faults().SetNamenodeScript(func(c Call) Fault {
		if c.Method == "renewLease" {
			return Drop // keep the other writer from renewing
		}
		return Pass
	})
	if err := c.Remove("/open"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("closing a file removed under its writer succeeded")
	}
}

// TestDatanodeFaults: each datanode fault shows to the client as a failed
// transfer, and a second datanode holding the block lets reads through.
func TestDatanodeFaults(t *testing.T) {
	s := Start(t, Config{BlockSize: 64 << 10, Datanodes: 2})
	c := client(t, s)
	data := bytes.Repeat([]byte("ferry"), 50_000)
	write(t, c, "/f", data)
	for _, f := range RandomDatanodeFaults {
		var n int
		s.Faults().SetDatanodeScript(func(Transfer) Fault {
			n++
			if n == 1 {
				return f
			}
			return Pass
		})
		got, err := c.ReadFile("/f")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%v on one replica: read %d bytes, %v", f, len(got), err)
		}
		n = 0
		w, err := c.Create("/w-" + f.String())
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.Write(data)
		if err == nil {
			err = w.Close()
		}
		if err == nil {
			t.Fatalf("%v on a block write: the write succeeded", f)
		}
	}
	s.Faults().SetDatanodeScript(nil)
	r, err := c.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Seek(123_457, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 10)
	if _, err := io.ReadFull(r, b); err != nil || !bytes.Equal(b, data[123_457:123_467]) {
		t.Fatalf("read at an offset: %q, %v", b, err)
	}
}
