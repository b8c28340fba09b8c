package hdfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/hdfs"
	"github.com/ferryio/ferry/storage/hdfs/hdfstest"
	"github.com/ferryio/ferry/storage/storagetest"
)

// harness runs the suite below a fresh directory of srv for each subtest.
func harness(t *testing.T, srv *hdfstest.Server, st storage.Store, base string) storagetest.Harness {
	n := 0
	return storagetest.Harness{
		Store: st,
		NewDir: func(t *testing.T) string {
			n++
			dir := fmt.Sprintf("%s/t%d", base, n)
			if err := st.MakeDir(context.Background(), dir); err != nil {
				t.Fatal(err)
			}
			return dir
		},
		ManyEntries:   1200,
		LargeFileSize: 8<<20 + 123,
		ForeignURI:    "hdfs://" + srv.Addr() + "/../x",
		ForeignKind:   storage.ErrInvalidPath,
	}
}

// TestConformanceWire runs the conformance suite through the real client
// library against the in-process wire-protocol server: namenode RPC,
// block writes and reads with CRC-32C checksums, 256 KiB blocks (the
// large file spans 33 of them), listings in batches of 100.
func TestConformanceWire(t *testing.T) {
	srv := hdfstest.Start(t, hdfstest.Config{BlockSize: 256 << 10, ListLimit: 100})
	st := hdfstest.NewStore(t, srv.Options())
	storagetest.Run(t, harness(t, srv, st, "hdfs:///conformance"))
}

// TestHAFailover: the store keeps working through a failover of an HA
// pair, from either namenode to the other, and when the first namenode it
// dials is the standby. (The client library keeps a namenode that failed
// aside for 5 s, so one client cannot follow a failover back within 5 s;
// each store here sees one failover.)
func TestHAFailover(t *testing.T) {
	srv := hdfstest.Start(t, hdfstest.Config{Namenodes: 2, BlockSize: 64 << 10})
	ctx := context.Background()
	data := storagetest.Content(1, 300_000)
	for i, order := range [][]int{{0, 1}, {1}} {
		srv.Failover(order[0])
		st := hdfstest.NewStore(t, srv.Options())
		for j, active := range order {
			srv.Failover(active)
			uri := fmt.Sprintf("hdfs://%s/ha/f%d-%d", hdfstest.Nameservice, i, j)
			storagetest.Put(t, st, uri, data)
			if got := storagetest.Get(t, st, uri, 0, -1); !bytes.Equal(got, data) {
				t.Fatalf("after failover to nn%d: read back differs", active)
			}
			if _, err := st.Stat(ctx, uri); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(storagetest.ListAll(t, st, "hdfs:///ha", true, 3)); n != 2+i {
			t.Fatalf("listed %d files, want %d", n, 2+i)
		}
	}
	if srv.Faults().Count(hdfstest.Standby) == 0 {
		t.Fatal("no call reached a standby: the failover was not exercised")
	}
}

// TestNamenodeDown: a namenode that goes away gives ErrUnavailable, and
// the store works again once it is back, without being rebuilt.
func TestNamenodeDown(t *testing.T) {
	srv := hdfstest.Start(t, hdfstest.Config{})
	opts := srv.Options()
	opts.DialTimeout = time.Second
	st := hdfstest.NewStore(t, opts)
	ctx := context.Background()
	storagetest.Put(t, st, "hdfs:///d/f", []byte("x"))
	srv.SetDown(0, true)
	_, err := st.Stat(ctx, "hdfs:///d/f")
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("stat with the namenode down: %v, want ErrUnavailable", err)
	}
	srv.SetDown(0, false)
	ferrytest.Eventually(t, 30*time.Second, func() error {
		if _, err := st.Stat(ctx, "hdfs:///d/f"); err != nil {
			return fmt.Errorf("the namenode is back, stat still fails: %w", err)
		}
		return nil
	})
}

