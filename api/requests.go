package api

import (
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/api/report"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
)

// jobRequest is the JSON body of the coordinator-style and Ferry routes.
// Query parameters of the same names fill the fields the body leaves empty,
// so a GET without a body works as well as one with; parseRequest (strict.go)
// refuses whatever does not fit the route.
type jobRequest struct {
	// Type is the job type on Ferry's routes (the others take it from the
	// URL path).
	Type string `json:"type"`
	// Path is the load path; Src and Dst the copy/move source and
	// destination.
	Path string `json:"path"`
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	// IndexFile names a file listing the paths; without a path it also
	// names the job.
	IndexFile string `json:"indexFile"`
	// Options are raw option values: strings ("true", "300") or JSON values.
	Options map[string]any `json:"options"`
	// Format and Verbose shape a progress report.
	Format  string   `json:"format"`
	Verbose flexBool `json:"verbose"`
}

// flexBool accepts true, "true", 1 and the like, as Alluxio clients send
// booleans as strings.
type flexBool struct {
	set, value bool
}

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case bool:
		b.set, b.value = true, x
		return nil
	case nil:
		return nil
	}
	var kind string
	switch x := v.(type) {
	case string:
		if p, err := parseBool(x); err == nil {
			b.set, b.value = true, p
			return nil
		}
		kind = "string " + strconv.Quote(x)
	case float64:
		if p, err := parseBool(fmt.Sprint(x)); err == nil {
			b.set, b.value = true, p
			return nil
		}
		kind = "number " + string(data)
	case []any:
		kind = "array"
	default:
		kind = "object"
	}
	// A type error, so that the decoder names the member ("verbose") and
	// the answer's field is it, not the whole body.
	return &json.UnmarshalTypeError{Value: kind, Type: reflect.TypeFor[bool]()}
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes":
		return true, nil
	case "false", "0", "no", "":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %q", s)
}

// query parses the request's query string. url.ParseQuery, behind echo's
// QueryParams, silently drops every pair that contains a ';', which would
// turn path=file:///a;b into a missing path; here only '&' separates pairs.
// Values are decoded normally ('+' is a space, %XX a byte), as the path= of
// Alluxio clients is encoded (spec/cache-http.md).
func query(c echo.Context) (url.Values, error) {
	q := url.Values{}
	for _, part := range strings.Split(c.Request().URL.RawQuery, "&") {
		if part == "" {
			continue
		}
		rk, rv, _ := strings.Cut(part, "=")
		k, err := url.QueryUnescape(rk)
		if err != nil {
			return nil, badInput(rk, "bad query parameter name: %v", err)
		}
		v, err := url.QueryUnescape(rv)
		if err != nil {
			return nil, badInput(k, "bad query parameter value: %v", err)
		}
		q[k] = append(q[k], v)
	}
	return q, nil
}

// parseType reads a job type in any case ("load", "LOAD").
func parseType(field, s string) (workflows.JobType, error) {
	t := workflows.JobType(strings.ToLower(strings.TrimSpace(s)))
	if s == "" {
		return "", badInput(field, "is required (load, copy or move)")
	}
	if !t.Valid() {
		return "", badInput(field, "unknown job type %q (want load, copy or move)", s)
	}
	return t, nil
}

// key is the job the request addresses.
func (r *jobRequest) key(t workflows.JobType) jobs.Key {
	src := r.Src
	if t == workflows.JobLoad {
		src = r.Path
	}
	if src == "" {
		// A job over an index file is named by it, as in Alluxio.
		src = r.IndexFile
	}
	return jobs.Key{Type: t, Path: src, Dst: r.Dst}
}

// options parses the raw options (and a top-level indexFile) for type t.
func (r *jobRequest) options(t workflows.JobType) (workflows.Options, error) {
	raw := make(map[string]any, len(r.Options)+1)
	for k, v := range r.Options {
		raw[k] = v
	}
	if r.IndexFile != "" {
		if v, ok := raw["indexFile"]; ok && v != r.IndexFile {
			return workflows.Options{}, badInput("indexFile", "given twice with different values")
		}
		raw["indexFile"] = r.IndexFile
	}
	return jobs.ParseOptions(t, raw)
}

// reportFormat is the requested progress format.
func (r *jobRequest) reportFormat() (report.Format, error) {
	f, err := report.ParseFormat(r.Format)
	if err != nil {
		return "", badInput("format", "%v", err)
	}
	return f, nil
}

// queryOptions collects the load options of a worker-style /v1/load query:
// every parameter except the ones that steer the request itself. Repeated
// include/exclude parameters become lists.
func queryOptions(q url.Values) map[string]any {
	raw := map[string]any{}
	for k, vs := range q {
		switch k {
		case "path", "opType", "verbose", "progressFormat":
			continue
		}
		if len(vs) > 1 && (k == "include" || k == "exclude") {
			list := make([]any, len(vs))
			for i, v := range vs {
				list[i] = v
			}
			raw[k] = list
			continue
		}
		raw[k] = vs[0]
	}
	return raw
}

// queryBool reads a boolean query parameter; absent is false.
func queryBool(q url.Values, name string) (bool, error) {
	if !q.Has(name) {
		return false, nil
	}
	b, err := parseBool(q.Get(name))
	if err != nil {
		return false, badInput(name, "%v", err)
	}
	return b, nil
}
