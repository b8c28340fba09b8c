package bytesjson

import (
	"reflect"
	"testing"
	"time"
)

type entry struct {
	URI  string
	Rel  string `json:"r,omitempty"`
	Size int64
}

type state struct {
	Path    string
	Entries []entry
	Next    *entry
	When    time.Time
	Tags    map[string]string
	Any     any
	Raw     []byte
	private string
}

// TestRoundTrip sends values holding names that are not UTF-8, names that
// look like the marker, and ordinary names through the converter and gets
// the same bytes back.
func TestRoundTrip(t *testing.T) {
	bad := "caf\xe9/\xff\xfe.txt"
	in := state{
		Path:    "file:///x/" + bad,
		Entries: []entry{{URI: "s3://b/" + bad, Rel: bad, Size: 3}, {URI: "plain", Size: 1}, {URI: Marker + "looks marked"}},
		Next:    &entry{URI: bad},
		When:    time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Tags:    map[string]string{bad: bad, "k": "v"},
		Any:     bad,
		Raw:     []byte{0xe9},
		private: "kept out",
	}
	orig := in.Entries[0]
	dc := DataConverter()
	p, err := dc.ToPayload(in)
	if err != nil {
		t.Fatal(err)
	}
	if in.Entries[0] != orig || in.Next.URI != bad {
		t.Fatal("encoding changed the caller's value")
	}
	var out state
	if err := dc.FromPayload(p, &out); err != nil {
		t.Fatal(err)
	}
	in.private = ""
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip:\n in  %#v\n out %#v", in, out)
	}
	// A UTF-8-only value encodes exactly as the SDK's JSON converter does.
	plain := entry{URI: "file:///ünï/日本 [1]*?.txt", Size: 4}
	p, err = dc.ToPayload(plain)
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Data) != `{"URI":"file:///ünï/日本 [1]*?.txt","Size":4}` {
		t.Fatalf("plain payload %s", p.Data)
	}
	var s string
	p, _ = dc.ToPayload(bad)
	if err := dc.FromPayload(p, &s); err != nil || s != bad {
		t.Fatalf("bare string: %q, %v", s, err)
	}
}
