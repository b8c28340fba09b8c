package s3_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/s3"
	"github.com/ferryio/ferry/storage/s3/s3test"
)

const superSecret = "SUPERSECRET123"

// closedEndpoint is an address where nothing listens: a port the kernel
// handed out and that was closed again.
func closedEndpoint(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// TestClearErrors: each misconfiguration gives one line that names the URI,
// the kind and the cause, and never the secret.
func TestClearErrors(t *testing.T) {
	srv := s3test.Start(t)
	bucket := srv.NewBucket(t)
	for _, tc := range []struct {
		name     string
		endpoint string
		keyID    string
		uri      string
		kind     error
		cause    string
	}{
		{"wrong endpoint", closedEndpoint(t), s3test.AccessKeyID, "s3://" + bucket + "/x", storage.ErrUnavailable, "connection refused"},
		{"missing bucket", srv.URL, s3test.AccessKeyID, "s3://no-such-bucket/x", storage.ErrNotFound, "NoSuchBucket"},
		{"unknown access key", srv.URL, "AKIDUNKNOWN", "s3://" + bucket + "/x", storage.ErrPermission, "InvalidAccessKeyId"},
		{"wrong secret", srv.URL, s3test.AccessKeyID, "s3://" + bucket + "/x", storage.ErrPermission, "SignatureDoesNotMatch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := s3test.Options(tc.endpoint)
			opts.AccessKeyID = tc.keyID
			opts.SecretAccessKey = superSecret
			opts.SessionToken = superSecret + "-token"
			if tc.name == "missing bucket" {
				opts.SecretAccessKey = s3test.SecretAccessKey // the server must get to the bucket
				opts.SessionToken = ""
			}
			s := s3test.NewStore(t, opts)
			ctx := context.Background()
			check := func(op string, err error) {
				t.Helper()
				if err == nil {
					t.Fatalf("%s succeeded", op)
				}
				msg := err.Error()
				t.Logf("%s: %s", op, msg)
				if !errors.Is(err, tc.kind) {
					t.Errorf("%s: kind %v, want %v", op, storage.Kind(err), tc.kind)
				}
				if !strings.Contains(msg, tc.uri) || !strings.Contains(msg, tc.cause) {
					t.Errorf("%s: %q does not name the URI %s and the cause %q", op, msg, tc.uri, tc.cause)
				}
				if strings.Contains(msg, superSecret) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), superSecret) {
					t.Errorf("%s: the secret leaks: %q", op, msg)
				}
				if strings.Contains(msg, "\n") {
					t.Errorf("%s: error spans several lines: %q", op, msg)
				}
			}
			_, err := s.Stat(ctx, tc.uri)
			check("stat", err)
			_, err = s.Open(ctx, tc.uri, 0, -1)
			check("open", err)
			_, err = s.List(ctx, tc.uri, storage.ListOptions{})
			check("list", err)
			w, err := s.Create(ctx, tc.uri, storage.CreateOptions{Overwrite: true})
			if err == nil {
				_, _ = w.Write([]byte("data"))
				_, err = w.Commit(ctx)
			}
			check("create", err)
		})
	}
}

// TestOptionsNeverShowSecrets formats options every way a log line might.
func TestOptionsNeverShowSecrets(t *testing.T) {
	opts := s3.Options{
		Connection: s3.Connection{AccessKeyID: "AKID", SecretAccessKey: superSecret, SessionToken: superSecret},
		Buckets:    map[string]s3.Connection{"b": {AccessKeyID: "AKID2", SecretAccessKey: superSecret}},
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{opts, &opts, opts.Connection, opts.Buckets, struct{ O s3.Options }{opts}} {
			if out := fmt.Sprintf(format, v); strings.Contains(out, superSecret) || strings.Contains(out, fmt.Sprintf("%x", superSecret)) {
				t.Errorf("%s of %T reveals the secret: %s", format, v, out)
			}
		}
	}
	if !strings.Contains(opts.String(), "AKID") {
		t.Errorf("String() hides the access key id too: %s", opts)
	}
}

func TestOptionsValidate(t *testing.T) {
	bad := s3.Options{
		Connection: s3.Connection{Endpoint: "minio:9000", AccessKeyID: "AKID", NoOverwrite: "sometimes"},
		PartSize:   1 << 20,
		Buckets:    map[string]s3.Connection{"a/b": {}},
	}
	err := bad.Validate()
	if err == nil {
		t.Fatal("invalid options accepted")
	}
	for _, want := range []string{"part size", "endpoint", "secret access key", "no_overwrite", `"a/b"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; does not mention %s", err, want)
		}
	}
	if _, err := s3.New(context.Background(), bad); err == nil {
		t.Error("New accepted invalid options")
	}
}
