package integrity

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ferryio/ferry/internal/enginetest"
	"github.com/ferryio/ferry/jobs"
	"github.com/ferryio/ferry/storage/gcs/gcstest"
	"github.com/ferryio/ferry/storage/s3/s3test"
	"github.com/ferryio/ferry/workflows"
)

// nameAlphabet is what random names are made of: letters, glob characters,
// spaces, %, +, unicode from several planes.
var nameAlphabet = []rune("abcXYZ019 _-.,;=+%&'()[]{}*?!@#$~^ ünïçødé日本語한국어Ωπ€🚀\u00a0")

// randomName returns a name of 1..max runes that is a valid file name: no
// "/", not "." or "..", no NUL.
func randomName(r *rand.Rand, max int) string {
	for {
		n := 1 + r.Intn(max)
		var b strings.Builder
		for i := 0; i < n; i++ {
			b.WriteRune(nameAlphabet[r.Intn(len(nameAlphabet))])
		}
		s := b.String()
		if s != "." && s != ".." && len(s) <= 255 && !strings.HasPrefix(s, ".") {
			return s
		}
	}
}

// randomTree returns files (relative path → content) of random names,
// depths and sizes, with a few very long names and deep paths.
func randomTree(r *rand.Rand, files int) map[string]string {
	tree := map[string]string{}
	for len(tree) < files {
		depth := r.Intn(4)
		if r.Intn(10) == 0 {
			depth = 12 // deep
		}
		var segs []string
		for i := 0; i < depth; i++ {
			segs = append(segs, randomName(r, 8))
		}
		name := randomName(r, 16)
		if r.Intn(10) == 0 {
			name = strings.Repeat("l", 200) + randomName(r, 10) // very long
		}
		rel := strings.Join(append(segs, name), "/")
		if len(rel) > 900 || conflicts(tree, rel) {
			continue
		}
		size := r.Intn(5000)
		if r.Intn(40) == 0 {
			size = 1<<20 + r.Intn(1<<20)
		}
		data := make([]byte, size)
		r.Read(data)
		tree[rel] = string(data)
	}
	return tree
}

// conflicts reports whether rel cannot live beside the tree's files: a file
// where another needs a directory, or the reverse.
func conflicts(tree map[string]string, rel string) bool {
	if _, ok := tree[rel]; ok {
		return true
	}
	for k := range tree {
		if strings.HasPrefix(k, rel+"/") || strings.HasPrefix(rel, k+"/") {
			return true
		}
	}
	return false
}

// TestRandomTreesSurviveEveryHop is the property test of issue 11: trees of
// random names (glob characters, spaces, %, +, unicode, very long names,
// deep paths) and sizes are copied local → S3 → GCS → local and moved back
// the same way; every name and every byte survives and, after each move,
// nothing is left at the source. FERRY_PROPERTY_FILES (default 40) and
// FERRY_PROPERTY_SEED choose the size and the tree; the seed is logged.
func TestRandomTreesSurviveEveryHop(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("FERRY_PROPERTY_SEED"); s != "" {
		seed, _ = strconv.ParseInt(s, 10, 64)
	}
	files := 40
	if s := os.Getenv("FERRY_PROPERTY_FILES"); s != "" {
		files, _ = strconv.Atoi(s)
	}
	t.Logf("seed %d (FERRY_PROPERTY_SEED=%d reproduces it), %d files", seed, seed, files)
	r := rand.New(rand.NewSource(seed))
	tree := randomTree(r, files)

	s3srv, gcsSrv := s3test.Start(t), gcstest.Start(t)
	s3st := s3test.NewStore(t, s3test.Options(s3srv.URL))
	gcsSt := gcstest.NewStore(t, gcstest.Options(gcsSrv.URL))
	cl := enginetest.NewCluster(t, 2, s3st, gcsSt)
	var total int64
	for _, v := range tree {
		total += int64(len(v))
	}
	n := int64(len(tree))

	base := t.TempDir()
	src := filepath.Join(base, "src")
	writeTree(t, src, tree)
	s3Bucket, gcsBucket := s3srv.NewBucket(t), gcsSrv.NewBucket()
	hops := []string{"file://" + src, "s3://" + s3Bucket + "/p", "gs://" + gcsBucket + "/q", "file://" + filepath.Join(base, "back")}
	keys := func(uri string) map[string]bool {
		out := map[string]bool{}
		switch {
		case strings.HasPrefix(uri, "s3://"):
			for _, k := range s3srv.Keys(t, s3Bucket) {
				if rel, ok := strings.CutPrefix(k, "p/"); ok {
					out[rel] = true
				}
			}
		case strings.HasPrefix(uri, "gs://"):
			for _, k := range gcsSrv.Names(t, gcsBucket) {
				if rel, ok := strings.CutPrefix(k, "q/"); ok {
					out[rel] = true
				}
			}
		default:
			for k := range readTree(t, strings.TrimPrefix(uri, "file://")) {
				out[k] = true
			}
		}
		return out
	}
	sameNames := func(t *testing.T, uri string, want map[string]string) {
		t.Helper()
		got := keys(uri)
		if len(got) != len(want) {
			t.Fatalf("%s holds %d names, want %d", uri, len(got), len(want))
		}
		for k := range want {
			if !got[k] {
				t.Fatalf("%s lacks %q", uri, k)
			}
		}
	}
	for i := 0; i+1 < len(hops); i++ {
		from, to := hops[i], hops[i+1]
		t.Run(fmt.Sprintf("copy %d", i), func(t *testing.T) {
			st := runJob(t, cl, jobs.Key{Type: workflows.JobCopy, Path: from, Dst: to}, map[string]any{"checkContent": "true"})
			check(t, st, want{status: workflows.StatusSucceeded, succeeded: n, bytes: total})
			sameNames(t, to, tree)
		})
	}
	sameFiles(t, "after local → S3 → GCS → local", readTree(t, filepath.Join(base, "back")), tree)
	// And back again by moves: back → GCS (new prefix) → S3 → local.
	moves := []string{"file://" + filepath.Join(base, "back"), "gs://" + gcsBucket + "/m", "s3://" + s3Bucket + "/m", "file://" + filepath.Join(base, "home")}
	for i := 0; i+1 < len(moves); i++ {
		from, to := moves[i], moves[i+1]
		t.Run(fmt.Sprintf("move %d", i), func(t *testing.T) {
			st := runJob(t, cl, jobs.Key{Type: workflows.JobMove, Path: from, Dst: to}, nil)
			check(t, st, want{status: workflows.StatusSucceeded, succeeded: n, bytes: total})
		})
	}
	sameFiles(t, "after the moves back", readTree(t, filepath.Join(base, "home")), tree)
	sameFiles(t, "the first move's source", readTree(t, filepath.Join(base, "back")), nil)
	for _, k := range s3srv.Keys(t, s3Bucket) {
		if strings.HasPrefix(k, "m/") {
			t.Fatalf("%q left in S3 after the move", k)
		}
	}
	for _, k := range gcsSrv.Names(t, gcsBucket) {
		if strings.HasPrefix(k, "m/") {
			t.Fatalf("%q left in GCS after the move", k)
		}
	}
}
