package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/container"
	"github.com/skiff-sh/skiff/internal/container/cri"
	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/kubelet"
	"github.com/skiff-sh/skiff/internal/kubelet/server"
	"github.com/skiff-sh/skiff/internal/kubelet/volume"
	"github.com/skiff-sh/skiff/internal/sys/cgroups"
	"github.com/skiff-sh/skiff/internal/sys/memtrim"
	"github.com/skiff-sh/skiff/internal/version"
)

// Agent is a node: runtime, pod network, volumes, kubelet and the
// kubelet API.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	ready chan struct{}

	mu          sync.Mutex // guards the fields below
	kubeletAddr net.Addr
	criSocket   string
}

// New checks cfg; Run starts the node.
func New(cfg Config) (*Agent, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, log: cfg.Logger, ready: make(chan struct{})}, nil
}

// NodeName is the name of the agent's Node.
func (a *Agent) NodeName() string { return a.cfg.NodeName }

// Ready is closed once the kubelet has registered the Node and the
// kubelet API listens.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// KubeletAddr is where the kubelet API listens, once Ready.
func (a *Agent) KubeletAddr() net.Addr {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.kubeletAddr
}

// CRISocket is the built-in runtime's CRI socket (crictl works against
// it), or "" with an external runtime.
func (a *Agent) CRISocket() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.criSocket
}

// component is one long-running part of the node.
type component struct {
	name string
	run  func(ctx context.Context) error
}

