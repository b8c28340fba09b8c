// Package e2e holds the cache node's process tests: they run real
// `ferry cachenode` processes against an in-process Temporal server, kill
// them with SIGKILL and check the ring and the data. It has no code of its
// own; the binary is built once per test run (internal/ferrytest).
package e2e
