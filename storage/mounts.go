package storage

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
)

// Mount is one storage location a process may touch: a URI prefix (scheme,
// bucket or namenode, path) and whether writes are allowed under it.
//
// "file:///data" allows /data and everything below it, after symbolic
// links are resolved; "s3://lake/raw" allows the keys of bucket lake under
// raw/; "s3://lake" the whole bucket; "hdfs://nn1:8020/user" that path on
// that namenode only. A URI's bucket or host must equal a mount's exactly:
// an HDFS namenode or an S3 bucket that no mount names is never contacted.
type Mount struct {
	URI      URI
	ReadOnly bool
	// Deny makes the location off limits (written "deny:URI"): nothing
	// under it is touched, even inside a wider mount, unless a mount that
	// lies within it allows it (the more specific rule wins). ferry dev
	// denies its data directory (its token, its database) and mounts only
	// its manifest store inside it.
	Deny bool
	// Reserved makes the location Ferry's own (its manifest store): nothing
	// under it is touched through this resolver, whatever other mount
	// covers it. Processes reach it through a resolver of its own
	// (Resolver.WithMounts); see Resolver.Reserving.
	Reserved bool
}

// String is the mount as it is configured ("ro:" marks a read-only one).
func (m Mount) String() string {
	switch {
	case m.Reserved:
		return "reserved:" + m.URI.String()
	case m.Deny:
		return "deny:" + m.URI.String()
	case m.ReadOnly:
		return "ro:" + m.URI.String()
	}
	return m.URI.String()
}

// ParseMount reads one mount: a URI or an absolute local path, optionally
// prefixed with "ro:" for a read-only mount. A relative local path is made
// absolute against the working directory.
func ParseMount(s string) (Mount, error) {
	var m Mount
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "ro:"); ok {
		m.ReadOnly, s = true, rest
	} else if rest, ok := strings.CutPrefix(s, "deny:"); ok {
		m.Deny, s = true, rest
	}
	if s == "" {
		return Mount{}, fmt.Errorf("%w: empty mount", ErrInvalidPath)
	}
	if !strings.Contains(s, "://") {
		abs, err := filepath.Abs(s)
		if err != nil {
			return Mount{}, fmt.Errorf("%w: mount %q: %s", ErrInvalidPath, s, err.Error())
		}
		s = "file://" + abs
	}
	u, err := ParseURI(s)
	if err != nil {
		return Mount{}, fmt.Errorf("mount %q: %w", s, err)
	}
	if u.Scheme == "file" {
		if u.Authority != "" && u.Authority != "localhost" {
			return Mount{}, fmt.Errorf("%w: mount %q: file URIs name no host", ErrInvalidPath, s)
		}
		u.Authority = ""
		if u.Path == "" {
			u.Path = "/"
		}
		u.Path = filepath.Clean(u.Path)
	} else if u.Authority == "" && u.Scheme != "hdfs" {
		return Mount{}, fmt.Errorf("%w: mount %q names no bucket", ErrInvalidPath, s)
	}
	if u.Path != "/" {
		u.Path = strings.TrimSuffix(u.Path, "/")
	}
	m.URI = u
	return m, nil
}

// Canonicalizer is implemented by stores whose names can reach the same
// object by several spellings (symbolic links): Canonical returns the one
// real URI of uri, which is what mounts are checked against.
type Canonicalizer interface {
	Canonical(uri string) (string, error)
}

// Access is what an operation does to a URI.
type Access int

// The kinds of access a mount check distinguishes.
const (
	// Read covers stat, list and open.
	Read Access = iota
	// Write covers create, delete, mkdir and the destination of a copy.
	Write
)

// confinement is the allow-list a confined resolver checks.
type confinement struct {
	mounts []Mount
}

