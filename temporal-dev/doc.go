// Package temporaldev runs a complete Temporal server, and optionally its Web
// UI, inside the calling process.
//
// It is what `ferry dev` and `ferry temporal-dev` start, and what Ferry's
// integration tests start instead of an external cluster. The server runs all
// four Temporal services (frontend, history, matching, worker) on loopback and
// keeps its state in SQLite:
//
//   - File mode (Config.DatabaseFile set): the schema is created the first time
//     and reused afterwards, so workflows survive a restart of the process,
//     including a SIGKILL (SQLite commits are durable on their own).
//   - Memory mode (Config.DatabaseFile empty): a private in-memory database that
//     disappears with the server; used by tests.
//
// The namespace is created at start with Ferry's custom search attributes
// (SearchAttributes), and they are added again through the operator API when
// an older database lacks one, so jobs can always be filtered in the UI by job
// type, path and state.
//
// In production Ferry does not use this package: every subcommand takes
// --temporal-address and talks to the user's own Temporal cluster.
package temporaldev
