package local

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// dirReader reads directories with getdents64 into a pooled buffer and
// stats their files with fstatat relative to the directory, instead of
// resolving each file's whole path again from the working directory. It
// keeps at most one directory open: the one whose files were last read or
// stated, until another is needed or release.
type dirReader struct {
	fd    int    // open directory, valid when owner != nil
	owner *frame // the frame fd belongs to
}

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
	r.release()
	r.fd, r.owner = fd, f
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	for {
		n, err := ignoringEINTR(func() (int, error) { return unix.Getdents(fd, buf) })
		if err != nil {
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
	if r.owner != f {
		// Another directory was read since (a subdirectory of f), or the
		// page that read f has ended: open f again.
		fd, err := openDir(f.dir)
		if err != nil {
			return fileStat{}, &os.PathError{Op: "stat", Path: filepath.Join(f.dir, name), Err: err}
		}
		r.release()
		r.fd, r.owner = fd, f
	}
	var st unix.Stat_t
	if _, err := ignoringEINTR(func() (int, error) { return 0, unix.Fstatat(r.fd, name, &st, 0) }); err != nil {
		return fileStat{}, &os.PathError{Op: "stat", Path: filepath.Join(f.dir, name), Err: err}
	}
	return fileStat{mode: fileMode(st.Mode), size: st.Size, mtime: time.Unix(st.Mtim.Unix())}, nil
}

// release closes the open directory, if any.
func (r *dirReader) release() {
	if r.owner != nil {
		_ = unix.Close(r.fd)
		r.owner = nil
	}
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
