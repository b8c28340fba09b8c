package httpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage"
)

func success(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"success": true, "message": ""})
}

// target returns the URI a write route names (ufsFullPath, checked against
// the id) and its store.
func (s *Server) target(c echo.Context, q query, key string) (string, storage.Store, error) {
	id := c.Param("id")
	if err := checkID(id); err != nil {
		return "", nil, err
	}
	uri, ok, err := q.uriForID(key, id)
	if err != nil {
		return "", nil, err
	}
	if !ok {
		return "", nil, badRequest("query parameter %s (the full URI) is required", key)
	}
	if err := checkURI(uri); err != nil {
		return "", nil, err
	}
	st, err := s.cfg.Resolver.For(uri)
	if err != nil {
		return "", nil, badRequest("%v", err)
	}
	return uri, st, nil
}

// postPage stores one page a client sends. The node cannot take a client's
// word for a file's bytes, so the page is checked against the source (read
// through the cache, which keeps the source's bytes): equal is 200, different
// is 412. Writing a new file goes through POST /v1/chunk.
func (s *Server) postPage(c echo.Context) error {
	q := parseQuery(c.Request().URL.RawQuery)
	n, err := strconv.ParseInt(c.Param("n"), 10, 64)
	if err != nil || n < 0 {
		return badRequest("page index %q is not a non-negative integer", c.Param("n"))
	}
	// By ufsFullPath, or by the id alone (the alluxiofs client's write_page
	// sends no query) when this node caches the file.
	ctx := c.Request().Context()
	f, err := s.resolve(c, q)
	if errors.Is(err, storage.ErrNotFound) {
		return statusError(http.StatusNotFound, "%s does not exist: a page can only be stored for an existing file; write a new file with POST /v1/chunk", q["ufsFullPath"])
	}
	if err != nil {
		return err
	}
	uri := f.URI
	if n >= f.Pages() && (n != 0 || f.Size != 0) {
		return badRequest("page %d is past the end of %s (%d pages)", n, uri, f.Pages())
	}
	want := f.PageLen(n)
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, want+1))
	if err != nil {
		return badRequest("read page body: %v", err)
	}
	if int64(len(body)) != want {
		return badRequest("page %d of %s is %d bytes; the body has %d", n, uri, want, len(body))
	}
	var src bytes.Buffer
	if _, err := s.cfg.Store.ReadRange(ctx, f, n*f.PageSize, want, &src); err != nil {
		return err
	}
	if !bytes.Equal(src.Bytes(), body) {
		return statusError(http.StatusPreconditionFailed, "page %d differs from %s as the storage system has it (version %s); the node caches the storage system's bytes", n, uri, f.Version)
	}
	return success(c)
}

// postChunk writes a whole file through to its storage system (atomically:
// nothing is visible under the name until the body is complete) and caches
// it.
func (s *Server) postChunk(c echo.Context) error {
	q := parseQuery(c.Request().URL.RawQuery)
	if _, err := q.nonNegative("chunkSize", 0); err != nil {
		return err
	}
	uri, st, err := s.target(c, q, "ufsFullPath")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	w, err := st.Create(ctx, uri, storage.CreateOptions{Overwrite: true, Size: c.Request().ContentLength})
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, c.Request().Body); err != nil {
		_ = w.Abort(context.WithoutCancel(ctx))
		if storage.Kind(err) != nil {
			return err
		}
		return badRequest("read request body: %v", err)
	}
	e, err := w.Commit(ctx)
	if err != nil {
		return err
	}
	s.cache(ctx, pagestore.FileRef{URI: uri, Size: e.Size, Version: e.Version, ModTime: e.ModTime, ContentHash: e.ContentHash})
	return success(c)
}

// cache loads a file just written, best effort: the write has succeeded
// whether or not the cache keeps a copy.
func (s *Server) cache(ctx context.Context, ref pagestore.FileRef) {
	if _, err := s.cfg.Store.LoadFile(ctx, ref, pagestore.LoadOptions{}, nil); err != nil {
		s.log.Warn("http api: written file not cached", "uri", ref.URI, "err", err)
	}
}

func (s *Server) mkdir(c echo.Context) error {
	q := parseQuery(c.Request().URL.RawQuery)
	uri, st, err := s.target(c, q, "ufsFullPath")
	if err != nil {
		return err
	}
	if err := st.MakeDir(c.Request().Context(), uri); err != nil {
		return err
	}
	return success(c)
}

