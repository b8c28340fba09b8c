package tests

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/gcs/gcstest"
	"github.com/ferryio/ferry/storage/hdfs/hdfstest"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/storage/storagetest"
)

// putTree writes n files of mixed sizes (empty to 3 MiB, awkward names)
// under prefix and returns their contents by URI.
func putTree(t *testing.T, st storage.Store, prefix string, n int) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	sizes := []int64{0, 1, 5000, 1<<20 + 1, 3 << 20}
	for i := 0; i < n; i++ {
		uri := fmt.Sprintf("%s/part %d/file+%03d ü.bin", prefix, i%4, i)
		data := storagetest.Content(int64(i), sizes[i%len(sizes)])
		storagetest.Put(t, st, uri, data)
		out[uri] = data
	}
	return out
}

// checkServedFromCache reads every file from its owner's cache (no
// read-through) and compares the bytes.
func checkServedFromCache(t *testing.T, c cluster, files map[string][]byte) {
	t.Helper()
	node := anyNode(c)
	for uri, want := range files {
		owner := ownerOf(t, node, uri)
		var got []byte
		for pg := int64(0); ; pg++ {
			code, b, err := cachedPage(owner, uri, pg)
			if err != nil || code != http.StatusOK {
				t.Fatalf("page %d of %s from %s: %d %v %s", pg, uri, owner, code, err, b)
			}
			got = append(got, b...)
			if int64(len(got)) >= int64(len(want)) {
				break
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: cached bytes differ (%d vs %d)", uri, len(got), len(want))
		}
	}
}

func TestDevLoadsFromS3AndGCS(t *testing.T) {
	s3srv := s3test.Start(t)
	s3bucket := s3srv.NewBucket(t)
	s3store := s3test.NewStore(t, s3test.Options(s3srv.URL))
	gsrv := gcstest.Start(t)
	gbucket := gsrv.NewBucket()
	gstore := gcstest.NewStore(t, gcstest.Options(gsrv.URL))

	s3files := putTree(t, s3store, "s3://"+s3bucket+"/data", 40)
	gsfiles := putTree(t, gstore, "gs://"+gbucket+"/data", 40)

	env := []string{
		"FERRY_S3_ENDPOINT=" + s3srv.URL, "FERRY_S3_PATH_STYLE=true", "FERRY_S3_REGION=us-east-1",
		"FERRY_S3_ACCESS_KEY_ID=" + s3test.AccessKeyID, "FERRY_S3_SECRET_ACCESS_KEY=" + s3test.SecretAccessKey,
		"FERRY_GCS_ENDPOINT=" + gsrv.URL, "FERRY_GCS_ANONYMOUS=true",
		"FERRY_MOUNTS=" + ferrytest.Mounts() + ",s3://" + s3bucket + ",gs://" + gbucket,
	}
	p, c := startFullDevEnv(t, env, t.TempDir())
	for _, tc := range []struct {
		path  string
		files map[string][]byte
	}{
		{"s3://" + s3bucket + "/data/", s3files},
		{"gs://" + gbucket + "/data/", gsfiles},
	} {
		code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/load", map[string]any{"path": tc.path})
		if code != http.StatusOK {
			t.Fatalf("submit %s: %d %v", tc.path, code, resp)
		}
		var total int64
		for _, b := range tc.files {
			total += int64(len(b))
		}
		rep := waitJobState(t, c, "load", map[string]any{"path": tc.path}, 3*time.Minute, "SUCCEEDED", "FAILED")
		if rep["mJobState"] != "SUCCEEDED" || rep["mProcessedInodesCount"] != float64(len(tc.files)) || rep["mLoadedByteCount"] != float64(total) {
			t.Fatalf("%s: %v", tc.path, rep)
		}
		checkServedFromCache(t, c, tc.files)
	}
	// The secret never shows in what Ferry printed.
	if bytes.Contains([]byte(p.Output()), []byte(s3test.SecretAccessKey)) {
		t.Fatal("the S3 secret appears in ferry dev's output")
	}
}

// TestDevLoadsFromHDFS: ferry dev configured by the environment alone
// (FERRY_HDFS_NAMENODE naming both namenodes of an HA pair, FERRY_HDFS_USER)
// loads an hdfs:// prefix from the wire-protocol test HDFS, whose first
// namenode is the standby: the client has to move to the second one.
func TestDevLoadsFromHDFS(t *testing.T) {
	hsrv := hdfstest.Start(t, hdfstest.Config{Namenodes: 2, BlockSize: 256 << 10})
	hsrv.Failover(1)
	files := putTree(t, hdfstest.NewStore(t, hsrv.Options()), "hdfs:///data", 30)

	// HDFS is reached only where a mount allows it.
	env := append(hsrv.Env(), "FERRY_MOUNTS="+ferrytest.Mounts()+",hdfs:///data")
	_, c := startFullDevEnv(t, env, t.TempDir())
	const path = "hdfs:///data/"
	code, resp := call(t, "POST", c.api+"/api/v1/master/submit_job/load", map[string]any{"path": path})
	if code != http.StatusOK {
		t.Fatalf("submit %s: %d %v", path, code, resp)
	}
	var total int64
	for _, b := range files {
		total += int64(len(b))
	}
	rep := waitJobState(t, c, "load", map[string]any{"path": path}, 3*time.Minute, "SUCCEEDED", "FAILED")
	if rep["mJobState"] != "SUCCEEDED" || rep["mProcessedInodesCount"] != float64(len(files)) || rep["mLoadedByteCount"] != float64(total) {
		t.Fatalf("%s: %v", path, rep)
	}
	checkServedFromCache(t, c, files)
	if hsrv.Faults().Count(hdfstest.Standby) == 0 {
		t.Fatal("no call reached the standby namenode")
	}
}
