package hdfstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ferryio/ferry/storage/hdfs"
)

// Config shapes a Server. The zero value is one namenode and one datanode
// with 1 MiB blocks, on a temporary directory.
type Config struct {
	// Dir holds the namespace and the block files. Default: a new
	// temporary directory of the test. It must be empty.
	Dir string
	// Namenodes is 1, or 2 for an HA pair (the first one active).
	Namenodes int
	// Datanodes is how many datanodes hold each block (the replication).
	// Default 1.
	Datanodes int
	// BlockSize is the block size the namenode advertises (a multiple of
	// 512). Default 1 MiB, so that test files span several blocks.
	BlockSize int64
	// ListLimit is how many entries one getListing answer holds at most
	// (dfs.ls.limit). Default 1000.
	ListLimit int
	// LeaseTime is how long a writer's lease lasts without renewal.
	// Default 1 minute.
	LeaseTime time.Duration
	// Seed fixes the random fault sequence.
	Seed uint64
	// Superuser owns the directories. Default "hdfs".
	Superuser string
}

// Server is a running test HDFS: namenodes speaking Hadoop RPC and
// datanodes speaking the data transfer protocol on loopback ports chosen
// by the kernel, over one namespace on disk. It stops when the test ends.
type Server struct {
	cfg       Config
	ns        *namespace
	namenodes []*namenode
	datanodes []*datanode
	active    atomic.Int32
	faults    *Faults
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Start starts a server.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	if cfg.Namenodes <= 0 {
		cfg.Namenodes = 1
	}
	if cfg.Datanodes <= 0 {
		cfg.Datanodes = 1
	}
	if cfg.BlockSize <= 0 {
		cfg.BlockSize = 1 << 20
	}
	if cfg.BlockSize%bytesPerChecksum != 0 {
		t.Fatalf("hdfstest: block size %d is not a multiple of %d", cfg.BlockSize, bytesPerChecksum)
	}
	if cfg.ListLimit <= 0 {
		cfg.ListLimit = 1000
	}
	if cfg.LeaseTime <= 0 {
		cfg.LeaseTime = time.Minute
	}
	if cfg.Superuser == "" {
		cfg.Superuser = "hdfs"
	}
	ns, err := newNamespace(cfg.Dir, cfg.LeaseTime)
	if err != nil {
		t.Fatalf("hdfstest: %v", err)
	}
	s := &Server{cfg: cfg, ns: ns, faults: newFaults(cfg.Seed)}
	for i := 0; i < cfg.Datanodes; i++ {
		s.datanodes = append(s.datanodes, &datanode{conns: newConns(s, listen(t)), index: i, uuid: fmt.Sprintf("ferry-test-dn-%d", i)})
	}
	for i := 0; i < cfg.Namenodes; i++ {
		s.namenodes = append(s.namenodes, &namenode{conns: newConns(s, listen(t)), index: i})
	}
	// The accept loops count in wg, so that connections they take while
	// the server closes are waited for too.
	s.wg.Add(len(s.datanodes) + len(s.namenodes))
	for _, dn := range s.datanodes {
		go func() { defer s.wg.Done(); dn.serve() }()
	}
	for _, nn := range s.namenodes {
		go func() { defer s.wg.Done(); nn.serve() }()
	}
	t.Cleanup(s.Close)
	return s
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("hdfstest: %v", err)
	}
	return ln
}

// Close stops the server and waits for its connections to end.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		for _, nn := range s.namenodes {
			_ = nn.ln.Close()
			nn.closeAll()
		}
		for _, dn := range s.datanodes {
			_ = dn.ln.Close()
			dn.closeAll()
		}
		s.wg.Wait()
	})
}

// Addrs are the namenode addresses (host:port), in order.
func (s *Server) Addrs() []string {
	out := make([]string, len(s.namenodes))
	for i, nn := range s.namenodes {
		out[i] = nn.ln.Addr().String()
	}
	return out
}

// Addr is the address of the first namenode.
func (s *Server) Addr() string { return s.Addrs()[0] }

// BlockSize is the block size the namenode advertises.
func (s *Server) BlockSize() int64 { return s.cfg.BlockSize }

// Active is the index of the active namenode; the others answer every
// call with StandbyException.
func (s *Server) Active() int { return int(s.active.Load()) }

