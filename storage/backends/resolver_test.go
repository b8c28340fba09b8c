package backends_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/backends"
	"github.com/ferryio/ferry/storage/storagetest"
)

// TestNewResolver configures every backend from one YAML document (S3 and
// GCS emulators on loopback) and moves bytes through each scheme.
func TestNewResolver(t *testing.T) {
	mem := s3mem.New()
	if err := mem.CreateBucket("lake"); err != nil {
		t.Fatal(err)
	}
	s3srv := httptest.NewServer(gofakes3.New(mem).Server())
	t.Cleanup(s3srv.Close)
	gcsSrv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Writer: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gcsSrv.Stop)
	gcsSrv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "warehouse"})
	root := t.TempDir()

	doc := fmt.Sprintf(`
local:
  root: %s
s3:
  region: us-east-1
  buckets:
    lake:
      endpoint: %s
      path_style: true
      access_key_id: minio
      secret_access_key: %s
gcs:
  endpoint: %s
  anonymous: true
hdfs:
  namenodes:
    default: [127.0.0.1:1]
`, root, s3srv.URL, superSecret, gcsSrv.URL())
	cfg, err := backends.Load(writeFile(t, "ferry.yaml", doc), lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	r, err := backends.NewResolver(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Schemes(), ","); got != "file,gs,hdfs,s3" {
		t.Fatalf("schemes %s, want file,gs,hdfs,s3", got)
	}
	for _, uri := range []string{"file://" + root + "/a/b.txt", "s3://lake/a/b.txt", "gs://warehouse/a/b.txt"} {
		st, err := r.For(uri)
		if err != nil {
			t.Fatal(err)
		}
		storagetest.Put(t, st, uri, []byte(uri))
		if got := storagetest.Get(t, st, uri, 0, -1); string(got) != uri {
			t.Errorf("%s: read %q", uri, got)
		}
	}
	// HDFS is configured but unreachable: it fails when used, not before.
	st, err := r.For("hdfs:///x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Stat(context.Background(), "hdfs:///x"); !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("hdfs stat: %v, want ErrUnavailable", err)
	}
}

func TestDisabledSchemes(t *testing.T) {
	cfg, err := backends.Parse([]byte("gcs:\n  disabled: true\nhdfs:\n  disabled: true\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := backends.NewResolver(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Schemes(), ","); got != "file,s3" {
		t.Fatalf("schemes %s, want file,s3", got)
	}
	if _, err := r.For("gs://b/k"); !errors.Is(err, storage.ErrInvalidPath) {
		t.Errorf("a disabled scheme: %v, want ErrInvalidPath", err)
	}
}

func TestNewResolverRefusesInvalidConfig(t *testing.T) {
	cfg := backends.Config{}
	cfg.S3.NoOverwrite = "sometimes"
	if _, err := backends.NewResolver(context.Background(), cfg); err == nil {
		t.Fatal("an invalid configuration was accepted")
	}
}
