// Package bandwidthpb is the generated code of the bandwidth authority's
// gRPC service (bandwidth.proto). Do not edit the .pb.go files: change the
// .proto and run `go generate ./bandwidth/bandwidthpb`, which needs protoc
// and the protoc-gen-go v1.36.11 and protoc-gen-go-grpc v1.5.1 plugins on
// PATH (see `task proto`).
package bandwidthpb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative bandwidth.proto
