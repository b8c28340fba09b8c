package activities

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"

	"go.temporal.io/sdk/activity"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// copyBufferSize is the buffer of a streamed copy.
const copyBufferSize = 1 << 20

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}

// errChecksum marks a destination whose bytes differ from the source's.
var errChecksum = errors.New("content check failed")

// errSourceChanged marks a source whose size or version changed between the
// stat before its read and the end of the read (or the delete of a move).
var errSourceChanged = errors.New("source changed during transfer")

// fileSystemSchemes are the destinations whose names are paths: an empty
// segment, a "." or ".." segment or a trailing "/" in an entry's relative
// path would name another file there (or none).
var fileSystemSchemes = []string{"file://", "hdfs://"}

// isFileSystem reports whether uri names a place on a file system.
func isFileSystem(uri string) bool {
	for _, s := range fileSystemSchemes {
		if strings.HasPrefix(strings.ToLower(uri), s) {
			return true
		}
	}
	return false
}

// checkDestinationName fails an entry whose relative path a file-system
// destination cannot hold as it is: object keys such as "a//x.txt" or
// "mark/withbody/" would land on another name ("a/x.txt", "mark/withbody"),
// which may be another entry's: a collision. It names the clash.
func checkDestinationName(dst string, e workflows.FileEntry) error {
	if !isFileSystem(dst) || e.RelPath == "" {
		return nil
	}
	fail := func(why string) error {
		return storage.NewError("copy", e.URI, storage.ErrInvalidPath, fmt.Errorf("the destination file system cannot hold the name %q: %s", e.RelPath, why))
	}
	if strings.HasSuffix(e.RelPath, "/") {
		return fail(`it ends in "/" (an object with bytes under a directory's name); it would collide with the directory ` + strconv.Quote(strings.TrimRight(e.RelPath, "/")))
	}
	segs := strings.Split(e.RelPath, "/")
	clean := make([]string, 0, len(segs))
	for _, seg := range segs {
		switch seg {
		case "", ".":
		case "..":
			return fail(`it holds a ".." segment, which would leave the destination`)
		default:
			clean = append(clean, seg)
		}
	}
	if len(clean) != len(segs) {
		return fail("name collision: on a file system it is the same name as " + strconv.Quote(strings.Join(clean, "/")))
	}
	return nil
}

// unchanged fails with errSourceChanged (retryable: a later attempt reads
// the source again from the start) unless the source still has the size
// and version of before.
func unchanged(ctx context.Context, src storage.Store, before storage.Entry, when string) error {
	now, err := src.Stat(ctx, before.URI)
	if err != nil {
		return err
	}
	if now.Size != before.Size || now.Version != before.Version || now.IsDir != before.IsDir {
		return storage.NewError("copy", before.URI, storage.ErrUnavailable,
			fmt.Errorf("%w %s: size %d → %d, version %q → %q", errSourceChanged, when, before.Size, now.Size, before.Version, now.Version))
	}
	return nil
}

// DestinationOf maps a listed entry onto the destination: dst + the entry's
// path relative to the source, byte for byte (an object key's relative
// path may begin with "/": "coll//x.txt" under "coll" is "/x.txt", another
// object than "x.txt"); a single-file source maps to exactly dst.
func DestinationOf(dst string, e workflows.FileEntry) string {
	return storage.JoinKey(dst, e.RelPath)
}

// CopyBatch copies (or, for move jobs, moves) the batch's entries,
// following spec/jobs.md §5 (see runInput and runBatch for how entries
// arrive, outcomes leave, and heartbeats resume).
func (n *Node) CopyBatch(ctx context.Context, in workflows.BatchInput) (workflows.BatchResult, error) {
	lim := n.limiter(ctx, in)
	again := resumed(ctx, in)
	return n.runInput(ctx, in, func(ctx context.Context, e workflows.FileEntry) (fileOutcome, error) {
		// The job's retry pass gets only files that failed in a way worth
		// retrying, possibly after their destination was written.
		wrote := in.LastAttempt
		return withRetries(ctx, n.FileAttempts, func() (fileOutcome, error) { return n.transfer(ctx, in, e, lim, &wrote, again) })
	})
}

