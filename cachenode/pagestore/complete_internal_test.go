package pagestore

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"strconv"
	"testing"
)

// BenchmarkCompleteSetMemory measures the heap a set of complete files,
// given DefaultCompleteFiles files, takes per file it holds
// (runtime.MemStats), with local storage's versions (size and modification
// time, 25 bytes) and S3's (a quoted MD5 ETag, 34 bytes):
//
//	go test -run '^$' -bench CompleteSetMemory -benchtime 1x ./cachenode/pagestore/
func BenchmarkCompleteSetMemory(b *testing.B) {
	const files = DefaultCompleteFiles
	for _, v := range []struct {
		name    string
		version func(i int) string
	}{
		{"local", func(i int) string { return "16384-" + strconv.Itoa(1796056180117255422+i) }},
		{"s3", func(i int) string { return fmt.Sprintf("%q", fmt.Sprintf("%032x", i)) }},
	} {
		b.Run(v.name, func(b *testing.B) {
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				c := newCompleteSet(files)
				for i := range files {
					fid := sha256.Sum256([]byte(strconv.Itoa(i)))
					// As CachedComplete and commitPage store it: a string of its own.
					c.add(fid, completeEntry{size: 16384, version: v.version(i)})
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				// Each part of the set holds its share: a few parts were
				// full before the others and dropped some.
				n := c.len()
				b.ReportMetric(float64(n), "files")
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(n), "B/file")
				runtime.KeepAlive(c)
			}
		})
	}
}
