package grpcapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/ferryio/ferry/cachenode/cachenodepb"
	"github.com/ferryio/ferry/cachenode/grpcapi"
	"github.com/ferryio/ferry/cachenode/internal/testsource"
	"github.com/ferryio/ferry/cachenode/pagestore"
	"github.com/ferryio/ferry/storage"
	"github.com/ferryio/ferry/storage/local"
)

const ps = 4096

func setup(t *testing.T) (pb.CacheNodeClient, string, *testsource.Counting) {
	t.Helper()
	dir := t.TempDir()
	l, err := local.New(local.Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	src := testsource.NewCounting(l)
	res := storage.NewResolver(src)
	store, err := pagestore.Open(pagestore.Options{Dir: t.TempDir(), PageSize: ps, Capacity: 1 << 20, Resolver: res})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	s := grpc.NewServer()
	(&grpcapi.Service{NodeID: "node-1", Store: store, Resolver: res}).Register(s)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	c, conn, err := grpcapi.Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return c, dir, src
}

func write(t *testing.T, dir, name string, n int) (string, []byte) {
	t.Helper()
	data := bytes.Repeat([]byte{byte(n), byte(len(name))}, n/2+1)[:n]
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return "file://" + p, data
}

func code(err error) codes.Code { return status.Code(err) }

func TestLoadFilesReportsEachFile(t *testing.T) {
	c, dir, _ := setup(t)
	ctx := context.Background()
	a, da := write(t, dir, "a", 3*ps+5)
	b, db := write(t, dir, "b", ps)
	resp, err := c.LoadFiles(ctx, &pb.LoadFilesRequest{
		Files: []*pb.FileRef{
			{Uri: a},
			{Uri: "file://" + dir + "/missing"},
			{Uri: b, Size: 99 * ps, Version: "listing-was-wrong"},
			{Uri: "file:///etc/hostname"},
		},
		SkipIfCached: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Results
	if r[0].Outcome != pb.Outcome_OUTCOME_LOADED || r[0].BytesLoaded != int64(len(da)) {
		t.Errorf("a: %v", r[0])
	}
	if r[1].Outcome != pb.Outcome_OUTCOME_FAILED || r[1].Retryable || r[1].ErrorKind != "not_found" || r[1].Error == "" {
		t.Errorf("missing: %v", r[1])
	}
	if r[2].Outcome != pb.Outcome_OUTCOME_FAILED || !r[2].Retryable || r[2].ErrorKind != "changed" {
		t.Errorf("changed: %v", r[2])
	}
	if r[3].Outcome != pb.Outcome_OUTCOME_FAILED || r[3].Retryable || r[3].ErrorKind != "permission" {
		t.Errorf("outside root: %v", r[3])
	}
	if resp.Loaded != 1 || resp.Failed != 3 || resp.BytesLoaded != int64(len(da)) {
		t.Errorf("totals %v", resp)
	}
	// Again: a is skipped; b (now without a stale version) loads.
	resp, err = c.LoadFiles(ctx, &pb.LoadFilesRequest{Files: []*pb.FileRef{{Uri: a}, {Uri: b}}, SkipIfCached: true})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Skipped != 1 || resp.AlreadyCached != 1 || resp.Loaded != 1 || resp.BytesSkipped != int64(len(da)) || resp.BytesLoaded != int64(len(db)) {
		t.Errorf("second call %v", resp)
	}
	if resp.Results[0].Outcome != pb.Outcome_OUTCOME_ALREADY_CACHED {
		t.Errorf("a: %v", resp.Results[0])
	}
	// Without skip_if_cached too: a complete file at the current version
	// is not read again.
	resp, err = c.LoadFiles(ctx, &pb.LoadFilesRequest{Files: []*pb.FileRef{{Uri: a}}})
	if err != nil || resp.AlreadyCached != 1 || resp.Skipped != 1 || resp.BytesLoaded != 0 {
		t.Errorf("third call %v %v", resp, err)
	}
	st, err := c.Stat(ctx, &pb.StatRequest{Uri: a})
	if err != nil || !st.File.FullyCached || st.File.Size != int64(len(da)) || st.File.Pages != 4 {
		t.Fatalf("stat %v %v", st, err)
	}
}

func TestLoadFilesHonoursTheBandwidthLimit(t *testing.T) {
	c, dir, _ := setup(t)
	var files []*pb.FileRef
	for _, n := range []string{"x", "y", "z"} {
		u, _ := write(t, dir, n, 64<<10)
		files = append(files, &pb.FileRef{Uri: u})
	}
	start := time.Now()
	resp, err := c.LoadFiles(context.Background(), &pb.LoadFilesRequest{Files: files, BandwidthBytesPerSecond: 256 << 10})
	if err != nil || resp.Loaded != 3 {
		t.Fatalf("%v %v", resp, err)
	}
	// 192 KiB at 256 KiB/s with a 64 KiB burst takes at least 0.5 s.
	if took := time.Since(start); took < 450*time.Millisecond {
		t.Fatalf("192 KiB at 256 KiB/s took %s", took)
	}
	if _, err := c.LoadFiles(context.Background(), &pb.LoadFilesRequest{BandwidthBytesPerSecond: -1}); code(err) != codes.InvalidArgument {
		t.Fatalf("negative bandwidth: %v", err)
	}
}

func TestReadRangeStatEvictStats(t *testing.T) {
	c, dir, src := setup(t)
	ctx := context.Background()
	u, data := write(t, dir, "f", 2*ps+10)
	read := func(off int64, n *int64) []byte {
		t.Helper()
		stream, err := c.ReadRange(ctx, &pb.ReadRangeRequest{Uri: u, Offset: off, Length: n})
		if err != nil {
			t.Fatal(err)
		}
		var out []byte
		for i := 0; ; i++ {
			ch, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return out
			}
			if err != nil {
				t.Fatal(err)
			}
			if (i == 0) != (ch.File != nil) {
				t.Fatalf("chunk %d file info %v", i, ch.File)
			}
			if ch.Offset != off+int64(len(out)) {
				t.Fatalf("chunk offset %d, want %d", ch.Offset, off+int64(len(out)))
			}
			out = append(out, ch.Data...)
		}
	}
	if got := read(0, nil); !bytes.Equal(got, data) {
		t.Fatal("whole read differs")
	}
	n := int64(100)
	if got := read(ps-50, &n); !bytes.Equal(got, data[ps-50:ps+50]) {
		t.Fatal("range read differs")
	}
	if src.Opens() != 3 {
		t.Fatalf("%d opens, want 3", src.Opens())
	}
	st, err := c.NodeStats(ctx, &pb.NodeStatsRequest{})
	if err != nil || st.NodeId != "node-1" || st.Pages != 3 || st.Hits != 2 || st.Misses != 3 || st.PageSize != ps {
		t.Fatalf("stats %v %v", st, err)
	}
	dst, err := c.Stat(ctx, &pb.StatRequest{Uri: "file://" + dir})
	if err != nil || !dst.File.IsDir {
		t.Fatalf("stat of a directory %v %v", dst, err)
	}
	ev, err := c.Evict(ctx, &pb.EvictRequest{UriPrefix: "file://" + dir + "/"})
	if err != nil || ev.Files != 1 || ev.Pages != 3 {
		t.Fatalf("evict %v %v", ev, err)
	}

	for _, tc := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"no scheme", func() error { _, err := c.Stat(ctx, &pb.StatRequest{Uri: "/x"}); return err }(), codes.InvalidArgument},
		{"missing", func() error { _, err := c.Stat(ctx, &pb.StatRequest{Uri: "file://" + dir + "/nope"}); return err }(), codes.NotFound},
		{"evict nothing", func() error { _, err := c.Evict(ctx, &pb.EvictRequest{}); return err }(), codes.InvalidArgument},
		{"past end", func() error {
			s, err := c.ReadRange(ctx, &pb.ReadRangeRequest{Uri: u, Offset: 1 << 30})
			if err == nil {
				_, err = s.Recv()
			}
			return err
		}(), codes.OutOfRange},
	} {
		if code(tc.err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, tc.err, tc.want)
		}
	}
}

