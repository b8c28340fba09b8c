package bandwidth

import (
	"os"
	"testing"

	"github.com/ferryio/ferry/internal/ferrytest"
)

func TestMain(m *testing.M) {
	code := ferrytest.Main(m)
	removeSources()
	os.Exit(code)
}
