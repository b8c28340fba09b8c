// Package tests holds Ferry's end-to-end tests: they build the ferry binary
// once, start real processes (ferry dev, worker, cachenode, api), kill some
// of them, and check what a user would see over real HTTP and gRPC.
package tests
