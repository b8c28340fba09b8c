package activities

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode/utf8"

	"go.temporal.io/sdk/activity"

	"github.com/ferryio/ferry/filter"
	"github.com/ferryio/ferry/manifest"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// maxScanFactor bounds how many raw entries one page may look at, as a
// multiple of its limit, when filters reject most of them: the page then
// returns early with a cursor instead of scanning the whole tree in one call.
const maxScanFactor = 50

// maxTopDirs is the most top-level directories a source is partitioned by
// (their names are in the workflow state);
// a source with more is listed as one tree.
const maxTopDirs = 1024

// countChunk is the most entries a count-only listing asks its store for
// at once. A count-only page keeps no entries, so what it holds in memory
// is one such answer, whatever the page size: the coordinator's memory
// during a dry run is listParallel chunks, independent of the tree.
const countChunk = 1000

func compileFilter(regx string, rules workflows.Filter) (*filter.Filter, error) {
	f, err := filter.Compile(rules, regx)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", storage.ErrInvalidPath, err.Error())
	}
	return f, nil
}

func keep(f *filter.Filter, e storage.Entry) bool {
	return f.Keep(filter.Entry{Name: storage.Base(e.URI), RelPath: e.RelPath, IsDir: e.IsDir, Size: e.Size, ModTime: e.ModTime})
}

// page is one page of qualifying entries: count of them, of size bytes in
// all, listed in entries unless the lister only counts.
type page struct {
	entries []workflows.FileEntry
	count   int
	cursor  string
	done    bool
	size    int64
	// scanned counts the raw entries looked at.
	scanned int64
	// unread counts, in a page that only counts, the entries its listing
	// could not read (see unreadPrefix), and unreadFailures holds the
	// first MaxResultFailures of them as failures: a dry run reports them
	// as the run would fail them.
	unread         int64
	unreadFailures []workflows.Failure
}

// add counts e into the page, and keeps it unless countOnly.
func (p *page) add(e workflows.FileEntry, countOnly bool) {
	p.count++
	p.size += max(e.Size, 0)
	if !countOnly {
		p.entries = append(p.entries, e)
		return
	}
	if err := unreadError(e); err != nil {
		p.unread++
		if len(p.unreadFailures) < workflows.MaxResultFailures {
			p.unreadFailures = append(p.unreadFailures, workflows.Failure{Path: e.URI, Reason: reasonOf(err), Message: err.Error()})
		}
	}
}

// merge adds the counts of q, a page listed after p, to p.
func (p *page) merge(q page) {
	p.entries = append(p.entries, q.entries...)
	p.count += q.count
	p.size += q.size
	p.unread += q.unread
	if n := workflows.MaxResultFailures - len(p.unreadFailures); n > 0 {
		p.unreadFailures = append(p.unreadFailures, q.unreadFailures[:min(n, len(q.unreadFailures))]...)
	}
}

// lister pages through a job's source: a directory, a single file, or an
// index file.
type lister struct {
	resolver *storage.Resolver
	// emptyDir, when set, is given the relative path of every empty
	// directory of the source (see emptyDirMaker).
	emptyDir func(ctx context.Context, rel string) error
	// countOnly: pages count their entries and keep none (dry runs).
	countOnly bool
	// reuse is the store's last answer, whose entries were copied out: the
	// next answer may be put in it (storage.ListOptions.Reuse).
	reuse []storage.Entry
}

// emptyDirMaker returns what recreates the source's empty directories at
// the destination of a copy or move to a file system (spec: a directory
// tree arrives with its empty directories), or nil: for loads, dry runs,
// object-store destinations (which have no directories), and jobs with a
// filter (an empty directory matches no file rule: it is left alone).
// Empty directories are not entries: they are not counted, as directory
// markers are not.
func emptyDirMaker(r *storage.Resolver, in workflows.ListPageInput) func(context.Context, string) error {
	if in.Type == workflows.JobLoad || in.Dst == "" || in.CountOnly || in.IndexFile != "" ||
		in.FileFilterRegx != "" || !reflect.ValueOf(in.Filter).IsZero() || !isFileSystem(in.Dst) {
		return nil
	}
	return func(ctx context.Context, rel string) error {
		uri := storage.JoinKey(in.Dst, rel)
		st, err := r.For(uri)
		if err != nil {
			return err
		}
		return st.MakeDir(ctx, uri)
	}
}

