//go:build !linux

package local

import (
	"io/fs"
	"os"
	"path/filepath"
)

// dirReader reads directories with os.File.ReadDir and stats files by
// their path. It holds no open file.
type dirReader struct{}

// read calls add with each entry of f.dir, in directory order.
func (r *dirReader) read(f *frame, add func(name string, isDir, isLink bool)) error {
	d, err := os.Open(f.dir)
	if err != nil {
		return err
	}
	defer func() { _ = d.Close() }()
	des, err := d.ReadDir(-1)
	if err != nil {
		return err
	}
	for _, de := range des {
		add(de.Name(), de.IsDir(), de.Type()&fs.ModeSymlink != 0)
	}
	return nil
}

// stat stats the file name of directory f, following symbolic links.
func (r *dirReader) stat(f *frame, name string) (fileStat, error) {
	fi, err := os.Stat(filepath.Join(f.dir, name))
	if err != nil {
		return fileStat{}, err
	}
	return statOf(fi), nil
}

// statOf is the fileStat of fi, an os.Stat result (without a change time).
func statOf(fi fs.FileInfo) fileStat {
	return fileStat{mode: fi.Mode(), size: fi.Size(), mtime: fi.ModTime()}
}

// done does nothing: no file is left open.
func (r *dirReader) done(f *frame) {}

// release does nothing: no file is left open.
func (r *dirReader) release() {}
