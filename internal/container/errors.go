package container

import "errors"

// Error classes. Runtime methods wrap them with the object operated on;
// the CRI server maps them to gRPC codes (NotFound, AlreadyExists,
// InvalidArgument, FailedPrecondition).
var (
	// ErrNotFound: no sandbox, container or image by that ID or name.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: the name is taken by another sandbox or container.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalid: the request cannot be satisfied as written (bad mount,
	// unknown user, no command, missing executable, ...).
	ErrInvalid = errors.New("invalid argument")
	// ErrNotReady: the object is in the wrong state for the operation
	// (starting a running container, exec in a stopped one, creating a
	// container in a stopped sandbox).
	ErrNotReady = errors.New("failed precondition")
)
