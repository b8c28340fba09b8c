package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// query is a request's query string, split without decoding. Go's own
// parser (url.ParseQuery, echo's QueryParam) turns '+' into a space and drops
// pairs that contain ';', which would corrupt the URIs the Alluxio clients
// paste raw into ufsFullPath, srcPath and dstPath.
type query map[string]string

// parseQuery keeps the first value of each key, undecoded.
func parseQuery(raw string) query {
	q := query{}
	for _, p := range splitQuery(raw) {
		if _, dup := q[p.key]; !dup {
			q[p.key] = p.value
		}
	}
	return q
}

// queryPart is one '&'-separated part of a raw query: its key decoded, its
// value as sent.
type queryPart struct {
	raw, key, value string
	hasValue        bool
}

func splitQuery(raw string) []queryPart {
	var parts []queryPart
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil {
			k = dk
		}
		parts = append(parts, queryPart{raw: part, key: k, value: v, hasValue: ok})
	}
	return parts
}

// onlyKeys refuses a raw query that holds a key outside allowed, or a part
// without '='. A route whose URI parameter cannot be checked against the file
// id (dstPath, /v1/node's path) uses it: a name with '&' reaches the server
// split in two ("dstPath=file:///d/a" and "b.txt"), and acting on the first
// half would write or place another file than the one meant.
func onlyKeys(raw string, allowed ...string) error {
	for _, p := range splitQuery(raw) {
		if !p.hasValue || !slices.Contains(allowed, p.key) {
			return badRequest("unexpected query part %q (a name holding '&' must be percent-encoded as %%26 by the client; this route takes %s)", p.raw, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// text returns a normally encoded parameter ('+' is a space), such as path=.
func (q query) text(key string) (string, bool, error) {
	raw, ok := q[key]
	if !ok {
		return "", false, nil
	}
	v, err := url.QueryUnescape(raw)
	if err != nil {
		return "", true, badRequest("query parameter %s: %v", key, err)
	}
	return v, true, nil
}

// int returns an integer parameter.
func (q query) int(key string) (int64, bool, error) {
	s, ok, err := q.text(key)
	if err != nil || !ok {
		return 0, ok, err
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, true, badRequest("query parameter %s=%q is not an integer", key, s)
	}
	return n, true, nil
}

// nonNegative returns an integer parameter that must not be negative, or def.
func (q query) nonNegative(key string, def int64) (int64, error) {
	n, ok, err := q.int(key)
	if err != nil {
		return 0, err
	}
	if !ok {
		return def, nil
	}
	if n < 0 {
		return 0, badRequest("query parameter %s=%d must not be negative", key, n)
	}
	return n, nil
}

// bool accepts true/false in any case (the Python client sends True/False).
func (q query) bool(key string, def bool) (bool, error) {
	s, ok, err := q.text(key)
	if err != nil || !ok {
		return def, err
	}
	switch strings.ToLower(s) {
	case "true", "1":
		return true, nil
	case "false", "0", "":
		return false, nil
	}
	return false, badRequest("query parameter %s=%q is not true or false", key, s)
}

// rawURI returns a URI parameter pasted raw by the client: '+' stays '+';
// percent-escapes the client's HTTP library added (a space sent as %20) are
// decoded. When the escape-decoded form cannot be right (a literal '%' in the
// name), the raw form is returned.
func (q query) rawURI(key string) (string, bool) {
	raw, ok := q[key]
	if !ok {
		return "", false
	}
	if v, err := url.PathUnescape(raw); err == nil {
		return v, true
	}
	return raw, true
}

// uriForID returns the URI parameter whose SHA-256 is id, trying the
// escape-decoded and the raw form; it fails with 400 when neither matches, so
// a name the client mangled (a '#', '&' or '%' in it) gets an honest error,
// never another file's bytes.
func (q query) uriForID(key, id string) (string, bool, error) {
	raw, ok := q[key]
	if !ok {
		return "", false, nil
	}
	candidates := []string{raw}
	if v, err := url.PathUnescape(raw); err == nil && v != raw {
		candidates = []string{v, raw}
	}
	if v := unescapeAdded(raw); v != raw && !slices.Contains(candidates, v) {
		candidates = append(candidates, v)
	}
	for _, c := range candidates {
		if fileID(c) == id {
			return c, true, nil
		}
	}
	return "", true, badRequest("file id %s does not match %s=%q (file id = hex SHA-256 of the full URI; a name with '#', '&' or '%%' must be percent-encoded by the client)", id, key, candidates[0])
}

// unescapeAdded decodes only the escapes an HTTP library adds to a raw
// query (urllib3 escapes bytes outside RFC 3986's query characters: space,
// non-ASCII, '"', '%' …) and keeps the others as they are: a name holding
// both a space and a literal "%2B" arrives as "a%20b%2B", and only its %20
// is the client's.
func unescapeAdded(raw string) string {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		if raw[i] == '%' && i+2 < len(raw) {
			if v, err := strconv.ParseUint(raw[i+1:i+3], 16, 8); err == nil && !queryChar(byte(v)) {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(raw[i])
	}
	return b.String()
}

// queryChar reports whether c may stand unescaped in a URI query
// (RFC 3986: unreserved, sub-delims, ':', '@', '/', '?').
func queryChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		strings.IndexByte("-._~!$&'()*+,;=:@/?", c) >= 0
}

func fileID(uri string) string {
	sum := sha256.Sum256([]byte(uri))
	return hex.EncodeToString(sum[:])
}

// checkID validates a file id path parameter.
func checkID(id string) error {
	if len(id) != 64 {
		return badRequest("file id %q is not 64 hex digits (hex SHA-256 of the full URI)", id)
	}
	for _, r := range id {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return badRequest("file id %q is not 64 lower-case hex digits", id)
		}
	}
	return nil
}

// httpError is an error with the status it answers.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func statusError(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}
