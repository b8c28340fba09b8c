package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"

	temporaldev "github.com/ferryio/ferry/temporal-dev"
)

// A namespace without one of Ferry's search attributes is refused at
// start with the command that adds it: jobs would otherwise hang on their
// first upsert of it.
func TestNamespaceWithoutASearchAttributeIsRefused(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := temporaldev.Start(ctx, temporaldev.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Stop() }()
	c, err := client.DialContext(ctx, client.Options{HostPort: srv.FrontendAddress(), Namespace: srv.Namespace()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := checkSearchAttributes(ctx, c, srv.Namespace()); err != nil {
		t.Fatalf("a namespace with every attribute: %v", err)
	}
	if _, err := c.OperatorService().RemoveSearchAttributes(ctx, &operatorservice.RemoveSearchAttributesRequest{
		Namespace: srv.Namespace(), SearchAttributes: []string{"FerryJobProgress"},
	}); err != nil {
		t.Fatal(err)
	}
	err = checkSearchAttributes(ctx, c, srv.Namespace())
	want := "temporal operator search-attribute create --namespace default --name FerryJobProgress --type Keyword"
	if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "FerryJobState") {
		t.Fatalf("err %v, want one naming only FerryJobProgress and %q", err, want)
	}
}
