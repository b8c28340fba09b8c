package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/internal/jsonerr"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/workflows"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// Strict request reading. Every route refuses, with a 400 naming the field
// and before anything starts, input it would otherwise drop or misread: an
// unknown body member or query parameter, a field that contradicts the
// route (a "type" other than the route's, src or dst on a load, path on a
// copy, options on a progress request), a query parameter given twice with
// different values, and a field given in the body and in the query with
// different values.

// operation is what a route does with a job; it decides which fields the
// request may carry.
type operation string

const (
	opSubmit   operation = "submit"
	opProgress operation = "progress"
	opStop     operation = "stop"
	// opBandwidth changes the bandwidth of a running job: its options hold
	// only the new bandwidth.
	opBandwidth operation = "bandwidth"
)

// The fields of a job request, as named in bodies and queries.
const (
	fieldType      = "type"
	fieldPath      = "path"
	fieldSrc       = "src"
	fieldDst       = "dst"
	fieldIndexFile = "indexFile"
	fieldOptions   = "options"
	fieldFormat    = "format"
	fieldVerbose   = "verbose"
)

// jobFields are every field a job request may have, in the order their
// problems are reported.
var jobFields = []string{fieldType, fieldPath, fieldSrc, fieldDst, fieldIndexFile, fieldOptions, fieldFormat, fieldVerbose}

// queryAliases map the other query spellings of a field to the field;
// Alluxio's progress route calls format progressFormat.
var queryAliases = map[string]string{"progressFormat": fieldFormat}

// misfit says why op on type t does not take field f, or "" when it does.
func misfit(op operation, t workflows.JobType, f string) string {
	switch f {
	case fieldType, fieldIndexFile:
		return ""
	case fieldPath:
		if t != workflows.JobLoad {
			return fmt.Sprintf("%s jobs take src and dst, not path", t)
		}
	case fieldSrc:
		if t == workflows.JobLoad {
			return "load jobs take path, not src"
		}
	case fieldDst:
		if t == workflows.JobLoad {
			return "load jobs take no destination"
		}
	case fieldOptions:
		if op != opSubmit && op != opBandwidth {
			return fmt.Sprintf("only a submit takes options, not a %s request", op)
		}
	case fieldFormat, fieldVerbose:
		if op != opProgress {
			return fmt.Sprintf("only a progress request takes %s, not a %s request", f, op)
		}
	}
	return ""
}

// readBody reads the whole request body (bounded by the body limit).
func readBody(c echo.Context) ([]byte, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", tooBig.Limit))
		}
		return nil, badInput("body", "cannot read the request body: %v", err)
	}
	return body, nil
}

// bodyMembers decodes an optional JSON object body into its members; an
// empty body has none.
func bodyMembers(body []byte) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var members map[string]json.RawMessage
	if err := dec.Decode(&members); err != nil {
		_, msg := jsonerr.Describe(err)
		return nil, badInput("body", "malformed JSON body: %s", msg)
	}
	if dec.More() {
		return nil, badInput("body", "malformed JSON body: more than one JSON value")
	}
	if members == nil {
		return nil, badInput("body", "malformed JSON body: want a JSON object, got null")
	}
	return members, nil
}

// given reports whether a body member carries a value: null, "" and {}
// say nothing, so they contradict nothing.
func given(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false // absent
	}
	switch strings.Join(strings.Fields(string(raw)), "") {
	case "null", `""`, "{}":
		return false
	}
	return true
}

