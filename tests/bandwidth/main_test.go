package bandwidth

import (
	"os"
	"testing"

	"github.com/ferryio/ferry/internal/ferrytest"
)

func TestMain(m *testing.M) { os.Exit(ferrytest.Main(m)) }
