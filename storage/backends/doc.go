// Package backends turns Ferry's storage configuration into a
// storage.Resolver over every backend: file (storage/local), s3
// (storage/s3), gs (storage/gcs) and hdfs (storage/hdfs).
//
// Configuration comes from a file and the environment, in that order of
// precedence from lowest to highest: the documented defaults, the file
// (YAML, or JSON when its name ends in ".json"; unknown keys are errors),
// then the FERRY_* environment variables listed at Config.ApplyEnv. The
// SDKs' own variables (AWS_*, GOOGLE_APPLICATION_CREDENTIALS,
// STORAGE_EMULATOR_HOST, KRB5_CONFIG, KRB5CCNAME) apply where the
// configuration leaves a field empty. Connection settings of S3 and GCS can
// differ per bucket ("buckets:" in the file).
//
// Secrets (S3 secret keys and session tokens, GCS key JSON, the Kerberos
// password) have the type Secret, which prints, logs and marshals as
// "[REDACTED]"; a Config prints as YAML with secrets redacted. Decoding
// errors name the offending key and line, never the value.
//
// NewResolver validates the whole configuration at once and builds the
// stores without connecting anywhere, so a process that never uses a scheme
// needs none of its credentials.
package backends
