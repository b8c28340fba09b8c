package cachenodepb

import (
	"testing"

	"google.golang.org/protobuf/proto"
)

// TestURIsAreBytes: a URI that is not UTF-8 (a name with the byte 0xE9)
// crosses the wire byte for byte in a FileRef and a FileResult, where the
// string field alone cannot carry it.
func TestURIsAreBytes(t *testing.T) {
	for _, uri := range []string{"file:///x/caf\xe9.txt", "file:///x/café.txt", "s3://b/k"} {
		ref := &FileRef{Size: 7}
		ref.SetURI(uri)
		b, err := proto.Marshal(ref)
		if err != nil {
			t.Fatalf("marshal %q: %v", uri, err)
		}
		var got FileRef
		if err := proto.Unmarshal(b, &got); err != nil || got.URI() != uri {
			t.Fatalf("FileRef %q came back as %q (%v)", uri, got.URI(), err)
		}
		res := &FileResult{}
		res.SetURI(uri)
		if b, err = proto.Marshal(res); err != nil {
			t.Fatalf("marshal %q: %v", uri, err)
		}
		var gotRes FileResult
		if err := proto.Unmarshal(b, &gotRes); err != nil || gotRes.URI() != uri {
			t.Fatalf("FileResult %q came back as %q (%v)", uri, gotRes.URI(), err)
		}
	}
	if _, err := proto.Marshal(&FileRef{Uri: "file:///x/caf\xe9.txt"}); err == nil {
		t.Fatal("the string field carried invalid UTF-8: uri_bytes is no longer needed")
	}
}
