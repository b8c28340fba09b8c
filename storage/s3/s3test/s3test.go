// Package s3test starts an S3 server for tests: gofakes3 on a kernel-chosen
// loopback port, behind the two things the real S3 does that gofakes3
// v1.2.0 does not — SigV4 verification (bad credentials fail as on AWS) and
// UploadPartCopy (the multipart copy path runs against a server) — and,
// optionally, a reverse proxy in front of it that spoils a share of the
// requests (see Proxy).
//
// Package storage/s3 uses it for its own tests; other packages use it to run
// jobs against S3 without a network:
//
//	srv := s3test.Start(t)
//	store := s3test.NewStore(t, s3test.Options(srv.URL))
//	uri := "s3://" + srv.NewBucket(t) + "/dir"
package s3test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ferryio/ferry/storage/s3"
)

// Credentials the server accepts; any other key or secret is refused.
const (
	AccessKeyID     = "AKIDFERRYTEST"
	SecretAccessKey = "ferry-test-secret"
)

// Server is a running test S3 server. It is stopped when the test ends.
type Server struct {
	// Backend holds the objects. Tests look behind the S3 API with it.
	Backend *s3mem.Backend
	// URL is the endpoint ("http://127.0.0.1:<port>").
	URL string

	buckets atomic.Int64
}

// Start starts a server with no buckets.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{Backend: s3mem.New()}
	fake := gofakes3.New(s.Backend, gofakes3.WithoutVersioning())
	srv := httptest.NewUnstartedServer(verifySigV4(partCopy(fake.Server(), s.Backend)))
	srv.Config.ErrorLog = DiscardLogger()
	srv.Start()
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// NewBucket creates a bucket with a fresh name and returns the name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("bucket-%d", s.buckets.Add(1))
	s.CreateBucket(t, name)
	return name
}

// CreateBucket creates the bucket name.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	if err := s.Backend.CreateBucket(name); err != nil {
		t.Fatalf("create bucket %s: %v", name, err)
	}
}

// Options are the options of a store talking to endpoint (the server's URL
// or a Proxy's) with the server's credentials, 5 MiB parts so that
// multipart uploads start at small sizes, and millisecond backoffs so that
// tests of retries stay fast.
func Options(endpoint string) s3.Options {
	return s3.Options{
		Connection: s3.Connection{
			Endpoint: endpoint, PathStyle: aws.Bool(true), Region: "us-east-1",
			AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey,
		},
		PartSize:   5 << 20,
		MinBackoff: time.Millisecond,
		MaxBackoff: 10 * time.Millisecond,
	}
}

// NewStore builds a store from opts, failing the test on error.
func NewStore(t testing.TB, opts s3.Options) *s3.Store {
	t.Helper()
	st, err := s3.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// DiscardLogger silences a test server's log of aborted connections.
func DiscardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// verifySigV4 checks the access key and the signature of every request with
// the SDK's own signer, answering InvalidAccessKeyId or
// SignatureDoesNotMatch as S3 does.
func verifySigV4(next http.Handler) http.Handler {
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		fields := map[string]string{}
		for _, part := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			fields[k] = v
		}
		cred := strings.Split(fields["Credential"], "/")
		if len(cred) != 5 || cred[0] != AccessKeyID {
			writeError(w, r, http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
			return
		}
		when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil {
			writeError(w, r, http.StatusForbidden, "AccessDenied", "missing X-Amz-Date")
			return
		}
		u, err := url.Parse("http://" + r.Host + r.RequestURI)
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "InvalidURI", err.Error())
			return
		}
		clone, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), nil)
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "InvalidURI", err.Error())
			return
		}
		clone.URL = u
		clone.Host = r.Host
		clone.ContentLength = r.ContentLength
		for _, h := range strings.Split(fields["SignedHeaders"], ";") {
			if h != "host" {
				clone.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
			}
		}
		creds := aws.Credentials{AccessKeyID: AccessKeyID, SecretAccessKey: SecretAccessKey}
		if err := signer.SignHTTP(r.Context(), creds, clone, r.Header.Get("X-Amz-Content-Sha256"), cred[3], cred[2], when); err != nil {
			writeError(w, r, http.StatusForbidden, "SignatureDoesNotMatch", err.Error())
			return
		}
		if !strings.HasSuffix(clone.Header.Get("Authorization"), "Signature="+fields["Signature"]) {
			writeError(w, r, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
	}
}

