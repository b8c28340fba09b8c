// Package gcs is the storage backend for gs:// URIs: Google Cloud Storage
// through cloud.google.com/go/storage (JSON API).
//
// # Naming
//
// gs://bucket/name names an object; the name is used byte for byte.
// Directories are name prefixes: gs://bucket/dir lists the names under
// "dir/". MakeDir does nothing; Stat of a prefix with children reports
// IsDir; "dir/" placeholder objects (made by the console) are honoured by
// Stat and Delete and never listed as files.
//
// # Connections and credentials
//
// Options.Connection is the default; Options.Buckets overrides it per
// bucket. Credentials come from a key file (CredentialsFile), its content
// (CredentialsJSON, a secret), anonymous access, or else Application
// Default Credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud, the metadata
// server). The key file's type is read and checked (service_account,
// authorized_user, external_account, impersonated_service_account) before
// it is handed to the client, as the client library asks. Endpoint (or
// STORAGE_EMULATOR_HOST) points at an emulator; reads then use the JSON API,
// which emulators serve. Clients are created on first use: a process
// without any Google credentials starts, and its gs:// operations fail with
// ErrPermission.
//
// # Retries
//
// The client retries idempotent requests (and uploads, which are safe to
// repeat) MaxAttempts times with exponential backoff between MinBackoff and
// MaxBackoff; Temporal retries whole activities above that. Reads cut by the
// network resume inside the client, pinned to the object's generation.
//
// # Writes
//
// Create returns the client's Writer: objects smaller than ChunkSize go in
// one request, larger ones in a resumable upload. Either way the object
// appears only when Commit closes the writer; Abort cancels the writer's
// context, which abandons the upload. Without Overwrite the upload carries
// ifGenerationMatch=0 (DoesNotExist) and a 412 is ErrExists; in "auto" mode,
// the default for custom endpoints, the name is also checked just before the
// upload is finalized, because fake-gcs-server ignores preconditions on
// resumable uploads and rewrites (a writer finishing between that check and
// the finalization is replaced: that is the race). Every object carries the
// custom metadata "ferry-write-id", so that a finalization whose response
// was lost and whose retry got 412 recognises its own object.
//
// # Versions and hashes
//
// Version is the object's generation. ContentHash is "md5:<hex>" where GCS
// keeps an MD5 (not for composite objects) and "crc32c:<hex>" otherwise.
//
// # Copy
//
// Copy uses the rewrite API (any size, in as many calls as GCS needs), with
// the source pinned to its generation and the no-overwrite precondition.
//
// # Errors
//
// 404 and ErrObjectNotExist/ErrBucketNotExist are ErrNotFound; 401/403 and
// rejected credentials are ErrPermission; 412 on a no-overwrite write is
// ErrExists; 416 is ErrOutOfRange; 408, 409, 429, 5xx, timeouts and
// connection failures are ErrUnavailable; other 4xx are ErrInvalidPath.
package gcs
