package s3_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/s3"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/storage/storagetest"
)

// rawClient talks to the test server without the store, to look behind it.
func rawClient(endpoint string) *awss3.Client {
	return awss3.New(awss3.Options{
		BaseEndpoint: aws.String(endpoint), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(s3test.AccessKeyID, s3test.SecretAccessKey, ""),
	})
}

func openUploads(t *testing.T, endpoint, bucket string) int {
	t.Helper()
	out, err := rawClient(endpoint).ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		return 0 // gofakes3 answers NoSuchUpload for a bucket that never had one
	}
	return len(out.Uploads)
}

// TestConformanceNoOverwriteModes runs the suite under every no-overwrite
// strategy; gofakes3 honours If-None-Match on PutObject only, so the HEAD
// checks carry the rest.
func TestConformanceNoOverwriteModes(t *testing.T) {
	for _, mode := range []s3.NoOverwrite{s3.NoOverwriteConditional, s3.NoOverwriteCheck} {
		t.Run(string(mode), func(t *testing.T) {
			srv := s3test.Start(t)
			opts := s3test.Options(srv.URL)
			opts.NoOverwrite = mode
			storagetest.Run(t, storagetest.Harness{
				Store:         s3test.NewStore(t, opts),
				NewDir:        func(t *testing.T) string { return "s3://" + srv.NewBucket(t) + "/dir" },
				ManyEntries:   1000,
				LargeFileSize: 12 << 20,
			})
		})
	}
}

// TestMultipartNothingVisibleBeforeCommit writes parts, checks that neither
// Stat nor List shows anything, and that Abort leaves no upload behind.
func TestMultipartNothingVisibleBeforeCommit(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	s := s3test.NewStore(t, s3test.Options(srv.URL))
	bucket := srv.NewBucket(t)
	uri := "s3://" + bucket + "/big"
	storagetest.Put(t, s, "s3://"+bucket+"/keep", []byte("k"))

	w, err := s.Create(ctx, uri, storage.CreateOptions{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(storagetest.Content(1, 12<<20)); err != nil {
		t.Fatal(err)
	}
	if n := openUploads(t, srv.URL, bucket); n != 1 {
		t.Fatalf("%d multipart uploads open while writing, want 1 (parts are sent while writing)", n)
	}
	if _, err := s.Stat(ctx, uri); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat while writing: %v, want ErrNotFound", err)
	}
	if got := storagetest.ListAll(t, s, "s3://"+bucket, true, 10); len(got) != 1 {
		t.Fatalf("listing while writing shows %d entries, want only keep", len(got))
	}
	if err := w.Abort(ctx); err != nil {
		t.Fatal(err)
	}
	if n := openUploads(t, srv.URL, bucket); n != 0 {
		t.Fatalf("%d multipart uploads left after Abort", n)
	}
	if _, err := s.Stat(ctx, uri); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("stat after abort: %v, want ErrNotFound", err)
	}
}

// TestNoOverwriteRaceMultipart: another writer takes the key while a
// multipart upload is under way. gofakes3 ignores If-None-Match on
// CompleteMultipartUpload, so only the HEAD check before the commit can
// refuse; the refused upload is aborted and the other content stays.
func TestNoOverwriteRaceMultipart(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	s := s3test.NewStore(t, s3test.Options(srv.URL))
	bucket := srv.NewBucket(t)
	uri := "s3://" + bucket + "/contended"

	w, err := s.Create(ctx, uri, storage.CreateOptions{Size: 12 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(storagetest.Content(2, 12<<20)); err != nil {
		t.Fatal(err)
	}
	storagetest.Put(t, s, uri, []byte("the other writer won"))
	if _, err := w.Commit(ctx); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("commit over a key taken meanwhile: %v, want ErrExists", err)
	}
	if got := storagetest.Get(t, s, uri, 0, -1); string(got) != "the other writer won" {
		t.Fatalf("the refused commit changed the object to %d bytes", len(got))
	}
	if n := openUploads(t, srv.URL, bucket); n != 0 {
		t.Fatalf("%d multipart uploads left after a refused commit", n)
	}
}

// TestLostCommitResponse cuts the connection after the server executed the
// committing request. The SDK retries; the server refuses the retry (412
// for If-None-Match, NoSuchUpload for a completed upload) and the store must
// recognise its own object by its write id instead of failing.
func TestLostCommitResponse(t *testing.T) {
	isCommit := map[string]func(*http.Request) bool{
		"single PUT": func(r *http.Request) bool {
			return r.Method == http.MethodPut && r.URL.Query().Get("uploadId") == "" && r.Header.Get("If-None-Match") == "*"
		},
		"multipart complete": func(r *http.Request) bool {
			return r.Method == http.MethodPost && r.URL.Query().Get("uploadId") != ""
		},
	}
	for name, match := range isCommit {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			srv := s3test.Start(t)
			proxy := s3test.StartProxy(t, srv.URL, 1, 0)
			cut := false
			proxy.SetScript(func(r *http.Request) s3test.Fault {
				if !cut && match(r) {
					cut = true
					return s3test.ResetAfter
				}
				return s3test.Pass
			})
			s := s3test.NewStore(t, s3test.Options(proxy.URL))
			uri := "s3://" + srv.NewBucket(t) + "/lost"
			data := storagetest.Content(3, 11<<20)
			if name == "single PUT" {
				data = data[:1000]
			}
			w, err := s.Create(ctx, uri, storage.CreateOptions{Size: int64(len(data))})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(data); err != nil {
				t.Fatal(err)
			}
			e, err := w.Commit(ctx)
			if err != nil {
				t.Fatalf("commit whose first response was lost: %v", err)
			}
			if !cut {
				t.Fatal("the committing request was never cut")
			}
			if e.Size != int64(len(data)) {
				t.Fatalf("entry size %d, want %d", e.Size, len(data))
			}
			if got := storagetest.Get(t, s, uri, 0, -1); !bytes.Equal(got, data) {
				t.Fatal("content differs")
			}
			st, err := s.Stat(ctx, uri)
			if err != nil || st.Version != e.Version {
				t.Fatalf("stat %+v, %v: version differs from the commit's %q", st, err, e.Version)
			}
		})
	}
}

