// Package testsource provides storage systems for the cache node's tests:
// a wrapper that counts (and can hold back) what reaches the real storage,
// and an in-memory source for benchmarks that must not measure disk reads.
package testsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ferryio/ferry/storage"
)

// Counting wraps a Store and counts the calls that reach it.
type Counting struct {
	storage.Store
	opens, stats atomic.Int64
	bytesRead    atomic.Int64

	mu   sync.Mutex
	gate chan struct{}
}

var _ storage.Store = (*Counting)(nil)

// NewCounting wraps s.
func NewCounting(s storage.Store) *Counting { return &Counting{Store: s} }

// Opens is the number of Open calls so far.
func (c *Counting) Opens() int64 { return c.opens.Load() }

// Stats is the number of Stat calls so far.
func (c *Counting) Stats() int64 { return c.stats.Load() }

// BytesRead is the number of bytes read through opened streams.
func (c *Counting) BytesRead() int64 { return c.bytesRead.Load() }

// Hold makes every Open wait until the returned function is called.
func (c *Counting) Hold() (release func()) {
	g := make(chan struct{})
	c.mu.Lock()
	c.gate = g
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.gate = nil
			c.mu.Unlock()
			close(g)
		})
	}
}

// Stat counts and forwards.
func (c *Counting) Stat(ctx context.Context, uri string) (storage.Entry, error) {
	c.stats.Add(1)
	return c.Store.Stat(ctx, uri)
}

// Open counts, waits while held, and forwards.
func (c *Counting) Open(ctx context.Context, uri string, off, n int64) (io.ReadCloser, error) {
	c.opens.Add(1)
	c.mu.Lock()
	g := c.gate
	c.mu.Unlock()
	if g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	rc, err := c.Store.Open(ctx, uri, off, n)
	if err != nil {
		return nil, err
	}
	return &countingReader{ReadCloser: rc, n: &c.bytesRead}, nil
}

type countingReader struct {
	io.ReadCloser
	n *atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	k, err := r.ReadCloser.Read(p)
	r.n.Add(int64(k))
	return k, err
}

// Mem is an in-memory source of files under the "mem" scheme. Only Stat and
// Open are implemented: it feeds caches, it is not a storage system.
type Mem struct {
	mu    sync.RWMutex
	files map[string]memFile
}

type memFile struct {
	data    []byte
	version string
}

var _ storage.Store = (*Mem)(nil)

// NewMem returns an empty source.
func NewMem() *Mem { return &Mem{files: map[string]memFile{}} }

// Put stores data under uri with a new version.
func (m *Mem) Put(uri string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[uri] = memFile{data: data, version: fmt.Sprintf("%d-%d", len(data), time.Now().UnixNano())}
}

// PutVersion stores data under uri at the given version, the one a listing
// (and Stat) then reports.
func (m *Mem) PutVersion(uri string, data []byte, version string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[uri] = memFile{data: data, version: version}
}

// Scheme is "mem".
func (m *Mem) Scheme() string { return "mem" }

// Stat describes a file.
func (m *Mem) Stat(ctx context.Context, uri string) (storage.Entry, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f, ok := m.files[uri]
	if !ok {
		return storage.Entry{}, storage.NewError("stat", uri, storage.ErrNotFound, nil)
	}
	return storage.Entry{URI: uri, Size: int64(len(f.data)), Version: f.version}, nil
}

// Open reads a range.
func (m *Mem) Open(ctx context.Context, uri string, off, n int64) (io.ReadCloser, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f, ok := m.files[uri]
	if !ok {
		return nil, storage.NewError("open", uri, storage.ErrNotFound, nil)
	}
	if off < 0 || off > int64(len(f.data)) {
		return nil, storage.NewError("open", uri, storage.ErrOutOfRange, nil)
	}
	end := int64(len(f.data))
	if n >= 0 && off+n < end {
		end = off + n
	}
	return io.NopCloser(bytes.NewReader(f.data[off:end])), nil
}

var errUnsupported = errors.New("not supported by the in-memory test source")

// List is not supported.
func (m *Mem) List(ctx context.Context, uri string, opts storage.ListOptions) (storage.ListPage, error) {
	return storage.ListPage{}, storage.NewError("list", uri, storage.ErrInvalidPath, errUnsupported)
}

// Create is not supported.
func (m *Mem) Create(ctx context.Context, uri string, opts storage.CreateOptions) (storage.Writer, error) {
	return nil, storage.NewError("create", uri, storage.ErrInvalidPath, errUnsupported)
}

// Delete is not supported.
func (m *Mem) Delete(ctx context.Context, uri string) error {
	return storage.NewError("delete", uri, storage.ErrInvalidPath, errUnsupported)
}

// MakeDir is not supported.
func (m *Mem) MakeDir(ctx context.Context, uri string) error {
	return storage.NewError("mkdir", uri, storage.ErrInvalidPath, errUnsupported)
}
