package hdfstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Exception classes the namenode answers with, as a Hadoop namenode does.
const (
	excFileNotFound      = "java.io.FileNotFoundException"
	excIO                = "java.io.IOException"
	excFileExists        = "org.apache.hadoop.fs.FileAlreadyExistsException"
	excBeingCreated      = "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException"
	excNotEmpty          = "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException"
	excParentNotDir      = "org.apache.hadoop.fs.ParentNotDirectoryException"
	excLeaseExpired      = "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException"
	excStandby           = "org.apache.hadoop.ipc.StandbyException"
	excInvalidPath       = "org.apache.hadoop.fs.InvalidPathException"
	excNoSuchMethod      = "org.apache.hadoop.ipc.RpcNoSuchMethodException"
	excRetriable         = "org.apache.hadoop.ipc.RetriableException"
	defaultPermFile      = 0o644
	defaultPermDirectory = 0o755
)

// remoteError is an exception the namenode sends back.
type remoteError struct {
	class string
	msg   string
}

func (e *remoteError) Error() string { return e.class + ": " + e.msg }

func exception(class, format string, args ...any) error {
	return &remoteError{class: class, msg: fmt.Sprintf(format, args...)}
}

// fileMeta is what the namespace keeps of a file: the content of its entry
// under ns/.
type fileMeta struct {
	ID        uint64      `json:"id"`
	Blocks    []blockMeta `json:"blocks"`
	Open      bool        `json:"under_construction"`
	Holder    string      `json:"lease_holder,omitempty"`
	MTime     int64       `json:"mtime_ms"`
	ATime     int64       `json:"atime_ms"`
	Perm      uint32      `json:"perm"`
	Owner     string      `json:"owner"`
	Repl      uint32      `json:"replication"`
	BlockSize uint64      `json:"block_size"`
}

type blockMeta struct {
	ID  uint64 `json:"id"`
	GS  uint64 `json:"gen_stamp"`
	Len int64  `json:"len"`
}

func (m *fileMeta) length() int64 {
	var n int64
	for _, b := range m.Blocks {
		n += b.Len
	}
	return n
}

// status is a file or directory as the namenode describes it.
type status struct {
	name  string // last path component ("" for the root)
	dir   bool
	id    uint64
	mtime int64
	meta  *fileMeta // nil for a directory
}

// namespace is the namenode's state: a real directory tree under dir/ns
// (a file's entry holds its metadata as JSON), the block files under
// dir/blocks, and in memory the leases, the block ids in use and the
// lengths datanodes reported. One lock serializes every operation; both
// namenodes of an HA pair share it (like a shared edit log).
type namespace struct {
	mu        sync.Mutex
	ns        string
	blocks    string
	tmp       string
	nextID    uint64
	genStamp  uint64
	leases    map[string]time.Time // client name → last renewal
	live      map[uint64]string    // block ids allocated and not deleted → path allocated to
	received  map[uint64]int64     // block id → length a datanode finalized
	leaseTime time.Duration
	now       func() time.Time
}

func newNamespace(dir string, leaseTime time.Duration) (*namespace, error) {
	n := &namespace{
		ns: filepath.Join(dir, "ns"), blocks: filepath.Join(dir, "blocks"), tmp: filepath.Join(dir, "tmp"),
		nextID: 16386, genStamp: 1000, leases: map[string]time.Time{}, live: map[uint64]string{},
		received: map[uint64]int64{}, leaseTime: leaseTime, now: time.Now,
	}
	for _, d := range []string{n.ns, n.blocks, n.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// local maps an absolute HDFS path onto the ns/ tree, refusing what HDFS
// refuses: relative paths, empty, "." or ".." components, and ':'.
func (n *namespace) local(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", exception(excInvalidPath, "Invalid path name %s: not absolute", p)
	}
	if p == "/" {
		return n.ns, nil
	}
	parts := strings.Split(strings.TrimSuffix(p[1:], "/"), "/")
	for _, c := range parts {
		if c == "" || c == "." || c == ".." || strings.ContainsAny(c, ":\x00") {
			return "", exception(excInvalidPath, "Invalid path name %s", p)
		}
	}
	return filepath.Join(append([]string{n.ns}, parts...)...), nil
}

func (n *namespace) blockPath(id uint64) string {
	return filepath.Join(n.blocks, "blk_"+strconv.FormatUint(id, 10))
}

func (n *namespace) id() uint64 { n.nextID++; return n.nextID }

// stat describes the entry at the local path lp.
func (n *namespace) stat(lp string) (*status, error) {
	fi, err := os.Stat(lp)
	if err != nil {
		return nil, err
	}
	st := &status{name: fi.Name(), dir: fi.IsDir(), mtime: fi.ModTime().UnixMilli()}
	if lp == n.ns {
		st.name = ""
	}
	if st.dir {
		if s, ok := fi.Sys().(*syscall.Stat_t); ok {
			st.id = s.Ino
		}
		return st, nil
	}
	m, err := n.readMeta(lp)
	if err != nil {
		return nil, err
	}
	st.meta, st.id, st.mtime = m, m.ID, m.MTime
	return st, nil
}

func (n *namespace) readMeta(lp string) (*fileMeta, error) {
	b, err := os.ReadFile(lp)
	if err != nil {
		return nil, err
	}
	m := &fileMeta{}
	if err := json.Unmarshal(b, m); err != nil {
		return nil, fmt.Errorf("namespace entry %s: %w", lp, err)
	}
	return m, nil
}

// writeMeta replaces the entry at lp atomically.
func (n *namespace) writeMeta(lp string, m *fileMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(n.tmp, "meta-*")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), lp)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// lookup resolves p and stats it; a missing entry gives (lp, nil, nil).
func (n *namespace) lookup(p string) (string, *status, error) {
	lp, err := n.local(p)
	if err != nil {
		return "", nil, err
	}
	st, err := n.stat(lp)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return lp, nil, nil
	}
	return lp, st, err
}

