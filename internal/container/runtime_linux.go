package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/container/shim"
)

// Runtime runs pod sandboxes and containers on this host. It is safe for
// concurrent use. Its state lives under Config.Root; a new Runtime on the
// same Root adopts the sandboxes and containers the previous one left,
// running or not.
type Runtime struct {
	cfg           Config
	log           *slog.Logger
	cgroupUnified bool
	cgroupV1      []string
	oomAdjOnce    sync.Once

	mu         sync.Mutex // guards sandboxes, containers, names, subs, events and closing
	events     *shim.EventStream
	closing    bool
	sandboxes  map[string]*sandbox
	containers map[string]*ctr
	names      map[string]string // reserved name -> owner ID
	subs       map[chan *runtimeapi.ContainerEventResponse]struct{}

	// starts bounds the sandboxes and containers being made at once. The
	// work is CPU-bound (mounts, cgroups, a container init process), so a
	// burst of a hundred made together all finish at the end; made a few
	// at a time, in arrival order (a channel queues its waiters), the
	// first ones are ready early and the last no later.
	starts chan struct{}
}

// startSlots is how many sandboxes and containers are made at once.
func startSlots() int { return max(2, 2*goruntime.NumCPU()) }

// acquireStart waits for a slot to make a sandbox or container in; the
// returned function gives it back.
func (r *Runtime) acquireStart(ctx context.Context) (func(), error) {
	select {
	case r.starts <- struct{}{}:
		return func() { <-r.starts }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Sandbox states, as stored.
const (
	sandboxReady    = "ready"
	sandboxNotReady = "notready"
)

// sandbox is one pod sandbox.
type sandbox struct {
	op     sync.Mutex // serializes lifecycle operations on this sandbox
	mu     sync.Mutex // guards rec
	rec    sandboxRecord
	config *runtimeapi.PodSandboxConfig
	dir    string
}

// sandboxRecord is a sandbox's persisted state, dir/sandbox.json.
type sandboxRecord struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Config     []byte            `json:"config"`
	State      string            `json:"state"`
	CreatedAt  time.Time         `json:"createdAt"`
	Namespaces map[string]string `json:"namespaces,omitempty"` // net, ipc, uts -> pinned file
	Cgroup     string            `json:"cgroup"`
	OwnCgroup  bool              `json:"ownCgroup,omitempty"`
	Shm        string            `json:"shm,omitempty"` // the pod's /dev/shm
	Hostname   string            `json:"hostname,omitempty"`
	Hosts      string            `json:"hosts,omitempty"`
	ResolvConf string            `json:"resolvConf,omitempty"`
	IPs        []string          `json:"ips,omitempty"` // set by the pod network
}

// Container states, as stored. The state machine:
//
//	           CreateContainer           StartContainer
//	(none) ────────────────► created ────────────────► running
//	                            │                         │ exits, or StopContainer
//	                            └──── the init dies ─────►▼
//	                                                    exited ── RemoveContainer ──► (gone)
//
// A runtime that restarts and finds a created or running container whose
// shim is gone without leaving an exit status marks it unknown.
// Transitions happen only in setState.
const (
	stateCreated = "created"
	stateRunning = "running"
	stateExited  = "exited"
	stateUnknown = "unknown"
)

// ctr is one container.
type ctr struct {
	op     sync.Mutex // serializes lifecycle operations on this container
	mu     sync.Mutex // guards rec
	rec    containerRecord
	config *runtimeapi.ContainerConfig
	bundle string
	cgroup Cgroup
	// exited is closed once the container has exited and rec says so.
	exited chan struct{}
}

// containerRecord is a container's persisted state, bundle/container.json.
type containerRecord struct {
	ID         string    `json:"id"`
	SandboxID  string    `json:"sandboxID"`
	Name       string    `json:"name"`
	Config     []byte    `json:"config"`
	ImageID    string    `json:"imageID"`
	ImageRef   string    `json:"imageRef"`
	LogPath    string    `json:"logPath,omitempty"`
	State      string    `json:"state"`
	CreatedAt  time.Time `json:"createdAt"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	Pid        int       `json:"pid,omitempty"`
	PidStart   uint64    `json:"pidStart,omitempty"`
	ExitCode   int32     `json:"exitCode"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
	Cgroup     string    `json:"cgroup"`
	StopSignal string    `json:"stopSignal,omitempty"`
}

// New starts a runtime on cfg.Root, adopting what a previous runtime left
// there: running containers are watched again, and containers that exited
// meanwhile get the exit status their shim recorded.
func New(cfg Config) (*Runtime, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	r := &Runtime{
		starts:     make(chan struct{}, startSlots()),
		cfg:        cfg,
		log:        cfg.Logger,
		sandboxes:  map[string]*sandbox{},
		containers: map[string]*ctr{},
		names:      map[string]string{},
		subs:       map[chan *runtimeapi.ContainerEventResponse]struct{}{},
	}
	r.cgroupUnified, r.cgroupV1 = cfg.Cgroups.Layout()
	for _, d := range []string{r.sandboxesDir(), r.containersDir()} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("container runtime: %w", err)
		}
	}
	if err := r.load(); err != nil {
		return nil, err
	}
	if err := r.ensureMonitor(); err != nil {
		return nil, fmt.Errorf("container runtime: %w", err)
	}
	return r, nil
}

func (r *Runtime) sandboxesDir() string  { return filepath.Join(r.cfg.Root, "sandboxes") }
func (r *Runtime) containersDir() string { return filepath.Join(r.cfg.Root, "containers") }

// newID returns a random 64-hex-digit ID, as containerd's.
func newID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// saveJSON writes v to path atomically.
func saveJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (s *sandbox) save() error {
	return saveJSON(filepath.Join(s.dir, "sandbox.json"), &s.rec)
}

func (c *ctr) saveLocked() error {
	return saveJSON(filepath.Join(c.bundle, "container.json"), &c.rec)
}

// load reads the records under Root and adopts their containers.
func (r *Runtime) load() error {
	entries, _ := os.ReadDir(r.sandboxesDir())
	for _, e := range entries {
		dir := filepath.Join(r.sandboxesDir(), e.Name())
		s := &sandbox{dir: dir}
		data, err := os.ReadFile(filepath.Join(dir, "sandbox.json"))
		if err == nil {
			err = json.Unmarshal(data, &s.rec)
		}
		if err == nil {
			s.config = &runtimeapi.PodSandboxConfig{}
			err = proto.Unmarshal(s.rec.Config, s.config)
		}
		if err != nil {
			// A sandbox that died while being created: release what
			// it may hold.
			r.log.Warn("removing unreadable sandbox state", "dir", dir, "err", err)
			r.cleanupSandboxDir(dir)
			continue
		}
		if s.rec.State == sandboxReady && !r.namespacesAlive(s) {
			s.rec.State = sandboxNotReady
			s.save()
		}
		r.sandboxes[s.rec.ID] = s
		r.names[s.rec.Name] = s.rec.ID
	}
	entries, _ = os.ReadDir(r.containersDir())
	for _, e := range entries {
		bundle := filepath.Join(r.containersDir(), e.Name())
		c := &ctr{bundle: bundle, exited: make(chan struct{})}
		data, err := os.ReadFile(filepath.Join(bundle, "container.json"))
		if err == nil {
			err = json.Unmarshal(data, &c.rec)
		}
		if err == nil {
			c.config = &runtimeapi.ContainerConfig{}
			err = proto.Unmarshal(c.rec.Config, c.config)
		}
		if err != nil {
			r.log.Warn("removing unreadable container state", "dir", bundle, "err", err)
			r.cleanupBundle(bundle, e.Name())
			continue
		}
		if cg, err := r.cfg.Cgroups.Open(c.rec.Cgroup); err == nil {
			c.cgroup = cg
		}
		r.containers[c.rec.ID] = c
		r.names[c.rec.Name] = c.rec.ID
		if c.rec.State == stateExited || c.rec.State == stateUnknown {
			close(c.exited)
		}
		// Created and running ones are settled against the monitor's
		// live set by ensureMonitor.
	}
	return nil
}

// cleanupSandboxDir releases whatever a sandbox dir may hold.
func (r *Runtime) cleanupSandboxDir(dir string) {
	unmountAll(dir)
	os.RemoveAll(dir)
}

// cleanupBundle releases whatever a container bundle may hold.
func (r *Runtime) cleanupBundle(bundle, id string) {
	unmountAll(bundle)
	os.RemoveAll(bundle)
	if r.cfg.Images != nil {
		r.cfg.Images.Release(id)
	}
}

// lookupSandbox finds a sandbox by ID or unique ID prefix.
func (r *Runtime) lookupSandbox(id string) (*sandbox, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sandboxes[id]; ok {
		return s, nil
	}
	var found *sandbox
	if id != "" {
		for k, s := range r.sandboxes {
			if strings.HasPrefix(k, id) {
				if found != nil {
					return nil, fmt.Errorf("sandbox %q: ambiguous ID prefix: %w", id, ErrNotFound)
				}
				found = s
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("sandbox %q: %w", id, ErrNotFound)
	}
	return found, nil
}

// lookupContainer finds a container by ID or unique ID prefix.
func (r *Runtime) lookupContainer(id string) (*ctr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.containers[id]; ok {
		return c, nil
	}
	var found *ctr
	if id != "" {
		for k, c := range r.containers {
			if strings.HasPrefix(k, id) {
				if found != nil {
					return nil, fmt.Errorf("container %q: ambiguous ID prefix: %w", id, ErrNotFound)
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("container %q: %w", id, ErrNotFound)
	}
	return found, nil
}

// reserveName claims name for id, failing with ErrAlreadyExists.
func (r *Runtime) reserveName(name, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if owner, ok := r.names[name]; ok {
		return fmt.Errorf("name %q is reserved for %s: %w", name, owner, ErrAlreadyExists)
	}
	r.names[name] = id
	return nil
}

func (r *Runtime) releaseName(name, id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.names[name] == id {
		delete(r.names, name)
	}
}

// containersOf returns the sandbox's containers, oldest first.
func (r *Runtime) containersOf(sandboxID string) []*ctr {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*ctr
	for _, c := range r.containers {
		if c.rec.SandboxID == sandboxID {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.CreatedAt.Before(out[j].rec.CreatedAt) })
	return out
}

// Close stops watching. Containers keep running under the monitor; a new
// Runtime on the same Root adopts them. With no container left, the
// monitor exits.
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closing = true
	events := r.events
	for ch := range r.subs {
		close(ch)
		delete(r.subs, ch)
	}
	active := false
	for _, c := range r.containers {
		c.mu.Lock()
		active = active || c.rec.State == stateCreated || c.rec.State == stateRunning
		c.mu.Unlock()
	}
	r.mu.Unlock()
	if events != nil {
		events.Close()
	}
	if !active {
		shim.Shutdown(r.cfg.Root)
	}
	return nil
}

// Subscribe returns a channel of container events (created, started,
// stopped, deleted) and a function to stop them. Slow subscribers miss
// events rather than block the runtime.
func (r *Runtime) Subscribe() (<-chan *runtimeapi.ContainerEventResponse, func()) {
	ch := make(chan *runtimeapi.ContainerEventResponse, 256)
	r.mu.Lock()
	r.subs[ch] = struct{}{}
	r.mu.Unlock()
	return ch, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, ok := r.subs[ch]; ok {
			delete(r.subs, ch)
			close(ch)
		}
	}
}

func (r *Runtime) emit(c *ctr, kind runtimeapi.ContainerEventType) {
	st := r.containerStatus(c)
	ev := &runtimeapi.ContainerEventResponse{
		ContainerId:        st.Id,
		ContainerEventType: kind,
		CreatedAt:          r.cfg.Now().UnixNano(),
		ContainersStatuses: []*runtimeapi.ContainerStatus{st},
	}
	if s, err := r.lookupSandbox(c.rec.SandboxID); err == nil {
		ev.PodSandboxStatus = r.sandboxStatus(s)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for ch := range r.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// ctxOrTimeout is ctx with a deadline of at most d.
func ctxOrTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// errNotRunning tells callers the container has no process.
func errNotRunning(id string) error {
	return fmt.Errorf("container %s is not running: %w", id, ErrNotReady)
}

// MaybeRunInit runs this process as one of the runtime's helpers (the
// monitor, an exec init) and exits, if it was started as one; it
// returns false otherwise. Call it first thing in main. (Helpers are
// normally dispatched even earlier, while packages initialize; see
// package shim.)
func MaybeRunInit() bool { return shim.MaybeRun() }