// transfer copies one entry and, for a move, deletes its source once the
// copy is committed and verified.
//
// *wrote is set once an attempt starts writing the destination, and from
// the start in the job's retry pass. A later attempt that finds the
// destination existing then checks whether it holds the source's content
// (length and hash, or the MD5 of both read back): that is what is left
// when a commit's answer was lost, or when the verification or the source's
// delete failed after a good commit. Such a destination is taken as this
// job's copy, and a move goes on to delete the source, instead of skipping
// the file (copy) or failing it as "already exists" with the file in both
// places (move). Content that differs keeps the rules of spec/jobs.md §5.
//
// A resumed batch (see resumed) also checks a destination it finds: the same
// content is taken as the earlier attempt's commit (transferred, not
// skipped), other content is left alone and skipped.
func (n *Node) transfer(ctx context.Context, in workflows.BatchInput, e workflows.FileEntry, lim Limiter, wrote *bool, resumed bool) (fileOutcome, error) {
	move := in.Type == workflows.JobMove
	if e.Irregular != "" {
		return skipIrregular(ctx, e.URI, e.Irregular), nil
	}
	if err := checkDestinationName(in.Dst, e); err != nil {
		return fileOutcome{}, err
	}
	dstURI := DestinationOf(in.Dst, e)
	src, err := n.Resolver.For(e.URI)
	if err != nil {
		return fileOutcome{}, err
	}
	dst, err := n.Resolver.For(dstURI)
	if err != nil {
		return fileOutcome{}, err
	}
	srcInfo, srcErr := src.Stat(ctx, e.URI)
	dstInfo, dstErr := dst.Stat(ctx, dstURI)
	adopted := false
	switch {
	case srcErr != nil && errors.Is(srcErr, storage.ErrNotFound) && move && dstErr == nil && !dstInfo.IsDir && (e.Size < 0 || dstInfo.Size == e.Size):
		// A move of this file already finished (a batch redone after its
		// node died): the source is gone and the destination is whole.
		removeLeftovers(ctx, dst, dstURI)
		return fileOutcome{bytes: dstInfo.Size}, nil
	case srcErr != nil:
		return fileOutcome{}, srcErr
	case srcInfo.IsDir:
		return fileOutcome{}, storage.NewError("copy", e.URI, storage.ErrInvalidPath, errors.New("is a directory"))
	case srcInfo.Irregular != "":
		return skipIrregular(ctx, e.URI, srcInfo.Irregular), nil
	case dstErr == nil && dstInfo.IsDir:
		return fileOutcome{}, storage.NewError("copy", dstURI, storage.ErrInvalidPath, errors.New("type mismatch: the destination is a directory, the source a file"))
	case dstErr == nil && !in.Overwrite:
		removeLeftovers(ctx, dst, dstURI)
		// A move whose destination already holds the source's bytes (left
		// by an attempt that died after its commit, even in another
		// process) finishes: it deletes the source.
		if *wrote || move || resumed {
			err := verifyCopy(ctx, src, dst, dstURI, srcInfo, "", true)
			if err == nil {
				adopted = true
				break
			}
			if !errors.Is(err, errChecksum) {
				return fileOutcome{}, err // cannot tell now whether it is ours
			}
			if *wrote {
				// A destination this job wrote that does not hold the
				// source's content is known bad: remove it and fail the
				// attempt (the next one copies again); never count it as
				// skipped.
				return fileOutcome{}, removeBad(ctx, dst, dstURI, err)
			}
			// Other bytes that this job did not write are someone else's:
			// never removed, never replaced without --overwrite.
		}
		if move {
			return fileOutcome{}, storage.NewError("move", dstURI, storage.ErrExists, errors.New("destination already exists (use --overwrite to replace it)"))
		}
		return fileOutcome{skipped: true, bytes: dstInfo.Size, reason: SkipAtDestination}, nil
	case dstErr != nil && !errors.Is(dstErr, storage.ErrNotFound):
		return fileOutcome{}, dstErr
	}

	written := dstInfo
	if !adopted {
		*wrote = true
		var srcHash string
		if written, srcHash, err = n.copyFile(ctx, src, dst, srcInfo, dstURI, in, lim); err != nil {
			return fileOutcome{}, err
		}
		if in.CheckContent || move {
			if err := verifyCopy(ctx, src, dst, dstURI, srcInfo, srcHash, in.CheckContent); err != nil {
				// Never leave a destination that is known bad; the source stays.
				return fileOutcome{}, removeBad(ctx, dst, dstURI, err)
			}
		}
	}
	if move {
		// Delete only the version that was read: a source rewritten since
		// stays, and the copy of its earlier version goes (a retry copies
		// the new one).
		if err := unchanged(ctx, src, srcInfo, "before its delete"); err != nil {
			if errors.Is(err, errSourceChanged) && !adopted && !in.Overwrite {
				_ = dst.Delete(ctx, dstURI)
			}
			return fileOutcome{}, err
		}
		if err := src.Delete(ctx, e.URI); err != nil {
			return fileOutcome{}, fmt.Errorf("copied to %s, but the source could not be deleted (the file is in both places): %w", dstURI, err)
		}
		removeEmptiedDirs(ctx, src, in.Source, e.URI)
	}
	return fileOutcome{bytes: written.Size}, nil
}

