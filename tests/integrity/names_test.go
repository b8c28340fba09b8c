package integrity

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/storage/storagetest"
	"github.com/ferryio/ferry/workflows"
)

// TestNamesAreBytes is issue 11 cases 1 and 2: names with glob characters
// and a name holding the byte 0xE9 (not UTF-8) are copied, moved and loaded
// under exactly their names, with exact counters.
func TestNamesAreBytes(t *testing.T) {
	cl := enginetest.NewCluster(t, 2)
	files := map[string]string{
		"photo[1].jpg":       "jpeg bytes",
		"take [2]/clip.txt":  "clip",
		"star*.txt":          "star",
		"what?.txt":          "what",
		"plain.txt":          "plain",
		"caf\xe9.txt":        "latin-1 name",
		"dir \xff/\xfe\xe9x": "deeper, not UTF-8 either",
		"ünï/日本 % + .txt":    "unicode",
	}
	var total int64
	for _, v := range files {
		total += int64(len(v))
	}
	n := int64(len(files))
	base := t.TempDir()
	src := filepath.Join(base, "src")
	writeTree(t, src, files)

	t.Run("load", func(t *testing.T) {
		st := runJob(t, cl, jobs.Key{Type: workflows.JobLoad, Path: "file://" + src}, nil)
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: n, bytes: total})
		got := cached(cl)
		if len(got) != len(files) {
			t.Fatalf("cached %q", got)
		}
		for rel := range files {
			uri := "file://" + src + "/" + rel
			found := false
			for _, g := range got {
				found = found || g == uri
			}
			if !found {
				t.Errorf("%s not cached under its exact name; cached %q", quote(uri), got)
			}
		}
	})
	t.Run("copy", func(t *testing.T) {
		dst := filepath.Join(base, "copy")
		st := runJob(t, cl, jobs.Key{Type: workflows.JobCopy, Path: "file://" + src, Dst: "file://" + dst}, nil)
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: n, bytes: total})
		sameFiles(t, "copy destination", readTree(t, dst), files)
		sameFiles(t, "copy source", readTree(t, src), files)
	})
	t.Run("move", func(t *testing.T) {
		dst := filepath.Join(base, "moved")
		st := runJob(t, cl, jobs.Key{Type: workflows.JobMove, Path: "file://" + src, Dst: "file://" + dst}, nil)
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: n, bytes: total})
		sameFiles(t, "move destination", readTree(t, dst), files)
		sameFiles(t, "move source", readTree(t, src), nil)
	})
}

// TestObjectKeysThatAreNotFileNames is issue 11 cases 4 and 5: S3 keys that
// a file system cannot hold as they are ("coll/a//x.txt" beside
// "coll/a/x.txt"; "mark/withbody/" holding 39 bytes) fail with a reason
// naming the clash when copied to local disk, and are copied like any
// object S3 → S3; zero-byte directory markers are not counted.
func TestObjectKeysThatAreNotFileNames(t *testing.T) {
	s3srv := s3test.Start(t)
	s3st := s3test.NewStore(t, s3test.Options(s3srv.URL))
	cl := enginetest.NewCluster(t, 2, s3st)
	bucket := s3srv.NewBucket(t)
	obj := func(k string) string { return "s3://" + bucket + "/" + k }
	body := strings.Repeat("b", 39)
	storagetest.Put(t, s3st, obj("coll/a//x.txt"), []byte("double slash"))
	storagetest.Put(t, s3st, obj("coll/a/x.txt"), []byte("single slash"))
	storagetest.Put(t, s3st, obj("mark/withbody/"), []byte(body))
	storagetest.Put(t, s3st, obj("mark/plain.txt"), []byte("plain"))
	storagetest.Put(t, s3st, obj("mark/sub/"), nil)
	storagetest.Put(t, s3st, obj("mark/sub/file.txt"), []byte("file"))

	t.Run("collision to local", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "coll")
		st := runJob(t, cl, jobs.Key{Type: workflows.JobCopy, Path: obj("coll"), Dst: "file://" + dst}, nil)
		check(t, st, want{status: workflows.StatusFailed, succeeded: 1, failed: 1, bytes: int64(len("single slash"))})
		f := failureFor(t, st, "a//x.txt")
		if f.Reason != workflows.ErrTypeInvalidPath || !strings.Contains(f.Message, "collision") || !strings.Contains(f.Message, `"a/x.txt"`) {
			t.Fatalf("failure of a//x.txt: %+v; want INVALID_PATH naming the collision with a/x.txt", f)
		}
		sameFiles(t, "destination", readTree(t, dst), map[string]string{"a/x.txt": "single slash"})
	})
	t.Run("marker with a body to local", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "mark")
		st := runJob(t, cl, jobs.Key{Type: workflows.JobCopy, Path: obj("mark"), Dst: "file://" + dst}, nil)
		check(t, st, want{status: workflows.StatusFailed, succeeded: 2, failed: 1, bytes: int64(len("plain") + len("file"))})
		if f := failureFor(t, st, "mark/withbody/"); !strings.Contains(f.Message, `ends in "/"`) {
			t.Fatalf("failure of mark/withbody/: %+v", f)
		}
		sameFiles(t, "destination", readTree(t, dst), map[string]string{"plain.txt": "plain", "sub/file.txt": "file"})
	})
	t.Run("marker with a body S3 to S3", func(t *testing.T) {
		st := runJob(t, cl, jobs.Key{Type: workflows.JobCopy, Path: obj("mark"), Dst: obj("copied")}, nil)
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: 3, bytes: int64(39 + len("plain") + len("file"))})
		r, err := s3st.Open(context.Background(), obj("copied/withbody/"), 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b := make([]byte, 100)
		k, _ := r.Read(b)
		if string(b[:k]) != body {
			t.Fatalf("copied/withbody/ holds %q", b[:k])
		}
	})
	t.Run("load", func(t *testing.T) {
		st := runJob(t, cl, jobs.Key{Type: workflows.JobLoad, Path: obj("mark")}, nil)
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: 3, bytes: int64(39 + len("plain") + len("file"))})
	})
	t.Run("move S3 to S3", func(t *testing.T) {
		st := runJob(t, cl, jobs.Key{Type: workflows.JobMove, Path: obj("mark"), Dst: obj("moved")}, nil)
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: 3, bytes: int64(39 + len("plain") + len("file"))})
		for _, k := range s3srv.Keys(t, bucket) {
			if strings.HasPrefix(k, "mark/") && k != "mark/sub/" {
				t.Errorf("%q left in the source after the move", k)
			}
		}
	})
}