// touch creates an empty file; an existing file is left as it is.
func (s *Server) touch(c echo.Context) error {
	q := parseQuery(c.Request().URL.RawQuery)
	uri, st, err := s.target(c, q, "ufsFullPath")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if e, err := st.Stat(ctx, uri); err == nil {
		if e.IsDir {
			return statusError(http.StatusConflict, "%s is a directory", uri)
		}
		return success(c)
	}
	w, err := st.Create(ctx, uri, storage.CreateOptions{Size: 0})
	if err != nil {
		if errors.Is(err, storage.ErrExists) {
			return success(c)
		}
		return err
	}
	if _, err := w.Commit(ctx); err != nil && !errors.Is(err, storage.ErrExists) {
		return err
	}
	return success(c)
}

// rm deletes a file, or a directory (with everything in it when
// recursive=true), from the storage system and the cache. With
// remove_alluxio_only=true it drops only what the cache holds of the file
// (or of everything under the directory) and leaves the storage system
// untouched.
func (s *Server) rm(c echo.Context) error {
	q := parseQuery(c.Request().URL.RawQuery)
	recursive, err := q.bool("recursive", false)
	if err != nil {
		return err
	}
	// The client's RMOption sends recursiveAlias too (the CLI's -R).
	if alias, err := q.bool("recursiveAlias", false); err != nil {
		return err
	} else if alias {
		recursive = true
	}
	cacheOnly, err := q.bool("remove_alluxio_only", false)
	if err != nil {
		return err
	}
	uri, st, err := s.target(c, q, "ufsFullPath")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if cacheOnly {
		if _, err := s.cfg.Store.Drop(uri); err != nil {
			return err
		}
		if _, err := s.cfg.Store.Evict(ctx, strings.TrimSuffix(uri, "/")+"/"); err != nil {
			return err
		}
		return success(c)
	}
	e, err := st.Stat(ctx, uri)
	if err != nil {
		return err
	}
	if !e.IsDir {
		if err := st.Delete(ctx, uri); err != nil {
			return err
		}
		if _, err := s.cfg.Store.Drop(uri); err != nil {
			return err
		}
		return success(c)
	}
	if recursive {
		err = removeTree(ctx, st, uri)
	} else {
		err = st.Delete(ctx, uri)
	}
	if err != nil {
		if k := storage.Kind(err); !recursive && (errors.Is(k, storage.ErrInvalidPath) || errors.Is(k, storage.ErrExists)) {
			return statusError(http.StatusConflict, "%s: directory not empty; pass recursive=true", uri)
		}
		return err
	}
	if _, err := s.cfg.Store.Evict(ctx, strings.TrimSuffix(uri, "/")+"/"); err != nil {
		return err
	}
	return success(c)
}

