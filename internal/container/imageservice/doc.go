// Package imageservice lets people manage a running runtime's image store:
// import `docker save` and OCI-layout tarballs (for nodes with no
// registry), pull with progress, list, remove and collect garbage. The CRI
// cannot do that: it has no import, its PullImage reports no progress, and
// it has no GC. Yet the store must stay inside the runtime process, which
// alone owns its directory and in-memory index. So the runtime serves this
// small gRPC service (skiff.images.v1.Images, see package api) on its CRI
// socket, on the same gRPC server as the CRI: package cri registers it
// whenever its image store can import and collect garbage. crictl and the
// kubelet call only the CRI services and never notice it.
//
// # Serving
//
//	svc, err := imageservice.NewServer(imageservice.Config{Store: store})
//	svc.Register(grpcServer)
//
// # Calling
//
//	c, err := imageservice.Dial("/var/lib/skiff/agent/cri.sock")
//	defer c.Close()
//	d := imageservice.NewDisplay(os.Stdout, imageservice.DisplayConfig{Terminal: true, Width: 120})
//	img, err := c.Pull(ctx, "busybox", nil, d.Update)
//	d.Done(img)
//
//	f, _ := os.Open("app.tar")
//	imgs, err := c.Import(ctx, f, nil)
//
// # The wire
//
//	Import  client ══ archive chunks ══► server ─► pipe ─► Store.Import
//	        client ◄── progress … images ── server    (bidirectional stream)
//	Pull    client ── ref, auth ──► server ─► Store.Pull
//	        client ◄── progress … image ── server     (server stream)
//	List, Remove (then GC), GC                        (unary)
//
// The store reports progress from inside its work and must not wait for a
// slow client; the server keeps only the latest snapshot and sends it when
// the stream can take it, so a client may miss intermediate states but
// always gets the final one. Every snapshot is whole (all layers), so
// nothing else is lost.
//
// A client that goes away cancels the call: a pull or import in progress
// stops and, as any failed pull or import in the store, leaves nothing
// behind. A client that cannot read the whole archive cancels the import
// rather than send a cut one.
//
// # Errors
//
// The server's status errors carry the store's whole message and its error
// class (in an ErrorInfo detail), so the client's errors read as the
// store's did and wrap the same sentinels: image.ErrNotFound,
// image.ErrUnauthorized, image.ErrDigestMismatch, image.ErrUnsafeLayer,
// image.ErrInvalidReference, image.ErrUnsupported. ErrUnavailable (nothing
// listens), ErrUnimplemented (not skiff's runtime) and ErrInvalid (a bad
// request) are the client's own. Test them with errors.Is.
package imageservice