// Names are bytes on every call: a name that is not UTF-8 (which proto3
// strings refuse) is loaded, described, read and evicted under exactly its
// bytes, next to a UTF-8 name that differs only there.
func TestEveryCallCarriesNamesAsBytes(t *testing.T) {
	c, dir, _ := setup(t)
	ctx := context.Background()
	odd, data := write(t, dir, "caf\xe9.txt", 3*ps+7)
	plain, _ := write(t, dir, "café.txt", 100)

	ref := &pb.FileRef{}
	ref.SetURI(odd)
	if resp, err := c.LoadFiles(ctx, &pb.LoadFilesRequest{Files: []*pb.FileRef{ref}}); err != nil || resp.Loaded != 1 {
		t.Fatalf("load %q: %v %v", odd, resp, err)
	}
	stat := &pb.StatRequest{}
	stat.SetURI(odd)
	st, err := c.Stat(ctx, stat)
	if err != nil || st.File.URI() != odd || !st.File.FullyCached || st.File.Size != int64(len(data)) {
		t.Fatalf("stat %q: %v %v", odd, st, err)
	}
	read := &pb.ReadRangeRequest{Offset: 1}
	read.SetURI(odd)
	stream, err := c.ReadRange(ctx, read)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	for {
		chunk, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read %q: %v", odd, err)
		}
		if chunk.File != nil && chunk.File.URI() != odd {
			t.Fatalf("read names %q, want %q", chunk.File.URI(), odd)
		}
		got = append(got, chunk.Data...)
	}
	if !bytes.Equal(got, data[1:]) {
		t.Fatalf("read %d bytes, not the file's", len(got))
	}
	ev := &pb.EvictRequest{}
	ev.SetPrefix(odd)
	if res, err := c.Evict(ctx, ev); err != nil || res.Files != 1 {
		t.Fatalf("evict %q: %v %v", odd, res, err)
	}
	st, err = c.Stat(ctx, stat)
	if err != nil || st.File.CachedPages != 0 {
		t.Fatalf("after evict: %v %v", st, err)
	}
	// The UTF-8 neighbour was never touched.
	plainStat := &pb.StatRequest{}
	plainStat.SetURI(plain)
	if st, err := c.Stat(ctx, plainStat); err != nil || st.File.CachedPages != 0 || st.File.Size != 100 {
		t.Fatalf("neighbour %q: %v %v", plain, st, err)
	}
}

