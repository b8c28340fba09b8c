package worker_test

import (
	"context"
	"sync"
	"testing"

	"go.temporal.io/sdk/interceptor"
)

// activityHook is a coordinator interceptor through which a test holds or
// observes activities: around runs each activity, calling next to run it.
type activityHook struct {
	interceptor.WorkerInterceptorBase
	around func(ctx context.Context, in *interceptor.ExecuteActivityInput, next func() (any, error)) (any, error)
}

func (h *activityHook) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &activityHookInbound{h: h}
	i.Next = next
	return i
}

type activityHookInbound struct {
	interceptor.ActivityInboundInterceptorBase
	h *activityHook
}

func (i *activityHookInbound) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (interface{}, error) {
	return i.h.around(ctx, in, func() (any, error) { return i.Next.ExecuteActivity(ctx, in) })
}

// argOf is the activity's input, nil for an activity without one
// (LiveNodes): hooks match on it with a type assertion.
func argOf(in *interceptor.ExecuteActivityInput) any {
	if len(in.Args) == 0 {
		return nil
	}
	return in.Args[0]
}

// closeOnce returns a function that closes ch the first time it is called;
// it is called at the test's end too, so that nothing waits on ch forever.
func closeOnce(t *testing.T, ch chan struct{}) func() {
	var once sync.Once
	f := func() { once.Do(func() { close(ch) }) }
	t.Cleanup(f)
	return f
}
