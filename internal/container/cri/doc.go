// Package cri serves the container runtime and the image store over the
// Kubernetes CRI (k8s.io/cri-api v1): RuntimeService and ImageService on
// a gRPC server, usually on a unix socket, plus the HTTP streaming server
// that exec, attach and port-forward URLs point to.
//
//	srv, err := cri.New(cri.Config{Runtime: rt, Images: store, StreamingAddress: "127.0.0.1:0"})
//	go srv.Serve(ctx, unixListener) // blocks until ctx ends
//
// When the image store can also import and collect garbage (as
// *image.Store can), the same gRPC server serves skiff's image service
// (package imageservice) beside the CRI, for `skiff images`.
//
// Every call is counted and timed in Prometheus metrics (Metrics) by
// method and gRPC code. Errors from the runtime and the image store are
// mapped to gRPC codes the way containerd maps them: NotFound for unknown
// IDs and images, AlreadyExists for a taken name, InvalidArgument for a
// bad request, FailedPrecondition for an object in the wrong state.
package cri
