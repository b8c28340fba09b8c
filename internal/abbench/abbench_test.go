package abbench

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRunAlternatesAndWarmsUp(t *testing.T) {
	var order []string
	side := func(name string, d time.Duration) Side {
		return func(context.Context) (time.Duration, error) {
			order = append(order, name)
			return d, nil
		}
	}
	res, err := Run(context.Background(), Options{Pairs: 4}, side("A", 2*time.Second), side("B", time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(order, ""), "AB"+"AB"+"BA"+"AB"+"BA"; got != want {
		t.Fatalf("order %s, want %s (warm-up, then alternated pairs)", got, want)
	}
	med, lo, hi := res.Ratio()
	if med != 2 || lo != 2 || hi != 2 || len(res.Ratios) != 4 {
		t.Fatalf("ratio %v %v %v over %d pairs", med, lo, hi, len(res.Ratios))
	}
	if s := res.Summary("ferry", "cp"); !strings.Contains(s, "median 2.00×") || !strings.Contains(s, "50% of cp") || !strings.Contains(s, "load average") {
		t.Fatalf("summary %q", s)
	}
}

func TestRatioMedianOfPairs(t *testing.T) {
	var r Result
	for _, p := range [][2]time.Duration{{3, 1}, {1, 1}, {2, 1}, {10, 1}} {
		r.Add(p[0], p[1])
	}
	med, lo, hi := r.Ratio()
	if med != 2.5 || lo != 1 || hi != 10 {
		t.Fatalf("median %v min %v max %v", med, lo, hi)
	}
}

func TestRunStopsOnError(t *testing.T) {
	boom := errors.New("boom")
	ok := func(context.Context) (time.Duration, error) { return time.Millisecond, nil }
	bad := func(context.Context) (time.Duration, error) { return 0, boom }
	if _, err := Run(context.Background(), Options{}, ok, bad); !errors.Is(err, boom) {
		t.Fatalf("err %v", err)
	}
	zero := func(context.Context) (time.Duration, error) { return 0, nil }
	if _, err := Run(context.Background(), Options{Warmups: -1}, ok, zero); err == nil {
		t.Fatal("a side that reports no time must fail the run")
	}
}

type metrics map[string]float64

func (m metrics) ReportMetric(n float64, unit string) { m[unit] = n }

func TestReport(t *testing.T) {
	var r Result
	r.Add(4, 2)
	m := metrics{}
	r.Report(m)
	if m["A/B-x"] != 2 || m["A/B-%"] != 50 {
		t.Fatalf("%v", m)
	}
}
