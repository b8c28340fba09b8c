package gcs_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/gcs"
	"github.com/ferryio/ferry/storage/gcs/gcstest"
)

const superSecret = "SUPERSECRET123"

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

// rejectedKey is a service-account key whose token endpoint (a loopback
// test server) refuses every assertion, as Google's does for a revoked key.
// The secret is in its private key id.
func rejectedKey(t *testing.T) string {
	t.Helper()
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":"invalid_grant","error_description":"Invalid JWT Signature."}`)
	}))
	t.Cleanup(tokens.Close)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "ferry-test", "private_key_id": superSecret,
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "ferry@ferry-test.iam.gserviceaccount.com", "client_id": "1",
		"token_uri": tokens.URL + "/token",
	})
	return string(js)
}

// TestClearErrors: each misconfiguration gives one line that names the URI,
// the kind and the cause, and never the secret.
func TestClearErrors(t *testing.T) {
	srv := gcstest.Start(t)
	bucket := srv.NewBucket()
	keyJSON := rejectedKey(t)
	keyFile := filepath.Join(t.TempDir(), "key.json")
	if err := os.WriteFile(keyFile, []byte(keyJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		conn  gcs.Connection
		uri   string
		kind  error
		cause string
	}{
		{"wrong endpoint", gcs.Connection{Endpoint: closedEndpoint(t), Anonymous: true}, "gs://" + bucket + "/x", storage.ErrUnavailable, "connection refused"},
		{"missing bucket", gcs.Connection{Endpoint: srv.URL, Anonymous: true}, "gs://no-such-bucket/x", storage.ErrNotFound, "bucket does not exist"},
		{"rejected key (JSON)", gcs.Connection{Endpoint: srv.URL, CredentialsJSON: keyJSON}, "gs://" + bucket + "/x", storage.ErrPermission, "invalid_grant"},
		{"rejected key (file)", gcs.Connection{Endpoint: srv.URL, CredentialsFile: keyFile}, "gs://" + bucket + "/x", storage.ErrPermission, "invalid_grant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := gcstest.Options("")
			opts.Connection = tc.conn
			s := gcstest.NewStore(t, opts)
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
				if strings.Contains(msg, superSecret) || strings.Contains(msg, "PRIVATE KEY") {
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

func TestBadKeyFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":     "SUPERSECRET123 is not JSON",
		"unknown type": `{"type":"mystery","private_key":"SUPERSECRET123"}`,
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			for _, c := range []gcs.Connection{{CredentialsFile: path}, {CredentialsJSON: content}} {
				_, err := gcs.New(context.Background(), gcs.Options{Connection: c})
				if err == nil {
					t.Fatal("a bad key was accepted")
				}
				if strings.Contains(err.Error(), superSecret) {
					t.Errorf("the error quotes the key: %v", err)
				}
			}
		})
	}
}

func TestOptionsNeverShowSecrets(t *testing.T) {
	opts := gcs.Options{
		Connection: gcs.Connection{CredentialsJSON: `{"private_key":"` + superSecret + `"}`},
		Buckets:    map[string]gcs.Connection{"b": {CredentialsJSON: superSecret}},
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		for _, v := range []any{opts, &opts, opts.Connection, opts.Buckets, struct{ O gcs.Options }{opts}} {
			if out := fmt.Sprintf(format, v); strings.Contains(out, superSecret) || strings.Contains(out, fmt.Sprintf("%x", superSecret)) {
				t.Errorf("%s of %T reveals the secret: %s", format, v, out)
			}
		}
	}
}

// TestMissingDefaultCredentials: without configured credentials and without
// Application Default Credentials, New still succeeds (a process that never
// touches gs:// must start) and each operation fails with ErrPermission.
func TestMissingDefaultCredentials(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	s, err := gcs.New(context.Background(), gcs.Options{})
	if err != nil {
		t.Fatalf("New without credentials: %v", err)
	}
	defer s.Close()
	_, err = s.Stat(context.Background(), "gs://some-bucket/x")
	if !errors.Is(err, storage.ErrPermission) || !strings.Contains(err.Error(), "gs://some-bucket/x") {
		t.Fatalf("stat without credentials: %v, want ErrPermission naming the URI", err)
	}
	t.Log(err)
}
