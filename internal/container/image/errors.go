package image

import "errors"

// Error classes. Store methods wrap them with the noun operated on, so
// callers test with errors.Is and show the message as it is.
var (
	// ErrNotFound: the image, reference, layer or platform does not exist
	// in the store or in the registry (and, for Pull, in any mirror).
	ErrNotFound = errors.New("not found")
	// ErrDigestMismatch: content did not hash to the digest that names it
	// (a manifest, config, layer blob or uncompressed layer). Nothing of the
	// failed operation is kept.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnsafeLayer: a layer tries to write outside its directory ("..",
	// absolute hardlink targets, writes through symlinks) and was rejected.
	ErrUnsafeLayer = errors.New("unsafe layer")
	// ErrUnauthorized: the registry refused the credentials (or their absence).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrInvalidReference: an image reference that does not parse.
	ErrInvalidReference = errors.New("invalid image reference")
	// ErrUnsupported: a well-formed image skiff cannot use (schema 1
	// manifests, foreign layers, unknown media types or compression).
	ErrUnsupported = errors.New("unsupported")
)
