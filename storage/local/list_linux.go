package local

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirReader reads directories with getdents64 into a pooled buffer and
// stats their files with fstatat relative to the directory, instead of
// resolving each file's whole path again from the working directory. The
// directories of the frames on the walker's stack stay open, the deepest
// maxOpenDirs of them, until the walker is done with the frame or the page
// ends (release); a frame whose directory was closed has it opened again.
type dirReader struct {
	open []dirFD // oldest first
}

type dirFD struct {
	f  *frame
	fd int
}

// maxOpenDirs bounds the directories a walker keeps open: a very deep tree
// costs a few opens more rather than many descriptors.
const maxOpenDirs = 16

// direntBufs hold getdents64 buffers: 64 KiB reads a directory of ~2,000
// entries of short names per call.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// forceLstat makes tests act as on a file system whose directories give no
// d_type.
var forceLstat = false

// Offsets of the fields of a struct linux_dirent64 (the same on every
// Linux architecture).
const (
	direntReclen = int(unsafe.Offsetof(unix.Dirent{}.Reclen))
	direntType   = int(unsafe.Offsetof(unix.Dirent{}.Type))
	direntName   = int(unsafe.Offsetof(unix.Dirent{}.Name))
)

// read calls add with each entry of f.dir but "." and "..", in directory
// order, telling directories and symbolic links apart by d_type (or an
// lstat where the file system does not say). It leaves the directory open
// for stat. The errors are those of os.ReadDir.
func (r *dirReader) read(f *frame, add func(name string, isDir, isLink bool)) error {
	fd, err := openDir(f.dir)
	if err != nil {
		return &os.PathError{Op: "open", Path: f.dir, Err: err}
	}
	r.keep(f, fd)
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	for {
		n, err := ignoringEINTR(func() (int, error) { return unix.Getdents(fd, buf) })
		if err != nil {
			r.done(f)
			return &os.PathError{Op: "readdirent", Path: f.dir, Err: err}
		}
		if n <= 0 {
			return nil
		}
		for rec := buf[:n]; len(rec) > direntName; {
			reclen := int(binary.NativeEndian.Uint16(rec[direntReclen:]))
			if reclen <= direntName || reclen > len(rec) {
				break
			}
			typ := rec[direntType]
			name := rec[direntName:reclen]
			rec = rec[reclen:]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			if string(name) == "." || string(name) == ".." {
				continue
			}
			if typ == unix.DT_UNKNOWN || forceLstat {
				var st unix.Stat_t
				if _, err := ignoringEINTR(func() (int, error) {
					return 0, unix.Fstatat(fd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW)
				}); err != nil {
					if errors.Is(err, unix.ENOENT) {
						continue // removed since it was read
					}
					r.done(f)
					return &os.PathError{Op: "lstat", Path: filepath.Join(f.dir, string(name)), Err: err}
				}
				switch st.Mode & unix.S_IFMT {
				case unix.S_IFDIR:
					typ = unix.DT_DIR
				case unix.S_IFLNK:
					typ = unix.DT_LNK
				}
			}
			add(string(name), typ == unix.DT_DIR, typ == unix.DT_LNK)
		}
	}
}

// stat stats the file name of directory f, following symbolic links, as
// os.Stat of its path does; the error names the path.
func (r *dirReader) stat(f *frame, name string) (fileStat, error) {
	fd := r.fd(f)
	if fd < 0 {
		// Closed at the end of a page, or as one too many.
		var err error
		if fd, err = openDir(f.dir); err != nil {
			return fileStat{}, &os.PathError{Op: "stat", Path: filepath.Join(f.dir, name), Err: err}
		}
		r.keep(f, fd)
	}
	var st unix.Stat_t
	if _, err := ignoringEINTR(func() (int, error) { return 0, unix.Fstatat(fd, name, &st, 0) }); err != nil {
		return fileStat{}, &os.PathError{Op: "stat", Path: filepath.Join(f.dir, name), Err: err}
	}
	return fileStat{mode: fileMode(st.Mode), size: st.Size, mtime: time.Unix(st.Mtim.Unix()), ctime: time.Unix(st.Ctim.Unix())}, nil
}

// statOf is the fileStat of fi, an os.Stat result.
func statOf(fi fs.FileInfo) fileStat {
	st := fileStat{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ctime = time.Unix(sys.Ctim.Unix())
	}
	return st
}

// fd is the open directory of f, or -1.
func (r *dirReader) fd(f *frame) int {
	for i := len(r.open) - 1; i >= 0; i-- {
		if r.open[i].f == f {
			return r.open[i].fd
		}
	}
	return -1
}

// keep records fd as f's open directory, closing the oldest beyond
// maxOpenDirs.
func (r *dirReader) keep(f *frame, fd int) {
	if len(r.open) == maxOpenDirs {
		_ = unix.Close(r.open[0].fd)
		r.open = slices.Delete(r.open, 0, 1)
	}
	r.open = append(r.open, dirFD{f: f, fd: fd})
}

// done closes the directory of f, which the walker has left.
func (r *dirReader) done(f *frame) {
	for i := len(r.open) - 1; i >= 0; i-- {
		if r.open[i].f == f {
			_ = unix.Close(r.open[i].fd)
			r.open = slices.Delete(r.open, i, i+1)
			return
		}
	}
}

// release closes every open directory.
func (r *dirReader) release() {
	for _, o := range r.open {
		_ = unix.Close(o.fd)
	}
	r.open = r.open[:0]
}

func openDir(dir string) (int, error) {
	return ignoringEINTR(func() (int, error) {
		return unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
}

func ignoringEINTR(f func() (int, error)) (int, error) {
	for {
		n, err := f()
		if !errors.Is(err, unix.EINTR) {
			return n, err
		}
	}
}

// fileMode is the fs.FileMode of a stat's st_mode, as os.Stat makes it.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
