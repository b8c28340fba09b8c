// Package copymove holds the acceptance tests of copy and move jobs across
// storage systems (spec/jobs.md §5): local, S3 (gofakes3 behind SigV4 checks
// and an optional fault-injecting proxy, package storage/s3/s3test) and GCS
// (fake-gcs-server, package storage/gcs/gcstest), driven through the real
// job engine of package internal/enginetest — in-memory Temporal, the real
// coordinator and node workers, the real CopyBatch.
//
// Every test hashes both trees through the storage layer and checks the
// counters exactly. The copy benchmark against cp -r is opt-in:
//
//	FERRY_BENCH=1 go test ./tests/copymove -run Bench -v -timeout 30m
package copymove