// check refuses uri unless a mount covers it for acc. uri is canonicalised
// first by st when st can.
func (c *confinement) check(st Store, op, uri string, acc Access) error {
	u, err := ParseURI(uri)
	if err != nil {
		return NewError(op, uri, ErrInvalidPath, err)
	}
	if cn, ok := st.(Canonicalizer); ok && u.Scheme == "file" {
		real, err := cn.Canonical(uri)
		if err != nil {
			return err
		}
		if u, err = ParseURI(real); err != nil {
			return NewError(op, uri, ErrInvalidPath, err)
		}
		u.Authority = ""
	}
	var readOnly *Mount
	for _, d := range c.mounts {
		if d.Reserved && covers(d.URI, u) {
			return NewError(op, uri, ErrPermission, fmt.Errorf("under %s, Ferry's manifest store, which jobs cannot read or write", d.URI))
		}
	}
	for _, d := range c.mounts {
		if !d.Deny || !covers(d.URI, u) {
			continue
		}
		inside := false
		for _, m := range c.mounts {
			inside = inside || (!m.Deny && covers(d.URI, m.URI) && covers(m.URI, u) && (acc == Read || !m.ReadOnly))
		}
		if !inside {
			return NewError(op, uri, ErrPermission, fmt.Errorf("under %s, which is off limits", d))
		}
	}
	for i, m := range c.mounts {
		if m.Deny || m.Reserved || !covers(m.URI, u) {
			continue
		}
		if acc == Write && m.ReadOnly {
			readOnly = &c.mounts[i]
			continue
		}
		return nil
	}
	if readOnly != nil {
		return NewError(op, uri, ErrPermission, fmt.Errorf("mount %s is read-only", readOnly.URI))
	}
	where := ""
	if u.String() != uri {
		where = " (it resolves to " + u.String() + ")"
	}
	if len(c.mounts) == 0 {
		return NewError(op, uri, ErrPermission, fmt.Errorf("no storage location is mounted%s: configure mounts (storage configuration \"mounts\", FERRY_MOUNTS or --mount)", where))
	}
	names := make([]string, len(c.mounts))
	for i, m := range c.mounts {
		names[i] = m.String()
	}
	return NewError(op, uri, ErrPermission, fmt.Errorf("outside every mount%s; mounts: %s", where, strings.Join(names, ", ")))
}

// covers reports whether mount m contains u.
func covers(m, u URI) bool {
	if m.Scheme != u.Scheme || m.Authority != u.Authority {
		return false
	}
	if m.Path == "" || m.Path == "/" {
		return true
	}
	return u.Path == m.Path || strings.HasPrefix(u.Path, m.Path+"/")
}

// NewConfinedResolver returns a resolver over stores that refuses, with
// ErrPermission and a message naming the mounts, every URI no mount covers
// for the access an operation needs. Every call on a store it returns is
// checked, so each path from a request to a storage call passes through
// the same check. Local mounts are canonicalised (symbolic links resolved)
// by the file store, as are the URIs checked against them.
func NewConfinedResolver(mounts []Mount, stores ...Store) (*Resolver, error) {
	r := NewResolver()
	c := &confinement{}
	for _, m := range mounts {
		if m.URI.Scheme == "file" {
			if st, ok := findStore(stores, "file").(Canonicalizer); ok {
				real, err := st.Canonical(m.URI.String())
				if err != nil {
					return nil, fmt.Errorf("mount %s: %w", m.URI, err)
				}
				if m.URI, err = ParseURI(real); err != nil {
					return nil, fmt.Errorf("mount %s: %w", real, err)
				}
				m.URI.Authority = ""
			}
		}
		if !slices.Contains(c.mounts, m) {
			// The same mount given twice (a --mount repeating the working
			// directory, a location reserved again) is one mount.
			c.mounts = append(c.mounts, m)
		}
	}
	for _, s := range stores {
		g := &guarded{Store: s, c: c}
		if cp, ok := s.(Copier); ok {
			r.stores[s.Scheme()] = &guardedCopier{guarded: g, cp: cp}
		} else {
			r.stores[s.Scheme()] = g
		}
	}
	r.confinement = c
	return r, nil
}

func findStore(stores []Store, scheme string) Store {
	for _, s := range stores {
		if s.Scheme() == scheme {
			return s
		}
	}
	return nil
}

// Check refuses uri with ErrPermission when the resolver is confined and no
// mount allows acc on it; an unconfined resolver allows everything.
func (r *Resolver) Check(uri string, acc Access) error {
	st, err := r.For(uri)
	if err != nil {
		return err
	}
	if r.confinement == nil {
		return nil
	}
	op := "read"
	if acc == Write {
		op = "write"
	}
	return r.confinement.check(unwrap(st), op, uri, acc)
}

// WithMounts returns a resolver over the same stores confined to mounts
// alone: the manifest store's own, which reaches the location that
// Reserving takes away from the rest.
func (r *Resolver) WithMounts(mounts ...Mount) (*Resolver, error) {
	return NewConfinedResolver(mounts, r.bareStores()...)
}

