package policytest

import (
	"os"
	"testing"

	"github.com/ferryio/ferry/internal/ferrytest"
)

// TestMain sends the token of the processes these tests start on every
// request (see package ferrytest): they run with authentication on.
func TestMain(m *testing.M) { os.Exit(ferrytest.Main(m)) }
