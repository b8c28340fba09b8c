package tests

import (
	"net/http"
	"os"
	"testing"

	"github.com/ferryio/ferry/internal/ferrytest"
)

// TestMain makes every request of these tests carry the token the ferry
// processes they start accept (see package ferrytest): the processes run
// with authentication on, as in production.
func TestMain(m *testing.M) {
	http.DefaultTransport = ferrytest.Transport{Base: http.DefaultTransport}
	os.Exit(m.Run())
}