// page lists up to limit qualifying entries of the tree at path from
// cursor; relPrefix is prepended to the entries' relative paths (the
// directory of a partition within the source). A path that is a file is
// one page of one entry.
func (l *lister) page(ctx context.Context, path, relPrefix, cursor string, sel *filter.Filter, limit int, recursive bool) (page, error) {
	st, err := l.resolver.For(path)
	if err != nil {
		return page{}, err
	}
	if cursor == "" && relPrefix == "" && recursive {
		info, err := st.Stat(ctx, path)
		if err != nil {
			return page{}, err
		}
		if !info.IsDir {
			var p page
			p.done = true
			if keep(sel, info) {
				p.add(fileEntry(info, ""), l.countOnly)
			}
			return p, nil
		}
	}
	p := page{cursor: cursor}
	scanned := 0
	emptyDirs := recursive && l.emptyDir != nil
	// A count-only page keeps no entry: it builds relative paths only
	// when the filter matches them.
	paths := !l.countOnly || sel.UsesPaths() || emptyDirs
	for p.count < limit {
		ask := limit - p.count
		if l.countOnly {
			ask = min(ask, countChunk)
		}
		lp, err := st.List(ctx, path, storage.ListOptions{Recursive: recursive, Cursor: p.cursor, Limit: ask, EmptyDirs: emptyDirs, Reuse: l.reuse})
		if err != nil {
			return page{}, err
		}
		// The entries are copied out below: the next answer may reuse
		// this one's slice.
		l.reuse = lp.Entries
		if l.emptyDir != nil && cursor == "" && scanned == 0 && len(lp.Entries) == 0 && lp.Cursor == "" {
			// The directory listed holds nothing at all (a non-recursive
			// listing, of the source's top, shows its directories too).
			if err := l.emptyDir(ctx, relPrefix); err != nil {
				return page{}, err
			}
		}
		for _, e := range lp.Entries {
			scanned++
			if relPrefix != "" && paths {
				e.RelPath = relPrefix + "/" + e.RelPath
			}
			if e.Err != nil {
				if keepUnread(sel, e) {
					p.add(unreadEntry(e, e.RelPath), l.countOnly)
				}
				continue
			}
			if e.IsDir && recursive {
				// Recursive listings return directories only when asked
				// for the empty ones.
				if emptyDirs {
					if err := l.emptyDir(ctx, e.RelPath); err != nil {
						return page{}, err
					}
				}
				continue
			}
			if keep(sel, e) {
				p.add(fileEntry(e, e.RelPath), l.countOnly)
			}
		}
		p.cursor = lp.Cursor
		p.scanned = int64(scanned)
		if lp.Cursor == "" {
			p.done = true
			break
		}
		if scanned >= maxScanFactor*limit {
			break
		}
		if activity.IsActivity(ctx) { // Select runs outside activities
			activity.RecordHeartbeat(ctx, p.cursor)
		}
	}
	return p, nil
}

func fileEntry(e storage.Entry, rel string) workflows.FileEntry {
	return workflows.FileEntry{URI: e.URI, RelPath: rel, Size: e.Size, Version: e.Version, Irregular: e.Irregular}
}

// unreadPrefix starts the Irregular text of an entry that stands for a
// directory the listing could not list, or a file it could not stat, for a
// reason of its own that trying again will not change (storage.Entry.Err):
// "could not be read: <reason code>: <cause>", as in "could not be read:
// PERMISSION_DENIED: permission denied". Such an entry is listed and
// counted like a file so that the job accounts for it, and every batch
// fails it without touching storage (see unreadError).
const unreadPrefix = "could not be read: "

// unreadable reports whether the error of the listing of dir, a directory
// below the source, is that directory's own and permanent (permission
// denied, a name or path too long, not a directory): the directory is then
// one failed entry. Other errors (I/O errors, a cancelled context) fail
// the listing, which is tried again. So does any error of an object store,
// whose "directories" are key prefixes: a listing it refuses is refused for
// the bucket (credentials, a policy), not for one prefix, and the job
// fails with that one message rather than once per top-level prefix.
func unreadable(dir string, err error) bool {
	return isFileSystem(dir) && storage.IsEntryError(err)
}

