// Package api is the wire format of skiff's image service
// (skiff.images.v1.Images): the protobuf messages generated from
// images.proto, and the gRPC client and server glue, written by hand in
// grpc.go in the shape protoc-gen-go-grpc would give it. Package
// imageservice implements the server and wraps the client.
package api

//go:generate protoc -I ../../../.. --go_out=../../../.. --go_opt=paths=source_relative internal/container/imageservice/api/images.proto
