package kubelet_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/container"
	"github.com/skiff-sh/skiff/internal/container/cri"
	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/sys/cgroups"
	"github.com/skiff-sh/skiff/internal/sys/mount"
	"github.com/skiff-sh/skiff/internal/testutil"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// toolboxImage is the reference the root tests import the toolbox as.
const toolboxImage = "skiff.test/toolbox:latest"

// realHarness runs a kubelet.Kubelet against a real API server and the built-in
// container runtime, in-process, as root. Its cgroups live under a parent
// of their own; everything is removed when the test ends.
type realHarness struct {
	*harness
	parent  string
	logsDir string
	cg      *cgroups.Manager
	rt      *container.Runtime
	rtc     runtimeapi.RuntimeServiceClient
}

func newRealHarness(t testing.TB, tweak ...func(*kubelet.Config)) *realHarness {
	testutil.RequireRoot(t)
	ts := apiServer(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	root := t.TempDir()
	var rb [6]byte
	rand.Read(rb[:])
	parent := "skiff-kubelet-test-" + hex.EncodeToString(rb[:])
	cg, err := cgroups.New(cgroups.Config{Parent: parent})
	if err != nil {
		t.Fatal(err)
	}
	store, err := image.New(image.Config{Root: filepath.Join(root, "images"), NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "toolbox.tar")
	testimage.Toolbox(t).WriteOCIArchive(t, archive, toolboxImage)
	if _, err := store.ImportPath(context.Background(), archive, nil); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	rt, err := container.New(container.Config{Root: filepath.Join(root, "runtime"), Cgroups: container.HostCgroups(cg), Images: store, Logger: logger.WithGroup("runtime")})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := cri.New(cri.Config{Runtime: rt, Images: store, Version: "test"})
	if err != nil {
		rt.Close()
		t.Fatal(err)
	}
	sock := filepath.Join(root, "cri.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		rt.Close()
		t.Fatal(err)
	}
	srvCtx, srvCancel := context.WithCancel(context.Background())
	go srv.Serve(srvCtx, ln)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	// Cleanups run last registered first: this one after the kubelet's.
	t.Cleanup(func() {
		ctx := context.Background()
		for _, p := range rt.ListPodSandbox(ctx, nil) {
			rt.RemovePodSandbox(ctx, p.Id)
		}
		conn.Close()
		srvCancel()
		rt.Close()
		// The monitor outlives a runtime that still has containers; this
		// test's must not outlive the test.
		var mon struct {
			Pid int `json:"pid"`
		}
		if data, err := os.ReadFile(filepath.Join(root, "runtime", "monitor.json")); err == nil && json.Unmarshal(data, &mon) == nil && mon.Pid > 0 {
			if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", mon.Pid)); err == nil && strings.Contains(string(cmd), root) {
				t.Logf("killing the runtime's monitor %d, still running", mon.Pid)
				unix.Kill(mon.Pid, unix.SIGKILL)
			}
		}
		mount.UnmountAll(root)
		if c, err := cg.Open(""); err == nil {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			c.Kill(rctx)
			if err := c.Remove(rctx); err != nil {
				t.Errorf("remove test cgroups: %v", err)
			}
			cancel()
		}
	})
	clk := testingclock.NewFakeClock(time.Now())
	rtc := runtimeapi.NewRuntimeServiceClient(conn)
	h := &harness{t: t, client: client, clock: clk, machine: &fakeMachine{
		info:      kubelet.MachineInfo{Hostname: "host-1", NumCPU: 4, MemoryCapacity: 8 << 30, EphemeralStorage: 100 << 30},
		available: 4 << 30,
	}}
	cfg := kubelet.Config{
		NodeName:   "node-1",
		Client:     client,
		Runtime:    rtc,
		Images:     runtimeapi.NewImageServiceClient(conn),
		Cgroups:    kubelet.HostCgroups(cg),
		Machine:    h.machine,
		Network:    &loNetwork{},
		NodeIP:     net.IPv4(127, 0, 0, 1),
		PodCIDR:    "10.244.7.0/24",
		RootDir:    filepath.Join(root, "kubelet"),
		PodLogsDir: filepath.Join(root, "logs"),
		Clock:      clk,
		Logger:     logger.WithGroup("kubelet"),
	}
	for _, f := range tweak {
		f(&cfg)
	}
	h.cfg = cfg
	h.start()
	return &realHarness{harness: h, logsDir: cfg.PodLogsDir, parent: parent, cg: cg, rt: rt, rtc: rtc}
}

// cgroupDir is a cgroup's directory in the memory hierarchy (v1) or the
// unified one.
func (h *realHarness) cgroupDir(p string) string {
	c, err := h.cg.Open(p)
	if err != nil {
		return ""
	}
	dirs := c.Dirs()
	if d, ok := dirs["memory"]; ok {
		return d
	}
	return dirs[""]
}

// loNetwork gives each sandbox an address on its loopback interface: an
// IP the pod has, without a bridge on the host. Enough to test the
// kubelet's side of the network contract.
type loNetwork struct {
	mu   sync.Mutex
	next byte
	ips  map[string]net.IP
}

func (n *loNetwork) SetUp(_ context.Context, sb kubelet.Sandbox) ([]net.IP, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ip, ok := n.ips[sb.ID]; ok {
		return []net.IP{ip}, nil
	}
	if n.ips == nil {
		n.ips = map[string]net.IP{}
	}
	ns, err := netns.GetFromPath(sb.NetNS)
	if err != nil {
		return nil, fmt.Errorf("netns %s: %w", sb.NetNS, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return nil, err
	}
	n.next++
	ip := net.IPv4(10, 244, 7, n.next+1)
	if err := h.AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: ip, Mask: net.CIDRMask(32, 32)}}); err != nil {
		return nil, err
	}
	n.ips[sb.ID] = ip
	return []net.IP{ip}, nil
}

func (n *loNetwork) TearDown(_ context.Context, sb kubelet.Sandbox) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.ips, sb.ID)
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