// TestConditionalWritesRejected: a server that answers 501 to If-None-Match.
// In auto mode the store goes on with the HEAD check alone and remembers;
// in conditional mode it says the configuration is wrong.
func TestConditionalWritesRejected(t *testing.T) {
	for _, tc := range []struct {
		mode    s3.NoOverwrite
		wantErr error
	}{
		{s3.NoOverwriteAuto, nil},
		{s3.NoOverwriteConditional, storage.ErrInvalidPath},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			ctx := context.Background()
			srv := s3test.Start(t)
			proxy := s3test.StartProxy(t, srv.URL, 1, 0)
			conditional := 0
			proxy.SetScript(func(r *http.Request) s3test.Fault {
				if r.Header.Get("If-None-Match") != "" {
					conditional++
					return s3test.NotImplemented
				}
				return s3test.Pass
			})
			opts := s3test.Options(proxy.URL)
			opts.NoOverwrite = tc.mode
			s := s3test.NewStore(t, opts)
			bucket := srv.NewBucket(t)
			for i, name := range []string{"a", "b"} {
				w, err := s.Create(ctx, "s3://"+bucket+"/"+name, storage.CreateOptions{Size: 1})
				if err != nil {
					t.Fatal(err)
				}
				_, _ = w.Write([]byte("x"))
				_, err = w.Commit(ctx)
				if tc.wantErr != nil {
					if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), "conditional") {
						t.Fatalf("commit: %v, want %v explaining conditional writes", err, tc.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
			}
			if conditional != 1 {
				t.Fatalf("If-None-Match sent %d times, want once (then remembered as unsupported)", conditional)
			}
			w, err := s.Create(ctx, "s3://"+bucket+"/a", storage.CreateOptions{Size: 1})
			if err == nil {
				_, _ = w.Write([]byte("y"))
				_, err = w.Commit(ctx)
			}
			if !errors.Is(err, storage.ErrExists) {
				t.Fatalf("no-overwrite write over an existing key: %v, want ErrExists", err)
			}
		})
	}
}

// TestMultipartCopy copies above the multipart threshold, with a key that
// needs escaping in x-amz-copy-source.
func TestMultipartCopy(t *testing.T) {
	ctx := context.Background()
	srv := s3test.Start(t)
	opts := s3test.Options(srv.URL)
	opts.MultipartCopyThreshold = 1 << 20
	opts.CopyPartSize = 5 << 20
	s := s3test.NewStore(t, opts)
	bucket := srv.NewBucket(t)
	src := "s3://" + bucket + "/src a+b%20ü"
	dst := "s3://" + bucket + "/dst/x+y z"
	data := storagetest.Content(4, 12<<20+3)
	storagetest.Put(t, s, src, data)
	e, err := s.Copy(ctx, src, dst, storage.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Size != int64(len(data)) {
		t.Fatalf("copy entry size %d, want %d", e.Size, len(data))
	}
	if got := storagetest.Get(t, s, dst, 0, -1); !bytes.Equal(got, data) {
		t.Fatal("multipart copy differs from the source")
	}
	if _, err := s.Copy(ctx, src, dst, storage.CreateOptions{}); !errors.Is(err, storage.ErrExists) {
		t.Fatalf("copy over an existing object: %v, want ErrExists", err)
	}
	if _, err := s.Copy(ctx, src, dst, storage.CreateOptions{Overwrite: true}); err != nil {
		t.Fatalf("copy with overwrite: %v", err)
	}
	if n := openUploads(t, srv.URL, bucket); n != 0 {
		t.Fatalf("%d multipart uploads left after copies", n)
	}
}

// TestResumedRead cuts the body of a GET in the middle; the reader resumes
// with a ranged GET and returns every byte once.
func TestResumedRead(t *testing.T) {
	srv := s3test.Start(t)
	proxy := s3test.StartProxy(t, srv.URL, 1, 0)
	cuts := 0
	proxy.SetScript(func(r *http.Request) s3test.Fault {
		if r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "" && cuts < 3 {
			cuts++
			return s3test.Truncate
		}
		return s3test.Pass
	})
	s := s3test.NewStore(t, s3test.Options(proxy.URL))
	uri := "s3://" + srv.NewBucket(t) + "/r"
	data := storagetest.Content(5, 3<<20)
	storagetest.Put(t, s, uri, data)
	if got := storagetest.Get(t, s, uri, 100, 2<<20); !bytes.Equal(got, data[100:100+2<<20]) {
		t.Fatalf("resumed read returned %d bytes that differ", len(got))
	}
	if cuts != 3 {
		t.Fatalf("%d bodies cut, want 3", cuts)
	}
}
