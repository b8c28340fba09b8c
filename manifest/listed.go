package manifest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	commonpb "go.temporal.io/api/common/v1"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
	"github.com/ferryio/ferry/workflows/bytesjson"
)

// What a listing page leaves behind so that a retried ListPage never lists
// again what an earlier attempt listed. Each page has a directory:
//
//	<root>/<jobID>/listed/<page>/result          the page's result, once it is complete
//	<root>/<jobID>/listed/<page>/start-a<A>      attempt A starts listing (at which piece)
//	<root>/<jobID>/listed/<page>/piece-<i>-a<A>  piece i of the page, as attempt A listed it
//
// <page> names the page's output manifest (PageName). A piece is written
// before the next one is listed; the start marker before an attempt's first
// listing call. Every object carries a fingerprint of the page's input: an
// object left by another input under the same name is ignored. Once the
// result is recorded the pieces lose their entries (StripPieces); the job's
// end removes the whole directory.

// KindListed is the directory of the page records and pieces.
const KindListed = "listed"

const (
	magicPiece  = "FERRY-MANIFEST-PIECE-1\n"
	magicResult = "FERRY-MANIFEST-PAGE-RESULT-1\n"
	magicStart  = "FERRY-MANIFEST-START-1\n"
	resultName  = "result"
)

// PageName is the name of the listing directory of the page whose output
// manifest is out.
func PageName(out workflows.ManifestRef) string { return out.Kind + "-" + out.Key }

// Fingerprint identifies a page's input: a retry of the same activity has
// the same one.
func Fingerprint(in workflows.ListPageInput) (string, error) {
	p, err := bytesjson.PayloadConverter{}.ToPayload(in)
	if err != nil {
		return "", fmt.Errorf("fingerprint of a listing page: %w", err)
	}
	sum := sha256.Sum256(p.GetData())
	return hex.EncodeToString(sum[:16]), nil
}

// PieceState is where a partition's listing stands: after a piece, or
// before the first one.
type PieceState struct {
	Cursor   string
	DirIndex int
	Done     bool
}

// Piece is one part of a listing page as one attempt listed it.
type Piece struct {
	Index   int
	Attempt int
	// From is the partition's state before the piece, To after it.
	From, To PieceState
	// Scanned counts the raw entries the piece looked at.
	Scanned int64
	// Count and Size are the qualifying entries and their bytes; Entries
	// holds them, unless the page only counts or the piece was stripped.
	Count, Size int64
	Entries     []workflows.FileEntry
	// Stripped says the entries were dropped once the page's result was
	// recorded: the piece only records what its attempt listed.
	Stripped bool
}

// Start is an attempt's start marker: it began listing at piece First.
type Start struct {
	Attempt, First int
}

func (s *Store) listedURI(jobID, page, name string) string {
	return s.URI(jobID, KindListed, page) + "/" + name
}

func putPieceState(b *bytes.Buffer, st PieceState) {
	putString(b, st.Cursor)
	putUvarint(b, uint64(st.DirIndex))
	putBool(b, st.Done)
}

func getPieceState(r *reader) (PieceState, error) {
	var st PieceState
	var err error
	if st.Cursor, err = getString(r); err != nil {
		return st, err
	}
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return st, err
	}
	st.DirIndex = int(n)
	done, err := r.ReadByte()
	st.Done = done == 1
	return st, err
}

// WritePiece stores a piece of page, written by its attempt.
func (s *Store) WritePiece(ctx context.Context, jobID, page, fingerprint string, p Piece) error {
	var b bytes.Buffer
	b.Grow(entriesSize(p.Entries) + 256)
	b.WriteString(magicPiece)
	putString(&b, fingerprint)
	for _, v := range []int64{int64(p.Index), int64(p.Attempt), p.Scanned, p.Count, p.Size} {
		putVarint(&b, v)
	}
	putPieceState(&b, p.From)
	putPieceState(&b, p.To)
	putBool(&b, p.Stripped)
	putUvarint(&b, uint64(len(p.Entries)))
	for _, e := range p.Entries {
		putEntry(&b, e)
	}
	return s.put(ctx, s.listedURI(jobID, page, pieceName(p.Index, p.Attempt)), b.Bytes())
}

