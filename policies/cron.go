package policies

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ferryio/ferry/jobs"
)

// checkCron reports what is wrong with a cron expression, in the grammar
// Temporal's schedules accept: five fields (minute hour day-of-month month
// day-of-week), six (… year) or seven (second … year); each field a list of
// "*", values and ranges with an optional "/step"; month and weekday names;
// the shorthands @yearly, @monthly, @weekly, @daily, @hourly and
// "@every DURATION". The server parses it again when the schedule is
// created, so this check only has to agree with it on what is invalid.
func checkCron(expr string) error {
	c := strings.TrimSpace(expr)
	if c == "" {
		return fmt.Errorf("is empty")
	}
	if strings.HasPrefix(c, "TZ=") || strings.HasPrefix(c, "CRON_TZ=") {
		return fmt.Errorf("%q: put the time zone in schedule.timezone", expr)
	}
	c, _, _ = strings.Cut(c, "#")
	c = strings.TrimSpace(c)
	if rest, ok := strings.CutPrefix(c, "@every"); ok {
		iv, phase, _ := strings.Cut(strings.TrimSpace(rest), "/")
		d, err := jobs.ParseDuration(iv)
		if err != nil || d.Seconds() < 1 {
			return fmt.Errorf("%q: @every needs an interval of at least 1s", expr)
		}
		if phase != "" {
			if p, err := jobs.ParseDuration(phase); err != nil || p >= d {
				return fmt.Errorf("%q: bad phase %q", expr, phase)
			}
		}
		return nil
	}
	switch c {
	case "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly":
		return nil
	}
	if strings.HasPrefix(c, "@") {
		return fmt.Errorf("%q: unknown shorthand (want @yearly, @monthly, @weekly, @daily, @hourly or @every DURATION)", expr)
	}
	f := strings.Fields(c)
	type field struct {
		name     string
		min, max int
		names    []string
		minName  int
	}
	second := field{"second", 0, 59, nil, 0}
	minute := field{"minute", 0, 59, nil, 0}
	hour := field{"hour", 0, 23, nil, 0}
	dom := field{"day of month", 1, 31, nil, 0}
	month := field{"month", 1, 12, monthNames, 3}
	dow := field{"day of week", 0, 7, dayNames, 2}
	year := field{"year", 2000, 2100, nil, 0}
	var fields []field
	switch len(f) {
	case 5:
		fields = []field{minute, hour, dom, month, dow}
	case 6:
		fields = []field{minute, hour, dom, month, dow, year}
	case 7:
		fields = []field{second, minute, hour, dom, month, dow, year}
	default:
		return fmt.Errorf("%q has %d fields (want 5: minute hour day-of-month month day-of-week, or 6 with a year, or 7 with seconds first)", expr, len(f))
	}
	var problems []string
	for i, fd := range fields {
		if err := checkCronField(f[i], fd.min, fd.max, fd.names, fd.minName); err != nil {
			problems = append(problems, fmt.Sprintf("%s %q: %v", fd.name, f[i], err))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%q: %s", expr, strings.Join(problems, "; "))
	}
	return nil
}

var (
	monthNames = []string{"january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"}
	dayNames   = []string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}
)

// checkCronField checks one field: a comma-separated list of parts, each
// "*", "V", "V-W", optionally followed by "/STEP".
func checkCronField(s string, min, max int, names []string, minName int) error {
	for _, part := range strings.Split(s, ",") {
		base, step, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 {
				return fmt.Errorf("bad step %q", step)
			}
		}
		if base == "*" {
			continue
		}
		lo, hi, isRange := strings.Cut(base, "-")
		a, err := cronValue(lo, min, max, names, minName)
		if err != nil {
			return err
		}
		if isRange {
			b, err := cronValue(hi, min, max, names, minName)
			if err != nil {
				return err
			}
			if b < a {
				return fmt.Errorf("range %q ends before it starts", base)
			}
		}
	}
	return nil
}

func cronValue(s string, min, max int, names []string, minName int) (int, error) {
	if names != nil && len(s) >= minName {
		for i, n := range names {
			if strings.HasPrefix(n, strings.ToLower(s)) {
				return i + min, nil
			}
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if n < min || n > max {
		return 0, fmt.Errorf("%d is not in [%d-%d]", n, min, max)
	}
	return n, nil
}
