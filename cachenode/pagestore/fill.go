package pagestore

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/ferryio/ferry/storage"
)

// Limiter bounds the rate at which a load reads from storage.
// *rate.Limiter (golang.org/x/time/rate) satisfies it. WaitN is called with
// n ≤ LimiterChunk, so a rate.Limiter's burst must be at least that.
type Limiter interface {
	WaitN(ctx context.Context, n int) error
}

// LimiterChunk is the largest n a load passes to Limiter.WaitN.
const LimiterChunk = 64 << 10

// LoadOptions control LoadFile.
type LoadOptions struct {
	// MetadataOnly records the file's size and version without reading it.
	MetadataOnly bool
	// SkipIfExists keeps the pages already cached at this version and
	// reports a fully cached file as Skipped. Without it every page is read
	// again from the source (a forced refresh).
	SkipIfExists bool
	// Limiter, when set, bounds the bandwidth taken from storage. It may be
	// shared by concurrent loads.
	Limiter Limiter
	// FailIfEvicted makes a file of which pages were evicted since it was
	// cached at this version, and that is no longer complete, a failure
	// (ErrEvicted) rather than a reload: a job's verify pass uses it to
	// report a file its own load brought in but that did not stay.
	FailIfEvicted bool
}

// Outcome is what LoadFile did with a file.
type Outcome int

// Outcomes of LoadFile.
const (
	// Loaded: pages were read from the source (or, with MetadataOnly, the
	// metadata was recorded).
	Loaded Outcome = iota + 1
	// Skipped: with SkipIfExists, nothing had to be read: the file was
	// fully cached at this version, or became so while this call waited
	// for others that were fetching its pages.
	Skipped
	// Failed: see the error; storage.IsRetryable tells whether to try again.
	Failed
	// AlreadyCached: every page was cached and bound to the source version
	// the caller gave (or the source reported), so nothing was read from
	// the source, with or without SkipIfExists.
	AlreadyCached
)

