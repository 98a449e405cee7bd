package shim

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Files in a container's bundle directory.
const (
	SpecFile = "config.json" // the OCI spec, written by the runtime
	FifoFile = "exec.fifo"   // the init blocks opening it until start
	ExitFile = "exit.json"   // the init's ExitStatus, written by the shim
)

// Files in the monitor's directory (the runtime's root).
const (
	MonitorSocket = "monitor.sock" // the monitor's control socket
	MonitorLog    = "monitor.log"  // the monitor's and inits' own errors
)

// ErrNotRunning is returned (wrapped) by the control calls when the shim
// is gone.
var ErrNotRunning = errors.New("container is not running")

// Config is what the monitor needs to hold a container, besides the OCI
// spec.
type Config struct {
	// LogPath is the CRI log file; empty discards output.
	LogPath string `json:"logPath,omitempty"`
	// LogMaxSize rotates the log once it grows past this many bytes
	// (0: never); LogMaxFiles is how many files to keep, the live one
	// included (at least 2 when rotating).
	LogMaxSize  int64 `json:"logMaxSize,omitempty"`
	LogMaxFiles int   `json:"logMaxFiles,omitempty"`
	// Terminal gives the container a pty instead of pipes.
	Terminal bool `json:"terminal,omitempty"`
	// Stdin keeps the container's stdin open for attach; StdinOnce closes
	// it when the first attached client detaches.
	Stdin     bool `json:"stdin,omitempty"`
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// Namespaces are joined (type as in /proc/<pid>/ns -> file) before
	// the init is cloned.
	Namespaces map[string]string `json:"namespaces,omitempty"`
	// NewPID gives the container its own PID namespace.
	NewPID bool `json:"newPID,omitempty"`
}

// Message is one JSON line on the sync socket between the runtime, the
// shim and an init.
type Message struct {
	// Type is "joined" (runtime -> init: it is in its cgroup), "created"
	// (init -> runtime: ready, waiting for start), "error" (init ->
	// runtime) or "config" (runtime -> exec-init).
	Type  string      `json:"type"`
	Pid   int         `json:"pid,omitempty"`
	Error string      `json:"error,omitempty"`
	Exec  *ExecConfig `json:"exec,omitempty"`
}

// ExecConfig is what an exec-init runs.
type ExecConfig struct {
	Process specs.Process       `json:"process"`
	Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"`
}

// ExitStatus is how the init ended, as the shim saw it.
type ExitStatus struct {
	Pid int `json:"pid"`
	// ExitCode is the exit status, or 128+signal for a process killed by
	// a signal (as shells and the CRI report it).
	ExitCode int `json:"exitCode"`
	// Signal is the signal that killed it, 0 if it exited.
	Signal     int       `json:"signal,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
}

// ReadExit returns the exit status the shim wrote in bundle, or an error
// wrapping os.ErrNotExist when there is none (yet).
func ReadExit(bundle string) (ExitStatus, error) {
	var st ExitStatus
	data, err := os.ReadFile(path.Join(bundle, ExitFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("read %s: %w", ExitFile, err)
	}
	return st, nil
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so readers never see half a file.
func writeFileAtomic(file string, data []byte) error {
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// request opens each connection to the monitor's socket: one JSON
// message, with the sync socket attached (SCM_RIGHTS) for "create".
type request struct {
	Op     string  `json:"op"` // create, events, attach, resize, reopen, close-stdin
	ID     string  `json:"id,omitempty"`
	Bundle string  `json:"bundle,omitempty"`
	Config *Config `json:"config,omitempty"`
	Stdin  bool    `json:"stdin,omitempty"`
	Stdout bool    `json:"stdout,omitempty"`
	Stderr bool    `json:"stderr,omitempty"`
	Width  uint16  `json:"width,omitempty"`
	Height uint16  `json:"height,omitempty"`
}

// reply2 answers a request.
type reply2 struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	// Setup marks an Error that is a SetupError.
	Setup bool `json:"setup,omitempty"`
}

// SetupError is a container set-up that failed because of what the
// container asks for (a mount source that does not exist, a program that
// is not there), as opposed to a failure of the monitor itself.
type SetupError struct{ Reason string }

func (e *SetupError) Error() string { return e.Reason }

// Event is one line on an "events" connection: first a "live" snapshot
// of the containers the monitor holds, then an "exit" for each container
// whose init exits (its exit.json is written by then).
type Event struct {
	Type string   `json:"type"`
	ID   string   `json:"id,omitempty"`
	IDs  []string `json:"ids,omitempty"`
}

// Frames on an attach connection: a kind byte, a big-endian uint32
// length, then the payload.
const (
	frameStdout     = 1 // shim -> client
	frameStderr     = 2 // shim -> client
	frameStdin      = 3 // client -> shim
	frameCloseStdin = 4 // client -> shim
	frameResize     = 5 // client -> shim: width, height as uint16 BE
)

func writeFrame(w io.Writer, kind byte, p []byte) error {
	hdr := make([]byte, 5, 5+len(p))
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
	_, err := w.Write(append(hdr, p...))
	return err
}

func readFrame(r io.Reader, buf []byte) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if int(n) > cap(buf) {
		if n > 1<<20 {
			return 0, nil, fmt.Errorf("attach frame of %d bytes", n)
		}
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, err
	}
	return hdr[0], buf, nil
}
