package integrity

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func mkfifo(path string) error { return syscall.Mkfifo(path, 0o644) }

// specialTree writes, under base/src, the regular files file.txt and
// d/inner.txt beside entries that are not regular files: a named pipe
// "pipe", a dangling symbolic link "dangling" and a link to a directory
// "dirlink". It returns base/src; without mkfifo the test is skipped.
func specialTree(t *testing.T, base string) string {
	t.Helper()
	src := filepath.Join(base, "src")
	writeTree(t, src, map[string]string{"file.txt": "regular", "d/inner.txt": "inner"})
	if err := mkfifo(filepath.Join(src, "pipe")); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := os.Symlink(filepath.Join(base, "nowhere"), filepath.Join(src, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(src, "d"), filepath.Join(src, "dirlink")); err != nil {
		t.Fatal(err)
	}
	return src
}