func (o Outcome) String() string {
	switch o {
	case Loaded:
		return "loaded"
	case Skipped:
		return "skipped"
	case Failed:
		return "failed"
	case AlreadyCached:
		return "already cached"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// LoadResult reports one LoadFile.
type LoadResult struct {
	Outcome Outcome
	// BytesLoaded were read from the source by this call.
	BytesLoaded int64
	// BytesSkipped were already cached (or fetched meanwhile by a reader).
	BytesSkipped int64
}

// loadWindow is how many pages a load claims at once: readers of pages
// further on fetch them themselves rather than wait for the whole file.
const loadWindow = 16

// LoadFile makes the store hold every page of ref at ref.Version, reading
// missing pages from the source in sequential runs (one open per run). With
// an empty ref.Version the source is asked for the size and version first.
// A file already fully cached at that version is not read at all
// (AlreadyCached).
// progress, when set, is called with the bytes of each page as it is stored.
// A load must leave the whole file cached: a file larger than the capacity
// fails at once with ErrTooLarge (nothing is read), and one whose pages were
// evicted before its last page was stored (other loads or reads needed the
// room) fails with ErrEvicted, saying how much stayed. Errors wrap the
// storage sentinels: not-found, permission, invalid-path, ErrTooLarge and
// ErrEvicted are final; ErrChanged, ErrNoSpace and unavailable sources are
// retryable.
func (s *Store) LoadFile(ctx context.Context, ref FileRef, opts LoadOptions, progress func(bytes int64)) (LoadResult, error) {
	failed := LoadResult{Outcome: Failed}
	if _, err := storage.ParseURI(ref.URI); err != nil {
		return failed, storage.NewError("load", ref.URI, storage.ErrInvalidPath, err)
	}
	if ref.Version == "" {
		e, err := s.statSource(ctx, ref.URI)
		if err != nil {
			return failed, err
		}
		if e.IsDir {
			return failed, storage.NewError("load", ref.URI, storage.ErrInvalidPath, errors.New("is a directory"))
		}
		ref = refFromEntry(ref.URI, e)
	}
	f, fresh, err := s.bind(ref)
	if err != nil {
		return failed, err
	}
	if opts.MetadataOnly {
		return LoadResult{Outcome: Loaded}, nil
	}
	if !fresh && f.FullyCached() {
		// Bound to this version and complete: the pages' checksums are
		// checked on every read, so reading the source again adds nothing.
		return LoadResult{Outcome: AlreadyCached, BytesSkipped: f.Size}, nil
	}
	if f.Size > s.opts.Capacity {
		return failed, fmt.Errorf("load %s: %w: the file is %d bytes and this node's whole cache (--capacity) is %d bytes, so it cannot be held (a file is cached whole on its owner node)",
			ref.URI, ErrTooLarge, f.Size, s.opts.Capacity)
	}
	if opts.FailIfEvicted && f.EvictedPages > 0 {
		return failed, s.evictedError(f, "before the job ended")
	}
	res := LoadResult{Outcome: Loaded}
	for start := int64(0); start < f.Pages(); start += loadWindow {
		loaded, skipped, err := s.loadPages(ctx, f, start, min(start+loadWindow, f.Pages()), opts, progress)
		res.BytesLoaded += loaded
		res.BytesSkipped += skipped
		if err != nil {
			res.Outcome = Failed
			return res, err
		}
	}
	if res.BytesLoaded > 0 {
		if err := s.checkUnchanged(ctx, f); err != nil {
			res.Outcome = Failed
			return res, err
		}
	}
	if res.BytesLoaded == 0 && f.Size > 0 && opts.SkipIfExists {
		res.Outcome = Skipped
	}
	// Residency: the pages stored first may have been evicted by the time
	// the last one was (by this file's own pages, or other loads and reads).
	if m, ok, err := s.getMeta(f.fid); err != nil {
		return LoadResult{Outcome: Failed, BytesLoaded: res.BytesLoaded, BytesSkipped: res.BytesSkipped}, err
	} else if ok && m.Gen == f.gen && m.Pages < f.Pages() {
		res.Outcome = Failed
		return res, s.evictedError(m.file(f.fid, f.PageSize), "while it was loaded")
	}
	return res, nil
}

// checkUnchanged asks the source, once a load has read its pages, whether
// the file is still the version they were bound to. Pages are read in runs
// over time: a file rewritten in place meanwhile (same name, new bytes) may
// have given some of them from each version, all filed under the old one.
// Such a file's pages are dropped and the load fails with ErrChanged
// (retryable): it is never reported cached with bytes of two versions.
func (s *Store) checkUnchanged(ctx context.Context, f File) error {
	e, err := s.statSource(ctx, f.URI)
	if err == nil && !e.IsDir && e.Size == f.Size && e.Version == f.Version {
		return nil
	}
	if _, derr := s.dropSynced(f.fid); derr != nil {
		s.log.Warn("page store: the pages of a file that changed while loading could not be dropped", "uri", f.URI, "err", derr)
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return fmt.Errorf("load %s: %w", f.URI, ErrChanged)
}

// evictedError reports how much of f stayed cached.
func (s *Store) evictedError(f File, when string) error {
	st := s.Stats()
	return fmt.Errorf("load %s: %w: only %d of its %d bytes are cached (%d of %d pages); the others were evicted %s to make room for other pages: "+
		"the data being loaded and read exceeds this node's cache (%d bytes, %d in use)",
		f.URI, ErrEvicted, f.CachedBytes, f.Size, f.CachedPages, f.Pages(), when, st.Capacity, st.UsedBytes)
}

type claim struct {
	idx int64
	fl  *flight[[]byte]
}

// loadPages loads pages [start, end) of f: it claims the ones it must
// fetch, reads them in runs, and waits for those another caller is fetching.
func (s *Store) loadPages(ctx context.Context, f File, start, end int64, opts LoadOptions, progress func(int64)) (loaded, skipped int64, err error) {
	var mine []claim
	var others []int64
	for idx := start; idx < end; idx++ {
		if opts.SkipIfExists {
			rec, ok, err := s.getRecord(f.fid, idx)
			if err != nil {
				s.abandon(f, mine, err)
				return 0, 0, err
			}
			if ok && rec.gen == f.gen {
				skipped += int64(rec.len)
				continue
			}
		}
		fl, leader := s.pageFlights.claim(pageKey{f.fid, f.gen, idx})
		if leader {
			mine = append(mine, claim{idx, fl})
		} else {
			others = append(others, idx)
		}
	}
	for i := 0; i < len(mine); {
		j := i + 1
		for j < len(mine) && mine[j].idx == mine[j-1].idx+1 {
			j++
		}
		n, err := s.loadRun(ctx, f, mine[i:j], opts.Limiter, progress)
		loaded += n
		if err != nil {
			s.abandon(f, mine[j:], err)
			return loaded, skipped, err
		}
		i = j
	}
	for _, idx := range others {
		// Someone else is fetching it; fillPage waits for them, or fetches
		// it itself if they gave up.
		if _, err := s.fillPage(ctx, f, idx); err != nil {
			return loaded, skipped, err
		}
		skipped += f.PageLen(idx)
	}
	return loaded, skipped, nil
}

// abandon releases claims that will not be fetched.
func (s *Store) abandon(f File, claims []claim, err error) {
	for _, c := range claims {
		s.pageFlights.finish(pageKey{f.fid, f.gen, c.idx}, c.fl, nil, err)
	}
}

// loadRun reads consecutive claimed pages from one source stream and stores
// them. A reader goroutine stays one or two pages ahead, so that reading and
// checksumming a page overlaps writing the previous one to disk.
func (s *Store) loadRun(ctx context.Context, f File, run []claim, lim Limiter, progress func(int64)) (int64, error) {
	off := run[0].idx * f.PageSize
	length := min((run[len(run)-1].idx+1)*f.PageSize, f.Size) - off
	if err := ctx.Err(); err != nil {
		s.abandon(f, run, err)
		return 0, err
	}
	rc, err := s.open(ctx, f.URI, off, length)
	if err != nil {
		s.abandon(f, run, err)
		return 0, err
	}
	defer func() { _ = rc.Close() }()
	if len(run) == 1 {
		return s.loadOne(ctx, f, run[0], rc, lim, progress)
	}
	fh, err := s.openData(s.dataPath(f.fid, f.gen))
	if err != nil {
		err = storage.NewError("cache", f.URI, storage.ErrUnavailable, err)
		s.abandon(f, run, err)
		return 0, err
	}
	defer func() { _ = fh.Close() }()
	if src, base, ok := s.kernelCopySource(rc, lim); ok {
		n, err := s.copyRun(ctx, f, run, src, base-off, fh, progress)
		if !errors.Is(err, errNoKernelCopy) {
			return n, err
		}
		// Nothing was copied or claimed away: read the run through memory.
		s.log.Debug("page store: the kernel cannot copy between the source and the cache; copying through memory", "uri", f.URI, "err", err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var r io.Reader = rc
	if lim != nil {
		r = &limitedReader{ctx: ctx, r: rc, lim: lim}
	}
	type page struct {
		bp   *[]byte
		data []byte
		crc  uint32
		err  error
	}
	pages := make(chan page, 2)
	go func() {
		defer close(pages)
		for _, c := range run {
			bp := s.getBuf()
			p := page{bp: bp, data: (*bp)[:f.PageLen(c.idx)]}
			if _, err := io.ReadFull(r, p.data); err != nil {
				s.putBuf(bp)
				p = page{err: sourceReadError(f.URI, err)}
			} else {
				p.crc = crc32.Checksum(p.data, castagnoli)
				s.stats.bytesFromStorage.Add(int64(len(p.data)))
			}
			select {
			case pages <- p:
			case <-ctx.Done():
				if p.bp != nil {
					s.putBuf(p.bp)
				}
				return
			}
			if p.err != nil {
				return
			}
		}
	}()

	var loaded int64
	done := 0 // claims finished
	for p := range pages {
		err := p.err
		if err == nil {
			c := run[done]
			err = s.storePage(f, c.idx, p.data, p.crc, fh)
			if shared := s.pageFlights.finish(pageKey{f.fid, f.gen, c.idx}, c.fl, p.data, err); !shared {
				s.putBuf(p.bp) // nobody else holds the bytes: the buffer can be reused
			}
			done++
			if err == nil {
				loaded += int64(len(p.data))
				if progress != nil {
					progress(int64(len(p.data)))
				}
				continue
			}
		}
		// Stop the reader and wait for it: it reads rc, closed on return.
		cancel()
		for p := range pages {
			if p.bp != nil {
				s.putBuf(p.bp)
			}
		}
		s.abandon(f, run[done:], err)
		return loaded, err
	}
	if done < len(run) {
		// The reader stopped early: the context ended while it waited to
		// hand a page over. Every claim must end, or the readers of the
		// pages not stored would wait for them forever.
		err := ctx.Err()
		if err == nil {
			err = errors.New("page store: the source reader stopped early")
		}
		s.abandon(f, run[done:], err)
		return loaded, err
	}
	return loaded, nil
}

// errNoKernelCopy: the source and the data file do not allow a copy inside
// the kernel.
var errNoKernelCopy = errors.New("no kernel copy between these files")

// copyPage is copyRange; tests replace it to make the kernel refuse.
var copyPage = copyRange

// kernelCopySource returns the local file and the offset in it of a source
// stream that is a section of a local file (storage/local's streams), when
// its pages can be copied by the kernel: no limiter counts the bytes.
func (s *Store) kernelCopySource(rc io.Reader, lim Limiter) (*os.File, int64, bool) {
	if !kernelCopy || lim != nil {
		return nil, 0, false
	}
	sec, ok := rc.(interface {
		Outer() (io.ReaderAt, int64, int64)
	})
	if !ok {
		return nil, 0, false
	}
	ra, base, _ := sec.Outer()
	src, ok := ra.(*os.File)
	return src, base, ok
}

// copyRun stores the pages of run from a local source file, whose byte
// shift+o is byte o of f, without reading them into this process on the
// way in: the kernel copies each page into f's data file (copy_file_range),
// and the page's CRC-32C is computed from what landed, read back a piece at
// a time into a buffer that stays in the CPU's caches. Against reading each
// page into a buffer, checksumming it and writing it out, that saves a pass
// over memory; large local loads are limited by exactly these passes.
//
// When few runs copy at once (pipelineCopies), a goroutine copies a page or
// two ahead while this one checksums, so that a lone load keeps two CPUs
// busy. With more, each run copies a page 128 KiB at a time and reads each
// piece back at once, on the same CPU, where it is still cached: a page
// handed to another CPU is read from memory again, which costs more than
// the overlap gains when every CPU has work.
//
// Every rule of storePage holds: space is reserved before a page is
// written, and its record, committed after, names complete bytes with
// their checksum. A waiter for one of these pages gets no bytes (nil) and
// reads the stored page. errNoKernelCopy, on the first page, leaves every
// claim to the caller.
func (s *Store) copyRun(ctx context.Context, f File, run []claim, src *os.File, shift int64, fh *os.File, progress func(int64)) (int64, error) {
	copyRuns.Add(1)
	defer copyRuns.Add(-1)
	bp := s.pieceBufs.Get().(*[]byte)
	defer s.pieceBufs.Put(bp)
	buf := *bp
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// copyOne reserves the space of c's page and has the kernel copy it;
	// with sum, it also checksums what landed.
	copyOne := func(c claim, sum bool) landedPage {
		n := f.PageLen(c.idx)
		if err := ctx.Err(); err != nil {
			return landedPage{err: err}
		}
		if err := s.reserve(n); err != nil {
			return landedPage{err: err}
		}
		off := c.idx * f.PageSize
		l := landedPage{n: n, reserved: true}
		if sum {
			l.crc, l.copied, l.err = copyChecksummed(fh, off, src, shift+off, n, buf)
		} else {
			l.copied, l.err = copyPage(fh, off, src, shift+off, n)
		}
		return l
	}

	var pages chan landedPage
	if s.pipelineCopies() {
		pages = make(chan landedPage, 2)
		go func() {
			defer close(pages)
			for _, c := range run {
				l := copyOne(c, false)
				select {
				case pages <- l:
				case <-ctx.Done():
					if l.reserved {
						s.used.Add(-l.n)
					}
					return
				}
				if l.err != nil || l.copied < l.n {
					return
				}
			}
		}()
	}
	// stop ends the copier, if any, and gives back what it reserved for
	// pages not taken.
	stop := func() {
		cancel()
		if pages != nil {
			for l := range pages {
				if l.reserved {
					s.used.Add(-l.n)
				}
			}
		}
	}

	var loaded int64
	for i, c := range run {
		var l landedPage
		if pages == nil {
			l = copyOne(c, true)
		} else {
			var ok bool
			if l, ok = <-pages; !ok {
				// The copier stopped early: the context ended while it
				// waited to hand a page over.
				err := ctx.Err()
				if err == nil {
					err = errors.New("page store: the kernel copy stopped early")
				}
				s.abandon(f, run[i:], err)
				return loaded, err
			}
			if l.err == nil && l.copied == l.n {
				l.crc, l.err = checksumRead(fh, c.idx*f.PageSize, l.n, buf)
			}
		}
		err := l.err
		switch {
		case errors.Is(err, errNoKernelCopy) && i == 0 && l.copied == 0:
			if l.reserved {
				s.used.Add(-l.n)
			}
			stop()
			return 0, err // every claim is left to the caller
		case err != nil && l.reserved:
			err = storage.NewError("cache", f.URI, storage.ErrUnavailable, err)
		case err == nil && l.copied < l.n:
			err = ErrChanged // the source is shorter than its size said
		}
		if err != nil {
			if l.reserved {
				s.used.Add(-l.n)
			}
		} else {
			s.stats.bytesFromStorage.Add(l.n)
			err = s.commitPage(f, c.idx, record{gen: f.gen, len: uint32(l.n), crc: l.crc})
		}
		s.pageFlights.finish(pageKey{f.fid, f.gen, c.idx}, c.fl, nil, err)
		if err != nil {
			stop()
			s.abandon(f, run[i+1:], err)
			return loaded, err
		}
		loaded += l.n
		if progress != nil {
			progress(l.n)
		}
	}
	return loaded, nil
}

// landedPage is a page of a run the kernel copied into its data file.
type landedPage struct {
	n, copied int64 // the page's length and the bytes copied
	crc       uint32
	reserved  bool // n bytes are reserved for it
	err       error
}

// copyRuns is how many copyRun calls are under way in this process, in
// every store: the stores of a process share its CPUs.
var copyRuns atomic.Int32

// pipelineCopies reports whether copyRun should copy ahead in a second
// goroutine: when few enough runs copy at once that each can keep two of
// the process's CPUs busy.
func (s *Store) pipelineCopies() bool {
	if m := s.copyMode.Load(); m != 0 {
		return m > 0 // a test chose
	}
	return 2*int(copyRuns.Load()) <= runtime.GOMAXPROCS(0)
}

// copyPiece is the size of the pieces copyRun reads back: small enough to
// stay in the CPU's caches.
const copyPiece = 128 << 10

// copyChecksummed copies n bytes of src at srcOff to dst (open for reading
// and writing) at dstOff inside the kernel, len(buf) bytes at a time, and
// returns the CRC-32C of the bytes as they landed in dst: each piece is
// read back into buf right after it was copied, while it is still in this
// CPU's caches. It returns how many bytes it copied, fewer than n only when
// src ended first (and then the checksum is of those).
func copyChecksummed(dst *os.File, dstOff int64, src *os.File, srcOff, n int64, buf []byte) (crc uint32, copied int64, err error) {
	for copied < n {
		want := min(int64(len(buf)), n-copied)
		k, err := copyPage(dst, dstOff+copied, src, srcOff+copied, want)
		if err == nil && k > 0 {
			if _, err = dst.ReadAt(buf[:k], dstOff+copied); err == nil {
				crc = crc32.Update(crc, castagnoli, buf[:k])
			}
		}
		copied += k
		if err != nil || k < want {
			return crc, copied, err
		}
	}
	return crc, copied, nil
}

// checksumRead computes the CRC-32C of n bytes of fh at off by reading
// them back into buf, a piece at a time.
func checksumRead(fh *os.File, off, n int64, buf []byte) (uint32, error) {
	var crc uint32
	for done := int64(0); done < n; {
		k, err := fh.ReadAt(buf[:min(int64(len(buf)), n-done)], off+done)
		if err != nil {
			return 0, fmt.Errorf("read back the stored page: %w", err)
		}
		crc = crc32.Update(crc, castagnoli, buf[:k])
		done += int64(k)
	}
	return crc, nil
}

// loadOne reads one claimed page from rc and stores it, without the reader
// goroutine of a longer run: the common case of a small file.
func (s *Store) loadOne(ctx context.Context, f File, c claim, rc io.Reader, lim Limiter, progress func(int64)) (int64, error) {
	if lim != nil {
		rc = &limitedReader{ctx: ctx, r: rc, lim: lim}
	}
	bp := s.getBuf()
	data := (*bp)[:f.PageLen(c.idx)]
	_, err := io.ReadFull(rc, data)
	if err != nil {
		err = sourceReadError(f.URI, err)
	} else {
		s.stats.bytesFromStorage.Add(int64(len(data)))
		err = s.storePage(f, c.idx, data, crc32.Checksum(data, castagnoli), nil)
	}
	if shared := s.pageFlights.finish(pageKey{f.fid, f.gen, c.idx}, c.fl, data, err); !shared {
		s.putBuf(bp)
	}
	if err != nil {
		return 0, err
	}
	if progress != nil {
		progress(int64(len(data)))
	}
	return int64(len(data)), nil
}

// fillPage fetches page idx of f from the source and stores it, once for
// all concurrent callers.
func (s *Store) fillPage(ctx context.Context, f File, idx int64) ([]byte, error) {
	key := pageKey{f.fid, f.gen, idx}
	for {
		fl, leader := s.pageFlights.claim(key)
		if !leader {
			data, err := fl.wait(ctx)
			if leaderGaveUp(ctx, err) || (err == nil && data == nil) {
				// The leader gave up, or stored the page without holding
				// its bytes (copyRun): fetchPage reads it from the store.
				continue
			}
			return data, err
		}
		data, err := s.fetchPage(ctx, f, idx)
		s.pageFlights.finish(key, fl, data, err)
		return data, err
	}
}

// fetchPage reads one page from the source and stores it. The bytes are
// returned even when they could not be kept (no space): a read must not fail
// because the cache is busy.
func (s *Store) fetchPage(ctx context.Context, f File, idx int64) ([]byte, error) {
	// Another caller may have stored it between our miss and our claim.
	if rec, ok, err := s.getRecord(f.fid, idx); err == nil && ok && rec.gen == f.gen {
		if data, err := s.readPageFile(f, idx, rec, make([]byte, rec.len)); err == nil {
			return data, nil
		}
	}
	n := f.PageLen(idx)
	rc, err := s.open(ctx, f.URI, idx*f.PageSize, n)
	if err != nil {
		return nil, err
	}
	data := make([]byte, n)
	_, err = io.ReadFull(rc, data)
	_ = rc.Close()
	if err != nil {
		return nil, sourceReadError(f.URI, err)
	}
	s.stats.bytesFromStorage.Add(n)
	if err := s.storePage(f, idx, data, crc32.Checksum(data, castagnoli), nil); err != nil {
		if errors.Is(err, ErrChanged) {
			return nil, err
		}
		s.log.Debug("page store: page served but not stored", "uri", f.URI, "page", idx, "err", err)
	}
	return data, nil
}

func (s *Store) open(ctx context.Context, uri string, off, n int64) (io.ReadCloser, error) {
	st, err := s.opts.Resolver.For(uri)
	if err != nil {
		return nil, err
	}
	return st.Open(ctx, uri, off, n)
}

// sourceReadError classifies a failure while reading a source stream: one
// that ends early changed since its size was taken.
func sourceReadError(uri string, err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ErrChanged
	}
	if storage.Kind(err) != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return storage.NewError("read", uri, storage.ErrUnavailable, err)
}

// storePage writes a page (whose CRC-32C is crc) and commits its record,
// after reserving its space. The page of a small file is appended to the
// shared segments; a page of a larger file goes to its offset in the file's
// data file (fh when the caller holds it open, else the file is opened for
// this page). It fails with ErrChanged when f is no longer the cached
// version.
func (s *Store) storePage(f File, idx int64, data []byte, crc uint32, fh *os.File) (err error) {
	n := int64(len(data))
	if err := s.reserve(n); err != nil {
		return err
	}
	rec := record{gen: f.gen, len: uint32(n), crc: crc}
	if s.inSegments(f) {
		seg, off, err := s.segs.reserve(n)
		if err != nil {
			s.used.Add(-n)
			return storage.NewError("cache", f.URI, storage.ErrUnavailable, err)
		}
		rec.seg, rec.off = seg.id, off
		if _, err := seg.fh.WriteAt(data, off); err != nil {
			s.uncommitted(rec)
			return storage.NewError("cache", f.URI, storage.ErrUnavailable, err)
		}
		return s.commitPage(f, idx, rec)
	}
	if fh == nil {
		if fh, err = s.openData(s.dataPath(f.fid, f.gen)); err != nil {
			s.used.Add(-n)
			return storage.NewError("cache", f.URI, storage.ErrUnavailable, err)
		}
		// WriteAt reports write errors; closing an unbuffered *os.File adds none to act on.
		defer func() { _ = fh.Close() }()
	}
	if _, err := fh.WriteAt(data, idx*f.PageSize); err != nil {
		s.used.Add(-n)
		return storage.NewError("cache", f.URI, storage.ErrUnavailable, err)
	}
	return s.commitPage(f, idx, rec)
}

// uncommitted gives back the space reserved for a page whose record was
// not committed.
func (s *Store) uncommitted(rec record) {
	s.used.Add(-int64(rec.len))
	if rec.seg != 0 {
		s.segs.release(rec.seg, rec.off, int64(rec.len))
	}
}

// commitPage commits the record of page idx of f, whose bytes are written
// where rec says and whose space is reserved. It fails with ErrChanged when
// f is no longer the cached version; on any failure the reservation is
// given back.
func (s *Store) commitPage(f File, idx int64, rec record) error {
	n := int64(rec.len)
	mu := s.stripe(f.fid)
	mu.Lock()
	m, ok, err := s.getMeta(f.fid)
	if err != nil || !ok || m.Gen != f.gen {
		mu.Unlock()
		s.uncommitted(rec)
		// This generation is gone; its file will never be used again.
		if rec.seg == 0 {
			s.removeFiles([]string{s.dataPath(f.fid, f.gen)})
		}
		if err != nil {
			return err
		}
		return ErrChanged
	}
	old, had, err := s.getRecord(f.fid, idx)
	if err != nil {
		mu.Unlock()
		s.uncommitted(rec)
		return err
	}
	rec.seq = s.seq.Add(1)
	rec.touched = time.Now().UnixNano()
	b := s.newBatch()
	if had {
		_ = b.Delete(accessKey(old.seq), nil)
		m.Pages--
		m.Bytes -= int64(old.len)
	}
	_ = b.Set(recordKey(f.fid, idx), rec.encode(), nil)
	_ = b.Set(accessKey(rec.seq), accessValue(f.fid, idx), nil)
	m.Pages++
	m.Bytes += n
	setMeta(b, f.fid, m)
	if err := s.apply(b); err != nil {
		mu.Unlock()
		s.uncommitted(rec)
		return err
	}
	if had {
		s.used.Add(-int64(old.len))
	} else {
		s.pages.Add(1)
	}
	s.stats.pagesStored.Add(1)
	if m.Pages >= pageCount(m.Size, s.opts.PageSize) {
		s.complete.add(f.fid, completeEntry{size: m.Size, version: m.Version})
	}
	mu.Unlock()
	if had && old.seg != 0 {
		s.segs.release(old.seg, old.off, int64(old.len))
	}
	return nil
}

// reserve takes n bytes of the capacity, evicting the least recently used
// pages when it must.
func (s *Store) reserve(n int64) error {
	for {
		u := s.used.Load()
		if u+n > s.opts.Capacity {
			break
		}
		if s.used.CompareAndSwap(u, u+n) {
			return nil
		}
	}
	s.evictMu.Lock()
	defer s.evictMu.Unlock()
	for {
		u := s.used.Load()
		if u+n <= s.opts.Capacity {
			if s.used.CompareAndSwap(u, u+n) {
				return nil
			}
			continue
		}
		found, err := s.evictOldest(u + n - s.opts.Capacity)
		if err != nil {
			return err
		}
		if found == 0 {
			return ErrNoSpace
		}
	}
}

// evictOldest evicts pages from the old end of the access order until need
// bytes are freed or the access order is used up. It returns how many
// candidates it found; 0 means there is nothing left to evict. The caller
// holds evictMu.
// It reads the candidates in batches, each scan starting after the last
// candidate of the previous one: pages smaller than a page size (small
// files) free little each, and a scan from the old end would step again
// over the deleted keys of every page evicted before it, which made
// freeing one page's room among 40,000 small pages take seconds.
func (s *Store) evictOldest(need int64) (int, error) {
	s.stats.evictScans.Add(1)
	found := 0
	var freed int64
	lower := []byte{'a'}
	for freed < need {
		var victims []victim
		const want = 64 // candidates per scan; those not needed stay
		err := s.scan(lower, []byte{'a' + 1}, func(k, v []byte) bool {
			var vc victim
			vc.seq = beUint64(k[1:])
			copy(vc.fid[:], v[:32])
			vc.idx = int64(beUint64(v[32:]))
			victims = append(victims, vc)
			return len(victims) < want
		})
		if err != nil {
			return found, err
		}
		if len(victims) == 0 {
			break
		}
		found += len(victims)
		lower = accessKey(victims[len(victims)-1].seq + 1)
		n, err := s.evictVictims(victims, need-freed)
		freed += n
		if err != nil {
			return found, err
		}
	}
	return found, nil
}

// victim is a page in the access order: its access sequence number, file and
// index.
type victim struct {
	seq uint64
	fid [32]byte
	idx int64
}

// evictVictims evicts the pages of victims, oldest first, until need bytes
// are freed, and returns the bytes freed. The caller holds evictMu.
func (s *Store) evictVictims(victims []victim, need int64) (int64, error) {
	var freed int64
	for _, v := range victims {
		if freed >= need {
			break
		}
		mu := s.stripe(v.fid)
		mu.Lock()
		rec, ok, err := s.getRecord(v.fid, v.idx)
		if err != nil {
			mu.Unlock()
			return freed, err
		}
		b := s.newBatch()
		_ = b.Delete(accessKey(v.seq), nil)
		if !ok || rec.seq != v.seq {
			// Touched since the scan (its key is already gone) or an
			// orphaned key: nothing to evict here.
			err = s.apply(b)
			mu.Unlock()
			if err != nil {
				return freed, err
			}
			continue
		}
		_ = b.Delete(recordKey(v.fid, v.idx), nil)
		if m, mok, err := s.getMeta(v.fid); err == nil && mok {
			m.Pages--
			m.Bytes -= int64(rec.len)
			if rec.gen == m.Gen {
				m.Evicted++
			}
			setMeta(b, v.fid, m)
		}
		err = s.applyChange(b, v.fid)
		if err == nil {
			s.used.Add(-int64(rec.len))
			s.pages.Add(-1)
			s.stats.pagesEvicted.Add(1)
			freed += int64(rec.len)
		}
		mu.Unlock()
		if err != nil {
			return freed, err
		}
		s.freePage(v.fid, v.idx, rec)
	}
	return freed, nil
}

// limitedReader takes tokens from a Limiter before each read, in chunks of
// at most LimiterChunk bytes.
type limitedReader struct {
	ctx context.Context
	r   io.Reader
	lim Limiter
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if len(p) > LimiterChunk {
		p = p[:LimiterChunk]
	}
	if err := l.lim.WaitN(l.ctx, len(p)); err != nil {
		return 0, err
	}
	return l.r.Read(p)
}
