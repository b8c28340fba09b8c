// Package testtemporal starts the in-memory embedded Temporal server for the
// cache node's tests, one per test, and a client on it.
package testtemporal

import (
	"context"
	"fmt"
	"testing"

	"go.temporal.io/sdk/client"

	temporaldev "github.com/ferryio/ferry/temporal-dev"
)

// Start starts a server and returns a client on it and the frontend
// address. Both are closed when the test ends.
//
// temporaldev picks its internal ports by listening on port 0 and closing
// the listener; when another process takes such a port before the server
// binds it, the server's membership layer panics instead of returning an
// error. Start recovers and tries again with fresh ports (at most three
// times), so that tests running beside others do not crash on it.
func Start(t testing.TB) (client.Client, string) {
	t.Helper()
	var srv *temporaldev.Server
	var err error
	for attempt := 1; ; attempt++ {
		srv, err = start()
		if err == nil || attempt == 3 {
			break
		}
		t.Logf("embedded Temporal failed to start (attempt %d): %v", attempt, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, srv.FrontendAddress()
}

func start() (srv *temporaldev.Server, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return temporaldev.Start(context.Background(), temporaldev.Config{})
}
