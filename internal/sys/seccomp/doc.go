// Package seccomp builds, compiles and loads seccomp filters.
//
// A Profile is the JSON shape used by OCI runtime specs and Docker
// ("defaultAction", "syscalls" with "names", "action", "args"). RuntimeDefault
// returns the profile Kubernetes calls RuntimeDefault: the same allow list
// as Docker's and containerd's default, with the syscalls that need a
// capability allowed only when the container holds it.
//
// Compile turns a Profile into classic BPF for the running architecture:
//
//	check arch   -> foreign arch or x32 ABI: default action
//	syscalls with argument rules: one block each, rules tried in order
//	other syscalls: a binary search over ranges of numbers that share an
//	                action, falling back to the default action
//
// Load installs a compiled filter on the calling thread. Like the rest of
// the process set-up it is meant to run just before execve on a locked OS
// thread; the filter then applies to the new program.
//
//go:generate go run ./internal/gensysnum
package seccomp
