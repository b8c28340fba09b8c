package s3_test

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
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ferryio/ferry/storage/s3"
)

// Credentials the test server accepts.
const (
	testKeyID  = "AKIDFERRYTEST"
	testSecret = "ferry-test-secret"
)

// testServer is gofakes3 over a real loopback listener, with two things in
// front of it that the real S3 does and gofakes3 v1.2.0 does not: SigV4
// verification (so that bad credentials fail as they would on AWS) and
// UploadPartCopy (so that the multipart copy path runs against a server).
type testServer struct {
	backend *s3mem.Backend
	URL     string
	buckets int
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	ts := &testServer{backend: s3mem.New()}
	fake := gofakes3.New(ts.backend, gofakes3.WithoutVersioning())
	h := verifySigV4(partCopy(fake.Server(), ts.backend))
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ts.URL = srv.URL
	return ts
}

// newBucket creates a fresh bucket.
func (ts *testServer) newBucket(t testing.TB) string {
	t.Helper()
	ts.buckets++
	name := fmt.Sprintf("bucket-%d", ts.buckets)
	if err := ts.backend.CreateBucket(name); err != nil {
		t.Fatal(err)
	}
	return name
}

// storeOptions are the options of a store talking to endpoint, with
// millisecond backoffs so that tests of retries stay fast.
func storeOptions(endpoint string) s3.Options {
	return s3.Options{
		Connection: s3.Connection{
			Endpoint: endpoint, PathStyle: aws.Bool(true), Region: "us-east-1",
			AccessKeyID: testKeyID, SecretAccessKey: testSecret,
		},
		PartSize:   5 << 20,
		MinBackoff: time.Millisecond,
		MaxBackoff: 10 * time.Millisecond,
	}
}

func newStore(t testing.TB, opts s3.Options) *s3.Store {
	t.Helper()
	s, err := s3.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

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
		if len(cred) != 5 || cred[0] != testKeyID {
			s3Error(w, r, http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
			return
		}
		when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
		if err != nil {
			s3Error(w, r, http.StatusForbidden, "AccessDenied", "missing X-Amz-Date")
			return
		}
		u, err := url.Parse("http://" + r.Host + r.RequestURI)
		if err != nil {
			s3Error(w, r, http.StatusBadRequest, "InvalidURI", err.Error())
			return
		}
		clone, _ := http.NewRequest(r.Method, u.String(), nil)
		clone.URL = u
		clone.Host = r.Host
		clone.ContentLength = r.ContentLength
		for _, h := range strings.Split(fields["SignedHeaders"], ";") {
			if h != "host" {
				clone.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
			}
		}
		creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
		if err := signer.SignHTTP(r.Context(), creds, clone, r.Header.Get("X-Amz-Content-Sha256"), cred[3], cred[2], when); err != nil {
			s3Error(w, r, http.StatusForbidden, "SignatureDoesNotMatch", err.Error())
			return
		}
		if !strings.HasSuffix(clone.Header.Get("Authorization"), "Signature="+fields["Signature"]) {
			s3Error(w, r, http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func s3Error(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
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
			s3Error(w, r, http.StatusBadRequest, "InvalidArgument", err.Error())
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
			s3Error(w, r, http.StatusNotFound, "NoSuchKey", err.Error())
			return
		}
		defer obj.Contents.Close()
		if m := r.Header.Get("X-Amz-Copy-Source-If-Match"); m != "" && strings.Trim(m, `"`) != hex.EncodeToString(obj.Hash) {
			s3Error(w, r, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
			return
		}
		var body bytes.Buffer
		if _, err := body.ReadFrom(obj.Contents); err != nil {
			s3Error(w, r, http.StatusInternalServerError, "InternalError", err.Error())
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
			part.Body = &readCloser{&body}
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

type readCloser struct{ *bytes.Buffer }

func (readCloser) Close() error { return nil }

// discardLogger silences a test server's log of aborted connections.
func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