// Failover makes namenode i the active one and the others standbys, as a
// failover controller does. Clients notice at their next call.
func (s *Server) Failover(i int) {
	if i < 0 || i >= len(s.namenodes) {
		panic(fmt.Sprintf("hdfstest: no namenode %d", i))
	}
	s.active.Store(int32(i))
}

// SetDown takes namenode i down (its connections are cut and new ones
// closed at once) or brings it back up.
func (s *Server) SetDown(i int, down bool) {
	s.namenodes[i].down.Store(down)
	if down {
		s.namenodes[i].closeAll()
	}
}

// Faults is the fault injector of the server.
func (s *Server) Faults() *Faults { return s.faults }

// ExpireLeases drops every writer's lease, as when writers stopped
// renewing them for longer than the lease time.
func (s *Server) ExpireLeases() {
	s.ns.mu.Lock()
	defer s.ns.mu.Unlock()
	for k := range s.ns.leases {
		delete(s.ns.leases, k)
	}
}

// Nameservice is the logical name Options gives the namenodes.
const Nameservice = "ferrytest"

// Options are store options for the server: hdfs:///path, hdfs://ferrytest/path
// and hdfs://<first namenode address>/path all reach it (the first two
// through every namenode, failing over), as user "ferry".
func (s *Server) Options() hdfs.Options {
	return hdfs.Options{
		Namenodes:   map[string][]string{"": s.Addrs(), Nameservice: s.Addrs()},
		User:        "ferry",
		DialTimeout: 5 * time.Second,
	}
}

// Env is the environment that points ferry at the server (hdfs:///path
// URIs), as `ferry dev` reads it.
func (s *Server) Env() []string {
	return []string{"FERRY_HDFS_NAMENODE=" + strings.Join(s.Addrs(), ","), "FERRY_HDFS_USER=ferry"}
}

// NewStore builds a store with opts, closed when the test ends.
func NewStore(t testing.TB, opts hdfs.Options) *hdfs.Store {
	t.Helper()
	st, err := hdfs.New(opts)
	if err != nil {
		t.Fatalf("hdfstest: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// Names lists the files the namespace holds below dir (an HDFS path), as
// paths relative to dir, sorted; partial files included, directories not.
// Tests look behind the client with it.
func (s *Server) Names(t testing.TB, dir string) []string {
	t.Helper()
	s.ns.mu.Lock()
	defer s.ns.mu.Unlock()
	lp, err := s.ns.local(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = filepath.Walk(lp, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == lp {
				return filepath.SkipDir
			}
			return err
		}
		if fi.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(lp, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// OpenFiles lists the files under construction (being written) below dir.
func (s *Server) OpenFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, name := range s.Names(t, dir) {
		s.ns.mu.Lock()
		lp, _ := s.ns.local(strings.TrimSuffix(dir, "/") + "/" + name)
		st, err := s.ns.stat(lp)
		s.ns.mu.Unlock()
		if err == nil && !st.dir && st.meta.Open {
			out = append(out, name)
		}
	}
	return out
}

// conns serves a listener, one goroutine per connection, and can cut
// every connection at once.
type conns struct {
	srv  *Server
	ln   net.Listener
	mu   sync.Mutex
	open map[net.Conn]bool
}

func newConns(s *Server, ln net.Listener) conns {
	return conns{srv: s, ln: ln, open: map[net.Conn]bool{}}
}

// serve accepts connections until the listener closes; accept says
// whether to serve a new one (else it is closed at once).
func (cs *conns) serve(accept func() bool, handle func(net.Conn) error) {
	for {
		c, err := cs.ln.Accept()
		if err != nil {
			return
		}
		if !accept() {
			_ = c.Close()
			continue
		}
		cs.mu.Lock()
		cs.open[c] = true
		cs.mu.Unlock()
		cs.srv.wg.Add(1)
		go func() {
			defer cs.srv.wg.Done()
			defer func() {
				cs.mu.Lock()
				delete(cs.open, c)
				cs.mu.Unlock()
				_ = c.Close()
			}()
			_ = handle(c)
		}()
	}
}

func (cs *conns) closeAll() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for c := range cs.open {
		_ = c.Close()
	}
}
