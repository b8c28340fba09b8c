package security

import (
	"os"
	"testing"

	"github.com/ferryio/ferry/internal/ferrytest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	ferrytest.RemoveBinary()
	os.Exit(code)
}
