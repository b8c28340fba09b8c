package jobs

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ferryio/ferry/internal/jsonerr"
	"github.com/ferryio/ferry/workflows"
)

// OptionError is a bad option value or an unknown option; Option names it
// as the user wrote it.
type OptionError struct {
	Option  string
	Message string
}

func (e *OptionError) Error() string { return fmt.Sprintf("option %q: %s", e.Option, e.Message) }

// optionSpec describes one option key: which job types take it and how to
// apply a raw value.
type optionSpec struct {
	types []workflows.JobType
	apply func(o *workflows.Options, v any) error
}

var all = []workflows.JobType{workflows.JobLoad, workflows.JobCopy, workflows.JobMove}
var loadOnly = []workflows.JobType{workflows.JobLoad}
var copyMove = []workflows.JobType{workflows.JobCopy, workflows.JobMove}

// optionSpecs maps every accepted key (REST names, with the aliases the
// Alluxio clients send) to its spec.
func optionSpecs() map[string]optionSpec {
	boolOpt := func(types []workflows.JobType, set func(*workflows.Options, bool)) optionSpec {
		return optionSpec{types, func(o *workflows.Options, v any) error {
			b, err := asBool(v)
			if err == nil {
				set(o, b)
			}
			return err
		}}
	}
	sizeOpt := func(types []workflows.JobType, set func(*workflows.Options, int64)) optionSpec {
		return optionSpec{types, func(o *workflows.Options, v any) error {
			n, err := asSize(v)
			if err == nil {
				set(o, n)
			}
			return err
		}}
	}
	durOpt := func(set func(*workflows.Options, time.Duration)) optionSpec {
		return optionSpec{all, func(o *workflows.Options, v any) error {
			d, err := asDuration(v)
			if err == nil {
				set(o, d)
			}
			return err
		}}
	}
	globsOpt := func(set func(*workflows.Options, []string)) optionSpec {
		return optionSpec{all, func(o *workflows.Options, v any) error {
			g, err := asStrings(v)
			if err == nil {
				for _, p := range g {
					if err := ValidateGlob(p); err != nil {
						return err
					}
				}
				set(o, g)
			}
			return err
		}}
	}
	specs := map[string]optionSpec{
		"indexFile": {all, func(o *workflows.Options, v any) error {
			s, err := asString(v)
			o.IndexFile = s
			return err
		}},
		"partialListing": boolOpt(all, func(o *workflows.Options, b bool) { o.PartialListing = b }),
		"batchSize": {all, func(o *workflows.Options, v any) error {
			n, err := asInt(v)
			if err != nil {
				return err
			}
			if n < 1 || n > workflows.MaxBatchSize {
				return fmt.Errorf("must be between 1 and %d", workflows.MaxBatchSize)
			}
			o.BatchSize = int(n)
			return nil
		}},
		"bandwidth": {all, func(o *workflows.Options, v any) error {
			s, err := asString(v)
			if err != nil {
				return err
			}
			if strings.EqualFold(strings.TrimSpace(s), "unlimited") || strings.TrimSpace(s) == "" {
				o.Bandwidth = 0
				return nil
			}
			n, err := ParseSize(s)
			if err != nil {
				return err
			}
			if n <= 0 {
				return fmt.Errorf("must be positive")
			}
			o.Bandwidth = n
			return nil
		}},
		"verify":           boolOpt(all, func(o *workflows.Options, b bool) { o.Verify = b }),
		"loadMetadataOnly": boolOpt(loadOnly, func(o *workflows.Options, b bool) { o.MetadataOnly = b }),
		"skipIfExists":     boolOpt(loadOnly, func(o *workflows.Options, b bool) { o.SkipIfExists = b }),
		"replicas": {loadOnly, func(o *workflows.Options, v any) error {
			n, err := asInt(v)
			if err != nil {
				return err
			}
			if n < 1 || n > 100 {
				return fmt.Errorf("must be between 1 and 100")
			}
			o.Replicas = int(n)
			return nil
		}},
		"fileFilterRegx": {all, func(o *workflows.Options, v any) error {
			s, err := asString(v)
			if err != nil {
				return err
			}
			if _, err := regexp.Compile(s); err != nil {
				return fmt.Errorf("invalid regular expression: %w", err)
			}
			o.FileFilterRegx = s
			return nil
		}},
		"check_content": boolOpt(copyMove, func(o *workflows.Options, b bool) { o.CheckContent = b }),
		"overwrite":     boolOpt(copyMove, func(o *workflows.Options, b bool) { o.Overwrite = b }),
		"dryRun":        boolOpt(all, func(o *workflows.Options, b bool) { o.DryRun = b }),
		"failureCountThreshold": {all, func(o *workflows.Options, v any) error {
			n, err := asInt(v)
			if err != nil {
				return err
			}
			if n < 0 {
				return fmt.Errorf("must not be negative")
			}
			o.FailureCountThreshold = n
			return nil
		}},
		"failureRatioThreshold": {all, func(o *workflows.Options, v any) error {
			f, err := asFloat(v)
			if err != nil {
				return err
			}
			if f < 0 || f > 1 {
				return fmt.Errorf("must be between 0 and 1")
			}
			o.FailureRatioThreshold = f
			return nil
		}},
		"olderThan": durOpt(func(o *workflows.Options, d time.Duration) { o.Filter.OlderThan = d }),
		"newerThan": durOpt(func(o *workflows.Options, d time.Duration) { o.Filter.NewerThan = d }),
		"minSize":   sizeOpt(all, func(o *workflows.Options, n int64) { o.Filter.MinSize = n }),
		"maxSize":   sizeOpt(all, func(o *workflows.Options, n int64) { o.Filter.MaxSize = n }),
		"include":   globsOpt(func(o *workflows.Options, g []string) { o.Filter.Include = g }),
		"exclude":   globsOpt(func(o *workflows.Options, g []string) { o.Filter.Exclude = g }),
	}
	// Aliases spelled the way Alluxio's clients and Ferry's camelCase send them.
	specs["metadataOnly"] = specs["loadMetadataOnly"]
	specs["checkContent"] = specs["check_content"]
	return specs
}