// Run starts the runtime (unless an external one is configured), the pod
// network, the volume manager, the kubelet and the kubelet API, and runs
// them until ctx ends or one of them fails; then it stops them all. It
// returns nil after ctx ends. Containers keep running after Run returns:
// the next start adopts them.
func (a *Agent) Run(ctx context.Context) error {
	cfg := a.cfg
	if err := os.MkdirAll(cfg.RootDir, 0o700); err != nil {
		return fmt.Errorf("agent: root dir: %w", err)
	}
	unlock, err := lockRoot(cfg.RootDir)
	if err != nil {
		return err
	}
	defer unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	// Components start as soon as they are made (the CRI server must
	// serve before the pod network lists sandboxes); the first failure
	// stops them all.
	errc := make(chan error, 8)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	start := func(c component) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.run(ctx)
			if err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("agent: %s: %w", c.name, err)
				return
			}
			if ctx.Err() == nil && c.name == "kubelet" {
				errc <- errors.New("agent: kubelet stopped")
			}
		}()
	}

	// Runtime.
	var conn *grpc.ClientConn
	var cg *cgroups.Manager
	endpoint := cfg.RuntimeEndpoint
	if endpoint == "" {
		rt, err := a.startRuntime()
		if err != nil {
			return err
		}
		cleanups = append(cleanups, rt.close)
		start(component{"cri", rt.serve})
		cg = rt.cgroups
		endpoint = "unix://" + rt.socket
		a.mu.Lock()
		a.criSocket = rt.socket
		a.mu.Unlock()
	}
	conn, err = grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
	if err != nil {
		return fmt.Errorf("agent: CRI endpoint %s: %w", endpoint, err)
	}
	cleanups = append(cleanups, func() { conn.Close() })
	rtClient := runtimeapi.NewRuntimeServiceClient(conn)
	imgClient := runtimeapi.NewImageServiceClient(conn)

	api := limited(cfg.Client)
	client, err := kubernetes.NewForConfig(api)
	if err != nil {
		return fmt.Errorf("agent: API client: %w", err)
	}
	// Events get a client, and so a rate limit, of their own.
	eventClient, err := kubernetes.NewForConfig(api)
	if err != nil {
		return fmt.Errorf("agent: API client: %w", err)
	}

	// Volumes.
	machine := kubelet.HostMachine(cfg.RootDir)
	vm, err := volume.New(volume.Config{
		RootDir: cfg.RootDir, Client: client,
		Allocatable: allocatableFrom(machine),
		Logger:      a.log.WithGroup("volume"),
	})
	if err != nil {
		return err
	}
	start(component{"volumes", func(ctx context.Context) error { vm.Run(ctx); return nil }})

	// Pod network (built-in runtime only: CRI runtimes bring CNI): podnet,
	// or CNI plugins when configured.
	kcfg := kubelet.Config{
		NodeName: cfg.NodeName, Client: client, EventClient: eventClient, Runtime: rtClient, Images: imgClient,
		Volumes: vm, Machine: machine,
		NodeIP: cfg.NodeIP, Port: int32(cfg.KubeletPort), PodCIDR: cfg.PodCIDR,
		MaxPods: cfg.MaxPods, ClusterDNS: cfg.ClusterDNS, ClusterDomain: cfg.ClusterDomain,
		RootDir: cfg.RootDir, PodLogsDir: cfg.PodLogsDir,
		Logger: a.log.WithGroup("kubelet"), Metrics: cfg.Metrics,
	}
	switch {
	case cfg.RuntimeEndpoint != "":
	case cfg.CNIConfDir != "":
		cn, err := newCNINetwork(ctx, cfg, rtClient, a.log) // cni names its own group
		if err != nil {
			return err
		}
		kcfg.Network = cn
		kcfg.Cgroups = kubelet.HostCgroups(cg)
	default:
		pn, err := newPodNetwork(ctx, cfg, rtClient, a.log) // podnet names its own group
		if err != nil {
			return err
		}
		cleanups = append(cleanups, pn.close)
		kcfg.Network = pn
		kcfg.Cgroups = kubelet.HostCgroups(cg)
		start(component{"routes", func(ctx context.Context) error { return pn.syncRoutes(ctx, client, cfg.NodeName) }})
	}
	k, err := kubelet.New(kcfg)
	if err != nil {
		return err
	}
	start(component{"kubelet", k.Run})

	// Kubelet API.
	cert := cfg.ServingCertificate
	if cert == nil {
		c, err := selfSigned(cfg.NodeName, cfg.NodeIP)
		if err != nil {
			return err
		}
		cert = &c
	}
	srv, err := server.New(server.Config{
		Pods: kubeletPods{k}, Runtime: rtClient, Images: imgClient,
		NodeName: cfg.NodeName, RootDir: cfg.RootDir,
		Address:     net.JoinHostPort(cfg.KubeletAddress, fmt.Sprint(cfg.KubeletPort)),
		Certificate: cert, ClientCAs: cfg.ClientCA, AllowedUsers: cfg.KubeletAPIUsers,
		Logger: a.log.WithGroup("kubelet-api"),
	})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	a.mu.Lock()
	a.kubeletAddr = srv.Addr()
	a.mu.Unlock()
	start(component{"kubelet-api", srv.Run})
	go func() {
		select {
		case <-k.Ready():
			close(a.ready)
			a.log.Info("node agent ready", "node", cfg.NodeName, "kubeletAPI", srv.Addr().String(), "runtime", endpoint)
		case <-ctx.Done():
			return
		}
		a.trimMemory(ctx)
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// allocatableFrom gives the volume manager the node's CPU and memory, for
// downwardAPI limits a container does not set.
func allocatableFrom(m kubelet.Machine) func() corev1.ResourceList {
	return func() corev1.ResourceList {
		info, err := m.Info()
		if err != nil {
			return nil
		}
		return corev1.ResourceList{
			corev1.ResourceCPU:              *resource.NewQuantity(int64(info.NumCPU), resource.DecimalSI),
			corev1.ResourceMemory:           *resource.NewQuantity(info.MemoryCapacity, resource.BinarySI),
			corev1.ResourceEphemeralStorage: *resource.NewQuantity(info.EphemeralStorage, resource.BinarySI),
		}
	}
}

// builtinRuntime is the in-process container runtime and its CRI server.
type builtinRuntime struct {
	rt      *container.Runtime
	srv     *cri.Server
	ln      net.Listener
	socket  string
	cgroups *cgroups.Manager
}

func (a *Agent) startRuntime() (*builtinRuntime, error) {
	cfg := a.cfg
	log := a.log.WithGroup("runtime")
	cg, err := cgroups.New(cgroups.Config{Parent: cfg.CgroupParent, Logger: a.log.WithGroup("cgroups")})
	if err != nil {
		return nil, fmt.Errorf("agent: cgroups: %w", err)
	}
	imageRoot := filepath.Join(cfg.RootDir, "cri", "images")
	store, err := image.New(image.Config{Root: imageRoot, Registries: cfg.Registries, Logger: a.log.WithGroup("images"), Metrics: cfg.Metrics})
	if err != nil {
		return nil, fmt.Errorf("agent: image store: %w", err)
	}
	rt, err := container.New(container.Config{
		Root: filepath.Join(cfg.RootDir, "cri", "runtime"), Cgroups: container.HostCgroups(cg), Images: store, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: runtime: %w", err)
	}
	srv, err := cri.New(cri.Config{Runtime: rt, Images: store, ImageRoot: imageRoot, Version: version.Skiff, Metrics: cfg.Metrics, Logger: a.log.WithGroup("cri")})
	if err != nil {
		rt.Close()
		return nil, err
	}
	socket := filepath.Join(cfg.RootDir, "cri.sock")
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		rt.Close()
		return nil, fmt.Errorf("agent: CRI socket: %w", err)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		rt.Close()
		return nil, fmt.Errorf("agent: CRI socket: %w", err)
	}
	if err := os.Chmod(socket, 0o660); err != nil {
		ln.Close()
		rt.Close()
		return nil, fmt.Errorf("agent: CRI socket: %w", err)
	}
	return &builtinRuntime{rt: rt, srv: srv, ln: ln, socket: socket, cgroups: cg}, nil
}

func (b *builtinRuntime) serve(ctx context.Context) error { return b.srv.Serve(ctx, b.ln) }

func (b *builtinRuntime) close() {
	b.ln.Close()
	os.Remove(b.socket)
	b.rt.Close()
}

// kubeletPods adapts the kubelet to what the kubelet API reads.
type kubeletPods struct{ k *kubelet.Kubelet }

var _ server.Pods = kubeletPods{}

func (p kubeletPods) Pod(ns, name string) (*corev1.Pod, bool) { return p.k.Pod(ns, name) }
func (p kubeletPods) Pods() []*corev1.Pod                     { return p.k.Pods() }

func (p kubeletPods) Container(ctx context.Context, ns, pod, name string, previous bool) (server.Container, error) {
	ref, err := p.k.Container(ctx, ns, pod, name, previous)
	if errors.Is(err, kubelet.ErrPodNotFound) || errors.Is(err, kubelet.ErrContainerNotFound) {
		return server.Container{}, fmt.Errorf("%w: %w", server.ErrNotFound, err)
	}
	if err != nil {
		return server.Container{}, err
	}
	return server.Container{ID: ref.ID, LogPath: ref.LogPath, Running: ref.Running}, nil
}

// lockRoot takes an exclusive lock on the root dir, so that a second
// agent on the same root fails at once instead of taking over the CRI
// socket and the pods of the first. The lock goes with the process.
func lockRoot(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "agent.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agent: lock root dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("agent: root dir %s is in use by another agent", dir)
		}
		return nil, fmt.Errorf("agent: lock root dir: %w", err)
	}
	return func() { f.Close() }, nil
}

// trimDelay is how long after the node is ready the agent gives back the
// memory only start-up used.
const trimDelay = 5 * time.Second

// trimMemory pages out start-up code and frees start-up heap (see package
// memtrim): an idle agent then holds what serving needs.
func (a *Agent) trimMemory(ctx context.Context) {
	t := time.NewTimer(trimDelay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	st, err := memtrim.Release()
	if err != nil {
		a.log.Debug("memory trim", "err", err)
		return
	}
	a.log.Debug("memory trimmed", "mappings", st.Mappings, "bytes", st.Bytes)
}
