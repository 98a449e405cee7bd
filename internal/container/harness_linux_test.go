package container

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/sys/cgroups"
	"github.com/skiff-sh/skiff/internal/testutil"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

const toolboxRef = "skiff.test/toolbox:latest"

// harness is a runtime on a private root, cgroup parent and image store,
// with the toolbox image imported. Everything it made is removed when the
// test ends, whatever happened.
type harness struct {
	t      testing.TB
	root   string
	cfg    Config
	rt     *Runtime
	cg     *cgroups.Manager
	images *image.Store
	logDir string
	parent string // the test's cgroup parent
}

func randomName(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func newHarness(t testing.TB, modify ...func(*Config)) *harness {
	t.Helper()
	testutil.RequireRoot(t)
	root := t.TempDir()
	h := &harness{t: t, root: root, logDir: filepath.Join(root, "logs")}
	var err error
	h.parent = randomName("skiff-test-")
	h.cg, err = cgroups.New(cgroups.Config{Parent: h.parent})
	if err != nil {
		t.Fatal(err)
	}
	h.images, err = image.New(image.Config{Root: filepath.Join(root, "images"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "toolbox.tar")
	testimage.Toolbox(t).WriteOCIArchive(t, archive, toolboxRef)
	if _, err := h.images.ImportPath(t.Context(), archive, nil); err != nil {
		t.Fatal(err)
	}
	h.cfg = Config{
		Root:    filepath.Join(root, "state"),
		Cgroups: HostCgroups(h.cg),
		Images:  h.images,
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range modify {
		m(&h.cfg)
	}
	h.rt, err = New(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.cleanup)
	return h
}

// testWriter sends logs to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// restart replaces the runtime with a new one on the same root, as after
// the runtime process died.
func (h *harness) restart() {
	h.t.Helper()
	h.rt.Close()
	rt, err := New(h.cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.rt = rt
}

func (h *harness) cleanup() {
	ctx := context.Background()
	if h.t.Failed() {
		h.dump()
	}
	for _, s := range h.rt.ListPodSandbox(ctx, nil) {
		if err := h.rt.RemovePodSandbox(ctx, s.Id); err != nil {
			h.t.Errorf("cleanup: %v", err)
		}
	}
	// Anything a broken runtime left: containers, the monitor, mounts,
	// cgroups.
	entries, _ := os.ReadDir(filepath.Join(h.cfg.Root, "containers"))
	for _, e := range entries {
		h.t.Errorf("cleanup: container %s left behind", e.Name())
	}
	mon := h.monitor()
	h.rt.Close()
	for i := 0; i < 100 && processAlive(mon.Pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if processAlive(mon.Pid) {
		h.t.Errorf("cleanup: monitor %d still running", mon.Pid)
		syscall.Kill(mon.Pid, syscall.SIGKILL)
	}
	unmountAll(h.root)
	if cg, err := h.cg.Open(""); err == nil {
		kctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		cg.Kill(kctx)
		if err := cg.Remove(kctx); err != nil {
			h.t.Errorf("cleanup: %v", err)
		}
		cancel()
	}
}

// dump logs the state of every container for a failed test.
func (h *harness) dump() {
	entries, _ := os.ReadDir(filepath.Join(h.cfg.Root, "containers"))
	for _, e := range entries {
		dir := filepath.Join(h.cfg.Root, "containers", e.Name())
		for _, f := range []string{"shim.log", "exit.json"} {
			data, _ := os.ReadFile(filepath.Join(dir, f))
			h.t.Logf("%s/%s: %s", e.Name()[:12], f, data)
		}
		var rec containerRecord
		if data, err := os.ReadFile(filepath.Join(dir, "container.json")); err == nil && json.Unmarshal(data, &rec) == nil {
			data, _ := os.ReadFile(rec.LogPath)
			if len(data) > 2000 {
				data = data[len(data)-2000:]
			}
			h.t.Logf("%s log: %s", e.Name()[:12], data)
		}
	}
}

// monitor returns the runtime's monitor record.
func (h *harness) monitor() monitorRecord {
	var rec monitorRecord
	data, _ := os.ReadFile(filepath.Join(h.cfg.Root, "monitor.json"))
	json.Unmarshal(data, &rec)
	return rec
}

// children lists the monitor's children: its container inits.
func (h *harness) children(monitor int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
		if len(f) > 2 && f[1] == fmt.Sprint(monitor) {
			pid, _ := strconv.Atoi(e.Name())
			out = append(out, pid)
		}
	}
	return out
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return err == nil && !strings.Contains(string(data), ") Z ")
}

func (h *harness) runPod(name string, modify ...func(*runtimeapi.PodSandboxConfig)) string {
	h.t.Helper()
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: randomName("uid-")},
		Hostname:     name,
		LogDirectory: filepath.Join(h.logDir, name),
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
	for _, m := range modify {
		m(cfg)
	}
	id, err := h.rt.RunPodSandbox(h.t.Context(), cfg)
	if err != nil {
		h.t.Fatalf("RunPodSandbox: %v", err)
	}
	return id
}

func containerConfig(name string, args ...string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: toolboxRef},
		Args:     args,
		LogPath:  name + ".log",
		Linux:    &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{}},
	}
}

// run creates and starts a container.
func (h *harness) run(pod string, cfg *runtimeapi.ContainerConfig) string {
	h.t.Helper()
	id, err := h.rt.CreateContainer(h.t.Context(), pod, cfg)
	if err != nil {
		h.t.Fatalf("CreateContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	if err := h.rt.StartContainer(h.t.Context(), id); err != nil {
		h.t.Fatalf("StartContainer %s: %v", cfg.GetMetadata().GetName(), err)
	}
	return id
}

// wait waits for a container to exit and returns its status.
func (h *harness) wait(id string) *runtimeapi.ContainerStatus {
	h.t.Helper()
	c, err := h.rt.lookupContainer(id)
	if err != nil {
		h.t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(60 * time.Second):
		h.t.Fatalf("container %s did not exit", id)
	}
	st, _, err := h.rt.ContainerStatus(h.t.Context(), id, false)
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

// logLines returns the content of the container's CRI log, one entry per
// line, without timestamps: "stdout F text".
func (h *harness) logLines(id string) []string {
	h.t.Helper()
	st, _, err := h.rt.ContainerStatus(h.t.Context(), id, false)
	if err != nil {
		h.t.Fatal(err)
	}
	f, err := os.Open(st.LogPath)
	if err != nil {
		h.t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		_, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			h.t.Fatalf("bad log line %q", sc.Text())
		}
		out = append(out, rest)
	}
	return out
}

// output runs a container to completion and returns its stdout lines.
func (h *harness) output(pod string, cfg *runtimeapi.ContainerConfig) (lines []string, st *runtimeapi.ContainerStatus) {
	h.t.Helper()
	id := h.run(pod, cfg)
	st = h.wait(id)
	for _, l := range h.logLines(id) {
		if text, ok := strings.CutPrefix(l, "stdout F "); ok {
			lines = append(lines, text)
		} else if text, ok := strings.CutPrefix(l, "stderr F "); ok {
			lines = append(lines, "stderr: "+text)
		}
	}
	return lines, st
}

var _ = fmt.Sprintf

func strconvItoa(n int) string { return fmt.Sprint(n) }

// TestMain lets the test binary serve as the runtime's helpers (monitor,
// exec-init) when the runtime re-executes it, as skiff's main does.
func TestMain(m *testing.M) {
	MaybeRunInit()
	os.Exit(m.Run())
}