// resumed reports whether this batch continues an attempt that may have
// committed files it could not report: a Temporal retry of the activity (a
// kill, a timeout), or the rest of a batch the job re-planned after a
// failure or cancellation.
func resumed(ctx context.Context, in workflows.BatchInput) bool {
	return in.Resumed || activity.GetInfo(ctx).Attempt > 1
}

// removeLeftovers removes what a writer of dstURI killed mid-commit may
// have left beside a destination that is not written again (a partial
// file), where the store can tell; a failure only leaves it there.
func removeLeftovers(ctx context.Context, dst storage.Store, dstURI string) {
	if r, ok := dst.(storage.LeftoverRemover); ok {
		if err := r.RemoveLeftovers(ctx, dstURI); err != nil {
			activity.GetLogger(ctx).Warn("a leftover of an earlier write could not be removed", "path", dstURI, "error", err)
		}
	}
}

// removeBad deletes a destination that failed its check and returns the
// check's error, joined with the delete's when the bad file stays.
func removeBad(ctx context.Context, dst storage.Store, dstURI string, checkErr error) error {
	if err := dst.Delete(ctx, dstURI); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w; the bad destination could not be removed: %s", checkErr, err.Error())
	}
	return checkErr
}

// skipIrregular accounts for an entry that is not a regular file (a pipe, a
// device, a link not followed): listed, counted as skipped, never opened.
func skipIrregular(ctx context.Context, uri, kind string) fileOutcome {
	activity.GetLogger(ctx).Info("skipped: not a regular file", "path", uri, "kind", kind)
	return fileOutcome{skipped: true, reason: "not a regular file: " + kind, irregular: true}
}

// The reasons of skipped entries that are regular files.
const (
	// SkipAtDestination: a copy without --overwrite found the destination.
	SkipAtDestination = "already at the destination"
	// SkipCached: a load with --skip-if-exists found the file cached.
	SkipCached = "already cached"
)

// removeEmptiedDirs removes the directories that deleting the moved file
// uri emptied, from its parent up to (not including) the job's source
// root, and stops at the first one that still holds something. A move thus
// removes only directories it emptied itself: an empty directory that held
// no moved file (one that was empty before, or one that --include left
// alone) stays, and so does the source root, which a recurring move
// policy lists again.
// Of several files deleted at once from one directory, the last to finish
// its delete finds the directory empty. Failures are ignored: the directory
// is then left, never a file lost.
func removeEmptiedDirs(ctx context.Context, st storage.Store, root, uri string) {
	root = strings.TrimSuffix(root, "/")
	if root == "" || !strings.HasPrefix(uri, root+"/") {
		return // a single-file source
	}
	for dir := uri; ; {
		i := strings.LastIndexByte(strings.TrimSuffix(dir, "/"), '/')
		if i < len(root) {
			return
		}
		dir = dir[:i]
		if dir == root {
			return
		}
		if err := st.Delete(ctx, dir); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return // not empty
		}
	}
}

// copyFile writes the destination atomically: server-side within one store
// that can, else streamed through this node. It returns the committed entry
// and, when the bytes passed through here and checkContent asks, their MD5.
func (n *Node) copyFile(ctx context.Context, src, dst storage.Store, srcInfo storage.Entry, dstURI string, in workflows.BatchInput, lim Limiter) (storage.Entry, string, error) {
	opts := storage.CreateOptions{Overwrite: in.Overwrite, Size: srcInfo.Size, Mode: srcInfo.Mode}
	if c, ok := src.(storage.Copier); ok && src == dst && lim == nil {
		ent, err := c.Copy(ctx, srcInfo.URI, dstURI, opts)
		if err != nil {
			return ent, "", err
		}
		if err := unchanged(ctx, src, srcInfo, "while it was copied"); err != nil {
			if !in.Overwrite {
				_ = dst.Delete(ctx, dstURI) // a copy of an unknown mix
			}
			return storage.Entry{}, "", err
		}
		n.countRead(ent.Size)
		return ent, "", nil
	}
	r, err := src.Open(ctx, srcInfo.URI, 0, -1)
	if err != nil {
		return storage.Entry{}, "", err
	}
	defer func() { _ = r.Close() }()
	w, err := dst.Create(ctx, dstURI, opts)
	if err != nil {
		return storage.Entry{}, "", err
	}
	var h hash.Hash
	var reader io.Reader = r
	// One count of the bytes read, for the node's metric and the batch's
	// bytes in flight.
	if count := bothCounts(n.SourceBytes, readProgress(ctx)); count != nil {
		reader = &countingReader{r: reader, count: count}
	}
	if in.CheckContent {
		h = md5.New()
		reader = io.TeeReader(reader, h)
	}
	if lim != nil {
		reader = &limitedReader{ctx: ctx, r: reader, lim: lim}
	}
	bufp := copyBuffers.Get().(*[]byte)
	n64, err := io.CopyBuffer(writerOnly{w}, reader, *bufp)
	copyBuffers.Put(bufp)
	if err == nil && n64 != srcInfo.Size {
		err = storage.NewError("copy", srcInfo.URI, storage.ErrUnavailable, fmt.Errorf("%w: read %d bytes, the source had %d", errSourceChanged, n64, srcInfo.Size))
	}
	if err == nil {
		// A rewrite in place keeps the size: only the version tells.
		err = unchanged(ctx, src, srcInfo, "while it was read")
	}
	if err != nil {
		_ = w.Abort(ctx)
		return storage.Entry{}, "", err
	}
	ent, err := w.Commit(ctx)
	if err != nil {
		return storage.Entry{}, "", err
	}
	sum := ""
	if h != nil {
		sum = "md5:" + hex.EncodeToString(h.Sum(nil))
	}
	return ent, sum, nil
}

