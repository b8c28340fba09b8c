// Package testtemporal starts the in-memory embedded Temporal server for the
// cache node's tests, one per test, and a client on it.
package testtemporal

import (
	"context"
	"testing"

	"go.temporal.io/sdk/client"

	temporaldev "github.com/ferryio/ferry/temporal-dev"
)

// Start starts a server and returns a client on it and the frontend
// address. Both are closed when the test ends. temporaldev.Start itself
// retries when a port it chose is taken before the server binds it.
func Start(t testing.TB) (client.Client, string) {
	t.Helper()
	srv, err := temporaldev.Start(context.Background(), temporaldev.Config{})
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
