package admission

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/ferrytest"
)

func TestGateRefusesBeyondItsQueue(t *testing.T) {
	ctx := context.Background()
	g := New("test slot", 1, 1, time.Hour)
	release, err := g.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// One waiter fills the queue; wait until it is queued.
	waited := make(chan error, 1)
	go func() {
		r, err := g.Acquire(ctx)
		if err == nil {
			r()
		}
		waited <- err
	}()
	ferrytest.Eventually(t, 30*time.Second, func() error {
		if g.waiting.Load() != 1 {
			return errors.New("the waiter never queued")
		}
		return nil
	})
	_, err = g.Acquire(ctx)
	var ref *Refused
	if !errors.As(err, &ref) || ref.Status != http.StatusTooManyRequests {
		t.Fatalf("over the queue: %v", err)
	}
	release()
	if err := <-waited; err != nil {
		t.Fatalf("the waiter: %v", err)
	}

	short := New("test slot", 1, 4, time.Millisecond)
	r, _ := short.Acquire(ctx)
	defer r()
	if _, err := short.Acquire(ctx); !errors.As(err, &ref) || ref.Status != http.StatusServiceUnavailable {
		t.Fatalf("past the wait: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := New("x", 1, 4, time.Hour).Acquire(cctx); err != nil {
		t.Fatalf("a free slot is taken even with an ended context: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", 200 * time.Millisecond: "1", time.Second: "1", 1500 * time.Millisecond: "2", 3 * time.Second: "3"} {
		if got := RetryAfter(d); got != want {
			t.Errorf("RetryAfter(%v) = %s, want %s", d, got, want)
		}
	}
}
