package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/ferryio/ferry/cachenode/ring"
	"github.com/ferryio/ferry/storage"
)

// fileInfo is the Alluxio worker's file status, with its Java-style keys.
type fileInfo struct {
	Type                   string `json:"mType"`
	Name                   string `json:"mName"`
	Path                   string `json:"mPath"`
	UfsPath                string `json:"mUfsPath"`
	LastModificationTimeMs int64  `json:"mLastModificationTimeMs"`
	Length                 int64  `json:"mLength"`
	HumanReadableFileSize  string `json:"mHumanReadableFileSize"`
	ContentHash            string `json:"mContentHash"`
	InAlluxioPercentage    int    `json:"mInAlluxioPercentage"`
}

func (s *Server) infoOf(e storage.Entry) fileInfo {
	fi := fileInfo{
		Type:    "file",
		Name:    storage.Base(e.URI),
		UfsPath: e.URI,
		Length:  e.Size,
	}
	if u, err := storage.ParseURI(e.URI); err == nil {
		fi.Path = u.Path
	}
	if !e.ModTime.IsZero() {
		fi.LastModificationTimeMs = e.ModTime.UnixMilli()
	}
	if e.IsDir {
		fi.Type, fi.Length = "directory", 0
	}
	fi.HumanReadableFileSize = humanSize(fi.Length)
	// "md5:9e10…" → "9e10…", the bare value the Alluxio clients show.
	if _, v, ok := strings.Cut(e.ContentHash, ":"); ok {
		fi.ContentHash = v
	} else {
		fi.ContentHash = e.ContentHash
	}
	if !e.IsDir {
		if f, ok, err := s.cfg.Store.Lookup(e.URI); err == nil && ok && f.Version == e.Version {
			switch f.Size {
			case 0:
				fi.InAlluxioPercentage = 100
			default:
				fi.InAlluxioPercentage = int(f.CachedBytes * 100 / f.Size)
			}
		}
	}
	return fi
}

// humanSize formats a byte count the way Alluxio's FormatUtils does: bytes
// up to 5 KiB, then KB, MB, … with two decimals while the value is ≤ 5120.
func humanSize(n int64) string {
	if n <= 5*1024 {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n)
	for _, unit := range []string{"KB", "MB", "GB", "TB"} {
		v /= 1024
		if v <= 5*1024 {
			return fmt.Sprintf("%.2f%s", v, unit)
		}
	}
	return fmt.Sprintf("%.2fPB", v/1024)
}

// pathParam reads path= (normally encoded) and checks it is a full URI.
func pathParam(q query) (string, error) {
	p, ok, err := q.text("path")
	if err != nil {
		return "", err
	}
	if !ok || p == "" {
		return "", badRequest("query parameter path (a full URI such as s3://bucket/key) is required")
	}
	return p, checkURI(p)
}

func (s *Server) statPath(c echo.Context) (storage.Store, storage.Entry, error) {
	p, err := pathParam(parseQuery(c.Request().URL.RawQuery))
	if err != nil {
		return nil, storage.Entry{}, err
	}
	st, err := s.cfg.Resolver.For(p)
	if err != nil {
		return nil, storage.Entry{}, badRequest("%v", err)
	}
	e, err := st.Stat(c.Request().Context(), p)
	if err != nil {
		return nil, storage.Entry{}, err
	}
	e.URI = p
	return st, e, nil
}

func (s *Server) info(c echo.Context) error {
	_, e, err := s.statPath(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, []fileInfo{s.infoOf(e)})
}

