package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
)

// pki writes a CA and one certificate it signs (for 127.0.0.1, usable by
// servers and clients) under dir, and returns their file names.
func pki(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	must(t, err)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ferry"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	must(t, err)
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	must(t, err)
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	must(t, os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644))
	must(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o644))
	must(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return ca, cert, key
}

// TestJobOverMutualTLS runs Temporal, two cache nodes, a coordinator and
// the API as separate processes whose listeners all require client
// certificates, loads a tree with replicas=2 (so the nodes call each
// other's gRPC service over mutual TLS with a token), drives it with the
// CLI over HTTPS, and checks that clients without a certificate are
// refused.
func TestJobOverMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := pki(t, dir)
	src := filepath.Join(dir, "src")
	must(t, os.MkdirAll(src, 0o755))
	for i := range 8 {
		must(t, os.WriteFile(filepath.Join(src, fmt.Sprintf("f%d", i)), []byte(strings.Repeat("x", 100+i)), 0o644))
	}
	tlsEnv := []string{"FERRY_TLS_CERT=" + cert, "FERRY_TLS_KEY=" + key, "FERRY_TLS_CLIENT_CA=" + ca, "FERRY_TLS_CA=" + ca}

	tp := ferrytest.Start(t, "temporal-dev", "--memory", "--listen", "127.0.0.1:0", "--ui-listen", "")
	temporal := tp.WaitFor(regexp.MustCompile(`Temporal frontend\s+(\S+)`), 60*time.Second)[1]
	ap := ferrytest.StartEnv(t, tlsEnv, "api", "--listen", "127.0.0.1:0", "--temporal-address", temporal)
	api := ap.WaitFor(regexp.MustCompile(`REST API\s+(https://\S+)`), 60*time.Second)[1]
	var nodes []string
	for _, id := range []string{"node-1", "node-2"} {
		p := ferrytest.StartEnv(t, append(tlsEnv, "FERRY_JOB_API_URL="+api), "cachenode", "--id", id, "--data-dir", filepath.Join(dir, id),
			"--identity-name", id, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--capacity", "64MiB", "--temporal-address", temporal)
		nodes = append(nodes, p.WaitFor(regexp.MustCompile(`Cache node `+id+`\s+(https://\S+)`), 60*time.Second)[1])
	}
	wp := ferrytest.Start(t, "worker", "--temporal-address", temporal, "--data-dir", dir)
	wp.WaitFor(regexp.MustCompile(`is running`), 60*time.Second)

	// The CLI: HTTPS, the CA, its certificate and the token.
	cli := func(args ...string) (string, error) {
		out, err := runCLI(t, append(tlsEnv, "FERRY_API="+api), args...)
		return out, err
	}
	path := "file://" + src
	if out, err := cli("job", "load", "--path", path, "--submit", "--replicas", "2", "--watch"); err != nil || !strings.Contains(out, "Job State: SUCCEEDED") {
		t.Fatalf("load over mutual TLS: %v\n%s", err, out)
	}

	// A client with the CA but without a certificate is refused by every
	// listener; one with its certificate reads.
	pool := x509.NewCertPool()
	pem, err := os.ReadFile(ca)
	must(t, err)
	pool.AppendCertsFromPEM(pem)
	noCert := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, u := range append([]string{api}, nodes...) {
		resp, err := noCert.Get(u + "/healthz")
		if err == nil {
			resp.Body.Close()
			t.Errorf("%s answered a client without a certificate: %d", u, resp.StatusCode)
		}
		if resp, err := http.Get(strings.Replace(u, "https://", "http://", 1) + "/healthz"); err == nil {
			ok := resp.StatusCode == http.StatusBadRequest // Go's answer to plain HTTP on a TLS port
			resp.Body.Close()
			if !ok {
				t.Errorf("%s answered plain HTTP: %d", u, resp.StatusCode)
			}
		}
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	must(t, err)
	withCert := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}}}}
	resp, err := withCert.Get(nodes[0] + "/healthz")
	if err != nil {
		t.Fatalf("client with a certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("healthz with a certificate: %d", resp.StatusCode)
	}
}

// TestNoAuthOnlyOnLoopback: serving without authentication must be asked
// for, and is refused on any listener reachable from the network.
func TestNoAuthOnlyOnLoopback(t *testing.T) {
	for _, args := range [][]string{
		{"api", "--listen", "0.0.0.0:0", "--insecure-no-auth"},
		{"cachenode", "--id", "n1", "--data-dir", t.TempDir(), "--http-addr", ":0", "--insecure-no-auth"},
		{"dev", "--data-dir", t.TempDir(), "--api-listen", "0.0.0.0:0", "--insecure-no-auth", "--temporal-listen", "127.0.0.1:0"},
		{"dev", "--data-dir", t.TempDir(), "--node-hosts", "192.0.2.1", "--insecure-no-auth", "--temporal-listen", "127.0.0.1:0"},
	} {
		out, err := runCLI(t, nil, args...)
		if err == nil || !strings.Contains(out, "--insecure-no-auth is only allowed when every listener is on loopback") {
			t.Errorf("ferry %v: %v\n%s", args, err, out)
		}
	}
}
