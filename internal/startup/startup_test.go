package startup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{serviceerror.NewWorkflowNotReady("Unable to query workflow due to Workflow Task in failed state."), true},
		{fmt.Errorf("query: %w", status.Error(codes.Canceled, "stream terminated by RST_STREAM with error code: CANCEL")), true},
		{status.Error(codes.Unavailable, "connection refused"), true},
		{serviceerror.NewNamespaceNotFound("default"), true},
		{errors.New("failed reaching server: context deadline exceeded"), true},
		{serviceerror.NewInvalidArgument("bad"), false},
		{serviceerror.NewPermissionDenied("no", ""), false},
		{status.Error(codes.Unauthenticated, "who"), false},
		{Permanent(errors.New("duplicate identity")), false},
		{nil, false},
	} {
		if got := Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestRetryUntilSuccess(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	calls := 0
	err := Retry(ctx, "the thing", func(context.Context) error {
		calls++
		if calls < 3 {
			return serviceerror.NewWorkflowNotReady("Workflow Task in failed state")
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestRetryStopsOnPermanentError(t *testing.T) {
	calls := 0
	bad := serviceerror.NewInvalidArgument("namespace name is invalid")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Retry(ctx, "the thing", func(context.Context) error {
		calls++
		return bad
	})
	if !errors.Is(err, bad) || calls != 1 {
		t.Fatalf("err %v after %d calls", err, calls)
	}
}

func TestRetryTimesOutWithOneLine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	err := Retry(ctx, "Temporal at 127.0.0.1:1", func(ctx context.Context) error {
		return status.Error(codes.Unavailable, "connection refused\nsecond line")
	})
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("err %v, want a TimeoutError", err)
	}
	msg := err.Error()
	if !strings.HasPrefix(msg, "gave up waiting for Temporal at 127.0.0.1:1 after ") || !strings.Contains(msg, "--startup-timeout") || !strings.Contains(msg, "connection refused") {
		t.Errorf("message %q", msg)
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("the last error is not kept: %v", err)
	}
}

func TestRetryInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := Retry(ctx, "the registry", func(context.Context) error {
		calls++
		cancel()
		return status.Error(codes.Unavailable, "down")
	})
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted while waiting for the registry") {
		t.Fatalf("err %v", err)
	}
}