// listFiles answers the children of a directory (a file answers itself),
// streamed as the listing pages arrive.
func (s *Server) listFiles(c echo.Context) error {
	st, e, err := s.statPath(c)
	if err != nil {
		return err
	}
	if !e.IsDir {
		return c.JSON(http.StatusOK, []fileInfo{s.infoOf(e)})
	}
	ctx := c.Request().Context()
	first, err := st.List(ctx, e.URI, storage.ListOptions{})
	if err != nil {
		return err
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	sep := "["
	page := first
	for {
		for _, child := range page.Entries {
			if _, err := io.WriteString(w, sep); err != nil {
				return err
			}
			sep = ","
			if err := enc.Encode(s.infoOf(child)); err != nil {
				return err
			}
		}
		if page.Cursor == "" {
			break
		}
		if page, err = st.List(ctx, e.URI, storage.ListOptions{Cursor: page.Cursor}); err != nil {
			return err // headers are out: the connection is cut
		}
	}
	if sep == "[" {
		_, err = io.WriteString(w, "[]")
	} else {
		_, err = io.WriteString(w, "]")
	}
	return err
}

// nodeOf answers the owner of a path: {"Host": …, "HttpServerPort": …}.
// The alluxiofs client pastes path= raw here (a '+' in a name stays '+'),
// so it is decoded like ufsFullPath, not as a form: otherwise a name with
// '+' would be placed on another node than the one that caches it.
func (s *Server) nodeOf(c echo.Context) error {
	raw := c.Request().URL.RawQuery
	if err := onlyKeys(raw, "path"); err != nil {
		return err
	}
	p, ok := parseQuery(raw).rawURI("path")
	if !ok || p == "" {
		return badRequest("query parameter path (a full URI such as s3://bucket/key) is required")
	}
	if err := checkURI(p); err != nil {
		return err
	}
	r, err := s.cfg.Ring(c.Request().Context())
	if err != nil {
		return statusError(http.StatusServiceUnavailable, "%v", err)
	}
	m, ok := r.Owner(p)
	if !ok {
		return statusError(http.StatusServiceUnavailable, "no cache node is on the ring")
	}
	return c.JSON(http.StatusOK, map[string]any{"Host": m.Host, "HttpServerPort": m.HTTPPort})
}

// clusterNode is one member in /v1/cluster.
type clusterNode struct {
	ring.Member
	JoinedAt *time.Time `json:"joinedAt,omitempty"`
	LastSeen *time.Time `json:"lastSeen,omitempty"`
}

// cluster answers the ring: its members and, with path=, the owners of
// that path (replicas= of them, default 1), first owner first.
func (s *Server) cluster(c echo.Context) error {
	q := parseQuery(c.Request().URL.RawQuery)
	ctx := c.Request().Context()
	r, err := s.cfg.Ring(ctx)
	if err != nil {
		return statusError(http.StatusServiceUnavailable, "%v", err)
	}
	seen := map[string][2]time.Time{}
	if s.cfg.Members != nil {
		if snap, err := s.cfg.Members(ctx); err == nil {
			for _, rec := range snap.Members {
				seen[rec.Member.ID] = [2]time.Time{rec.JoinedAt, rec.LastSeen}
			}
		}
	}
	out := struct {
		Self   string        `json:"self"`
		Nodes  []clusterNode `json:"nodes"`
		Path   string        `json:"path,omitempty"`
		Owners []string      `json:"owners,omitempty"`
	}{Self: s.cfg.NodeID, Nodes: []clusterNode{}}
	for _, m := range r.Members() {
		n := clusterNode{Member: m}
		if t, ok := seen[m.ID]; ok {
			n.JoinedAt, n.LastSeen = &t[0], &t[1]
		}
		out.Nodes = append(out.Nodes, n)
	}
	if p, ok, err := q.text("path"); err != nil {
		return err
	} else if ok {
		if err := checkURI(p); err != nil {
			return err
		}
		k, err := q.nonNegative("replicas", 1)
		if err != nil {
			return err
		}
		out.Path = p
		for _, m := range r.Owners(p, int(max(k, 1))) {
			out.Owners = append(out.Owners, m.ID)
		}
	}
	return c.JSON(http.StatusOK, out)
}

// load forwards /v1/load (job submit, progress, stop) to the job API and
// relays its answer.
func (s *Server) load(c echo.Context) error {
	if s.cfg.JobAPIURL == "" {
		return statusError(http.StatusServiceUnavailable, "job API not available: node %s was started without a job API URL (--job-api-url)", s.cfg.NodeID)
	}
	req := c.Request()
	target := strings.TrimSuffix(s.cfg.JobAPIURL, "/") + "/v1/load"
	if req.URL.RawQuery != "" {
		target += "?" + req.URL.RawQuery
	}
	fwd, err := http.NewRequestWithContext(req.Context(), req.Method, target, req.Body)
	if err != nil {
		return statusError(http.StatusServiceUnavailable, "job API URL %q: %v", s.cfg.JobAPIURL, err)
	}
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		fwd.Header.Set(echo.HeaderContentType, ct)
	}
	resp, err := s.cfg.HTTPClient.Do(fwd)
	if err != nil {
		return statusError(http.StatusServiceUnavailable, "job API not reachable at %s: %v", s.cfg.JobAPIURL, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if ct := resp.Header.Get(echo.HeaderContentType); ct != "" {
		c.Response().Header().Set(echo.HeaderContentType, ct)
	}
	c.Response().WriteHeader(resp.StatusCode)
	_, err = io.Copy(c.Response(), resp.Body)
	return err
}
