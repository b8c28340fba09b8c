//go:build unix

// Package longpath makes, for tests, directory trees deeper than the OS
// lets a path name: a directory whose whole path is longer than PATH_MAX
// can be created and read only relative to an open parent, so a listing
// that opens directories by their path cannot open it, whoever runs it
// (root included), which makes it a real per-directory listing error.
package longpath

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// PathMax is the longest path the kernel takes, its terminating NUL
// included (Linux's PATH_MAX).
const PathMax = 4096

// segment is the length of each directory name of the chain (names may
// be up to 255 bytes).
const segment = 200

// Make creates below the existing directory root a chain of directories
// named dir/ddd…d/ddd…d/… that ends below the first one whose path is too
// long to open, with the file "f" (content "x") in the last one. It returns
// the path, relative to root, of that first directory: the one a listing
// cannot open, everything below it unreachable by path.
func Make(t testing.TB, root, dir string) string {
	t.Helper()
	names := []string{dir}
	length := len(root) + 1 + len(dir)
	for length < PathMax {
		names = append(names, strings.Repeat("d", segment))
		length += 1 + segment
	}
	names = append(names, strings.Repeat("e", segment))
	fd := chain(t, root, names)
	defer func() { _ = unix.Close(fd) }()
	f, err := unix.Openat(fd, "f", unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatalf("create the file at the end of the chain: %v", err)
	}
	defer func() { _ = unix.Close(f) }()
	if _, err := unix.Write(f, []byte("x")); err != nil {
		t.Fatalf("write the file at the end of the chain: %v", err)
	}
	return filepath.Join(names[:len(names)-1]...)
}

// Deep creates below the existing directory root a chain of directories
// whose last one has a path of exactly length bytes, and returns that
// path: with length close to PathMax, a name added to it makes a path too
// long.
func Deep(t testing.TB, root string, length int) string {
	t.Helper()
	var names []string
	at := len(root)
	for at < length {
		n := min(segment, length-at-1)
		if rest := length - at - 1 - n; rest > 0 && rest < 2 {
			n-- // leave room for a last name of at least one byte
		}
		names = append(names, strings.Repeat("p", n))
		at += 1 + n
	}
	if at != length {
		t.Fatalf("cannot make a path of %d bytes below %s", length, root)
	}
	_ = unix.Close(chain(t, root, names))
	return filepath.Join(append([]string{root}, names...)...)
}

// chain creates the directories names, each in the one before, the first
// in root, and returns the last one open.
func chain(t testing.TB, root string, names []string) int {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", root, err)
	}
	for _, name := range names {
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			_ = unix.Close(fd)
			t.Fatalf("mkdirat %s: %v", name, err)
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		_ = unix.Close(fd)
		if err != nil {
			t.Fatalf("openat %s: %v", name, err)
		}
		fd = next
	}
	return fd
}

// Files returns the paths, relative to root/rel, of the files below the
// directory rel of root, however long their paths: each directory is
// opened relative to its parent.
func Files(root, rel string) ([]string, error) {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for _, name := range strings.Split(rel, "/") {
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		_ = unix.Close(fd)
		if err != nil {
			return nil, err
		}
		fd = next
	}
	return files(fd, "")
}

// files lists the files below the open directory fd, whose path is prefix
// ("" or "a/b/"), and closes it.
func files(fd int, prefix string) ([]string, error) {
	d := os.NewFile(uintptr(fd), prefix)
	defer func() { _ = d.Close() }()
	des, err := d.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, de := range des {
		if !de.IsDir() {
			out = append(out, prefix+de.Name())
			continue
		}
		sub, err := unix.Openat(fd, de.Name(), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		below, err := files(sub, prefix+de.Name()+"/")
		if err != nil {
			return nil, err
		}
		out = append(out, below...)
	}
	return out, nil
}