// Default early-failure thresholds of copy and move jobs.
const (
	DefaultCopyFailureCount = 100
	DefaultCopyFailureRatio = 0.10
)

// OptionKeys lists the accepted option keys for job type t, sorted.
func OptionKeys(t workflows.JobType) []string {
	var keys []string
	for k, s := range optionSpecs() {
		for _, typ := range s.types {
			if typ == t {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

// ParseOptions turns raw option values — strings ("true", "300", "10MB") or
// JSON values (true, 300) — into Options for job type t, with defaults
// filled and cross-field rules checked. The first error names its option;
// keys are checked in sorted order so the same input gives the same error.
func ParseOptions(t workflows.JobType, raw map[string]any) (workflows.Options, error) {
	var o workflows.Options
	specs := optionSpecs()
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		spec, ok := specs[k]
		if !ok {
			return o, &OptionError{k, fmt.Sprintf("unknown option for %s jobs (known: %s)", t, strings.Join(OptionKeys(t), ", "))}
		}
		applies := false
		for _, typ := range spec.types {
			applies = applies || typ == t
		}
		if !applies {
			return o, &OptionError{k, fmt.Sprintf("does not apply to %s jobs", t)}
		}
		if err := spec.apply(&o, raw[k]); err != nil {
			return o, &OptionError{k, err.Error()}
		}
	}
	if t != workflows.JobLoad {
		// Copy and move fail early by default (spec/jobs.md §1); "0" turns
		// a threshold off.
		if _, set := raw["failureCountThreshold"]; !set {
			o.FailureCountThreshold = DefaultCopyFailureCount
		}
		if _, set := raw["failureRatioThreshold"]; !set {
			o.FailureRatioThreshold = DefaultCopyFailureRatio
		}
	}
	if o.Filter.MinSize > 0 && o.Filter.MaxSize > 0 && o.Filter.MinSize > o.Filter.MaxSize {
		return o, &OptionError{"minSize", "is larger than maxSize"}
	}
	return o.WithDefaults(t), nil
}

func asString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", nil
	default:
		return "", fmt.Errorf("want a string, a number or true/false, got %s", jsonerr.Kind(reflect.TypeOf(v)))
	}
}

func asBool(v any) (bool, error) {
	if b, ok := v.(bool); ok {
		return b, nil
	}
	s, err := asString(v)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no", "":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q", s)
}