func (n *namespace) getFileInfo(p string) (*status, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, st, err := n.lookup(p)
	return st, err
}

// listing returns up to limit children of p whose names sort after
// startAfter (byte order, as HDFS keeps them), and how many remain after
// them. ok is false when p does not exist.
func (n *namespace) listing(p string, startAfter []byte, limit int) (list []*status, remaining int, ok bool, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	lp, st, err := n.lookup(p)
	if err != nil || st == nil {
		return nil, 0, false, err
	}
	if !st.dir {
		st.name = path.Base(p)
		return []*status{st}, 0, true, nil
	}
	des, err := os.ReadDir(lp)
	if err != nil {
		return nil, 0, false, err
	}
	names := make([]string, 0, len(des))
	for _, d := range des {
		names = append(names, d.Name())
	}
	sort.Strings(names)
	i := sort.SearchStrings(names, string(startAfter))
	if i < len(names) && names[i] == string(startAfter) {
		i++
	}
	for ; i < len(names) && len(list) < limit; i++ {
		c, err := n.stat(filepath.Join(lp, names[i]))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, false, err
		}
		list = append(list, c)
	}
	return list, len(names) - i, true, nil
}

// parentDir checks that the parent of lp is a directory.
func (n *namespace) parentDir(p, lp string, createParent bool) error {
	parent := filepath.Dir(lp)
	fi, err := os.Stat(parent)
	switch {
	case err == nil && fi.IsDir():
		return nil
	case err == nil || errors.Is(err, syscall.ENOTDIR):
		return exception(excParentNotDir, "Parent path is not a directory: %s", path.Dir(p))
	case !errors.Is(err, fs.ErrNotExist):
		return err
	case !createParent:
		return exception(excFileNotFound, "Parent directory doesn't exist: %s", path.Dir(p))
	}
	if err := os.MkdirAll(parent, defaultPermDirectory); err != nil {
		if errors.Is(err, syscall.ENOTDIR) || errors.Is(err, fs.ErrExist) {
			return exception(excParentNotDir, "Parent path is not a directory: %s", path.Dir(p))
		}
		return err
	}
	return nil
}

