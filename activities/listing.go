package activities

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/workflows"
)

// maxScanFactor bounds how many raw entries one page may look at, as a
// multiple of its limit, when filters reject most of them: the page then
// returns early with a cursor instead of scanning the whole tree in one call.
const maxScanFactor = 50

// selector evaluates a job's filters on listed entries.
type selector struct {
	name   *regexp.Regexp
	filter workflows.Filter
}

func newSelector(in workflows.ListInput) (*selector, error) {
	s := &selector{filter: in.Filter}
	if in.FileFilterRegx != "" {
		re, err := regexp.Compile("^(?:" + in.FileFilterRegx + ")$")
		if err != nil {
			return nil, fmt.Errorf("%w: fileFilterRegx: %v", storage.ErrInvalidPath, err)
		}
		s.name = re
	}
	return s, nil
}

// keep reports whether e qualifies.
func (s *selector) keep(e storage.Entry) bool {
	if e.IsDir {
		return false
	}
	f := s.filter
	if s.name != nil && !s.name.MatchString(storage.Base(e.URI)) {
		return false
	}
	if f.MinSize > 0 && e.Size < f.MinSize {
		return false
	}
	if f.MaxSize > 0 && e.Size > f.MaxSize {
		return false
	}
	if !f.ReferenceTime.IsZero() {
		age := f.ReferenceTime.Sub(e.ModTime)
		if f.OlderThan > 0 && age < f.OlderThan {
			return false
		}
		if f.NewerThan > 0 && age > f.NewerThan {
			return false
		}
	}
	if len(f.Include) > 0 {
		ok := false
		for _, g := range f.Include {
			ok = ok || jobs.MatchGlob(g, e.RelPath)
		}
		if !ok {
			return false
		}
	}
	for _, g := range f.Exclude {
		if jobs.MatchGlob(g, e.RelPath) {
			return false
		}
	}
	return true
}

// page is one page of qualifying entries.
type page struct {
	entries []workflows.FileEntry
	cursor  string
	done    bool
	size    int64
}

// lister pages through a job's source: a directory, a single file, or an
// index file.
type lister struct {
	resolver *storage.Resolver
}

func (l *lister) page(ctx context.Context, in workflows.ListInput, limit int) (page, error) {
	sel, err := newSelector(in)
	if err != nil {
		return page{}, err
	}
	if in.IndexFile != "" {
		return l.indexPage(ctx, in, sel, limit)
	}
	st, err := l.resolver.For(in.Path)
	if err != nil {
		return page{}, err
	}
	if in.Cursor == "" {
		info, err := st.Stat(ctx, in.Path)
		if err != nil {
			return page{}, err
		}
		if !info.IsDir {
			var p page
			p.done = true
			if sel.keep(info) {
				p.entries = append(p.entries, fileEntry(info, ""))
				p.size = info.Size
			}
			return p, nil
		}
	}
	p := page{cursor: in.Cursor}
	scanned := 0
	for len(p.entries) < limit {
		lp, err := st.List(ctx, in.Path, storage.ListOptions{Recursive: true, Cursor: p.cursor, Limit: limit - len(p.entries)})
		if err != nil {
			return page{}, err
		}
		for _, e := range lp.Entries {
			scanned++
			if sel.keep(e) {
				p.entries = append(p.entries, fileEntry(e, e.RelPath))
				p.size += e.Size
			}
		}
		p.cursor = lp.Cursor
		if lp.Cursor == "" {
			p.done = true
			break
		}
		if scanned >= maxScanFactor*limit {
			break
		}
		activity.RecordHeartbeat(ctx, p.cursor)
	}
	return p, nil
}

func fileEntry(e storage.Entry, rel string) workflows.FileEntry {
	return workflows.FileEntry{URI: e.URI, RelPath: rel, Size: e.Size, Version: e.Version, Irregular: e.Irregular}
}

// indexPage reads URIs from an index file, one per line; the cursor is the
// byte offset of the next line. Each URI is stat'ed for its size and version;
// one that cannot be stat'ed is still listed (size -1) so that its failure
// is reported for that file.
func (l *lister) indexPage(ctx context.Context, in workflows.ListInput, sel *selector, limit int) (page, error) {
	var offset int64
	if in.Cursor != "" {
		n, err := strconv.ParseInt(in.Cursor, 10, 64)
		if err != nil || n < 0 {
			return page{}, fmt.Errorf("%w: bad index cursor %q", storage.ErrInvalidPath, in.Cursor)
		}
		offset = n
	}
	st, err := l.resolver.For(in.IndexFile)
	if err != nil {
		return page{}, err
	}
	r, err := st.Open(ctx, in.IndexFile, offset, -1)
	if err != nil {
		if errors.Is(err, storage.ErrOutOfRange) {
			return page{done: true}, nil
		}
		return page{}, err
	}
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	p := page{}
	for len(p.entries) < limit {
		line, err := br.ReadBytes('\n')
		if len(line) == 0 && errors.Is(err, io.EOF) {
			p.done = true
			break
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return page{}, err
		}
		offset += int64(len(line))
		uri := string(bytes.TrimRight(line, "\r\n"))
		uri = strings.TrimSpace(uri)
		if uri != "" && !strings.HasPrefix(uri, "#") {
			e := workflows.FileEntry{URI: uri, RelPath: storage.Base(uri), Size: -1}
			if fst, err := l.resolver.For(uri); err == nil {
				if info, err := fst.Stat(ctx, uri); err == nil {
					info.RelPath = e.RelPath
					if !sel.keep(info) {
						continue
					}
					e.Size, e.Version = info.Size, info.Version
					p.size += info.Size
				}
			}
			p.entries = append(p.entries, e)
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
