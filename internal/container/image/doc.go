// Package image is skiff's image store: it pulls OCI and Docker v2 images
// from registries, imports `docker save` and OCI-layout archives, keeps
// their content on disk and unpacks every layer once, ready for overlayfs.
//
// # Using it
//
//	s, err := image.New(image.Config{Root: "/var/lib/skiff/images"})
//	img, err := s.Pull(ctx, "busybox", nil, nil) // docker.io/library/busybox:latest
//	// img.Config is the OCI image config (entrypoint, env, user...).
//	// img.LayerDirs() are the unpacked layers, lowest first.
//
// The runtime builds a container's rootfs from LayerDirs (reversed, as
// overlayfs wants lowerdir=top:...:bottom). Before it mounts them it takes a
// lease, and it releases the lease when the container is gone:
//
//	img, err := s.Lease(containerID, ref) // GC keeps img's layers from now on
//	...
//	err = s.Release(containerID)
//
// Remove drops references and GC frees what no image and no lease uses.
//
// # Pull
//
//	ParseReference ─► endpoints (mirrors of the registry, then the registry)
//	     │                 each: ping + auth flow ─► manifest ─► index? pick platform
//	     ▼
//	config blob (verified) ─► layers, up to MaxConcurrentDownloads at once:
//	     layer dir exists? ─ yes ─► done (shared with every image using it)
//	        │ no
//	        ▼
//	     blob stream ─┬─► tmp blob file (sha256 = layer digest?)
//	                  └─► gunzip/zstd ─► sha256 = diffID? ─► untar into tmp dir
//	     both verified ─► rename blob into blobs/, dir into layers/
//	     ▼
//	manifest blob ─► index entry (state.json, atomically replaced)
//
// # On disk
//
//	<Root>/blobs/sha256/<hex>    manifests, configs, layer blobs
//	<Root>/layers/sha256/<hex>   unpacked layers, by diffID
//	<Root>/tmp/                  work in progress, emptied by New
//	<Root>/state.json            images and leases
//
// Everything appears by rename once complete and verified, so after a crash
// the store holds whole blobs and whole layers or nothing; New drops index
// entries whose content is missing.
//
// # Layers
//
// Layers are unpacked one by one into their own directories and stacked by
// overlayfs later, so whiteouts are written in overlayfs form: ".wh.NAME"
// becomes a 0/0 character device NAME and ".wh..wh..opq" the xattr
// trusted.overlay.opaque=y on its directory. Owners, modes (with setuid,
// setgid, sticky), symlinks, hardlinks within the layer, devices, FIFOs,
// mtimes and xattrs (where the filesystem allows; trusted.overlay.* from a
// layer is dropped) are kept. A layer that names ".." in a path, hardlinks
// to an absolute or outside path, or writes through a symlink is rejected
// with ErrUnsafeLayer; symlink targets themselves are stored as they are,
// since they resolve inside the container's root. Unpacking needs root
// (ownership, device whiteouts, trusted xattrs).
//
// A layer dir is keyed by diffID alone and shared by every image that has
// that layer, whatever lies below it. So a directory that a layer's tar
// does not list but needs (a parent of an entry) is created 0755 root:root
// rather than copied from the layers below; layer producers (docker,
// buildkit, ggcr) list parents, so this only matters for hand-made tars.
//
// # Failures
//
// Requests answered 429 or 5xx are tried three times; a pull that gets no
// byte for Config.StallTimeout is canceled. A failed pull or import runs GC,
// so it leaves nothing behind but content other images or operations use.
//
// # Errors
//
// Errors wrap one of ErrNotFound, ErrUnauthorized, ErrDigestMismatch,
// ErrUnsafeLayer, ErrUnsupported and ErrInvalidReference when one applies;
// test them with errors.Is.
package image
