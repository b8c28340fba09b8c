package errtext

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	failurepb "go.temporal.io/api/failure/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/ferryio/ferry/storage"
)

// received is what a workflow gets back for an activity that failed with
// err: the error sent through Temporal's failure converter, as the
// activity's failure, and read back.
func received(t *testing.T, err error) error {
	t.Helper()
	fc := temporal.GetDefaultFailureConverter()
	f := &failurepb.Failure{
		Message: "activity error",
		Cause:   fc.ErrorToFailure(err),
		FailureInfo: &failurepb.Failure_ActivityFailureInfo{ActivityFailureInfo: &failurepb.ActivityFailureInfo{
			ActivityType: nil, ActivityId: "1", RetryState: enumspb.RETRY_STATE_NON_RETRYABLE_FAILURE,
		}},
	}
	back := fc.FailureToError(f)
	var act *temporal.ActivityError
	if !errors.As(back, &act) {
		t.Fatalf("not an activity error: %T %v", back, back)
	}
	return back
}

// TestRootHasNoTemporalWords: the message a job shows for an activity's
// failure is the storage error's own text, without "(type: …, retryable:
// …)": for an error that wraps a storage error (what the coordinator's
// activities return, whose cause Temporal converts too), one without a
// cause, and a timeout. (errors.Unwrap to the end, as the workflows did,
// gives the text with those words.)
func TestRootHasNoTemporalWords(t *testing.T) {
	cause := storage.NewError("list", "file:///data/x", storage.ErrPermission, errors.New("open /data/x: permission denied"))
	want := "list file:///data/x: open /data/x: permission denied"
	for name, c := range map[string]struct {
		err  error
		want string
	}{
		"with its cause": {temporal.NewNonRetryableApplicationError("list file:///data/x: "+cause.Error(), "PERMISSION_DENIED", fmt.Errorf("list %s: %w", "file:///data/x", cause)), want},
		"retryable":      {temporal.NewApplicationErrorWithCause(cause.Error(), "UNAVAILABLE", cause), want},
		"no cause":       {temporal.NewNonRetryableApplicationError(want, "PERMISSION_DENIED", nil), want},
		"timeout":        {temporal.NewTimeoutError(enumspb.TIMEOUT_TYPE_HEARTBEAT, nil), "Test timeout"},
	} {
		err := received(t, c.err)
		if name == "with its cause" && !strings.HasSuffix(last(err), want+" (type: Error, retryable: true)") {
			t.Errorf("the chain's last Error is %q: the Temporal words this test is about are gone", last(err))
		}
		got := Root(err)
		if got != c.want || strings.Contains(got, "(type:") || strings.Contains(got, "retryable") {
			t.Errorf("%s: Root = %q, want %q (the chain's last Error: %q)", name, got, c.want, last(err))
		}
	}
	if Root(errors.New("plain")) != "plain" || Root(nil) != "" {
		t.Error("plain errors")
	}
}

func last(err error) string {
	for errors.Unwrap(err) != nil {
		err = errors.Unwrap(err)
	}
	return err.Error()
}