func pieceName(index, attempt int) string { return fmt.Sprintf("piece-%06d-a%04d", index, attempt) }
func startName(attempt int) string        { return fmt.Sprintf("start-a%04d", attempt) }

// WriteStart stores an attempt's start marker, before it lists anything.
func (s *Store) WriteStart(ctx context.Context, jobID, page, fingerprint string, st Start) error {
	var b bytes.Buffer
	b.WriteString(magicStart)
	putString(&b, fingerprint)
	putUvarint(&b, uint64(st.First))
	return s.put(ctx, s.listedURI(jobID, page, startName(st.Attempt)), b.Bytes())
}

// Listed is what the attempts of a page left in the store.
type Listed struct {
	// Pieces are sorted by index, then attempt.
	Pieces []Piece
	// Starts are sorted by attempt.
	Starts []Start
}

// ReadListed reads the pieces and start markers of page that carry
// fingerprint.
func (s *Store) ReadListed(ctx context.Context, jobID, page, fingerprint string) (Listed, error) {
	var out Listed
	names, err := s.Keys(ctx, jobID, KindListed+"/"+page, "", 0)
	if err != nil {
		return out, err
	}
	for _, name := range names {
		switch {
		case strings.HasPrefix(name, "piece-"):
			p, fp, err := s.readPiece(ctx, s.listedURI(jobID, page, name))
			if err != nil {
				return out, err
			}
			if fp == fingerprint {
				out.Pieces = append(out.Pieces, p)
			}
		case strings.HasPrefix(name, "start-a"):
			st := Start{}
			if st.Attempt, err = strconv.Atoi(strings.TrimPrefix(name, "start-a")); err != nil {
				continue
			}
			uri := s.listedURI(jobID, page, name)
			r, err := s.open(ctx, uri, magicStart)
			if err != nil {
				return out, err
			}
			fp, err := getString(r)
			var first uint64
			if err == nil {
				first, err = binary.ReadUvarint(r)
			}
			_ = r.Close()
			if err != nil {
				return out, corrupt(uri, err)
			}
			if st.First = int(first); fp == fingerprint {
				out.Starts = append(out.Starts, st)
			}
		}
	}
	sort.Slice(out.Pieces, func(i, j int) bool {
		a, b := out.Pieces[i], out.Pieces[j]
		return a.Index < b.Index || a.Index == b.Index && a.Attempt < b.Attempt
	})
	sort.Slice(out.Starts, func(i, j int) bool { return out.Starts[i].Attempt < out.Starts[j].Attempt })
	return out, nil
}

func (s *Store) readPiece(ctx context.Context, uri string) (Piece, string, error) {
	r, err := s.open(ctx, uri, magicPiece)
	if err != nil {
		return Piece{}, "", err
	}
	defer func() { _ = r.Close() }()
	var p Piece
	fp, err := getString(r)
	if err != nil {
		return p, "", corrupt(uri, err)
	}
	var v [5]int64
	for i := range v {
		if v[i], err = binary.ReadVarint(r); err != nil {
			return p, "", corrupt(uri, err)
		}
	}
	p.Index, p.Attempt, p.Scanned, p.Count, p.Size = int(v[0]), int(v[1]), v[2], v[3], v[4]
	var stripped byte
	if p.From, err = getPieceState(r); err == nil {
		if p.To, err = getPieceState(r); err == nil {
			stripped, err = r.ReadByte()
		}
	}
	p.Stripped = stripped == 1
	if err != nil {
		return p, "", corrupt(uri, err)
	}
	if p.Entries, err = readEntries(r, uri, 0, -1); err != nil {
		return p, "", err
	}
	if len(p.Entries) == 0 {
		p.Entries = nil
	}
	return p, fp, nil
}