// unreadEntry is the entry of e, which the listing could not read (e.Err).
func unreadEntry(e storage.Entry, rel string) workflows.FileEntry {
	return workflows.FileEntry{URI: e.URI, RelPath: rel, Irregular: unreadPrefix + reasonOf(e.Err) + ": " + causeOf(e.Err)}
}

// causeOf is what the system said of err, without the paths it names
// (those are the entry's own URI, in bytes): "permission denied", "file
// name too long".
func causeOf(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if se := (*storage.Error)(nil); errors.As(err, &se) && se.Err != nil {
		return se.Err.Error()
	}
	if k := storage.Kind(err); k != nil {
		return k.Error()
	}
	return err.Error()
}

// unreadError is the failure of an entry that stands for what its listing
// could not read (see unreadPrefix), nil for any other entry: "could not
// be listed: permission denied", never retried. It does not repeat the
// entry's path, which the failure gives and which may be longer than a
// failure's message.
func unreadError(e workflows.FileEntry) error {
	rest, ok := strings.CutPrefix(e.Irregular, unreadPrefix)
	if !ok {
		return nil
	}
	reason, cause, _ := strings.Cut(rest, ": ")
	kind := storage.ErrInvalidPath
	switch reason {
	case workflows.ErrTypePermission:
		kind = storage.ErrPermission
	case workflows.ErrTypeNotFound:
		kind = storage.ErrNotFound
	}
	if cause == kind.Error() {
		return fmt.Errorf("could not be listed: %w", kind)
	}
	return fmt.Errorf("could not be listed: %w: %s", kind, cause)
}

// keepUnread reports whether an entry the listing could not read (e.Err)
// qualifies as far as can be told: a file by its name and path (its size
// and age are unknown), a directory unless the filter leaves out everything
// below it.
func keepUnread(f *filter.Filter, e storage.Entry) bool {
	return f.KeepUnread(filter.Entry{Name: storage.Base(e.URI), RelPath: e.RelPath, IsDir: e.IsDir})
}

// errIndexDir is the failure of a line of an index file that names a
// directory.
var errIndexDir = errors.New("a directory (an index file names files)")

// indexPage reads URIs from an index file, one per line; the cursor is the
// byte offset of the next line. Each URI is stat'ed for its size and version;
// one that cannot be stat'ed is still listed (size -1) so that its failure
// is reported for that file (by its batch; a dry run, which has none,
// fails it here when the failure is final), and one that names a directory
// is failed.
func (l *lister) indexPage(ctx context.Context, indexFile, cursor string, sel *filter.Filter, limit int) (page, error) {
	var offset int64
	if cursor != "" {
		n, err := strconv.ParseInt(cursor, 10, 64)
		if err != nil || n < 0 {
			return page{}, fmt.Errorf("%w: bad index cursor %q", storage.ErrInvalidPath, cursor)
		}
		offset = n
	}
	st, err := l.resolver.For(indexFile)
	if err != nil {
		return page{}, err
	}
	r, err := st.Open(ctx, indexFile, offset, -1)
	if err != nil {
		if errors.Is(err, storage.ErrOutOfRange) {
			return page{done: true}, nil
		}
		return page{}, err
	}
	defer func() { _ = r.Close() }()
	br := bufio.NewReaderSize(r, 64<<10)
	p := page{}
	for p.count < limit {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			p.done = true
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return page{}, err
		}
		offset += int64(len(line))
		p.scanned++
		uri := string(bytes.TrimRight(line, "\r\n"))
		uri = strings.TrimSpace(uri)
		if uri != "" && !strings.HasPrefix(uri, "#") {
			e := workflows.FileEntry{URI: uri, RelPath: storage.Base(uri), Size: -1}
			fst, err := l.resolver.For(uri)
			var info storage.Entry
			if err == nil {
				info, err = fst.Stat(ctx, uri)
			}
			if err != nil && l.countOnly && !storage.IsRetryable(err) {
				// A dry run counts a line a run would fail (no such
				// file, outside the mounts) as failed, with its reason,
				// as it does a directory it cannot read.
				info = storage.Entry{URI: uri, RelPath: e.RelPath, Err: err}
				if keepUnread(sel, info) {
					p.add(unreadEntry(info, e.RelPath), l.countOnly)
				}
				continue
			}
			if err == nil {
				info.RelPath = e.RelPath
				if info.IsDir {
					// Not dropped: failed, as the index names files.
					info.Err = storage.NewError("list", uri, storage.ErrInvalidPath, errIndexDir)
					if keepUnread(sel, info) {
						p.add(unreadEntry(info, e.RelPath), l.countOnly)
					}
					continue
				}
				if !keep(sel, info) {
					continue
				}
				e.Size, e.Version = info.Size, info.Version
			}
			p.add(e, l.countOnly)
		}
		if errors.Is(err, io.EOF) {
			p.done = true
			break
		}
	}
	if !p.done {
		p.cursor = strconv.FormatInt(offset, 10)
	}
	return p, nil
}

