package temporaldev

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A service port taken between choosing it and binding it must come back as
// an error from startServer (which Start retries), never as a panic in a
// server goroutine that takes the whole process down.
func TestTakenServicePortIsAnError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port

	cfg := Config{Namespace: "default", DatabaseFile: filepath.Join(t.TempDir(), "t.db")}
	sqlCfg, err := prepareDatabase(cfg)
	if err != nil {
		t.Fatal(err)
	}
	frontend := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	srv, err := startServer(cfg, "127.0.0.1", port, frontend, sqlCfg)
	if err == nil {
		_ = srv.Stop()
		t.Fatal("startServer bound a port another listener holds")
	}
	if !strings.Contains(err.Error(), "Failed to start gRPC listener") {
		t.Fatalf("error does not name the bind failure: %v", err)
	}
}

// Start with a frontend port of 0 picks a fresh free port on every attempt.
func TestStartPicksFrontendPort(t *testing.T) {
	s, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if strings.HasSuffix(s.FrontendAddress(), ":0") {
		t.Fatalf("frontend address %s", s.FrontendAddress())
	}
}
