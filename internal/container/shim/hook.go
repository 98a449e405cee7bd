package shim

import (
	"os"
)

// ReexecEnv is the environment variable that marks a re-executed helper
// and names its role.
const ReexecEnv = "_SKIFF_REEXEC"

// The roles a re-executed binary can take.
const (
	RoleMonitor = "monitor"
	RoleExec    = "exec"
)

// init dispatches re-executed helpers before most of the binary
// initializes. It is the one init function in skiff that does work: the
// binary carries kubectl, client-go and etcd, whose package initializers
// take tens of milliseconds and megabytes, and a helper needs none of
// them. Go initializes a package as soon as its imports are and no
// package with a smaller import path is ready, so this package keeps its
// imports few and early (no net, os/signal or path/filepath): helpers run
// after about 300 of the binary's 1,200 packages. It registers nothing;
// processes without the marker are untouched.
func init() {
	if role := os.Getenv(ReexecEnv); role != "" {
		os.Exit(run(role))
	}
}

// MaybeRun runs the helper named by ReexecEnv and exits, or returns false
// when the process is not a re-executed helper. Helpers are normally
// dispatched before main runs, so this is a second line of defence for
// entry points that are reached some other way.
func MaybeRun() bool {
	role := os.Getenv(ReexecEnv)
	if role == "" {
		return false
	}
	os.Exit(run(role))
	return true
}

func run(role string) int {
	switch role {
	case RoleMonitor:
		return runMonitor()
	case RoleExec:
		return runExecInit()
	}
	os.Stderr.WriteString("skiff: unknown helper role " + role + "\n")
	return 2
}
