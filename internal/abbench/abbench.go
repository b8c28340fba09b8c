// Package abbench compares two ways of doing the same work (A: Ferry, B: a
// plain baseline such as cp -r or writing plain files) so that the result
// cannot flatter either side:
//
//   - both are warmed up before anything is measured (caches, connections,
//     workers, the page cache of the source);
//   - measurements come in pairs, A then B, B then A, alternating, so that a
//     machine that gets busier or quieter during the run (other processes,
//     writeback) weighs on both sides alike;
//   - the result is the median of the per-pair ratios A/B with their minimum
//     and maximum, never a best-of or a single run;
//   - the machine's load average is taken before and after, and printed
//     with the figures, since a shared machine makes every figure noisy.
//
// A side is a function that does one run and returns how long the measured
// part took, so that setup (fresh directories, removing the previous run's
// output) stays out of the timing. Both Ferry's `ferry bench` commands and
// the cache node's Go benchmarks use it.
package abbench

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Side is one run of one side: it returns the time of the measured part.
type Side func(ctx context.Context) (time.Duration, error)

// Options configure Run. Zero values are the defaults.
type Options struct {
	// Pairs is the number of measured A/B pairs. Default 5.
	Pairs int
	// Warmups is the number of unmeasured runs of each side before the
	// first pair. Default 1; negative means none.
	Warmups int
	// Progress, when set, is called after each measured pair.
	Progress func(pair int, a, b time.Duration)
}

// Validate fills the defaults and reports a bad value.
func (o *Options) Validate() error {
	if o.Pairs == 0 {
		o.Pairs = 5
	}
	if o.Pairs < 0 {
		return fmt.Errorf("abbench: %d pairs", o.Pairs)
	}
	if o.Warmups == 0 {
		o.Warmups = 1
	}
	if o.Warmups < 0 {
		o.Warmups = 0
	}
	return nil
}

// Result is what Run measured.
type Result struct {
	// A and B are the measured times, pair by pair.
	A, B []time.Duration
	// Ratios are A/B per pair (a time ratio: below 1, A is faster).
	Ratios []float64
	// LoadBefore and LoadAfter are the 1, 5 and 15 minute load averages
	// (zero where /proc/loadavg cannot be read).
	LoadBefore, LoadAfter [3]float64
}

// Run warms up both sides and measures opts.Pairs alternated pairs.
func Run(ctx context.Context, opts Options, a, b Side) (Result, error) {
	if err := opts.Validate(); err != nil {
		return Result{}, err
	}
	var res Result
	res.LoadBefore = LoadAverage()
	for i := 0; i < opts.Warmups; i++ {
		if _, err := a(ctx); err != nil {
			return res, fmt.Errorf("warm-up of A: %w", err)
		}
		if _, err := b(ctx); err != nil {
			return res, fmt.Errorf("warm-up of B: %w", err)
		}
	}
	for i := 0; i < opts.Pairs; i++ {
		da, db, err := Pair(ctx, i, a, b)
		if err != nil {
			return res, err
		}
		res.Add(da, db)
		if opts.Progress != nil {
			opts.Progress(i, da, db)
		}
	}
	res.LoadAfter = LoadAverage()
	return res, nil
}

// Pair runs one measured pair: A then B for even i, B then A for odd i.
func Pair(ctx context.Context, i int, a, b Side) (da, db time.Duration, err error) {
	if i%2 == 0 {
		if da, err = a(ctx); err == nil {
			db, err = b(ctx)
		}
	} else {
		if db, err = b(ctx); err == nil {
			da, err = a(ctx)
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("pair %d: %w", i+1, err)
	}
	if da <= 0 || db <= 0 {
		return 0, 0, fmt.Errorf("pair %d: a side reported no time (%v, %v)", i+1, da, db)
	}
	return da, db, nil
}

// Add records one measured pair (for callers that drive the pairs
// themselves, such as a Go benchmark's b.N loop).
func (r *Result) Add(a, b time.Duration) {
	r.A = append(r.A, a)
	r.B = append(r.B, b)
	r.Ratios = append(r.Ratios, a.Seconds()/b.Seconds())
}

// Ratio is the median, minimum and maximum of the per-pair ratios A/B.
func (r Result) Ratio() (median, lo, hi float64) {
	return stats(r.Ratios)
}

// MedianA and MedianB are the median times of each side.
func (r Result) MedianA() time.Duration { return medianDuration(r.A) }

// MedianB is the median time of side B.
func (r Result) MedianB() time.Duration { return medianDuration(r.B) }

// Summary is one line: the median time ratio A/B with its range, as a
// throughput percentage of B as well, the pair count and the load average.
// nameA and nameB label the sides.
func (r Result) Summary(nameA, nameB string) string {
	if len(r.Ratios) == 0 {
		return "no pairs measured"
	}
	med, lo, hi := r.Ratio()
	return fmt.Sprintf("%s/%s time: median %.2f× (min %.2f, max %.2f) over %d alternated pairs = %s at %.0f%% of %s's speed (%.0f–%.0f%%); medians %s %v, %s %v; %s",
		nameA, nameB, med, lo, hi, len(r.Ratios), nameA, 100/med, nameB, 100/hi, 100/lo,
		nameA, r.MedianA().Round(time.Millisecond), nameB, r.MedianB().Round(time.Millisecond), r.LoadString())
}

// LoadString describes the load average before and after the run.
func (r Result) LoadString() string {
	return fmt.Sprintf("load average %s before, %s after (%d CPUs)", formatLoad(r.LoadBefore), formatLoad(r.LoadAfter), runtime.NumCPU())
}

// Reporter is what a Go benchmark (*testing.B) offers to report metrics.
type Reporter interface {
	ReportMetric(n float64, unit string)
}

// Report reports the ratio as benchmark metrics: the median A/B time ratio
// and its minimum and maximum ("A/B-x", "A/B-min-x", "A/B-max-x"), the
// median A throughput as a percentage of B's ("A/B-%"), and the 1-minute
// load average at the end ("loadavg").
func (r Result) Report(b Reporter) {
	if len(r.Ratios) == 0 {
		return
	}
	med, lo, hi := r.Ratio()
	b.ReportMetric(med, "A/B-x")
	b.ReportMetric(lo, "A/B-min-x")
	b.ReportMetric(hi, "A/B-max-x")
	b.ReportMetric(100/med, "A/B-%")
	load := r.LoadAfter
	if load == ([3]float64{}) {
		load = LoadAverage()
	}
	b.ReportMetric(load[0], "loadavg")
}

// LoadAverage reads the 1, 5 and 15 minute load averages from
// /proc/loadavg (zeros where it cannot).
func LoadAverage() [3]float64 {
	var out [3]float64
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	fields := strings.Fields(string(raw))
	for i := 0; i < 3 && i < len(fields); i++ {
		out[i], _ = strconv.ParseFloat(fields[i], 64)
	}
	return out
}

func formatLoad(l [3]float64) string {
	if l == ([3]float64{}) {
		return "unknown"
	}
	return fmt.Sprintf("%.2f %.2f %.2f", l[0], l[1], l[2])
}

func stats(v []float64) (median, lo, hi float64) {
	if len(v) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	median = s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return median, s[0], s[n-1]
}

func medianDuration(d []time.Duration) time.Duration {
	f := make([]float64, len(d))
	for i, x := range d {
		f[i] = float64(x)
	}
	m, _, _ := stats(f)
	return time.Duration(m)
}
