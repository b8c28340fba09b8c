package storage_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

func TestConfinedResolver(t *testing.T) {
	dir := t.TempDir()
	mnt := filepath.Join(dir, "mnt")
	ro := filepath.Join(dir, "ro")
	outside := filepath.Join(dir, "outside")
	for _, d := range []string{mnt, ro, outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{filepath.Join(mnt, "a.txt"), filepath.Join(ro, "r.txt"), filepath.Join(outside, "secret")} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(outside, filepath.Join(mnt, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(mnt, "secret-link")); err != nil {
		t.Fatal(err)
	}
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mounts []storage.Mount
	for _, s := range []string{mnt, "ro:" + ro, "s3://lake/raw"} {
		m, err := storage.ParseMount(s)
		if err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, m)
	}
	r, err := storage.NewConfinedResolver(mounts, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fs, err := r.For("file://" + mnt)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fs.(storage.Copier); !ok {
		t.Error("the confined file store lost its Copier capability")
	}
	allowed := []string{"file://" + mnt + "/a.txt", "file://" + mnt, "file://" + ro + "/r.txt"}
	for _, u := range allowed {
		if _, err := fs.Stat(ctx, u); err != nil {
			t.Errorf("stat %s: %v", u, err)
		}
	}
	refused := []string{
		"file://" + outside + "/secret",
		"file:///etc/passwd",
		"file://" + mnt + "/escape/secret",
		"file://" + mnt + "/secret-link",
		"file://" + mnt + "-sibling/x",
		"file://" + dir,
	}
	for _, u := range refused {
		_, err := fs.Stat(ctx, u)
		if !errors.Is(err, storage.ErrPermission) || !strings.Contains(err.Error(), "mount") {
			t.Errorf("stat %s: %v, want a permission error naming the mounts", u, err)
		}
		if _, err := fs.Open(ctx, u, 0, -1); !errors.Is(err, storage.ErrPermission) {
			t.Errorf("open %s: %v", u, err)
		}
		if err := r.Check(u, storage.Read); !errors.Is(err, storage.ErrPermission) {
			t.Errorf("check %s: %v", u, err)
		}
	}
	// Spellings that name something else are refused before any mount.
	for _, u := range []string{"file://" + mnt + "/../outside/secret", "file://" + mnt + "/./a.txt"} {
		if _, err := fs.Stat(ctx, u); !errors.Is(err, storage.ErrInvalidPath) {
			t.Errorf("stat %s: %v, want invalid path", u, err)
		}
	}
	// Percent-encoding is not decoded: %2e%2e is a name, inside the mount.
	if _, err := fs.Stat(ctx, "file://"+mnt+"/%2e%2e/outside/secret"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("percent-encoded dots: %v, want not found (a literal name)", err)
	}
	// Writes: allowed in the mount, refused in the read-only one and outside.
	w, err := fs.Create(ctx, "file://"+mnt+"/new.txt", storage.CreateOptions{Size: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Create(ctx, "file://"+ro+"/new.txt", storage.CreateOptions{Size: -1}); err == nil || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("create in a read-only mount: %v", err)
	}
	if err := fs.Delete(ctx, "file://"+ro+"/r.txt"); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("delete in a read-only mount: %v", err)
	}
	if err := fs.Delete(ctx, "file://"+outside+"/secret"); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("delete outside: %v", err)
	}
	cp := fs.(storage.Copier)
	if _, err := cp.Copy(ctx, "file://"+outside+"/secret", "file://"+mnt+"/stolen", storage.CreateOptions{Size: -1}); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("copy from outside: %v", err)
	}
	if _, err := cp.Copy(ctx, "file://"+mnt+"/a.txt", "file://"+outside+"/planted", storage.CreateOptions{Size: -1}); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("copy to outside: %v", err)
	}
	if _, err := os.Stat(filepath.Join(outside, "planted")); !errors.Is(err, os.ErrNotExist) {
		t.Error("a file was written outside the mounts")
	}
	if err := r.Check("file://"+ro+"/x", storage.Write); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("write check in a read-only mount: %v", err)
	}
}

func TestMountMatching(t *testing.T) {
	var mounts []storage.Mount
	for _, s := range []string{"s3://lake/raw", "hdfs://nn1:8020/user", "gs://bucket"} {
		m, err := storage.ParseMount(s)
		if err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, m)
	}
	r, err := storage.NewConfinedResolver(mounts, nameStore("s3"), nameStore("hdfs"), nameStore("gs"))
	if err != nil {
		t.Fatal(err)
	}
	for u, want := range map[string]bool{
		"s3://lake/raw/x":            true,
		"s3://lake/raw":              true,
		"s3://lake/rawer":            false,
		"s3://other/raw/x":           false,
		"hdfs://nn1:8020/user/a":     true,
		"hdfs://evil:8020/user/a":    false,
		"hdfs://127.0.0.1:22/user/a": false,
		"hdfs:///user/a":             false,
		"gs://bucket/any/key":        true,
		"gs://bucket2/k":             false,
	} {
		err := r.Check(u, storage.Read)
		if (err == nil) != want {
			t.Errorf("%s: %v, want allowed=%v", u, err, want)
		}
	}
	for _, bad := range []string{"", "ro:", "s3:///key", "file://host/x"} {
		if _, err := storage.ParseMount(bad); err == nil {
			t.Errorf("mount %q accepted", bad)
		}
	}
}

// nameStore is a store that only has a scheme: the mount check runs before
// any of its methods would.
type nameStore string

