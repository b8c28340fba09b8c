package hdfs_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ferryio/ferry/storage"
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