// partition splits a source into listing partitions: the files at its top
// (when it has any), and its top-level directories in up to max-1
// contiguous groups, each listed recursively with its own cursor. A file, an index file, a source
// with too many top-level directories or with names that are not valid
// UTF-8 (partitions travel in workflow history as JSON) is one partition.
func (l *lister) partition(ctx context.Context, in workflows.PartitionInput) ([]workflows.Partition, error) {
	if in.IndexFile != "" {
		return []workflows.Partition{{Kind: workflows.PartitionIndex}}, nil
	}
	whole := []workflows.Partition{{Kind: workflows.PartitionTree}}
	st, err := l.resolver.For(in.Path)
	if err != nil {
		return nil, err
	}
	info, err := st.Stat(ctx, in.Path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir || in.Max < 2 {
		return whole, nil
	}
	var dirs []string
	files := false
	cursor := ""
	for {
		lp, err := st.List(ctx, in.Path, storage.ListOptions{Cursor: cursor, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, e := range lp.Entries {
			if !e.IsDir || e.Err != nil {
				// A file, or an entry that could not be stat'ed: the
				// page of the top level lists it (failed).
				files = true
				continue
			}
			if !utf8.ValidString(e.URI) || len(dirs) >= maxTopDirs {
				return whole, nil
			}
			dirs = append(dirs, e.URI)
		}
		if lp.Cursor == "" {
			break
		}
		cursor = lp.Cursor
		if activity.IsActivity(ctx) {
			activity.RecordHeartbeat(ctx, len(dirs))
		}
	}
	sort.Strings(dirs)
	var parts []workflows.Partition
	if files || len(dirs) == 0 {
		// The top level's own files; a source with none has no page for
		// them (a file created there once the job has begun may or may
		// not be listed, as anywhere else in a source that changes).
		parts = append(parts, workflows.Partition{ID: 0, Kind: workflows.PartitionTop})
	}
	groups := min(in.Max-1, len(dirs))
	for g := 0; g < groups; g++ {
		lo, hi := g*len(dirs)/groups, (g+1)*len(dirs)/groups
		parts = append(parts, workflows.Partition{ID: g + 1, Kind: workflows.PartitionTree, Dirs: dirs[lo:hi]})
	}
	return parts, nil
}

// relOf is the path of dir relative to the source root.
func relOf(root, dir string) string {
	return strings.Trim(strings.TrimPrefix(dir, strings.TrimSuffix(root, "/")), "/")
}

// listStep lists up to limit qualifying entries of a source partition from
// where it stands and returns them with the partition moved past them.
func (l *lister) listStep(ctx context.Context, in workflows.ListPageInput, part workflows.Partition, sel *filter.Filter, limit int) (page, workflows.Partition, error) {
	switch part.Kind {
	case workflows.PartitionIndex:
		p, err := l.indexPage(ctx, in.Path, part.Cursor, sel, limit)
		part.Cursor, part.Done = p.cursor, p.done
		return p, part, err
	case workflows.PartitionTop:
		p, err := l.page(ctx, in.Path, "", part.Cursor, sel, limit, false)
		part.Cursor, part.Done = p.cursor, p.done
		return p, part, err
	case workflows.PartitionTree:
		if len(part.Dirs) == 0 {
			p, err := l.page(ctx, in.Path, "", part.Cursor, sel, limit, true)
			part.Cursor, part.Done = p.cursor, p.done
			return p, part, err
		}
		var out page
		for part.DirIndex < len(part.Dirs) && out.count < limit {
			dir := part.Dirs[part.DirIndex]
			rel := relOf(in.Path, dir)
			p, err := l.page(ctx, dir, rel, part.Cursor, sel, limit-out.count, true)
			if err != nil {
				if errors.Is(err, storage.ErrNotFound) && part.Cursor == "" {
					// Removed since the source was partitioned: nothing to list.
					part.DirIndex++
					continue
				}
				if !unreadable(dir, err) {
					return page{}, part, err
				}
				// The directory cannot be listed (or what is left of it,
				// when it was listed in part): one failed entry.
				e := storage.Entry{URI: dir, RelPath: rel, IsDir: true, Err: err}
				if keepUnread(sel, e) {
					out.add(unreadEntry(e, rel), l.countOnly)
				}
				part.DirIndex++
				part.Cursor = ""
				continue
			}
			out.merge(p)
			out.scanned += p.scanned
			part.Cursor = p.cursor
			if !p.done {
				break
			}
			part.DirIndex++
			part.Cursor = ""
		}
		part.Done = part.DirIndex >= len(part.Dirs)
		return out, part, nil
	}
	return page{}, part, fmt.Errorf("%w: unknown partition kind %q", storage.ErrInvalidPath, part.Kind)
}

// pageCountProgress is the heartbeat of a count-only page: where the page
// started (a retry of another page ignores it), where it stands, and what
// it counted so far.
type pageCountProgress struct {
	From, At       manifest.PieceState
	Count          int
	Size, Scanned  int64
	Unread         int64               `json:",omitempty"`
	UnreadFailures []workflows.Failure `json:",omitempty"`
}

// piecesPerPage is how many pieces a listing page is listed in: a retry of
// a ListPage cut in the middle of its page lists again at most the piece
// that was being listed.
const piecesPerPage = 4

// pieceLog keeps the pieces of one listing page in the manifest store as
// they are listed, and finds those an earlier attempt of the same page
// stored (see manifest/listed.go).
type pieceLog struct {
	m                        *manifest.Store
	jobID, page, fingerprint string
	attempt                  int
	// fetched is, after listPartition, which attempt listed which pieces;
	// pieces the page's pieces (without their entries).
	fetched []workflows.PageFetch
	pieces  []manifest.Piece
}

func stateOf(p workflows.Partition) manifest.PieceState {
	return manifest.PieceState{Cursor: p.Cursor, DirIndex: p.DirIndex, Done: p.Done}
}

// chain returns the stored pieces that continue one another from the
// page's start state, one per index (stripped pieces have no entries left
// to give).
func chain(pieces []manifest.Piece, from manifest.PieceState) []manifest.Piece {
	var out []manifest.Piece
	for _, p := range pieces {
		if p.Index == len(out) && p.From == from && !p.Stripped {
			out = append(out, p)
			from = p.To
		}
	}
	return out
}

// fetchLog sums up, per attempt, the pieces it stored; an attempt other
// than the current one that neither stored the page's last piece nor
// ended with it was cut while listing.
func fetchLog(ls manifest.Listed, current int, last int) []workflows.PageFetch {
	byAttempt := map[int]*workflows.PageFetch{}
	var order []int
	get := func(a, first int) *workflows.PageFetch {
		f, ok := byAttempt[a]
		if !ok {
			f = &workflows.PageFetch{Attempt: a, First: first}
			byAttempt[a] = f
			order = append(order, a)
		}
		return f
	}
	for _, s := range ls.Starts {
		get(s.Attempt, s.First)
	}
	for _, p := range ls.Pieces {
		f := get(p.Attempt, p.Index)
		f.First = min(f.First, p.Index)
		f.Pieces++
		f.Entries += p.Count
	}
	sort.Ints(order)
	out := make([]workflows.PageFetch, 0, len(order))
	for _, a := range order {
		f := byAttempt[a]
		f.Cut = a != current && f.First+f.Pieces-1 != last
		out = append(out, *f)
	}
	return out
}

// listPartition lists the next page of a source partition, in pieces, and
// returns it with the partition moved past it. With a pieceLog, each piece
// is stored before the next one is listed, and the pieces an earlier
// attempt stored are read back instead of listed again: a retry continues
// after the last piece stored, never before its last heartbeat.
func (l *lister) listPartition(ctx context.Context, in workflows.ListPageInput, log *pieceLog) (page, workflows.Partition, error) {
	sel, err := compileFilter(in.FileFilterRegx, in.Filter)
	if err != nil {
		return page{}, in.Partition, err
	}
	l.emptyDir = emptyDirMaker(l.resolver, in)
	part := in.Partition
	limit := max(in.Limit, 1)
	pieceLimit := max(1, (limit+piecesPerPage-1)/piecesPerPage)
	var out page
	var listed manifest.Listed
	var done []manifest.Piece
	if log != nil {
		if listed, err = log.m.ReadListed(ctx, log.jobID, log.page, log.fingerprint); err != nil {
			return page{}, part, err
		}
		done = chain(listed.Pieces, stateOf(part))
		for _, p := range done {
			out.count += int(p.Count)
			out.entries = append(out.entries, p.Entries...)
			out.size += p.Size
			out.scanned += p.Scanned
			part.Cursor, part.DirIndex, part.Done = p.To.Cursor, p.To.DirIndex, p.To.Done
		}
	}
	// A count-only page stores no piece: in an activity it heartbeats its
	// progress after each piece and continues from its last heartbeat.
	resumable := l.countOnly && log == nil && activity.IsActivity(ctx)
	if resumable && activity.HasHeartbeatDetails(ctx) {
		var hb pageCountProgress
		if err := activity.GetHeartbeatDetails(ctx, &hb); err == nil && hb.From == stateOf(in.Partition) {
			part.Cursor, part.DirIndex, part.Done = hb.At.Cursor, hb.At.DirIndex, hb.At.Done
			out.count, out.size, out.scanned = hb.Count, hb.Size, hb.Scanned
			out.unread, out.unreadFailures = hb.Unread, hb.UnreadFailures
		}
	}
	started := false
	for index := len(done); !part.Done && out.count < limit && out.scanned < int64(maxScanFactor*limit); index++ {
		if log != nil && !started {
			st := manifest.Start{Attempt: log.attempt, First: index}
			if err := log.m.WriteStart(ctx, log.jobID, log.page, log.fingerprint, st); err != nil {
				return page{}, part, err
			}
			listed.Starts = append(listed.Starts, st)
			started = true
		}
		from := stateOf(part)
		p, next, err := l.listStep(ctx, in, part, sel, min(pieceLimit, limit-out.count))
		if err != nil {
			return page{}, part, err
		}
		out.merge(p)
		out.scanned += max(p.scanned, 1)
		part = next
		if log == nil {
			if resumable {
				activity.RecordHeartbeat(ctx, pageCountProgress{From: stateOf(in.Partition), At: stateOf(part), Count: out.count, Size: out.size, Scanned: out.scanned,
					Unread: out.unread, UnreadFailures: out.unreadFailures})
			}
			continue
		}
		piece := manifest.Piece{Index: index, Attempt: log.attempt, From: from, To: stateOf(part), Scanned: max(p.scanned, 1), Count: int64(p.count), Size: p.size, Entries: p.entries}
		if err := log.m.WritePiece(ctx, log.jobID, log.page, log.fingerprint, piece); err != nil {
			return page{}, part, err
		}
		piece.Entries = nil
		listed.Pieces = append(listed.Pieces, piece)
		done = append(done, piece)
		activity.RecordHeartbeat(ctx, index)
	}
	if log != nil {
		log.fetched = fetchLog(listed, log.attempt, len(done)-1)
		log.pieces = listed.Pieces
	}
	return out, part, nil
}
