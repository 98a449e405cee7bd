package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels the kubelet puts on the containers it makes.
const (
	labelPodName      = "io.kubernetes.pod.name"
	labelPodNamespace = "io.kubernetes.pod.namespace"
)

// podTimes is what happened to one pod, as this program saw it. Times
// are taken when this program sent a request or received an event.
type podTimes struct {
	uid     string
	logPath string // the container's log file, from the CRI event

	create  time.Time // the create request is sent
	bound   time.Time // the watch first shows spec.nodeName
	started time.Time // CRI CONTAINER_STARTED_EVENT
	running time.Time // the watch first shows phase Running

	delete  time.Time // the delete request is sent
	stopped time.Time // CRI CONTAINER_STOPPED_EVENT after delete
	deleted time.Time // the watch's DELETED event
}

// recorder collects pod times from a pod watch and the runtime's
// container events.
type recorder struct {
	ns string
	// mu guards pods and every podTimes in it.
	mu   sync.Mutex
	pods map[string]*podTimes
}

func newRecorder(ns string) *recorder {
	return &recorder{ns: ns, pods: map[string]*podTimes{}}
}

// update runs f on the times of pod name, with the lock held.
func (r *recorder) update(name string, f func(t *podTimes)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.pods[name]
	if t == nil {
		t = &podTimes{}
		r.pods[name] = t
	}
	f(t)
}

// snapshot returns a copy of the times of the named pods (zero for pods
// not seen).
func (r *recorder) snapshot(names []string) []podTimes {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]podTimes, len(names))
	for i, n := range names {
		if t := r.pods[n]; t != nil {
			out[i] = *t
		}
	}
	return out
}

// uids returns the UIDs of every pod seen.
func (r *recorder) uids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, t := range r.pods {
		if t.uid != "" {
			out = append(out, t.uid)
		}
	}
	return out
}

// watchPods records binding, Running and deletion of the namespace's pods
// from resourceVersion rv on, until ctx ends. A watch the server closes
// is opened again from the last version seen.
func (r *recorder) watchPods(ctx context.Context, client kubernetes.Interface, rv string, logf func(string, ...any)) {
	for ctx.Err() == nil {
		w, err := client.CoreV1().Pods(r.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: rv, TimeoutSeconds: new(int64(3600))})
		if err != nil && ctx.Err() == nil {
			logf("pod watch: %v", err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		for ev := range w.ResultChan() {
			now := time.Now()
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				if ctx.Err() != nil {
					break
				}
				logf("pod watch: %s event %v", ev.Type, ev.Object)
				continue
			}
			rv = p.ResourceVersion
			r.update(p.Name, func(t *podTimes) {
				t.uid = string(p.UID)
				if t.bound.IsZero() && p.Spec.NodeName != "" {
					t.bound = now
				}
				if t.running.IsZero() && p.Status.Phase == corev1.PodRunning {
					t.running = now
				}
				if ev.Type == watch.Deleted && t.deleted.IsZero() {
					t.deleted = now
				}
			})
		}
		w.Stop()
	}
}

// watchContainers records when the kubelet's containers of the namespace
// start and stop, from the runtime's event stream, until ctx ends.
func (r *recorder) watchContainers(ctx context.Context, rtc runtimeapi.RuntimeServiceClient, ready chan<- struct{}, logf func(string, ...any)) {
	for ctx.Err() == nil {
		stream, err := rtc.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
		if err != nil && ctx.Err() == nil {
			logf("container events: %v", err)
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if ready != nil {
			close(ready)
			ready = nil
		}
		for {
			ev, err := stream.Recv()
			if err != nil {
				if ctx.Err() == nil {
					logf("container events: %v", err)
				}
				break
			}
			now := time.Now()
			for _, st := range ev.GetContainersStatuses() {
				if st.GetLabels()[labelPodNamespace] != r.ns {
					continue
				}
				name := st.GetLabels()[labelPodName]
				r.update(name, func(t *podTimes) {
					switch ev.GetContainerEventType() {
					case runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT:
						if t.started.IsZero() {
							t.started, t.logPath = now, st.GetLogPath()
						}
					case runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT:
						if t.stopped.IsZero() && !t.delete.IsZero() {
							t.stopped = now
						}
					}
				})
			}
		}
	}
}

// waitFor polls cond every 20 ms until it holds, ctx ends or timeout
// passes; cond's message says what is missing.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s: %s", timeout, what, msg)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// logSays reports whether a CRI log file holds a line whose message is
// msg ("<time> <stream> <P|F> <msg>").
func logSays(path, msg string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		f := strings.SplitN(string(line), " ", 4)
		if len(f) == 4 && f[3] == msg {
			return true
		}
	}
	return false
}