func (n *namespace) mkdirs(p string, createParent bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	lp, st, err := n.lookup(p)
	if err != nil {
		return err
	}
	if st != nil {
		if st.dir {
			return nil
		}
		return exception(excFileExists, "Path is not a directory: %s", p)
	}
	if err := n.parentDir(p, lp, createParent); err != nil {
		return err
	}
	if err := os.Mkdir(lp, defaultPermDirectory); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// leaseLive reports whether holder still holds its lease.
func (n *namespace) leaseLive(holder string) bool {
	t, ok := n.leases[holder]
	return ok && n.now().Sub(t) < n.leaseTime
}

// Create flags (CreateFlagProto); CREATE is 0x01.
const (
	flagOverwrite = 0x02
	flagAppend    = 0x04
)

func (n *namespace) create(p, client, owner string, flags uint32, createParent bool, repl uint32, blockSize uint64, perm uint32) (*status, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	lp, st, err := n.lookup(p)
	if err != nil {
		return nil, err
	}
	if flags&flagAppend != 0 {
		return nil, exception(excIO, "append is not supported by this test namenode")
	}
	if st != nil {
		switch {
		case st.dir:
			return nil, exception(excFileExists, "%s already exists as a directory", p)
		case st.meta.Open && st.meta.Holder != client && n.leaseLive(st.meta.Holder):
			return nil, exception(excBeingCreated, "Failed to CREATE_FILE %s for %s because this file lease is currently owned by %s", p, client, st.meta.Holder)
		case flags&flagOverwrite == 0:
			return nil, exception(excFileExists, "%s for client %s already exists", p, client)
		}
		n.dropBlocks(st.meta)
	} else if err := n.parentDir(p, lp, createParent); err != nil {
		return nil, err
	}
	if blockSize == 0 || blockSize%512 != 0 {
		return nil, exception(excIO, "Invalid block size %d: not a multiple of the checksum chunk", blockSize)
	}
	now := n.now().UnixMilli()
	m := &fileMeta{ID: n.id(), Open: true, Holder: client, MTime: now, ATime: now, Perm: perm, Owner: owner, Repl: repl, BlockSize: blockSize}
	if err := n.writeMeta(lp, m); err != nil {
		return nil, err
	}
	n.leases[client] = n.now()
	return &status{name: path.Base(p), id: m.ID, mtime: now, meta: m}, nil
}

func (n *namespace) dropBlocks(m *fileMeta) {
	for _, b := range m.Blocks {
		delete(n.live, b.ID)
		delete(n.received, b.ID)
		_ = os.Remove(n.blockPath(b.ID))
		_ = os.Remove(n.blockPath(b.ID) + ".rbw")
	}
}

// openFile finds the file under construction that client holds.
func (n *namespace) openFile(p, client string, fileID uint64) (string, *fileMeta, error) {
	lp, st, err := n.lookup(p)
	if err != nil {
		return "", nil, err
	}
	if st == nil || st.dir || (fileID != 0 && st.id != fileID) {
		return "", nil, exception(excLeaseExpired, "No lease on %s (inode %d): File does not exist.", p, fileID)
	}
	if !st.meta.Open || st.meta.Holder != client {
		return "", nil, exception(excLeaseExpired, "No lease on %s (inode %d): Lease mismatch, held by %s, not %s.", p, st.id, st.meta.Holder, client)
	}
	return lp, st.meta, nil
}

// commitLast records the length the client reports for the last block.
func commitLast(m *fileMeta, last fields) error {
	if len(last) == 0 {
		return nil
	}
	if len(m.Blocks) == 0 || m.Blocks[len(m.Blocks)-1].ID != last.uint(2) {
		return exception(excIO, "block %d is not the last block of the file", last.uint(2))
	}
	m.Blocks[len(m.Blocks)-1].Len = int64(last.uint(4))
	return nil
}

func (n *namespace) addBlock(p, client string, fileID uint64, previous fields) (*fileMeta, blockMeta, int64, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	lp, m, err := n.openFile(p, client, fileID)
	if err != nil {
		return nil, blockMeta{}, 0, err
	}
	if err := commitLast(m, previous); err != nil {
		return nil, blockMeta{}, 0, err
	}
	if k := len(m.Blocks); k > 0 {
		if l, ok := n.received[m.Blocks[k-1].ID]; !ok || l != m.Blocks[k-1].Len {
			return nil, blockMeta{}, 0, exception(excRetriable, "Not replicated yet: %s", p)
		}
	}
	off := m.length()
	n.genStamp++
	b := blockMeta{ID: n.id(), GS: n.genStamp}
	m.Blocks = append(m.Blocks, b)
	n.live[b.ID] = p
	n.leases[client] = n.now()
	if err := n.writeMeta(lp, m); err != nil {
		return nil, blockMeta{}, 0, err
	}
	return m, b, off, nil
}

// complete closes the file when every block reached a datanode with the
// length the client committed; false asks the client to retry.
func (n *namespace) complete(p, client string, fileID uint64, last fields) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, st, err := n.lookup(p)
	if err != nil {
		return false, err
	}
	if st != nil && !st.dir && !st.meta.Open && (fileID == 0 || st.id == fileID) {
		return true, nil // already closed: a retried complete
	}
	lp, m, err := n.openFile(p, client, fileID)
	if err != nil {
		return false, err
	}
	if err := commitLast(m, last); err != nil {
		return false, err
	}
	for _, b := range m.Blocks {
		if l, ok := n.received[b.ID]; !ok || l != b.Len {
			if err := n.writeMeta(lp, m); err != nil {
				return false, err
			}
			return false, nil
		}
	}
	m.Open, m.Holder, m.MTime = false, "", n.now().UnixMilli()
	return true, n.writeMeta(lp, m)
}