// Reserving returns a resolver with r's stores and mounts that refuses
// everything under uri, whatever mount covers it (Mount.Reserved): the
// processes give it to jobs, so that no job reads or writes Ferry's
// manifest store, which they reach through WithMounts. An unconfined
// resolver (tests) is returned as it is.
func (r *Resolver) Reserving(uri string) (*Resolver, error) {
	if r.confinement == nil {
		return r, nil
	}
	u, err := ParseURI(uri)
	if err != nil {
		return nil, fmt.Errorf("%w: reserved location %q: %s", ErrInvalidPath, uri, err.Error())
	}
	return NewConfinedResolver(append(r.Mounts(), Mount{URI: u, Reserved: true}), r.bareStores()...)
}

// bareStores are r's stores without their confinement.
func (r *Resolver) bareStores() []Store {
	out := make([]Store, 0, len(r.stores))
	for _, scheme := range r.Schemes() {
		out = append(out, unwrap(r.stores[scheme]))
	}
	return out
}

// Mounts lists the mounts of a confined resolver (nil when unconfined).
func (r *Resolver) Mounts() []Mount {
	if r.confinement == nil {
		return nil
	}
	return append([]Mount(nil), r.confinement.mounts...)
}

func unwrap(st Store) Store {
	switch g := st.(type) {
	case *guarded:
		return g.Store
	case *guardedCopier:
		return g.Store
	}
	return st
}

// guarded checks every URI before it reaches the store.
type guarded struct {
	Store
	c *confinement
}

func (g *guarded) List(ctx context.Context, uri string, opts ListOptions) (ListPage, error) {
	if err := g.c.check(g.Store, "list", uri, Read); err != nil {
		return ListPage{}, err
	}
	return g.Store.List(ctx, uri, opts)
}

func (g *guarded) Stat(ctx context.Context, uri string) (Entry, error) {
	if err := g.c.check(g.Store, "stat", uri, Read); err != nil {
		return Entry{}, err
	}
	return g.Store.Stat(ctx, uri)
}

func (g *guarded) Open(ctx context.Context, uri string, offset, length int64) (io.ReadCloser, error) {
	if err := g.c.check(g.Store, "open", uri, Read); err != nil {
		return nil, err
	}
	return g.Store.Open(ctx, uri, offset, length)
}

func (g *guarded) Create(ctx context.Context, uri string, opts CreateOptions) (Writer, error) {
	if err := g.c.check(g.Store, "create", uri, Write); err != nil {
		return nil, err
	}
	return g.Store.Create(ctx, uri, opts)
}

func (g *guarded) Delete(ctx context.Context, uri string) error {
	if err := g.c.check(g.Store, "delete", uri, Write); err != nil {
		return err
	}
	return g.Store.Delete(ctx, uri)
}

func (g *guarded) MakeDir(ctx context.Context, uri string) error {
	if err := g.c.check(g.Store, "mkdir", uri, Write); err != nil {
		return err
	}
	return g.Store.MakeDir(ctx, uri)
}

// RealURI resolves uri as the guarded store does (symbolic links on a file
// system), so that the guard hides no capability that checks rely on (the
// overlap check of a copy or move through links). A store without links
// reaches every location by one path only: uri itself.
func (g *guarded) RealURI(ctx context.Context, uri string) (string, error) {
	if rl, ok := g.Store.(RealLocator); ok {
		return rl.RealURI(ctx, uri)
	}
	return uri, nil
}

var _ RealLocator = (*guarded)(nil)

// RemoveLeftovers forwards to the guarded store, when it has leftovers to
// remove, under the write check.
func (g *guarded) RemoveLeftovers(ctx context.Context, uri string) error {
	r, ok := g.Store.(LeftoverRemover)
	if !ok {
		return nil
	}
	if err := g.c.check(g.Store, "clean", uri, Write); err != nil {
		return err
	}
	return r.RemoveLeftovers(ctx, uri)
}

var _ LeftoverRemover = (*guarded)(nil)

// guardedCopier is guarded for a store with server-side copy.
type guardedCopier struct {
	*guarded
	cp Copier
}

var _ Copier = (*guardedCopier)(nil)

func (g *guardedCopier) Copy(ctx context.Context, src, dst string, opts CreateOptions) (Entry, error) {
	if err := g.c.check(g.Store, "copy", src, Read); err != nil {
		return Entry{}, err
	}
	if err := g.c.check(g.Store, "copy", dst, Write); err != nil {
		return Entry{}, err
	}
	return g.cp.Copy(ctx, src, dst, opts)
}