// removeTree deletes a directory and everything below it, deepest first.
func removeTree(ctx context.Context, st storage.Store, dir string) error {
	var entries []storage.Entry
	for cursor := ""; ; {
		page, err := st.List(ctx, dir, storage.ListOptions{Cursor: cursor})
		if err != nil {
			return err
		}
		entries = append(entries, page.Entries...)
		if cursor = page.Cursor; cursor == "" {
			break
		}
	}
	for _, e := range entries {
		var err error
		if e.IsDir {
			err = removeTree(ctx, st, e.URI)
		} else {
			err = st.Delete(ctx, e.URI)
		}
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	return st.Delete(ctx, dir)
}

// mv moves a file: it copies it, checks the copy's size, then deletes the
// source; when anything fails before the copy is in place, the source stays.
// The destination must not exist unless overwrite=true (or forced=true).
func (s *Server) mv(c echo.Context) error {
	q := parseQuery(c.Request().URL.RawQuery)
	overwrite, err := overwriteFlag(q)
	if err != nil {
		return err
	}
	src, dst, err := s.srcDst(c, q)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	se, err := s.copy(ctx, src, dst, overwrite)
	if err != nil {
		return err
	}
	dstStore, _ := s.cfg.Resolver.For(dst)
	de, err := dstStore.Stat(ctx, dst)
	if err != nil {
		return err
	}
	if de.Size != se.Size {
		return statusError(http.StatusPreconditionFailed, "copy of %s to %s has %d bytes, want %d; the source was kept", src, dst, de.Size, se.Size)
	}
	srcStore, _ := s.cfg.Resolver.For(src)
	if err := srcStore.Delete(ctx, src); err != nil {
		return err
	}
	if _, err := s.cfg.Store.Drop(src); err != nil {
		return err
	}
	return success(c)
}

// overwriteFlag reads whether a copy or move may replace an existing
// destination: overwrite=true, or forced=true as the alluxiofs client sends
// for copy(force=True) (force=true is taken too).
func overwriteFlag(q query) (bool, error) {
	for _, key := range []string{"overwrite", "forced", "force"} {
		v, err := q.bool(key, false)
		if err != nil || v {
			return v, err
		}
	}
	return false, nil
}

// copyFile copies a file; the destination must not exist unless
// overwrite=true (or forced=true).
func (s *Server) copyFile(c echo.Context) error {
	q := parseQuery(c.Request().URL.RawQuery)
	overwrite, err := overwriteFlag(q)
	if err != nil {
		return err
	}
	src, dst, err := s.srcDst(c, q)
	if err != nil {
		return err
	}
	if _, err := s.copy(c.Request().Context(), src, dst, overwrite); err != nil {
		return err
	}
	return success(c)
}

// moveKeys are the query keys mv and copy take: the URIs, the overwrite
// spellings, and what the alluxiofs client's CPOption sends besides
// (recursive, recursiveAlias, thread, buffer_size, preserve).
var moveKeys = []string{"srcPath", "dstPath", "overwrite", "forced", "force",
	"recursive", "recursiveAlias", "thread", "buffer_size", "preserve"}

func (s *Server) srcDst(c echo.Context, q query) (string, string, error) {
	// dstPath is not covered by the file id: a '&' in it would otherwise
	// send the file to the name's first half.
	if err := onlyKeys(c.Request().URL.RawQuery, moveKeys...); err != nil {
		return "", "", err
	}
	src, _, err := s.target(c, q, "srcPath")
	if err != nil {
		return "", "", err
	}
	// The client's HTTP library escaped only what may not stand in a query
	// (space, non-ASCII, a '%' when the name has one that is not an
	// escape): undo exactly that, so that a literal "%2B" in a name stays.
	raw, ok := q["dstPath"]
	dst := unescapeAdded(raw)
	if !ok {
		return "", "", badRequest("query parameter dstPath (the full URI) is required")
	}
	if err := checkURI(dst); err != nil {
		return "", "", err
	}
	if _, err := s.cfg.Resolver.For(dst); err != nil {
		return "", "", badRequest("%v", err)
	}
	if src == dst {
		return "", "", badRequest("srcPath and dstPath are the same")
	}
	return src, dst, nil
}

// copy copies one file, server-side when both ends are in one store that
// can, else through this node; the destination appears only when complete.
func (s *Server) copy(ctx context.Context, src, dst string, overwrite bool) (storage.Entry, error) {
	srcStore, _ := s.cfg.Resolver.For(src)
	dstStore, _ := s.cfg.Resolver.For(dst)
	se, err := srcStore.Stat(ctx, src)
	if err != nil {
		return storage.Entry{}, err
	}
	if se.IsDir {
		return storage.Entry{}, badRequest("%s is a directory: the data API copies and moves single files only "+
			"(a directory can hold any number of files, and one request can neither be resumed nor report each file's outcome); "+
			"copy or move a directory with a job: POST /api/v1/master/submit_job/copy (or move), or ferry job copy", src)
	}
	opts := storage.CreateOptions{Overwrite: overwrite, Size: se.Size}
	if cp, ok := srcStore.(storage.Copier); ok && srcStore.Scheme() == dstStore.Scheme() {
		if _, err := cp.Copy(ctx, src, dst, opts); err != nil {
			return storage.Entry{}, err
		}
		return se, nil
	}
	rc, err := srcStore.Open(ctx, src, 0, -1)
	if err != nil {
		return storage.Entry{}, err
	}
	defer func() { _ = rc.Close() }()
	w, err := dstStore.Create(ctx, dst, opts)
	if err != nil {
		return storage.Entry{}, err
	}
	n, err := io.Copy(w, rc)
	if err == nil && n != se.Size {
		err = fmt.Errorf("%w: read %d bytes of %s, want %d", pagestore.ErrChanged, n, src, se.Size)
	}
	if err != nil {
		_ = w.Abort(context.WithoutCancel(ctx))
		return storage.Entry{}, err
	}
	if _, err := w.Commit(ctx); err != nil {
		return storage.Entry{}, err
	}
	return se, nil
}