// CachedFiles answers from the index alone: true only for a file complete
// at exactly the size and version asked, names as bytes, and nothing is
// read from or asked of the storage system.
func TestCachedFilesAnswersFromTheIndexAlone(t *testing.T) {
	c, dir, src := setup(t)
	ctx := context.Background()
	whole, _ := write(t, dir, "caf\xe9 whole", 3*ps+5)
	part, _ := write(t, dir, "part", 4*ps)
	empty, _ := write(t, dir, "empty", 0)
	never, _ := write(t, dir, "never", 10)
	var refs []*pb.FileRef
	for _, u := range []string{whole, empty} {
		ref := &pb.FileRef{}
		ref.SetURI(u)
		refs = append(refs, ref)
	}
	if resp, err := c.LoadFiles(ctx, &pb.LoadFilesRequest{Files: refs}); err != nil || resp.Failed != 0 {
		t.Fatalf("load: %v %v", resp, err)
	}
	// One page of part, read through: cached, but not whole.
	ten := int64(10)
	read := &pb.ReadRangeRequest{Length: &ten}
	read.SetURI(part)
	stream, err := c.ReadRange(ctx, read)
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := stream.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	version := func(u string) (int64, string) {
		st := &pb.StatRequest{}
		st.SetURI(u)
		resp, err := c.Stat(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		return resp.File.Size, resp.File.Version
	}
	ws, wv := version(whole)
	pSize, pv := version(part)
	es, ev := version(empty)
	opens, stats := src.Opens(), src.Stats()

	ref := func(u string, size int64, v string) *pb.FileRef {
		r := &pb.FileRef{Size: size, Version: v}
		r.SetURI(u)
		return r
	}
	cases := []struct {
		ref  *pb.FileRef
		want bool
	}{
		{ref(whole, ws, wv), true},
		{ref(whole, ws, wv+"x"), false}, // another version
		{ref(whole, ws+1, wv), false},   // another size
		{ref(whole, ws, ""), false},     // no version: only a load may ask the source
		{ref(whole[:len(whole)-1], ws, wv), false},
		{ref(part, pSize, pv), false}, // partly cached
		{ref(empty, es, ev), true},
		{ref(never, 10, "v"), false},
		{&pb.FileRef{Uri: "not a uri", Version: "v"}, false},
	}
	req := &pb.CachedFilesRequest{}
	for _, tc := range cases {
		req.Files = append(req.Files, tc.ref)
	}
	resp, err := c.CachedFiles(ctx, req)
	if err != nil || len(resp.Cached) != len(cases) {
		t.Fatalf("%v %v", resp, err)
	}
	for i, tc := range cases {
		if resp.Cached[i] != tc.want {
			t.Errorf("file %d (%q %d %q): cached %v, want %v", i, tc.ref.URI(), tc.ref.Size, tc.ref.Version, resp.Cached[i], tc.want)
		}
	}
	if src.Opens() != opens || src.Stats() != stats {
		t.Fatalf("CachedFiles asked the source: %d opens, %d stats", src.Opens()-opens, src.Stats()-stats)
	}
	many := make([]*pb.FileRef, 10001)
	for i := range many {
		many[i] = &pb.FileRef{Uri: empty}
	}
	if _, err := c.CachedFiles(ctx, &pb.CachedFilesRequest{Files: many}); code(err) != codes.InvalidArgument {
		t.Fatalf("10,001 files: %v", err)
	}
}