// partCopy implements UploadPartCopy on top of gofakes3: it reads the source
// range from the backend and hands gofakes3 an ordinary UploadPart.
func partCopy(next http.Handler, backend *s3mem.Backend) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		src := r.Header.Get("X-Amz-Copy-Source")
		q := r.URL.Query()
		if r.Method != http.MethodPut || src == "" || q.Get("uploadId") == "" || q.Get("partNumber") == "" {
			next.ServeHTTP(w, r)
			return
		}
		src, err := url.PathUnescape(strings.TrimPrefix(src, "/"))
		if err != nil {
			writeError(w, r, http.StatusBadRequest, "InvalidArgument", err.Error())
			return
		}
		bucket, key, _ := strings.Cut(src, "/")
		var rng *gofakes3.ObjectRangeRequest
		if cr := r.Header.Get("X-Amz-Copy-Source-Range"); cr != "" {
			a, b, _ := strings.Cut(strings.TrimPrefix(cr, "bytes="), "-")
			start, _ := strconv.ParseInt(a, 10, 64)
			end, _ := strconv.ParseInt(b, 10, 64)
			rng = &gofakes3.ObjectRangeRequest{Start: start, End: end}
		}
		obj, err := backend.GetObject(bucket, key, rng)
		if err != nil {
			writeError(w, r, http.StatusNotFound, "NoSuchKey", err.Error())
			return
		}
		defer func() { _ = obj.Contents.Close() }()
		if m := r.Header.Get("X-Amz-Copy-Source-If-Match"); m != "" && strings.Trim(m, `"`) != hex.EncodeToString(obj.Hash) {
			writeError(w, r, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
			return
		}
		var body bytes.Buffer
		if _, err := body.ReadFrom(obj.Contents); err != nil {
			writeError(w, r, http.StatusInternalServerError, "InternalError", err.Error())
			return
		}
		part := r.Clone(r.Context())
		part.Header.Del("X-Amz-Copy-Source")
		part.Header.Del("X-Amz-Copy-Source-Range")
		part.Header.Del("X-Amz-Copy-Source-If-Match")
		part.Header.Set("Content-Length", strconv.Itoa(body.Len()))
		part.ContentLength = int64(body.Len())
		part.Body = http.NoBody
		if body.Len() > 0 {
			part.Body = io.NopCloser(&body)
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, part)
		if rec.Code != http.StatusOK {
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		_ = xml.NewEncoder(w).Encode(struct {
			XMLName      xml.Name `xml:"CopyPartResult"`
			ETag         string   `xml:"ETag"`
			LastModified string   `xml:"LastModified"`
		}{ETag: rec.Header().Get("ETag"), LastModified: time.Now().UTC().Format(time.RFC3339)})
	})
}

// Keys lists every key of bucket straight from the backend, past the S3 API
// and the store: what a test checks names against.
func (s *Server) Keys(t testing.TB, bucket string) []string {
	t.Helper()
	list, err := s.Backend.ListBucket(bucket, nil, gofakes3.ListBucketPage{})
	if err != nil {
		t.Fatalf("list bucket %s: %v", bucket, err)
	}
	keys := make([]string, 0, len(list.Contents))
	for _, c := range list.Contents {
		keys = append(keys, c.Key)
	}
	return keys
}

// Uploads lists the keys of the incomplete multipart uploads of bucket, as
// the S3 API shows them (ListMultipartUploads): what a writer killed before
// its Complete leaves behind.
func (s *Server) Uploads(t testing.TB, bucket string) []string {
	t.Helper()
	cl := awss3.New(awss3.Options{
		BaseEndpoint: aws.String(s.URL), UsePathStyle: true, Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
	})
	out, err := cl.ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatalf("list uploads of %s: %v", bucket, err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	return keys
}
