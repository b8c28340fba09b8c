package pagestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/ferryio/ferry/cachenode/internal/testsource"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// randomMeta has names of any bytes (not only UTF-8) and numbers of every
// magnitude and sign.
func randomMeta(r *rand.Rand) meta {
	str := func() string {
		b := make([]byte, r.IntN(40))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return string(b)
	}
	num := func() int64 {
		switch r.IntN(4) {
		case 0:
			return 0
		case 1:
			return math.MaxInt64 - r.Int64N(3)
		case 2:
			return math.MinInt64 + r.Int64N(3)
		}
		return r.Int64() >> r.IntN(63)
	}
	return meta{URI: "file:///" + str(), Size: num(), Version: str(), ModTimeNs: num(), ContentHash: str(),
		Gen: r.Uint64(), Pages: num(), Bytes: num(), Evicted: num()}
}

func TestMetaRoundTripsEveryValue(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 5000 {
		m := randomMeta(r)
		v := m.encode()
		got, err := decodeMeta(v)
		if err != nil || got != m {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", m, got, err)
		}
		// Every shorter value, and one with a byte too many, is refused.
		for n := range len(v) {
			if _, err := decodeMeta(v[:n]); !errors.Is(err, errCorruptMeta) {
				t.Fatalf("a value cut to %d of %d bytes decoded: %v", n, len(v), err)
			}
		}
		if _, err := decodeMeta(append(v, 0)); !errors.Is(err, errCorruptMeta) {
			t.Fatalf("a value with a trailing byte decoded: %v", err)
		}
	}
}

func TestMetaWrittenAsJSONStillReads(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		m := randomMeta(r)
		legacy := m
		legacy.URI = bytesjson.Encode(m.URI) // how the JSON form kept non-UTF-8 names
		v, err := json.Marshal(legacy)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeMeta(v)
		if err != nil {
			t.Fatal(err)
		}
		// JSON replaced invalid UTF-8 in the other strings; the name survives.
		if got.URI != m.URI || got.Size != m.Size || got.Gen != m.Gen || got.Pages != m.Pages {
			t.Fatalf("legacy %s read as %+v, want %+v", v, got, m)
		}
	}
	for _, bad := range []string{"", "{", "{\"size\":\"x\"}", "\x02abc", "\x00"} {
		if _, err := decodeMeta([]byte(bad)); !errors.Is(err, errCorruptMeta) {
			t.Errorf("decodeMeta(%q) = %v, want a corrupt-metadata error", bad, err)
		}
	}
}

// A store written before the binary form holds JSON metadata: after an
// upgrade its files are still found, read and reported cached complete.
func TestStoreWithJSONMetadataStillServes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	mem := testsource.NewMem()
	uri := "mem://b/\xff\xfename"
	data := bytes.Repeat([]byte("ferry"), 1000)
	mem.Put(uri, data)
	e, err := mem.Stat(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Dir: dir, PageSize: 4096, Capacity: 1 << 20, Resolver: storage.NewResolver(mem)}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	ref := FileRef{URI: uri, Size: e.Size, Version: e.Version}
	if _, err := s.LoadFile(ctx, ref, LoadOptions{}, nil); err != nil {
		t.Fatal(err)
	}
	fid := sha256.Sum256([]byte(uri))
	m, ok, err := s.getMeta(fid)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	legacy := m
	legacy.URI = bytesjson.Encode(m.URI)
	v, _ := json.Marshal(legacy)
	if err := s.db.Set(metaKey(fid), v, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.seq.Load() < m.Gen {
		t.Fatalf("generation %d not recovered from the JSON metadata (seq %d)", m.Gen, s.seq.Load())
	}
	if got, err := s.CachedComplete([]FileRef{ref}); err != nil || !got[0] {
		t.Fatalf("CachedComplete = %v, %v after the upgrade", got, err)
	}
	f, err := s.Resolve(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.ReadRange(ctx, f, 0, -1, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("read after the upgrade: %d bytes, %v", buf.Len(), err)
	}
	if st := s.Stats(); st.BytesFromStorage != 0 {
		t.Fatalf("the upgraded store read %d bytes from the source again", st.BytesFromStorage)
	}
}