// verifyCopy checks the committed destination: always its length, and the
// content hashes both systems keep when they use the same algorithm; with
// checkContent and no comparable hashes, it reads the destination back and
// compares its MD5 with the source's (computed while copying, or now).
func verifyCopy(ctx context.Context, src, dst storage.Store, dstURI string, srcInfo storage.Entry, srcHash string, checkContent bool) error {
	now, err := dst.Stat(ctx, dstURI)
	if err != nil {
		return err
	}
	mismatch := func(format string, args ...any) error {
		return storage.NewError("verify", dstURI, storage.ErrUnavailable, fmt.Errorf("%w: "+format, append([]any{errChecksum}, args...)...))
	}
	if now.Size != srcInfo.Size {
		return mismatch("destination has %d bytes, source %d", now.Size, srcInfo.Size)
	}
	if sameAlgorithm(srcInfo.ContentHash, now.ContentHash) {
		if srcInfo.ContentHash != now.ContentHash {
			return mismatch("hash %s, source %s", now.ContentHash, srcInfo.ContentHash)
		}
		return nil
	}
	if !checkContent {
		return nil
	}
	want := srcHash
	if want == "" && strings.HasPrefix(srcInfo.ContentHash, "md5:") {
		want = srcInfo.ContentHash
	}
	if want == "" {
		if want, err = md5Of(ctx, src, srcInfo.URI); err != nil {
			return err
		}
	}
	got, err := md5Of(ctx, dst, dstURI)
	if err != nil {
		return err
	}
	if got != want {
		return mismatch("destination %s, source %s", got, want)
	}
	return nil
}

func md5Of(ctx context.Context, st storage.Store, uri string) (string, error) {
	r, err := st.Open(ctx, uri, 0, -1)
	if err != nil {
		return "", err
	}
	defer func() { _ = r.Close() }()
	h := md5.New()
	bufp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bufp)
	if _, err := io.CopyBuffer(h, r, *bufp); err != nil {
		return "", storage.NewError("verify", uri, storage.ErrUnavailable, err)
	}
	return "md5:" + hex.EncodeToString(h.Sum(nil)), nil
}

func sameAlgorithm(a, b string) bool {
	ia, ib := strings.IndexByte(a, ':'), strings.IndexByte(b, ':')
	return ia > 0 && ib > 0 && a[:ia] == b[:ib] && a[:ia] != "etag"
}

// writerOnly hides a Writer's other methods from io.CopyBuffer, so it does
// not look for ReaderFrom on it.
type writerOnly struct{ io.Writer }

type limitedReader struct {
	ctx context.Context
	r   io.Reader
	lim Limiter
}

func (l *limitedReader) Read(p []byte) (int, error) {
	// Small reads keep the bytes read ahead of the limit small: each is
	// paid for after it is read.
	if len(p) > limitedRead {
		p = p[:limitedRead]
	}
	n, err := l.r.Read(p)
	if n > 0 {
		if werr := l.lim.WaitN(l.ctx, n); werr != nil {
			return n, werr
		}
	}
	return n, err
}

// limitedRead is the most a limited copy reads from its source at once.
const limitedRead = 64 << 10

// countingReader reports the bytes read from a source.
type countingReader struct {
	r     io.Reader
	count func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.count(int64(n))
	}
	return n, err
}