// WritePageResult records the result of a complete page, for a retry of
// the same input to return instead of listing again.
func (s *Store) WritePageResult(ctx context.Context, jobID, page, fingerprint string, res workflows.ListPageResult) error {
	p, err := bytesjson.PayloadConverter{}.ToPayload(res)
	if err != nil {
		return fmt.Errorf("encode the result of page %s: %w", page, err)
	}
	var b bytes.Buffer
	b.WriteString(magicResult)
	putString(&b, fingerprint)
	putString(&b, string(p.GetData()))
	return s.put(ctx, s.listedURI(jobID, page, resultName), b.Bytes())
}

// ReadPageResult returns the recorded result of page for fingerprint, and
// false when there is none (or it was recorded for another input).
func (s *Store) ReadPageResult(ctx context.Context, jobID, page, fingerprint string) (workflows.ListPageResult, bool, error) {
	var res workflows.ListPageResult
	uri := s.listedURI(jobID, page, resultName)
	r, err := s.open(ctx, uri, magicResult)
	if err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return res, false, nil
		}
		return res, false, err
	}
	defer func() { _ = r.Close() }()
	fp, err := getString(r)
	if err != nil {
		return res, false, corrupt(uri, err)
	}
	if fp != fingerprint {
		return res, false, nil
	}
	data, err := getString(r)
	if err != nil {
		return res, false, corrupt(uri, err)
	}
	if err := (bytesjson.PayloadConverter{}).FromPayload(&commonpb.Payload{Data: []byte(data)}, &res); err != nil {
		return res, false, corrupt(uri, err)
	}
	return res, true, nil
}

// deleteListed removes the listing directories of a job.
func (s *Store) deleteListed(ctx context.Context, jobID string) error {
	pages, err := s.names(ctx, s.root+"/"+jobID+"/"+KindListed, true)
	if err != nil {
		return err
	}
	var errs []error
	for _, page := range pages {
		errs = append(errs, s.removeLeftovers(ctx, jobID, page), s.deleteKind(ctx, jobID, KindListed+"/"+page))
	}
	errs = append(errs, s.deleteKind(ctx, jobID, KindListed))
	return errors.Join(errs...)
}

// StripPieces rewrites pieces of page without their entries, once its
// result is recorded: a retry needs nothing else, and what each attempt
// listed stays on record until the job ends.
func (s *Store) StripPieces(ctx context.Context, jobID, page, fingerprint string, pieces []Piece) error {
	var errs []error
	for _, p := range pieces {
		if p.Stripped {
			continue
		}
		p.Entries, p.Stripped = nil, true
		errs = append(errs, s.WritePiece(ctx, jobID, page, fingerprint, p))
	}
	return errors.Join(errs...)
}

// removeLeftovers removes what the writers of a page's objects, killed at
// the wrong moment, may have left in its directory (see
// storage.LeftoverRemover), which would keep the directory from being
// removed: beside every object there (a piece being stripped), and beside
// every name an attempt could have been writing (its start marker, its
// next piece) when it was killed. Retries rewrite the other names, which
// takes their leftovers over.
func (s *Store) removeLeftovers(ctx context.Context, jobID, page string) error {
	lr, ok := s.st.(storage.LeftoverRemover)
	if !ok {
		return nil
	}
	names, err := s.Keys(ctx, jobID, KindListed+"/"+page, "", 0)
	if err != nil {
		return err
	}
	maxAttempt, maxIndex := 1, -1
	for _, name := range names {
		var i, a int
		if _, err := fmt.Sscanf(name, "piece-%d-a%d", &i, &a); err == nil {
			maxAttempt, maxIndex = max(maxAttempt, a), max(maxIndex, i)
		} else if _, err := fmt.Sscanf(name, "start-a%d", &a); err == nil {
			maxAttempt = max(maxAttempt, a)
		}
	}
	candidates := append(names, resultName)
	for a := 1; a <= maxAttempt+1; a++ {
		candidates = append(candidates, startName(a))
		for i := 0; i <= maxIndex+1; i++ {
			candidates = append(candidates, pieceName(i, a))
		}
	}
	var errs []error
	for _, name := range candidates {
		errs = append(errs, lr.RemoveLeftovers(ctx, s.listedURI(jobID, page, name)))
	}
	return errors.Join(errs...)
}
