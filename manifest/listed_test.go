package manifest

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/workflows"
)

// TestPiecesAndResultOfAPage writes what the attempts of a listing page
// leave (start markers, pieces whose names and cursors are not UTF-8, the
// result) and reads it back; objects of another input are not seen, and
// the job's end removes them all. On a file system and on S3 (where
// directories are key prefixes).
func TestPiecesAndResultOfAPage(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		s, dir := newStore(t)
		testPiecesAndResult(t, s, func(page string) {
			// Writers killed mid-write leave partial files, which listings
			// do not show: the cut next piece of attempt 2, the start
			// marker of an attempt 3 that wrote nothing else, a piece
			// being stripped.
			for _, name := range []string{pieceName(2, 2), startName(3), pieceName(0, 1)} {
				p := filepath.Join(dir, "job", KindListed, page, "."+name+local.PartialMarker)
				if err := os.WriteFile(p, []byte("half"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
	t.Run("s3", func(t *testing.T) {
		srv := s3test.Start(t)
		st := s3test.NewStore(t, s3test.Options(srv.URL))
		s, err := New(storage.NewResolver(st), "s3://"+srv.NewBucket(t)+"/manifests")
		if err != nil {
			t.Fatal(err)
		}
		testPiecesAndResult(t, s, func(string) {})
	})
}

// testPiecesAndResult runs the test on s; beforeGC is called before the
// job's end with the page's name.
func testPiecesAndResult(t *testing.T, s *Store, beforeGC func(page string)) {
	ctx := context.Background()
	in := workflows.ListPageInput{JobID: "job", Path: "file:///src", Partition: workflows.Partition{Kind: workflows.PartitionTree, Cursor: "a\xff"}, Out: workflows.ManifestRef{Kind: KindPages, Key: "p001-00000002"}, Limit: 10}
	fp, err := Fingerprint(in)
	if err != nil {
		t.Fatal(err)
	}
	other := in
	other.Limit = 11
	fpOther, _ := Fingerprint(other)
	if fp == fpOther {
		t.Fatal("two inputs share a fingerprint")
	}
	page := PageName(in.Out)
	pieces := []Piece{
		{Index: 0, Attempt: 1, From: PieceState{Cursor: "a\xff"}, To: PieceState{Cursor: "b\xfe", DirIndex: 1}, Scanned: 3, Count: 2, Size: 9,
			Entries: []workflows.FileEntry{{URI: "file:///src/a\xff", RelPath: "a\xff", Size: 4}, {URI: "file:///src/b", RelPath: "b", Size: 5}}},
		{Index: 1, Attempt: 2, From: PieceState{Cursor: "b\xfe", DirIndex: 1}, To: PieceState{DirIndex: 2, Done: true}, Scanned: 1, Count: 1, Size: 0,
			Entries: []workflows.FileEntry{{URI: "file:///src/c", RelPath: "c"}}},
	}
	for _, st := range []Start{{Attempt: 2, First: 1}, {Attempt: 1, First: 0}} {
		if err := s.WriteStart(ctx, "job", page, fp, st); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range pieces {
		if err := s.WritePiece(ctx, "job", page, fp, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.WritePiece(ctx, "job", page, fpOther, Piece{Index: 0, Attempt: 3}); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadListed(ctx, "job", page, fp)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Pieces, pieces) || !reflect.DeepEqual(got.Starts, []Start{{1, 0}, {2, 1}}) {
		t.Fatalf("read back %+v\nwrote %+v", got, pieces)
	}

	if _, ok, err := s.ReadPageResult(ctx, "job", page, fp); ok || err != nil {
		t.Fatalf("a result before any was written: %v, %v", ok, err)
	}
	res := workflows.ListPageResult{Partition: workflows.Partition{Cursor: "z\xff", Done: true}, Qualified: 3, QualifiedSize: 9,
		Plan:    workflows.Plan{Planned: true, Nodes: []string{"n1"}, Groups: []workflows.NodeGroup{{NodeID: "n1", TaskQueue: "q", Count: 3}}},
		Fetched: []workflows.PageFetch{{Attempt: 1, Pieces: 1, Entries: 2, Cut: true}, {Attempt: 2, First: 1, Pieces: 1, Entries: 1}}}
	if err := s.WritePageResult(ctx, "job", page, fp, res); err != nil {
		t.Fatal(err)
	}
	back, ok, err := s.ReadPageResult(ctx, "job", page, fp)
	if !ok || err != nil || !reflect.DeepEqual(back, res) {
		t.Fatalf("result read back %+v, %v, %v; wrote %+v", back, ok, err, res)
	}
	if _, ok, err := s.ReadPageResult(ctx, "job", page, fpOther); ok || err != nil {
		t.Fatalf("the result of another input was returned: %v", err)
	}

	if err := s.StripPieces(ctx, "job", page, fp, got.Pieces); err != nil {
		t.Fatal(err)
	}
	stripped, err := s.ReadListed(ctx, "job", page, fp)
	if err != nil || len(stripped.Pieces) != 2 || len(stripped.Starts) != 2 {
		t.Fatalf("after StripPieces: %+v, %v", stripped, err)
	}
	for i, p := range stripped.Pieces {
		want := pieces[i]
		want.Entries, want.Stripped = nil, true
		if !reflect.DeepEqual(p, want) {
			t.Fatalf("stripped piece %+v, want %+v", p, want)
		}
	}
	beforeGC(page)
	if err := s.DeleteWork(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	left, err := s.names(ctx, s.JobDir("job"), true)
	if err != nil || len(left) > 0 {
		t.Fatalf("the job's directories outlived its end: %v, %v", left, err)
	}
}
