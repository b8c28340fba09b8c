package worker_test

import (
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/ferryio/ferry/internal/enginetest"
)

// recordHistories saves the history of every run of workflowID as
// <name>-<n>.json under $FERRY_RECORD_HISTORIES, for the replay tests in
// tests/replay. Without the variable it does nothing.
//
//	FERRY_RECORD_HISTORIES=$PWD/tests/replay/testdata go test ./worker -run 'Stop|Continue|EndToEnd|NodeLoss|Reported|JobCopies|MovesEverything|Passes|SecondLoad'
func recordHistories(t *testing.T, c client.Client, workflowID, name string) {
	enginetest.RecordHistories(t, c, workflowID, name)
}