// commit records the length of the last block without completing the
// file.
func (n *namespace) commit(p, client string, fileID uint64, last fields) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	lp, m, err := n.openFile(p, client, fileID)
	if err != nil {
		return err
	}
	if err := commitLast(m, last); err != nil {
		return err
	}
	return n.writeMeta(lp, m)
}

// blockReceived is a datanode reporting a finalized replica. It reports
// false when the block is not part of any file (deleted meanwhile).
func (n *namespace) blockReceived(id uint64, length int64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.live[id]; !ok {
		return false
	}
	n.received[id] = length
	return true
}

// blockWritable reports whether a datanode may accept writes for id.
func (n *namespace) blockWritable(id uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, done := n.received[id]
	_, ok := n.live[id]
	return ok && !done
}

func (n *namespace) blockReadable(id uint64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, done := n.received[id]
	_, ok := n.live[id]
	return ok && done
}

// blockFile is the path block id was allocated to ("" if unknown).
func (n *namespace) blockFile(id uint64) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.live[id]
}

func (n *namespace) renewLease(client string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.leases[client] = n.now()
}

func (n *namespace) delete(p string, recursive bool) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	lp, st, err := n.lookup(p)
	if err != nil || st == nil {
		return false, err
	}
	if lp == n.ns {
		return false, exception(excIO, "cannot delete the root directory")
	}
	if !st.dir {
		n.dropBlocks(st.meta)
		return true, os.Remove(lp)
	}
	des, err := os.ReadDir(lp)
	if err != nil {
		return false, err
	}
	if len(des) > 0 && !recursive {
		return false, exception(excNotEmpty, "`%s is non empty': Directory is not empty", p)
	}
	err = filepath.WalkDir(lp, func(q string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if m, err := n.readMeta(q); err == nil {
			n.dropBlocks(m)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return true, os.RemoveAll(lp)
}

// rename moves src to dst. With overwrite, a file or an empty directory at
// dst is replaced (rename2 with OVERWRITE); without, dst must be free.
func (n *namespace) rename(src, dst string, overwrite bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	ls, sst, err := n.lookup(src)
	if err != nil {
		return err
	}
	if sst == nil {
		return exception(excFileNotFound, "rename source %s is not found.", src)
	}
	ld, dst2, err := n.lookup(dst)
	if err != nil {
		return err
	}
	if ls == n.ns || ld == n.ns {
		return exception(excIO, "cannot rename the root directory")
	}
	if ld == ls {
		return exception(excFileExists, "The source %s and destination %s are the same", src, dst)
	}
	if strings.HasPrefix(ld, ls+string(filepath.Separator)) {
		return exception(excIO, "Rename destination %s is a directory or file under source %s", dst, src)
	}
	if err := n.parentDir(dst, ld, false); err != nil {
		return err
	}
	if dst2 != nil {
		if !overwrite {
			return exception(excFileExists, "rename destination %s already exists", dst)
		}
		if dst2.dir != sst.dir {
			return exception(excIO, "Source %s and destination %s must both be directories or files", src, dst)
		}
		if dst2.dir {
			if des, err := os.ReadDir(ld); err != nil || len(des) > 0 {
				return exception(excIO, "rename destination directory is not empty: %s", dst)
			}
			if err := os.Remove(ld); err != nil {
				return err
			}
		} else {
			n.dropBlocks(dst2.meta)
		}
	}
	return os.Rename(ls, ld)
}

// setTimes sets a file's modification and access times (ms; -1 keeps).
func (n *namespace) setTimes(p string, mtime, atime int64) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	lp, st, err := n.lookup(p)
	if err != nil {
		return err
	}
	if st == nil {
		return exception(excFileNotFound, "File/Directory %s does not exist.", p)
	}
	if st.dir {
		if mtime >= 0 {
			t := time.UnixMilli(mtime)
			return os.Chtimes(lp, t, t)
		}
		return nil
	}
	if mtime >= 0 {
		st.meta.MTime = mtime
	}
	if atime >= 0 {
		st.meta.ATime = atime
	}
	return n.writeMeta(lp, st.meta)
}

// contentSummary counts the files, directories and bytes under p.
func (n *namespace) contentSummary(p string) (length, files, dirs uint64, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	lp, st, err := n.lookup(p)
	if err != nil {
		return 0, 0, 0, err
	}
	if st == nil {
		return 0, 0, 0, exception(excFileNotFound, "File does not exist: %s", p)
	}
	err = filepath.WalkDir(lp, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs++
			return nil
		}
		m, err := n.readMeta(q)
		if err != nil {
			return err
		}
		files++
		length += uint64(m.length())
		return nil
	})
	return length, files, dirs, err
}
