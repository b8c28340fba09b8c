package jobs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/workflows"
)

func TestParseSize(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		bad  bool
	}{
		{"100", 100, false},
		{"10MB", 10 << 20, false},
		{"10mb", 10 << 20, false},
		{"1g", 1 << 30, false},
		{"2TiB", 2 << 40, false},
		{"1.5KB", 1536, false},
		{"1.5", 0, true},
		{"0.5", 0, true},
		{"1.1MB", 1153434, false},
		{"7 k", 7 << 10, false},
		{"0", 0, false},
		{"abc", 0, true},
		{"10XB", 0, true},
		{"-5", 0, true},
		{"", 0, true},
		{"5i", 0, true},
	}
	for _, c := range cases {
		got, err := ParseSize(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d, error %v", c.in, got, err, c.want, c.bad)
		}
	}
}

func TestParseDuration(t *testing.T) {
	cases := map[string]time.Duration{"720h": 720 * time.Hour, "30d": 30 * 24 * time.Hour, "90m": 90 * time.Minute, "106751d": 106751 * 24 * time.Hour}
	for in, want := range cases {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"soon", "-1h", "d", "106752d", "99999999999d", "Infd", "NaNd"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions(workflows.JobLoad, map[string]any{
		"partialListing": "true", "batchSize": float64(300), "bandwidth": "10MB", "verify": true,
		"loadMetadataOnly": "False", "skipIfExists": "True", "replicas": "2", "fileFilterRegx": `.*\.parquet`,
		"olderThan": "30d", "include": []any{"**/2025-*/**"}, "exclude": "**/_tmp/**", "minSize": "1KiB",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !o.PartialListing || o.BatchSize != 300 || o.Bandwidth != 10<<20 || !o.Verify || o.MetadataOnly ||
		!o.SkipIfExists || o.Replicas != 2 || o.FileFilterRegx != `.*\.parquet` || o.Filter.OlderThan != 720*time.Hour ||
		len(o.Filter.Include) != 1 || len(o.Filter.Exclude) != 1 || o.Filter.MinSize != 1024 {
		t.Fatalf("parsed %+v", o)
	}
	d, err := ParseOptions(workflows.JobCopy, nil)
	if err != nil || d.BatchSize != workflows.DefaultBatchSize || d.Replicas != 1 {
		t.Fatalf("defaults %+v, %v", d, err)
	}

	bad := []struct {
		typ    workflows.JobType
		raw    map[string]any
		option string
	}{
		{workflows.JobLoad, map[string]any{"bandwidth": "abc"}, "bandwidth"},
		{workflows.JobLoad, map[string]any{"fileFilterRegx": "("}, "fileFilterRegx"},
		{workflows.JobLoad, map[string]any{"noSuchOption": "1"}, "noSuchOption"},
		{workflows.JobLoad, map[string]any{"batchSize": "0"}, "batchSize"},
		{workflows.JobLoad, map[string]any{"batchSize": 1.5}, "batchSize"},
		{workflows.JobLoad, map[string]any{"verify": "maybe"}, "verify"},
		{workflows.JobLoad, map[string]any{"overwrite": "true"}, "overwrite"},
		{workflows.JobCopy, map[string]any{"replicas": "2"}, "replicas"},
		{workflows.JobLoad, map[string]any{"minSize": "2MB", "maxSize": "1MB"}, "minSize"},
		{workflows.JobLoad, map[string]any{"failureRatioThreshold": "1.5"}, "failureRatioThreshold"},
		{workflows.JobLoad, map[string]any{"include": "[a"}, "include"},
	}
	for _, c := range bad {
		_, err := ParseOptions(c.typ, c.raw)
		var oe *OptionError
		if !errors.As(err, &oe) || oe.Option != c.option {
			t.Errorf("ParseOptions(%s, %v) = %v; want an error naming %q", c.typ, c.raw, err, c.option)
		}
	}
}

func TestMatchGlob(t *testing.T) {
	cases := []struct {
		glob, path string
		want       bool
	}{
		{"**/2025-*/**", "a/2025-01/x.parquet", true},
		{"**/2025-*/**", "2025-01/x", true},
		{"**/2025-*/**", "a/2024-01/x", false},
		{"**/_tmp/**", "x/_tmp/y/z", true},
		{"*.csv", "a.csv", true},
		{"*.csv", "d/a.csv", false},
		{"**/*.csv", "d/e/a.csv", true},
		{"**", "anything/at/all", true},
	}
	for _, c := range cases {
		if got := MatchGlob(c.glob, c.path); got != c.want {
			t.Errorf("MatchGlob(%q, %q) = %v", c.glob, c.path, got)
		}
	}
}

func TestKeyValidate(t *testing.T) {
	bad := []struct {
		key   Key
		field string
	}{
		{Key{Type: workflows.JobLoad}, "path"},
		{Key{Type: workflows.JobLoad, Path: "/no/scheme"}, "path"},
		{Key{Type: workflows.JobLoad, Path: "s3://b/*.csv"}, "path"},
		{Key{Type: workflows.JobCopy, Path: "file:///a"}, "dst"},
		{Key{Type: workflows.JobCopy, Path: "file:///a", Dst: "file:///a/"}, "dst"},
		{Key{Type: workflows.JobMove, Path: "file:///a", Dst: "file:///a/b"}, "dst"},
		{Key{Type: "sync", Path: "file:///a"}, "type"},
		{Key{Type: workflows.JobCopy, Path: "file:///a", Dst: "FILE:///a/zz"}, "dst"},
		{Key{Type: workflows.JobCopy, Path: "file:///a", Dst: "file://localhost/a/b"}, "dst"},
		{Key{Type: workflows.JobCopy, Path: "file:///a", Dst: "file:///a//"}, "dst"},
		{Key{Type: workflows.JobMove, Path: "file:///x//a", Dst: "file:///x/a/b"}, "dst"},
	}
	for _, c := range bad {
		err := c.key.Validate()
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("Validate(%+v) = %v; want an error on %q", c.key, err, c.field)
		}
	}
	if err := (Key{Type: workflows.JobCopy, Path: "file:///a", Dst: "file:///ab"}).Validate(); err != nil {
		t.Errorf("a sibling destination was refused: %v", err)
	}
}

// TestOptionKindErrorsNameNoGoType checks that an option given as a JSON
// list or object is refused with the JSON kind, never a Go type name.
func TestOptionKindErrorsNameNoGoType(t *testing.T) {
	for _, v := range []any{[]any{"1MB"}, map[string]any{"a": 1.0}} {
		for _, k := range []string{"bandwidth", "verify", "batchSize"} {
			_, err := ParseOptions(workflows.JobLoad, map[string]any{k: v})
			if err == nil {
				t.Fatalf("%s=%v: accepted", k, v)
			}
			msg := err.Error()
			if strings.Contains(msg, "interface") || strings.Contains(msg, "map[") || strings.Contains(msg, "[]") {
				t.Errorf("%s=%v: error names a Go type: %s", k, v, msg)
			}
			if !strings.Contains(msg, "a list") && !strings.Contains(msg, "an object") {
				t.Errorf("%s=%v: error does not name the JSON kind: %s", k, v, msg)
			}
		}
	}
}

// Every spelling of a file-system location runs as one: the job's names
// (and the cache pages keyed by them) do not depend on how it was typed.
// Object-store keys and an HDFS root stay as given.
func TestRunLocation(t *testing.T) {
	for in, want := range map[string]string{
		"file:///a//b/":          "file:///a/b",
		"FILE://localhost/a/b":   "file:///a/b",
		"file:///":               "file:///",
		"hdfs://nn:8020/a//b/":   "hdfs://nn:8020/a/b",
		"HDFS://nn/a/b":          "hdfs://nn/a/b",
		"hdfs://nn/":             "hdfs://nn/",
		"s3://bucket/a//b/":      "s3://bucket/a//b/",
		"gs://bucket/prefix/":    "gs://bucket/prefix/",
		"file:///caf\xe9//x.txt": "file:///caf\xe9/x.txt",
	} {
		if got := runLocation(in); got != want {
			t.Errorf("runLocation(%q) = %q, want %q", in, got, want)
		}
	}
}

// A load asking for more copies than there are live cache nodes is refused
// at submit, before anything starts, naming the field; as many copies as
// nodes, an unreadable count, or no node yet refuse nothing.
func TestSubmitRefusesMoreReplicasThanNodes(t *testing.T) {
	for _, tc := range []struct {
		replicas, live int
		err            error
		refused        bool
	}{
		{9, 3, nil, true},
		{4, 3, nil, true},
		{3, 3, nil, false},
		{1, 0, nil, false},
		{9, 0, nil, false},
		{9, 3, errors.New("registry down"), false},
	} {
		s := NewService(nil, nil).WithLiveNodes(func(context.Context) (int, error) { return tc.live, tc.err })
		opts := workflows.Options{Replicas: tc.replicas}
		got := s.checkReplicas(context.Background(), opts)
		if tc.refused {
			// Submit refuses it before it reaches Temporal (no client here).
			_, got = s.Submit(context.Background(), Key{Type: workflows.JobLoad, Path: "file:///data"}, opts)
		}
		var in *InputError
		refused := errors.As(got, &in) && in.Field == "replicas"
		if refused != tc.refused || (!tc.refused && got != nil) {
			t.Errorf("replicas %d, %d live (%v): %v, want refused %v", tc.replicas, tc.live, tc.err, got, tc.refused)
		}
		if refused && !strings.Contains(in.Error(), fmt.Sprintf("only %d cache nodes are live", tc.live)) {
			t.Errorf("message %q does not say how many nodes are live", in.Error())
		}
	}
}
