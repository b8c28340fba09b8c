package httpapi

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage"
)

// resolve finds the file a data route names: by ufsFullPath when given
// (checked against the id), else by the id alone if this node has it.
func (s *Server) resolve(c echo.Context, q query) (pagestore.File, error) {
	id := c.Param("id")
	if err := checkID(id); err != nil {
		return pagestore.File{}, err
	}
	uri, ok, err := q.uriForID("ufsFullPath", id)
	if err != nil {
		return pagestore.File{}, err
	}
	if !ok {
		f, found, err := s.cfg.Store.LookupID(id)
		if err != nil {
			return pagestore.File{}, err
		}
		if !found {
			return pagestore.File{}, statusError(http.StatusNotFound, "file id %s is not cached on node %s; pass ufsFullPath to read it through", id, s.cfg.NodeID)
		}
		uri = f.URI
	}
	if err := checkURI(uri); err != nil {
		return pagestore.File{}, err
	}
	return s.cfg.Store.Resolve(c.Request().Context(), uri)
}

// checkURI refuses what is not a full URI with a scheme.
func checkURI(uri string) error {
	if _, err := storage.ParseURI(uri); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

func (s *Server) getPage(c echo.Context) error {
	q := parseQuery(c.Request().URL.RawQuery)
	n, err := strconv.ParseInt(c.Param("n"), 10, 64)
	if err != nil || n < 0 {
		return badRequest("page index %q is not a non-negative integer", c.Param("n"))
	}
	off, length, err := offsetLength(q)
	if err != nil {
		return err
	}
	f, err := s.resolve(c, q)
	if err != nil {
		return err
	}
	start := n * f.PageSize
	if start > f.Size {
		return badRequest("page %d is past the end of %s (%d bytes, %d pages of %d bytes)", n, f.URI, f.Size, f.Pages(), f.PageSize)
	}
	// A page starting exactly at the end (page 0 of an empty file, or the
	// page after a last full page) is empty: clients read until a short page.
	pageLen := f.PageLen(n)
	if off > pageLen {
		return badRequest("offset %d is past the end of page %d (%d bytes)", off, n, pageLen)
	}
	if length < 0 || length > pageLen-off {
		length = pageLen - off
	}
	return s.serve(c, f, start+off, length)
}

// offsetLength reads offset= (default 0) and length= (default -1: to the
// end), neither negative.
func offsetLength(q query) (int64, int64, error) {
	off, err := q.nonNegative("offset", 0)
	if err != nil {
		return 0, 0, err
	}
	length, err := q.nonNegative("length", -1)
	return off, length, err
}

func (s *Server) getRange(c echo.Context) error {
	q := parseQuery(c.Request().URL.RawQuery)
	off, length, err := offsetLength(q)
	if err != nil {
		return err
	}
	f, err := s.resolve(c, q)
	if err != nil {
		return err
	}
	if off > f.Size {
		return badRequest("offset %d is past the end of %s (%d bytes)", off, f.URI, f.Size)
	}
	if length < 0 || length > f.Size-off {
		length = f.Size - off
	}
	return s.serve(c, f, off, length)
}

func (s *Server) getChunk(c echo.Context) error {
	q := parseQuery(c.Request().URL.RawQuery)
	if _, err := q.nonNegative("chunkSize", 0); err != nil {
		return err
	}
	f, err := s.resolve(c, q)
	if err != nil {
		return err
	}
	return s.serve(c, f, 0, f.Size)
}

func (s *Server) head(c echo.Context) error { return s.ends(c, false) }
func (s *Server) tail(c echo.Context) error { return s.ends(c, true) }

// ends serves the first (or last) numOfBytes bytes, 1024 by default.
func (s *Server) ends(c echo.Context, last bool) error {
	q := parseQuery(c.Request().URL.RawQuery)
	n, err := q.nonNegative("numOfBytes", 1024)
	if err != nil {
		return err
	}
	f, err := s.resolve(c, q)
	if err != nil {
		return err
	}
	n = min(n, f.Size)
	off := int64(0)
	if last {
		off = f.Size - n
	}
	return s.serve(c, f, off, n)
}

// serve streams [off, off+n) of f. Headers go out with the first byte, so
// a failure before it still gets a proper error status.
func (s *Server) serve(c echo.Context, f pagestore.File, off, n int64) error {
	w := &lazyBody{c: c, length: n}
	if _, err := s.cfg.Store.ReadRange(c.Request().Context(), f, off, n, w); err != nil {
		return err
	}
	w.start()
	return nil
}

// lazyBody sends the 200 and its headers with the first write.
type lazyBody struct {
	c       echo.Context
	length  int64
	started bool
}

func (w *lazyBody) start() {
	if w.started {
		return
	}
	w.started = true
	h := w.c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMEOctetStream)
	h.Set(echo.HeaderContentLength, strconv.FormatInt(w.length, 10))
	w.c.Response().WriteHeader(http.StatusOK)
}

func (w *lazyBody) Write(p []byte) (int, error) {
	w.start()
	return w.c.Response().Write(p)
}