// stats are the percentiles of a set of durations.
type stats struct {
	n                  int
	p50, p90, p99, max time.Duration
}

// percentiles returns nearest-rank (rounded down) percentiles of d, as
// internal/kubelet's benchmark computes them.
func percentiles(d []time.Duration) stats {
	if len(d) == 0 {
		return stats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[int(float64(len(s)-1)*p)] }
	return stats{n: len(s), p50: at(0.5), p90: at(0.9), p99: at(0.99), max: s[len(s)-1]}
}

// between returns to(t)-from(t) for every t where both are set.
func between(ts []podTimes, from, to func(t podTimes) time.Time) []time.Duration {
	var out []time.Duration
	for _, t := range ts {
		a, b := from(t), to(t)
		if !a.IsZero() && !b.IsZero() {
			out = append(out, b.Sub(a))
		}
	}
	return out
}

// memory is one reading of the node's memory.
type memory struct {
	serverRSS  int64          // bytes, the server process
	serverAnon int64          // bytes, the anonymous part of serverRSS (heap, stacks)
	skiffPSS   int64          // bytes, summed over processes mapping the skiff binary
	skiffProc  map[string]int // those processes by command name
	ctrPSS     int64          // bytes, summed over container processes (not counted above)
	ctrProc    int
}

// readMemory reads the server's RSS, the PSS of every process that maps
// bin (the server and the runtime monitor: PSS counts the
// binary's shared pages once in the sum), and apart from those the PSS of
// container processes (in a kubepods cgroup; they run the image's binary,
// not skiff's).
func readMemory(bin string, serverPid int) (memory, error) {
	m := memory{skiffProc: map[string]int{}}
	rss, err := statusField(serverPid, "VmRSS:")
	if err != nil {
		return m, fmt.Errorf("server memory: %w", err)
	}
	m.serverRSS = rss
	if m.serverAnon, err = statusField(serverPid, "RssAnon:"); err != nil {
		return m, fmt.Errorf("server memory: %w", err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return m, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		maps, err := os.ReadFile(filepath.Join(dir, "maps"))
		if err != nil {
			continue // gone, or a kernel thread
		}
		skiff := bytes.Contains(maps, []byte(" "+bin))
		ctr := false
		if !skiff {
			cg, _ := os.ReadFile(filepath.Join(dir, "cgroup"))
			ctr = bytes.Contains(cg, []byte("/kubepods/"))
		}
		if !skiff && !ctr {
			continue
		}
		pss, err := rollupField(pid, "Pss:")
		if err != nil {
			continue
		}
		if skiff {
			// argv[0] names the role: skiff, skiff-monitor.
			cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
			argv0, _, _ := strings.Cut(string(cmdline), "\x00")
			m.skiffProc[filepath.Base(argv0)]++
			m.skiffPSS += pss
		} else {
			m.ctrProc++
			m.ctrPSS += pss
		}
	}
	return m, nil
}

// statusField reads a kB field of /proc/pid/status, in bytes.
func statusField(pid int, field string) (int64, error) {
	return kbField(fmt.Sprintf("/proc/%d/status", pid), field)
}

// rollupField reads a kB field of /proc/pid/smaps_rollup, in bytes.
func rollupField(pid int, field string) (int64, error) {
	return kbField(fmt.Sprintf("/proc/%d/smaps_rollup", pid), field)
}

func kbField(file, field string) (int64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 2 && fs[0] == field {
			kb, err := strconv.ParseInt(fs[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New(file + ": no " + field)
}

// procs formats process counts by name: "skiff 1, skiff-monitor 1".
func (m memory) procs() string {
	var names []string
	for n := range m.skiffProc {
		names = append(names, n)
	}
	slices.Sort(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, m.skiffProc[n]))
	}
	return strings.Join(parts, ", ")
}