// firstUnknown returns the first (sorted) name that is not in known.
func firstUnknown[V any](m map[string]V, known func(string) bool) string {
	names := make([]string, 0, len(m))
	for k := range m {
		if !known(k) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// single returns a query parameter's value, refusing one given twice with
// different values; absent is "".
func single(q url.Values, name string) (string, error) {
	vs := q[name]
	for _, v := range vs[min(1, len(vs)):] {
		if v != vs[0] {
			return "", badInput(name, "given twice with different values (%q and %q)", vs[0], v)
		}
	}
	if len(vs) == 0 {
		return "", nil
	}
	return vs[0], nil
}

// parseRequest reads a coordinator-style or Ferry job request: the JSON
// body and the query, strictly. routeType is the job type the URL names, or
// "" on Ferry's routes, where the request must name it. It returns the job
// type and the request.
func parseRequest(c echo.Context, op operation, routeType workflows.JobType) (workflows.JobType, *jobRequest, error) {
	body, err := readBody(c)
	if err != nil {
		return "", nil, err
	}
	members, err := bodyMembers(body)
	if err != nil {
		return "", nil, err
	}
	isJobField := func(k string) bool { return slices.Contains(jobFields, k) }
	if k := firstUnknown(members, isJobField); k != "" {
		return "", nil, badInput(k, "unknown field in the request body (known: %s)", strings.Join(jobFields, ", "))
	}
	req := &jobRequest{}
	if members != nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber() // keep 300 as "300" for ParseOptions, never 3e2
		if err := dec.Decode(req); err != nil {
			field, msg := jsonerr.Describe(err)
			if field == "" {
				field = "body"
			}
			return "", nil, badInput(field, "malformed JSON body: %s", msg)
		}
		// Names are bytes: JSON cannot carry a path that is not UTF-8, so
		// such a path comes marked as package bytesjson writes it
		// ("\u0000b64:" + base64 of its bytes). A real path never starts
		// with NUL: the marked form is unambiguous.
		for _, p := range []*string{&req.Path, &req.Src, &req.Dst, &req.IndexFile} {
			*p = bytesjson.Decode(*p)
		}
	}

	q, err := query(c)
	if err != nil {
		return "", nil, err
	}
	queryFields := map[string]string{} // field -> the query name it came as
	for name := range q {
		f := name
		if alias, ok := queryAliases[name]; ok {
			f = alias
		}
		if f == fieldOptions || !isJobField(f) {
			return "", nil, badInput(name, "unknown query parameter (known: %s)", strings.Join(queryNames(), ", "))
		}
		if prev, ok := queryFields[f]; ok && prev != name && q.Get(prev) != q.Get(name) {
			return "", nil, badInput(name, "contradicts %s=%q", prev, q.Get(prev))
		}
		queryFields[f] = name
	}
	// The body wins over nothing: a field in both must say the same.
	strs := map[string]*string{fieldType: &req.Type, fieldPath: &req.Path, fieldSrc: &req.Src, fieldDst: &req.Dst, fieldIndexFile: &req.IndexFile, fieldFormat: &req.Format}
	for _, f := range jobFields {
		name, inQuery := queryFields[f]
		if !inQuery {
			continue
		}
		v, err := single(q, name)
		if err != nil {
			return "", nil, err
		}
		if f == fieldVerbose {
			b, err := parseBool(v)
			if err != nil {
				return "", nil, badInput(name, "%v", err)
			}
			if req.Verbose.set && req.Verbose.value != b {
				return "", nil, badInput(f, "the body says %v and the query %v", req.Verbose.value, b)
			}
			req.Verbose = flexBool{set: true, value: b}
			continue
		}
		dst := strs[f]
		if *dst != "" && *dst != v && (f != fieldType || !strings.EqualFold(*dst, v)) {
			return "", nil, badInput(f, "the body says %q and the query %q", *dst, v)
		}
		if *dst == "" {
			*dst = v
		}
	}

	t := routeType
	switch {
	case routeType == "":
		if t, err = parseType(fieldType, req.Type); err != nil {
			return "", nil, err
		}
	case req.Type != "":
		bt, err := parseType(fieldType, req.Type)
		if err != nil {
			return "", nil, err
		}
		if bt != routeType {
			return "", nil, badInput(fieldType, "%q contradicts the route, which is for %s jobs", req.Type, routeType)
		}
	}
	for _, f := range jobFields {
		inBody := members != nil && given(members[f])
		name, inQuery := queryFields[f]
		if !inBody && (!inQuery || q.Get(name) == "") {
			continue
		}
		if why := misfit(op, t, f); why != "" {
			return "", nil, badInput(f, "%s", why)
		}
	}
	if op != opSubmit && req.IndexFile != "" && (req.Path != "" || req.Src != "") {
		// Outside a submit, indexFile only names a job that has no path;
		// beside one it would be ignored, and another job changed.
		return "", nil, badInput(fieldIndexFile, "names the job only when %s is absent: give one of them", map[bool]string{true: fieldPath, false: fieldSrc}[req.Path != ""])
	}
	return t, req, nil
}

// queryNames are the query parameters of the job routes.
func queryNames() []string {
	var out []string
	for _, f := range jobFields {
		if f != fieldOptions {
			out = append(out, f)
		}
	}
	for alias := range queryAliases {
		out = append(out, alias)
	}
	return out
}

// listQuery reads the query of a listing route, which takes only the named
// parameters, each once, and no body beyond an empty JSON object.
func listQuery(c echo.Context, names ...string) (url.Values, error) {
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	members, err := bodyMembers(body)
	if err != nil {
		return nil, err
	}
	if k := firstUnknown(members, func(string) bool { return false }); k != "" {
		return nil, badInput(k, "a listing takes no body; filter with the query parameters %s", strings.Join(names, ", "))
	}
	q, err := query(c)
	if err != nil {
		return nil, err
	}
	if k := firstUnknown(q, func(k string) bool { return slices.Contains(names, k) }); k != "" {
		return nil, badInput(k, "unknown query parameter (known: %s)", strings.Join(names, ", "))
	}
	for _, n := range names {
		if _, err := single(q, n); err != nil {
			return nil, err
		}
	}
	return q, nil
}

// workerSteering are the /v1/load query parameters that steer the request
// rather than set a load option.
var workerSteering = []string{"path", "opType", "verbose", "progressFormat"}

// checkWorkerRequest refuses what /v1/load would otherwise ignore: a body
// (it reads everything from the query), a parameter that is neither a
// steering one nor (on a submit) a load option, load options on a progress
// or stop request, and a parameter given twice with different values
// (include and exclude are lists and may repeat).
func checkWorkerRequest(c echo.Context, q url.Values, op string) error {
	body, err := readBody(c)
	if err != nil {
		return err
	}
	members, err := bodyMembers(body)
	if err != nil {
		return badInput("body", "/v1/load reads its parameters from the query; send no body")
	}
	if k := firstUnknown(members, func(string) bool { return false }); k != "" {
		return badInput(k, "/v1/load reads its parameters from the query, not from a body")
	}
	options := jobs.OptionKeys(workflows.JobLoad)
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch {
		case slices.Contains(workerSteering, k):
		case op == string(opSubmit):
			// ParseOptions names an unknown option itself.
		case slices.Contains(options, k):
			return badInput(k, "is a load option; only opType=submit takes options")
		default:
			return badInput(k, "unknown query parameter (known: %s, and the load options on a submit)", strings.Join(workerSteering, ", "))
		}
		if k == "include" || k == "exclude" {
			continue
		}
		if _, err := single(q, k); err != nil {
			return err
		}
	}
	return nil
}