// TestLeaseLost: a writer whose lease is lost fails its commit with a
// retryable error, leaves nothing under the final name and no partial
// file.
func TestLeaseLost(t *testing.T) {
	srv := hdfstest.Start(t, hdfstest.Config{BlockSize: 64 << 10})
	st := hdfstest.NewStore(t, srv.Options())
	ctx := context.Background()
	srv.Faults().SetNamenodeScript(func(c hdfstest.Call) hdfstest.Fault {
		if c.Method == "complete" {
			return hdfstest.LeaseLost
		}
		return hdfstest.Pass
	})
	w, err := st.Create(ctx, "hdfs:///l/f", storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(storagetest.Content(2, 100_000)); err != nil {
		t.Fatal(err)
	}
	_, err = w.Commit(ctx)
	if !storage.IsRetryable(err) {
		t.Fatalf("commit with the lease lost: %v, want a retryable error", err)
	}
	if _, err := st.Stat(ctx, "hdfs:///l/f"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat after the failed commit: %v, want ErrNotFound", err)
	}
	if names := srv.Names(t, "/l"); len(names) != 0 {
		t.Fatalf("left behind: %v", names)
	}
}

// TestConformanceDatanodeFaults runs the conformance suite with 10 % of
// the datanode transfers failing (connection reset at once or mid-block,
// checksum errors), over two datanodes so that reads also exercise the
// client's own failover. Every case must still pass, and no partial file
// may ever show under its final name: a watcher lists the suite's tree
// while it runs and checks that every file it sees reads back whole.
func TestConformanceDatanodeFaults(t *testing.T) {
	srv := hdfstest.Start(t, hdfstest.Config{BlockSize: 128 << 10, Datanodes: 2, ListLimit: 50, Seed: 16})
	srv.Faults().SetDatanodeRate(0.10)
	st := hdfstest.NewStore(t, srv.Options())
	h := harness(t, srv, st, "hdfs:///faults")
	h.ManyEntries = 300
	h.LargeFileSize = 6 << 20
	storagetest.Run(t, h)

	// More files of several blocks, each one checked invisible until its
	// commit, then read back whole.
	ctx := context.Background()
	for i := 0; i < 60; i++ {
		uri := fmt.Sprintf("hdfs:///faults/more/f%02d", i)
		data := storagetest.Content(int64(i), int64(100_000+i*7_919))
		w, err := st.Create(ctx, uri, storage.CreateOptions{Size: int64(len(data))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Stat(ctx, uri); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("%s before its commit: %v, want ErrNotFound", uri, err)
		}
		if _, err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got := storagetest.Get(t, st, uri, 0, -1); !bytes.Equal(got, data) {
			t.Fatalf("%s: read back %d bytes differing from the %d written", uri, len(got), len(data))
		}
	}
	for _, f := range hdfstest.RandomDatanodeFaults {
		if srv.Faults().Count(f) == 0 {
			t.Errorf("no transfer got the fault %v", f)
		}
	}
	t.Logf("%d transfers spoiled: %d resets, %d mid-block resets, %d checksum errors", srv.Faults().Spoiled(),
		srv.Faults().Count(hdfstest.Reset), srv.Faults().Count(hdfstest.ResetMid), srv.Faults().Count(hdfstest.Checksum))
	for _, name := range srv.Names(t, "/faults") {
		if strings.Contains(name, hdfs.PartialMarker) {
			t.Errorf("partial file left behind: %s", name)
		}
	}
}

// TestCommitWhileReplicating: complete answering false (the last block not
// yet on enough datanodes) makes the store retry the close, and the commit
// succeeds.
func TestCommitWhileReplicating(t *testing.T) {
	srv := hdfstest.Start(t, hdfstest.Config{BlockSize: 64 << 10})
	st := hdfstest.NewStore(t, srv.Options())
	n := 0
	srv.Faults().SetNamenodeScript(func(c hdfstest.Call) hdfstest.Fault {
		if c.Method == "complete" && n < 2 {
			n++
			return hdfstest.Replicating
		}
		return hdfstest.Pass
	})
	data := storagetest.Content(3, 200_000)
	storagetest.Put(t, st, "hdfs:///r/f", data)
	if got := storagetest.Get(t, st, "hdfs:///r/f", 0, -1); !bytes.Equal(got, data) || n != 2 {
		t.Fatalf("read back %d bytes after %d refused completes", len(got), n)
	}
}

// TestNamenodeCrashFailover: the active namenode of an HA pair goes down
// and the other takes over; the store's calls fail retryably for a moment
// (the client library notices a dead connection only when it next writes
// to it) and then go to the new active namenode, without waiting.
func TestNamenodeCrashFailover(t *testing.T) {
	srv := hdfstest.Start(t, hdfstest.Config{Namenodes: 2})
	st := hdfstest.NewStore(t, srv.Options())
	ctx := context.Background()
	storagetest.Put(t, st, "hdfs:///c/f", []byte("x"))
	srv.SetDown(0, true)
	srv.Failover(1)
	failed := 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := st.Stat(ctx, "hdfs:///c/f")
		if err == nil {
			break
		}
		if !storage.IsRetryable(err) || time.Now().After(deadline) {
			t.Fatalf("stat after the crash: %v", err)
		}
		failed++
	}
	if failed > 2 {
		t.Fatalf("%d calls failed before the store reached the new active namenode", failed)
	}
	t.Logf("%d calls failed before the failover", failed)
}
