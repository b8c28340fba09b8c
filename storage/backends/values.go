package backends

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Secret is a configuration value that must never be shown: every way of
// printing, logging or marshalling it yields "[REDACTED]" (or nothing when
// it is empty). Reveal returns the value for the one place that needs it.
// Decoding a Secret from YAML or JSON works as for a string.
type Secret string

const redacted = "[REDACTED]"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format prints the redacted form for every verb (%v, %s, %q, %x …).
func (s Secret) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, s.String()) }

// MarshalJSON writes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalYAML writes the redacted form.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// LogValue logs the redacted form with log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// ByteSize is a size in bytes, written as a number or with a unit: "512KiB",
// "8MiB", "5GiB", "1TiB" (powers of 1024) or "8MB", "5GB" (powers of 1000).
type ByteSize int64

var sizeUnits = []struct {
	suffix string
	factor int64
}{
	{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"kB", 1e3}, {"B", 1},
}

// ParseByteSize reads a ByteSize.
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(s, u.suffix) {
			s, factor = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, &valueError{"not a size (use bytes or a unit such as 8MiB)"}
	}
	return ByteSize(n * factor), nil
}

// valueError is a decoding error of one of these types: it says where and
// what was expected, never the value.
type valueError struct{ msg string }

func (e *valueError) Error() string { return e.msg }

// UnmarshalYAML reads "8MiB" or 8388608, naming the line on error.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if err := b.UnmarshalText([]byte(n.Value)); err != nil {
		return &valueError{fmt.Sprintf("line %d: %v", n.Line, err)}
	}
	return nil
}

// UnmarshalText reads "8MiB" or "8388608".
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalJSON reads a number or a string.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var n int64
	if err := json.Unmarshal(data, &n); err == nil {
		if n < 0 {
			return &valueError{"a size cannot be negative"}
		}
		*b = ByteSize(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return &valueError{"a size is a number or a string such as \"8MiB\""}
	}
	return b.UnmarshalText([]byte(s))
}

// Duration is a time.Duration written as "100ms", "5s", "1h".
type Duration time.Duration

// UnmarshalYAML reads a Go duration, naming the line on error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if err := d.UnmarshalText([]byte(n.Value)); err != nil {
		return &valueError{fmt.Sprintf("line %d: %v", n.Line, err)}
	}
	return nil
}

// UnmarshalText reads a Go duration.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(strings.TrimSpace(string(text)))
	if err != nil {
		return &valueError{"not a duration (use e.g. 100ms, 5s, 1h)"}
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes a Go duration.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }
