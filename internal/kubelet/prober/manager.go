package prober

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Kind is a probe's kind.
type Kind int

// Kinds.
const (
	Liveness Kind = iota
	Readiness
	Startup
)

func (k Kind) String() string {
	switch k {
	case Liveness:
		return "Liveness"
	case Readiness:
		return "Readiness"
	}
	return "Startup"
}

// Config configures a Manager. Runner is required.
type Config struct {
	Runner *Runner
	// OnChange is called, from a worker goroutine, when a container's
	// result changes.
	OnChange func(uid types.UID)
	// OnFailure is called for every failed probe with its message (the
	// kubelet makes an Unhealthy event of it).
	OnFailure func(pod *corev1.Pod, container string, kind Kind, message string)
	// Clock drives the workers (default: the real clock).
	Clock  clock.WithTicker
	Logger *slog.Logger
}

// Manager runs the probes of running containers. Its methods are safe for
// concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger

	// mu guards workers and results.
	mu      sync.Mutex
	workers map[workerKey]*worker
	results map[resultKey]Result
}

type workerKey struct {
	uid         types.UID
	containerID string
	kind        Kind
}

type resultKey struct {
	containerID string
	kind        Kind
}

// Running is a running container of a pod.
type Running struct {
	Name      string
	ID        string
	StartedAt time.Time
}

// NewManager makes a Manager.
func NewManager(cfg Config) (*Manager, error) {
	if cfg.Runner == nil {
		return nil, fmt.Errorf("prober: Config.Runner is required")
	}
	if cfg.OnChange == nil {
		cfg.OnChange = func(types.UID) {}
	}
	if cfg.OnFailure == nil {
		cfg.OnFailure = func(*corev1.Pod, string, Kind, string) {}
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: cfg.Logger, workers: map[workerKey]*worker{}, results: map[resultKey]Result{}}, nil
}

func probeOf(c *corev1.Container, kind Kind) *corev1.Probe {
	switch kind {
	case Liveness:
		return c.LivenessProbe
	case Readiness:
		return c.ReadinessProbe
	}
	return c.StartupProbe
}

// initial is a kind's result before its first decisive probe.
func initial(kind Kind) Result {
	switch kind {
	case Liveness:
		return Success
	case Readiness:
		return Failure
	}
	return Unknown
}

// Sync makes the pod's probe workers match its running containers:
// workers start for new containers and stop for containers that no
// longer run. podIP is where network probes go.
func (m *Manager) Sync(pod *corev1.Pod, running []Running, podIP string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	want := map[workerKey]bool{}
	for _, r := range running {
		c := findContainer(pod, r.Name)
		if c == nil {
			continue
		}
		for _, kind := range []Kind{Startup, Liveness, Readiness} {
			p := probeOf(c, kind)
			if p == nil {
				continue
			}
			key := workerKey{pod.UID, r.ID, kind}
			want[key] = true
			if w := m.workers[key]; w != nil {
				w.setPod(pod, podIP)
				continue
			}
			rk := resultKey{r.ID, kind}
			if _, ok := m.results[rk]; !ok {
				m.results[rk] = initial(kind)
			}
			w := &worker{m: m, key: key, container: c.Name, probe: p, startedAt: r.StartedAt, stop: make(chan struct{})}
			w.setPod(pod, podIP)
			m.workers[key] = w
			go w.run()
		}
	}
	for key, w := range m.workers {
		if key.uid == pod.UID && !want[key] {
			m.stopLocked(key, w)
		}
	}
}

func (m *Manager) stopLocked(key workerKey, w *worker) {
	close(w.stop)
	delete(m.workers, key)
	delete(m.results, resultKey{key.containerID, key.kind})
}

// RemovePod stops every worker of the pod with this UID.
func (m *Manager) RemovePod(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, w := range m.workers {
		if key.uid == uid {
			m.stopLocked(key, w)
		}
	}
}

// Result returns the container's current result for kind, and whether it
// has a probe of that kind.
func (m *Manager) Result(containerID string, kind Kind) (Result, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.results[resultKey{containerID, kind}]
	return r, ok
}

// Stop stops every worker.
func (m *Manager) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for key, w := range m.workers {
		m.stopLocked(key, w)
	}
}

// set records a result; it reports whether it changed.
func (m *Manager) set(key workerKey, r Result) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.workers[key] == nil {
		return false
	}
	rk := resultKey{key.containerID, key.kind}
	if m.results[rk] == r {
		return false
	}
	m.results[rk] = r
	return true
}

// worker probes one container for one kind.
type worker struct {
	m         *Manager
	key       workerKey
	container string
	probe     *corev1.Probe
	startedAt time.Time
	stop      chan struct{}

	// mu guards pod and podIP (updated by Sync).
	mu    sync.Mutex
	pod   *corev1.Pod
	podIP string

	// Owned by the worker goroutine.
	last    Result
	streak  int32
	holding bool
}

func (w *worker) setPod(pod *corev1.Pod, ip string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pod, w.podIP = pod, ip
}

func (w *worker) target() Target {
	w.mu.Lock()
	defer w.mu.Unlock()
	return Target{Pod: w.pod, Container: findContainer(w.pod, w.container), ContainerID: w.key.containerID, PodIP: w.podIP}
}

func (w *worker) run() {
	period := time.Duration(max(w.probe.PeriodSeconds, 1)) * time.Second
	if w.probe.PeriodSeconds == 0 {
		period = 10 * time.Second
	}
	clk := w.m.cfg.Clock
	// The first probe runs when the initial delay has passed since the
	// container started, then every period.
	if delay := time.Duration(w.probe.InitialDelaySeconds)*time.Second - clk.Since(w.startedAt); delay > 0 {
		t := clk.NewTimer(delay)
		select {
		case <-w.stop:
			t.Stop()
			return
		case <-t.C():
		}
	}
	ticker := clk.NewTicker(period)
	defer ticker.Stop()
	for {
		if !w.once() {
			return
		}
		select {
		case <-w.stop:
			return
		case <-ticker.C():
		}
	}
}

// once runs one probe; it reports whether the worker should go on.
func (w *worker) once() bool {
	m := w.m
	if w.holding {
		return true
	}
	if w.key.kind != Startup {
		if r, ok := m.Result(w.key.containerID, Startup); ok && r != Success {
			return true // wait for the startup probe
		}
	}
	t := w.target()
	if t.Container == nil {
		return true
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-w.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	r, out := m.cfg.Runner.Probe(ctx, w.probe, t)
	cancel()
	select {
	case <-w.stop:
		return false
	default:
	}
	if r == Failure {
		m.cfg.OnFailure(t.Pod, w.container, w.key.kind, trimOutput(out))
	}
	if r == w.last {
		w.streak++
	} else {
		w.last, w.streak = r, 1
	}
	success := max(w.probe.SuccessThreshold, 1)
	failure := max(w.probe.FailureThreshold, 1)
	if w.probe.FailureThreshold == 0 {
		failure = 3
	}
	if (r == Success && w.streak < success) || (r == Failure && w.streak < failure) {
		return true
	}
	if m.set(w.key, r) {
		m.log.Debug("probe result changed", "pod", t.Pod.Namespace+"/"+t.Pod.Name, "container", w.container, "kind", w.key.kind, "result", r)
		m.cfg.OnChange(w.key.uid)
	}
	switch {
	case w.key.kind == Startup && r == Success:
		return false
	case (w.key.kind == Liveness || w.key.kind == Startup) && r == Failure:
		// The container is about to be killed; probing it more only makes
		// noise.
		w.holding = true
	}
	return true
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	if pod == nil {
		return nil
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}