func (n nameStore) Scheme() string { return string(n) }
func (nameStore) List(context.Context, string, storage.ListOptions) (storage.ListPage, error) {
	return storage.ListPage{}, nil
}
func (nameStore) Stat(context.Context, string) (storage.Entry, error) { return storage.Entry{}, nil }
func (nameStore) Open(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}
func (nameStore) Create(context.Context, string, storage.CreateOptions) (storage.Writer, error) {
	return nil, errors.New("not implemented")
}
func (nameStore) Delete(context.Context, string) error  { return nil }
func (nameStore) MakeDir(context.Context, string) error { return nil }

// TestDeniedLocationInsideAMount: a deny: location is off limits inside a
// wider mount (ferry dev's data directory inside its working directory:
// its token, its database), except where a mount within it allows (the
// manifest store), for reads, listings and writes, also through a link.
func TestDeniedLocationInsideAMount(t *testing.T) {
	wd := t.TempDir()
	data := filepath.Join(wd, ".ferry")
	manifests := filepath.Join(data, "manifests")
	if err := os.MkdirAll(manifests, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "token"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(data, "token"), filepath.Join(wd, "token-link")); err != nil {
		t.Fatal(err)
	}
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mounts []storage.Mount
	for _, s := range []string{wd, manifests, "deny:" + data} {
		m, err := storage.ParseMount(s)
		if err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, m)
	}
	if got := mounts[2].String(); got != "deny:file://"+data {
		t.Errorf("deny mount prints as %q", got)
	}
	r, err := storage.NewConfinedResolver(mounts, st)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := r.For("file://" + wd)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, uri := range []string{"file://" + data + "/token", "file://" + wd + "/token-link", "file://" + data} {
		if _, err := fs.Stat(ctx, uri); !errors.Is(err, storage.ErrPermission) || !strings.Contains(err.Error(), "off limits") {
			t.Errorf("stat %s: %v, want a permission error naming the denied location", uri, err)
		}
	}
	if _, err := fs.Open(ctx, "file://"+data+"/token", 0, -1); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("open the token: %v", err)
	}
	if _, err := fs.Create(ctx, "file://"+data+"/new", storage.CreateOptions{}); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("create in the data directory: %v", err)
	}
	w, err := fs.Create(ctx, "file://"+manifests+"/m", storage.CreateOptions{Overwrite: true})
	if err != nil {
		t.Fatalf("create in the manifest store: %v", err)
	}
	if _, err := w.Commit(ctx); err != nil {
		t.Fatalf("commit in the manifest store: %v", err)
	}
	if _, err := fs.Stat(ctx, "file://"+wd); err != nil {
		t.Errorf("stat the working directory: %v", err)
	}
}

// TestReservedLocationIsOutOfReach: a location reserved for Ferry (its
// manifest store) is refused through the jobs' resolver even where mounts
// cover it, for reads, listings and writes, while the resolver of its own
// (WithMounts) reaches it and nothing else.
func TestReservedLocationIsOutOfReach(t *testing.T) {
	wd := t.TempDir()
	manifests := filepath.Join(wd, ".ferry", "manifests")
	if err := os.MkdirAll(manifests, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(manifests, "list"), []byte("job data"), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := local.New(local.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mounts []storage.Mount
	for _, s := range []string{wd, manifests} {
		m, err := storage.ParseMount(s)
		if err != nil {
			t.Fatal(err)
		}
		mounts = append(mounts, m)
	}
	base, err := storage.NewConfinedResolver(mounts, st)
	if err != nil {
		t.Fatal(err)
	}
	root := "file://" + manifests
	jobs, err := base.Reserving(root)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fs, err := jobs.For(root)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(manifests, filepath.Join(wd, "link")); err != nil {
		t.Fatal(err)
	}
	for _, uri := range []string{root, root + "/list", "file://" + wd + "/link/list"} {
		if _, err := fs.Stat(ctx, uri); !errors.Is(err, storage.ErrPermission) || !strings.Contains(err.Error(), "manifest store") {
			t.Errorf("stat %s: %v, want a permission error naming the manifest store", uri, err)
		}
	}
	if _, err := fs.Open(ctx, root+"/list", 0, -1); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("open: %v", err)
	}
	if _, err := fs.List(ctx, root, storage.ListOptions{}); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("list: %v", err)
	}
	if _, err := fs.Create(ctx, root+"/planted", storage.CreateOptions{}); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("create: %v", err)
	}
	if err := jobs.Check(root+"/list", storage.Write); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("check: %v", err)
	}
	// Reserving it again (each process part does) or mounting a location
	// twice keeps one mount each.
	again, err := jobs.Reserving(root)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := storage.NewConfinedResolver(append(again.Mounts(), mounts[0]), st)
	if err != nil {
		t.Fatal(err)
	}
	if got := twice.Mounts(); len(got) != 3 {
		t.Errorf("mounts after a second reservation and a repeated mount: %v, want 3", got)
	}
	// The rest of the mounts is untouched.
	if err := jobs.Check("file://"+wd+"/data", storage.Write); err != nil {
		t.Errorf("a location beside the manifest store: %v", err)
	}
	m, err := storage.ParseMount(root)
	if err != nil {
		t.Fatal(err)
	}
	own, err := jobs.WithMounts(m)
	if err != nil {
		t.Fatal(err)
	}
	ofs, _ := own.For(root)
	if _, err := ofs.Stat(ctx, root+"/list"); err != nil {
		t.Errorf("the manifest store's own resolver: %v", err)
	}
	if err := own.Check("file://"+wd+"/data", storage.Read); !errors.Is(err, storage.ErrPermission) {
		t.Errorf("the manifest store's own resolver reaches beyond it: %v", err)
	}
}