// TestSpecialFilesAreAccounted is issue 11 case 8: a named pipe, a dangling
// symbolic link and a link to a directory in a copied tree are counted as
// skipped, never opened (the job does not hang), and nothing is written for
// them.
func TestSpecialFilesAreAccounted(t *testing.T) {
	cl := enginetest.NewCluster(t, 1)
	base := t.TempDir()
	src := specialTree(t, base)
	t.Run("load", func(t *testing.T) {
		st := runJob(t, cl, jobs.Key{Type: workflows.JobLoad, Path: "file://" + src}, nil)
		check(t, st, want{status: workflows.StatusSucceeded, succeeded: 2, skipped: 3, bytes: int64(len("regular") + len("inner"))})
	})
	for _, typ := range []workflows.JobType{workflows.JobCopy, workflows.JobMove} {
		t.Run(string(typ), func(t *testing.T) {
			dst := filepath.Join(base, string(typ))
			st := runJob(t, cl, jobs.Key{Type: typ, Path: "file://" + src, Dst: "file://" + dst}, nil)
			check(t, st, want{status: workflows.StatusSucceeded, succeeded: 2, skipped: 3, bytes: int64(len("regular") + len("inner"))})
			sameFiles(t, "destination", readTree(t, dst), map[string]string{"file.txt": "regular", "d/inner.txt": "inner"})
		})
		writeTree(t, src, map[string]string{"file.txt": "regular", "d/inner.txt": "inner"})
	}
	if _, err := os.Lstat(filepath.Join(src, "pipe")); err != nil {
		t.Errorf("the pipe is gone from the source after the move: %v", err)
	}
}

// TestOverlapThroughSymlinks is issue 11 case 10: a destination reached
// through a symbolic link into the source, or a source through a link into
// the destination, is refused like the textual overlap, naming dst.
func TestOverlapThroughSymlinks(t *testing.T) {
	cl := enginetest.NewCluster(t, 1)
	base := t.TempDir()
	src := filepath.Join(base, "src")
	writeTree(t, src, map[string]string{"zz/f.txt": "x", "a.txt": "a"})
	if err := os.Symlink(filepath.Join(src, "zz"), filepath.Join(base, "alias")); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(base, "other")
	writeTree(t, other, map[string]string{"in/g.txt": "g"})
	if err := os.Symlink(filepath.Join(other, "in"), filepath.Join(base, "into-dst")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, src, dst string }{
		{"dst through a link into the source", src, filepath.Join(base, "alias", "out")},
		{"dst is a link to inside the source", src, filepath.Join(base, "alias")},
		{"src through a link into the dst", filepath.Join(base, "into-dst"), other},
	} {
		for _, typ := range []workflows.JobType{workflows.JobCopy, workflows.JobMove} {
			t.Run(string(typ)+"/"+tc.name, func(t *testing.T) {
				key := jobs.Key{Type: typ, Path: "file://" + tc.src, Dst: "file://" + tc.dst}
				opts, _ := jobs.ParseOptions(typ, nil)
				_, err := cl.Svc.Submit(context.Background(), key, opts)
				var ie *jobs.InputError
				if !errors.As(err, &ie) || ie.Field != "dst" {
					t.Fatalf("submit %s → %s: %v; want an input error on dst", tc.src, tc.dst, err)
				}
				t.Log(err)
			})
		}
	}
	if got := readTree(t, src); len(got) != 2 {
		t.Fatalf("source changed: %q", got)
	}
}
