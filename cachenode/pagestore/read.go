package pagestore

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"time"

	"github.com/ferryio/ferry/storage"
)

// touchInterval is the resolution of the access order: a page read again
// within it keeps its place, which saves an index write per read of a hot
// page at the price of an LRU that is exact only to this interval.
const touchInterval = time.Second

// ReadRange writes bytes [off, off+n) of f to w (n < 0: to the end of the
// file), page by page: pages the store holds come from disk after their
// checksum is verified, missing ones are fetched from the source, stored and
// served. It returns how many bytes it wrote. off past the end of the file is
// storage.ErrOutOfRange; a file that changed since f was resolved is
// ErrChanged.
func (s *Store) ReadRange(ctx context.Context, f File, off, n int64, w io.Writer) (int64, error) {
	if off < 0 || off > f.Size {
		return 0, storage.NewError("read", f.URI, storage.ErrOutOfRange, fmt.Errorf("offset %d outside the file (size %d)", off, f.Size))
	}
	if n < 0 || n > f.Size-off {
		n = f.Size - off
	}
	bp := s.getBuf()
	defer s.putBuf(bp)
	var written int64
	for n > 0 {
		idx := off / f.PageSize
		page, err := s.readPage(ctx, f, idx, *bp)
		if err != nil {
			return written, err
		}
		start := off - idx*f.PageSize
		end := min(start+n, int64(len(page)))
		if start >= end {
			return written, ErrChanged
		}
		k, err := w.Write(page[start:end])
		written += int64(k)
		s.stats.bytesServed.Add(int64(k))
		if err != nil {
			return written, err
		}
		off += end - start
		n -= end - start
	}
	return written, nil
}

func (s *Store) readPage(ctx context.Context, f File, idx int64, buf []byte) ([]byte, error) {
	rec, ok, err := s.getRecord(f.fid, idx)
	if err != nil {
		return nil, err
	}
	if ok && rec.gen != f.gen {
		return nil, ErrChanged
	}
	if ok {
		data, err := s.readPageFile(f, idx, rec, buf)
		if err == nil {
			s.stats.hits.Add(1)
			s.maybeTouch(f.fid, idx, rec)
			return data, nil
		}
		s.dropBadPage(f, idx, rec, err)
	}
	data, err := s.fillPage(ctx, f, idx)
	if err == nil {
		s.stats.misses.Add(1)
	}
	return data, err
}

// readPageFile reads a page into buf and checks it against its record.
func (s *Store) readPageFile(f File, idx int64, rec record, buf []byte) ([]byte, error) {
	if int64(rec.len) != f.PageLen(idx) || int(rec.len) > len(buf) {
		return nil, fmt.Errorf("page record length %d, want %d", rec.len, f.PageLen(idx))
	}
	data := buf[:rec.len]
	if rec.seg != 0 {
		fh := s.segs.file(rec.seg)
		if fh == nil {
			return nil, fmt.Errorf("segment %d is gone", rec.seg)
		}
		if _, err := fh.ReadAt(data, rec.off); err != nil {
			return nil, fmt.Errorf("short page: %w", err)
		}
	} else {
		fh, err := os.Open(s.dataPath(f.fid, rec.gen))
		if err != nil {
			return nil, err
		}
		_, err = fh.ReadAt(data, idx*f.PageSize)
		_ = fh.Close()
		if err != nil {
			return nil, fmt.Errorf("short page: %w", err)
		}
	}
	if crc32.Checksum(data, castagnoli) != rec.crc {
		return nil, errChecksum
	}
	return data, nil
}

var errChecksum = errors.New("page checksum mismatch")

// maybeTouch moves a page to the young end of the access order, at most
// once per touchInterval.
func (s *Store) maybeTouch(fid [32]byte, idx int64, rec record) {
	now := time.Now().UnixNano()
	if now-rec.touched < int64(touchInterval) {
		return
	}
	mu := s.stripe(fid)
	mu.Lock()
	defer mu.Unlock()
	cur, ok, err := s.getRecord(fid, idx)
	if err != nil || !ok || cur.seq != rec.seq {
		return // evicted, replaced or touched meanwhile
	}
	cur.seq = s.seq.Add(1)
	cur.touched = now
	b := s.newBatch()
	_ = b.Delete(accessKey(rec.seq), nil)
	_ = b.Set(accessKey(cur.seq), accessValue(fid, idx), nil)
	_ = b.Set(recordKey(fid, idx), cur.encode(), nil)
	if err := s.apply(b); err != nil {
		s.log.Warn("page store: update access order", "err", err)
	}
}

// dropBadPage removes a page whose file failed to read or verify, unless it
// was replaced meanwhile (then the failure was a race, not damage).
func (s *Store) dropBadPage(f File, idx int64, rec record, cause error) {
	mu := s.stripe(f.fid)
	mu.Lock()
	cur, ok, err := s.getRecord(f.fid, idx)
	if err != nil || !ok || cur != rec {
		mu.Unlock()
		return
	}
	m, mok, err := s.getMeta(f.fid)
	if err != nil {
		mu.Unlock()
		return
	}
	b := s.newBatch()
	_ = b.Delete(recordKey(f.fid, idx), nil)
	_ = b.Delete(accessKey(rec.seq), nil)
	if mok {
		m.Pages--
		m.Bytes -= int64(rec.len)
		setMeta(b, f.fid, m)
	}
	err = s.applyChange(b, f.fid)
	if err == nil {
		s.used.Add(-int64(rec.len))
		s.pages.Add(-1)
	}
	mu.Unlock()
	if err != nil {
		return
	}
	// The record was unchanged, so this is damage, not a race with eviction
	// (which deletes the record before the file).
	s.stats.pagesCorrupt.Add(1)
	s.log.Warn("page store: dropped a damaged page; reading it again from the source",
		"uri", f.URI, "page", idx, "err", cause)
	s.freePage(f.fid, idx, rec)
}
