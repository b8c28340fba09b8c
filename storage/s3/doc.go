// Package s3 is the storage backend for s3:// URIs: Amazon S3 and
// S3-compatible servers (MinIO, Ceph RGW, …), through aws-sdk-go-v2.
//
// # Naming
//
// s3://bucket/key names an object; the key is used byte for byte (no
// percent-decoding). Directories are key prefixes: s3://bucket/dir lists the
// keys under "dir/", s3://bucket lists the whole bucket. A directory exists
// while an object exists below it; MakeDir does nothing, and Stat of a
// prefix with children reports IsDir. Zero-byte "dir/" marker objects made
// by other tools are honoured by Stat and Delete and never listed as files.
//
// # Connections and credentials
//
// Options.Connection is the default connection; Options.Buckets overrides it
// per bucket (another endpoint, region or credentials). Credentials are the
// explicit key/secret (and session token) when given, else the standard AWS
// chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, shared files and profiles,
// web identity, container and instance roles. A custom Endpoint with
// PathStyle serves MinIO and Ceph. Secrets never appear in errors or in the
// formatted Options.
//
// # Retries
//
// The SDK's retryer is bounded: MaxAttempts (default 4) attempts per
// request with jittered exponential backoff between MinBackoff and
// MaxBackoff, on throttling (503 SlowDown …), 5xx, timeouts, and connection
// failures, including a response body cut short. Temporal retries whole
// activities above that. A read whose connection breaks mid-body resumes
// with a ranged GET pinned to the object's ETag.
//
// # Writes
//
// Create buffers up to PartSize (8 MiB). An object that fits is sent in one
// PUT at Commit; a larger one becomes a multipart upload whose parts are sent
// while writing (Concurrency in flight) and which Commit completes. Nothing
// is ever visible under the key before Commit: Abort and every failure abort
// the multipart upload, and a writer abandoned by a crash leaves only an
// incomplete upload, invisible, which a bucket lifecycle rule
// (AbortIncompleteMultipartUpload) removes. Every object Ferry writes
// carries the user metadata "ferry-write-id", a random id per write, so that
// a commit whose response was lost and whose retry is refused can tell its
// own object from someone else's.
//
// Without Overwrite, Create checks that the key is free (HEAD) and Commit
// keeps it so according to Connection.NoOverwrite:
//
//   - "conditional" (default for AWS): the committing PUT or
//     CompleteMultipartUpload carries If-None-Match: *; a 412 is ErrExists.
//     No race.
//   - "auto" (default for custom endpoints): the header, and a HEAD just
//     before the commit. Race-free where the server honours the header;
//     where it ignores it (gofakes3 on CompleteMultipartUpload and
//     CopyObject, older MinIO/Ceph) another writer that commits between the
//     HEAD and the commit is replaced: that window is the race. A server
//     that rejects the header with 501 is remembered and not sent it again.
//   - "check": the HEAD only, for servers that mishandle the header; same
//     race.
//
// # Versions and hashes
//
// Version is the ETag. ContentHash is "md5:<hex>" for single-part ETags
// (which are the MD5 of the bytes, except for SSE-KMS or SSE-C objects) and
// "etag:<value>" for multipart ETags. The additional checksums S3 may keep
// (CRC32C, CRC64NVME, SHA-256) are not used: listings do not return them,
// and List and Stat must describe an object the same way.
//
// # Copy
//
// Copy is server-side: CopyObject, or UploadPartCopy parts above
// MultipartCopyThreshold (5 GiB, the CopyObject limit), with the same
// no-overwrite rule and the source pinned to its ETag.
//
// # Errors
//
// NoSuchKey, NoSuchBucket and 404 are ErrNotFound; AccessDenied,
// InvalidAccessKeyId, SignatureDoesNotMatch, expired tokens and 401/403 are
// ErrPermission; 412 on a no-overwrite commit is ErrExists; 416 is
// ErrOutOfRange; SlowDown, throttling, 5xx, timeouts and connection failures
// are ErrUnavailable; other 4xx are ErrInvalidPath. Each error is one line
// naming the operation, the URI, the kind and the server's code and message
// (or the network failure and the endpoint).
package s3