func asInt(v any) (int64, error) {
	if f, ok := v.(float64); ok {
		if f != math.Trunc(f) {
			return 0, fmt.Errorf("want a whole number, got %v", f)
		}
		return int64(f), nil
	}
	s, err := asString(v)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want a whole number, got %q", s)
	}
	return n, nil
}

func asFloat(v any) (float64, error) {
	if f, ok := v.(float64); ok {
		return f, nil
	}
	s, err := asString(v)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, fmt.Errorf("want a number, got %q", s)
	}
	return f, nil
}

func asSize(v any) (int64, error) {
	s, err := asString(v)
	if err != nil {
		return 0, err
	}
	return ParseSize(s)
}

func asDuration(v any) (time.Duration, error) {
	s, err := asString(v)
	if err != nil {
		return 0, err
	}
	d, err := ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return d, nil
}

func asStrings(v any) ([]string, error) {
	switch x := v.(type) {
	case []string:
		return x, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, err := asString(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	s, err := asString(v)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

var sizeRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)$`)

// ParseSize parses a byte size: "100", "10MB", "1g", "2TiB", "1.5KB". Units
// are binary (1 KB = 1024 bytes), as in Alluxio; case does not matter.
func ParseSize(s string) (int64, error) {
	m := sizeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("invalid size %q (want a number with an optional unit: 100, 10MB, 1g, 2TiB)", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	unit := strings.ToLower(m[2])
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "b"), "i")
	shift := map[string]uint{"": 0, "k": 10, "m": 20, "g": 30, "t": 40, "p": 50}
	sh, ok := shift[unit]
	if !ok || (m[2] != "" && strings.EqualFold(m[2], "i")) {
		return 0, fmt.Errorf("invalid size %q: unknown unit %q", s, m[2])
	}
	v := n * float64(uint64(1)<<sh)
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	if sh == 0 && v != math.Trunc(v) {
		// A fraction of a unit rounds ("1.1MB"); a fraction of a byte is
		// a mistake, not 1 byte.
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes", s)
	}
	return int64(math.Round(v)), nil
}

// ParseDuration accepts Go durations ("720h", "90m") and days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if strings.HasSuffix(s, "d") {
		n, err := strconv.ParseFloat(strings.TrimSuffix(s, "d"), 64)
		if err == nil && n >= 0 {
			// Past about 106,751 days (and for "Infd") the duration does
			// not fit: converted as is it would turn negative.
			if v := n * float64(24*time.Hour); v < math.MaxInt64 {
				return time.Duration(v), nil
			}
			return 0, fmt.Errorf("duration %q is too large (at most 106751d)", s)
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q (want e.g. 90m, 720h or 30d)", s)
	}
	return d, nil
}

// ValidateGlob checks a path glob ("**/2025-*/**").
func ValidateGlob(g string) error {
	if g == "" {
		return fmt.Errorf("empty glob")
	}
	for _, seg := range strings.Split(g, "/") {
		if seg == "**" {
			continue
		}
		if _, err := pathMatch(seg, ""); err != nil {
			return fmt.Errorf("invalid glob %q: %w", g, err)
		}
	}
	return nil
}
