// Package cachenodepb is the generated code of the cache node's gRPC
// service (cachenode.proto). Do not edit the .pb.go files: change the
// .proto and run `task proto` (or `go generate ./cachenode/cachenodepb`),
// which needs protoc and the protoc-gen-go v1.36.11 and protoc-gen-go-grpc
// v1.5.1 plugins on PATH.
package cachenodepb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative cachenode.proto
