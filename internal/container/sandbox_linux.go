package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/sys/cgroups"
	"github.com/skiff-sh/skiff/internal/sys/ns"
)

// sandboxName is the reserved name of a sandbox, as containerd makes it.
func sandboxName(m *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("%s_%s_%s_%d", m.GetName(), m.GetNamespace(), m.GetUid(), m.GetAttempt())
}

// RunPodSandbox creates a pod sandbox and returns its ID: network, IPC and
// UTS namespaces (unless the pod uses the host's), pinned by bind mounts
// under the sandbox's directory with no process inside, loopback up,
// hostname set; the pod's /etc/hosts, /etc/hostname, /etc/resolv.conf and
// /dev/shm; and the pod cgroup. On error nothing is left behind.
func (r *Runtime) RunPodSandbox(ctx context.Context, cfg *runtimeapi.PodSandboxConfig) (_ string, err error) {
	m := cfg.GetMetadata()
	if m.GetName() == "" || m.GetNamespace() == "" || m.GetUid() == "" {
		return "", fmt.Errorf("sandbox config: metadata needs name, namespace and uid: %w", ErrInvalid)
	}
	release, err := r.acquireStart(ctx)
	if err != nil {
		return "", fmt.Errorf("sandbox %s: %w", sandboxName(m), err)
	}
	defer release()
	id := newID()
	name := sandboxName(m)
	if err := r.reserveName(name, id); err != nil {
		return "", fmt.Errorf("sandbox %s: %w", name, err)
	}
	dir := filepath.Join(r.sandboxesDir(), id)
	s := &sandbox{dir: dir, config: cfg}
	s.rec = sandboxRecord{ID: id, Name: name, State: sandboxReady, CreatedAt: r.cfg.Now()}
	defer func() {
		if err != nil {
			r.teardownSandbox(context.WithoutCancel(ctx), s)
			os.RemoveAll(dir)
			r.releaseName(name, id)
		}
	}()
	if s.rec.Config, err = proto.Marshal(cfg); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", err
	}
	nsOpts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()
	hostNet := nsOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE
	hostIPC := nsOpts.GetIpc() == runtimeapi.NamespaceMode_NODE
	var types []ns.Type
	if !hostNet {
		types = append(types, ns.Net, ns.UTS)
	}
	if !hostIPC {
		types = append(types, ns.IPC)
	}
	hostname := cfg.GetHostname()
	if hostname == "" {
		hostname = m.GetName()
	}
	if hostNet {
		hostname, _ = os.Hostname()
	}
	if len(types) > 0 {
		paths, err := ns.Pin(filepath.Join(dir, "ns"), types, func() error {
			if hostNet {
				return nil
			}
			if err := unix.Sethostname([]byte(hostname)); err != nil {
				return fmt.Errorf("set hostname %q: %w", hostname, err)
			}
			return ns.LoopbackUp()
		})
		if err != nil {
			return "", fmt.Errorf("sandbox %s: %w", name, err)
		}
		s.rec.Namespaces = map[string]string{}
		for t, p := range paths {
			s.rec.Namespaces[string(t)] = p
		}
	}
	if err := r.writePodFiles(s, cfg, hostname, hostNet); err != nil {
		return "", fmt.Errorf("sandbox %s: %w", name, err)
	}
	if hostIPC {
		s.rec.Shm = "/dev/shm"
	} else {
		shm := filepath.Join(dir, "shm")
		if err := os.MkdirAll(shm, 0o755); err != nil {
			return "", err
		}
		if err := unix.Mount("shm", shm, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size=65536k"); err != nil {
			return "", fmt.Errorf("sandbox %s: mount /dev/shm: %w", name, err)
		}
		s.rec.Shm = shm
	}
	if err := r.createPodCgroup(s, cfg); err != nil {
		return "", fmt.Errorf("sandbox %s: %w", name, err)
	}
	if err := s.save(); err != nil {
		return "", err
	}
	r.mu.Lock()
	r.sandboxes[id] = s
	r.mu.Unlock()
	r.log.Info("sandbox ready", "sandbox", id, "pod", m.GetNamespace()+"/"+m.GetName())
	return id, nil
}

// writePodFiles writes the pod's hostname, hosts and resolv.conf files.
func (r *Runtime) writePodFiles(s *sandbox, cfg *runtimeapi.PodSandboxConfig, hostname string, hostNet bool) error {
	s.rec.Hostname = filepath.Join(s.dir, "hostname")
	if err := os.WriteFile(s.rec.Hostname, []byte(hostname+"\n"), 0o644); err != nil {
		return err
	}
	s.rec.Hosts = filepath.Join(s.dir, "hosts")
	hosts := []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
	if hostNet {
		if data, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = data
		}
	}
	if err := os.WriteFile(s.rec.Hosts, hosts, 0o644); err != nil {
		return err
	}
	s.rec.ResolvConf = filepath.Join(s.dir, "resolv.conf")
	var resolv []byte
	if dns := cfg.GetDnsConfig(); dns != nil && (len(dns.GetServers()) > 0 || len(dns.GetSearches()) > 0 || len(dns.GetOptions()) > 0) {
		var b strings.Builder
		if len(dns.GetSearches()) > 0 {
			fmt.Fprintf(&b, "search %s\n", strings.Join(dns.GetSearches(), " "))
		}
		for _, srv := range dns.GetServers() {
			fmt.Fprintf(&b, "nameserver %s\n", srv)
		}
		if len(dns.GetOptions()) > 0 {
			fmt.Fprintf(&b, "options %s\n", strings.Join(dns.GetOptions(), " "))
		}
		resolv = []byte(b.String())
	} else if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		resolv = data
	}
	return os.WriteFile(s.rec.ResolvConf, resolv, 0o644)
}

// podCgroupPath is where a sandbox's containers' cgroups go: the CRI's
// cgroup parent when the kubelet gave one (it made it), else a cgroup of
// our own.
func podCgroupPath(cfg *runtimeapi.PodSandboxConfig, id string) (string, bool) {
	if p := strings.Trim(cfg.GetLinux().GetCgroupParent(), "/"); p != "" {
		return p, false
	}
	return "pod-" + id[:12], true
}

func (r *Runtime) createPodCgroup(s *sandbox, cfg *runtimeapi.PodSandboxConfig) error {
	p, own := podCgroupPath(cfg, s.rec.ID)
	cg, err := r.cfg.Cgroups.Create(p)
	if err != nil {
		return fmt.Errorf("pod cgroup: %w", err)
	}
	s.rec.Cgroup, s.rec.OwnCgroup = p, own
	if own {
		if res := cfg.GetLinux().GetResources(); res != nil {
			if err := cg.Apply(convertResources(res, 0)); err != nil {
				return fmt.Errorf("pod cgroup: %w", err)
			}
		}
	}
	return nil
}

// namespacesAlive reports whether the sandbox's pinned namespaces are
// still mounted (they are not after a reboot).
func (r *Runtime) namespacesAlive(s *sandbox) bool {
	for _, p := range s.rec.Namespaces {
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil || st.Type != unix.NSFS_MAGIC {
			return false
		}
	}
	return true
}

// teardownSandbox releases the sandbox's namespaces and /dev/shm. It is
// idempotent.
func (r *Runtime) teardownSandbox(ctx context.Context, s *sandbox) error {
	var errs []error
	for _, p := range s.rec.Namespaces {
		if err := ns.Unpin(p); err != nil {
			errs = append(errs, err)
		}
	}
	if s.rec.Shm != "" && s.rec.Shm != "/dev/shm" {
		if err := unix.Unmount(s.rec.Shm, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			errs = append(errs, fmt.Errorf("unmount %s: %w", s.rec.Shm, err))
		}
	}
	if s.rec.OwnCgroup && s.rec.Cgroup != "" {
		if cg, err := r.cfg.Cgroups.Open(s.rec.Cgroup); err == nil {
			rctx, cancel := ctxOrTimeout(ctx, r.cfg.StopTimeout)
			err = cg.Remove(rctx)
			cancel()
			if err != nil && !errors.Is(err, cgroups.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// StopPodSandbox stops every container of the sandbox and releases its
// namespaces; the sandbox stays listed, NOTREADY, until removed. Stopping
// a stopped sandbox succeeds.
func (r *Runtime) StopPodSandbox(ctx context.Context, id string) error {
	s, err := r.lookupSandbox(id)
	if err != nil {
		return err
	}
	s.op.Lock()
	defer s.op.Unlock()
	for _, c := range r.containersOf(s.rec.ID) {
		if err := r.StopContainer(ctx, c.rec.ID, 0); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("stop sandbox %s: %w", s.rec.ID, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, p := range s.rec.Namespaces {
		if err := ns.Unpin(p); err != nil {
			errs = append(errs, err)
		}
	}
	if s.rec.Shm != "" && s.rec.Shm != "/dev/shm" {
		unix.Unmount(s.rec.Shm, unix.MNT_DETACH)
	}
	s.rec.State = sandboxNotReady
	if err := s.save(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// RemovePodSandbox removes the sandbox and all its containers, forcibly.
// Removing an unknown sandbox succeeds (the CRI asks for idempotence).
func (r *Runtime) RemovePodSandbox(ctx context.Context, id string) error {
	s, err := r.lookupSandbox(id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	s.op.Lock()
	defer s.op.Unlock()
	for _, c := range r.containersOf(s.rec.ID) {
		if err := r.RemoveContainer(ctx, c.rec.ID); err != nil {
			return fmt.Errorf("remove sandbox %s: %w", s.rec.ID, err)
		}
	}
	s.mu.Lock()
	err = r.teardownSandbox(ctx, s)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove sandbox %s: %w", s.rec.ID, err)
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", s.rec.ID, err)
	}
	r.mu.Lock()
	delete(r.sandboxes, s.rec.ID)
	if r.names[s.rec.Name] == s.rec.ID {
		delete(r.names, s.rec.Name)
	}
	r.mu.Unlock()
	return nil
}

// PodSandboxStatus returns the sandbox's status; verbose adds an "info"
// entry with the namespace files (the network code finds the netns there),
// the cgroup and the pod config.
func (r *Runtime) PodSandboxStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.PodSandboxStatus, map[string]string, error) {
	s, err := r.lookupSandbox(id)
	if err != nil {
		return nil, nil, err
	}
	st := r.sandboxStatus(s)
	var info map[string]string
	if verbose {
		s.mu.Lock()
		data, _ := json.Marshal(map[string]any{
			"netns":      s.rec.Namespaces["net"],
			"namespaces": s.rec.Namespaces,
			"cgroup":     s.rec.Cgroup,
			"shm":        s.rec.Shm,
			"config":     s.config,
		})
		s.mu.Unlock()
		info = map[string]string{"info": string(data)}
	}
	return st, info, nil
}

// NetNSPath returns the file holding the sandbox's network namespace, or
// "" when the pod uses the host's network.
func (r *Runtime) NetNSPath(id string) (string, error) {
	s, err := r.lookupSandbox(id)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec.Namespaces["net"], nil
}

// SetPodIPs records the addresses the pod network gave the sandbox (the
// first is the primary); PodSandboxStatus reports them, as the kubelet
// expects. Setting them again replaces them.
func (r *Runtime) SetPodIPs(id string, ips []string) error {
	s, err := r.lookupSandbox(id)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.IPs = append([]string(nil), ips...)
	return s.save()
}

func (r *Runtime) sandboxStatus(s *sandbox) *runtimeapi.PodSandboxStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := runtimeapi.PodSandboxState_SANDBOX_READY
	if s.rec.State != sandboxReady {
		state = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	}
	opts := s.config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	network := &runtimeapi.PodSandboxNetworkStatus{}
	if len(s.rec.IPs) > 0 {
		network.Ip = s.rec.IPs[0]
		for _, ip := range s.rec.IPs[1:] {
			network.AdditionalIps = append(network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return &runtimeapi.PodSandboxStatus{
		Id:          s.rec.ID,
		Metadata:    s.config.GetMetadata(),
		State:       state,
		CreatedAt:   s.rec.CreatedAt.UnixNano(),
		Network:     network,
		Linux:       &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: opts}},
		Labels:      s.config.GetLabels(),
		Annotations: s.config.GetAnnotations(),
	}
}

// ListPodSandbox lists sandboxes matching filter (nil: all), oldest first.
func (r *Runtime) ListPodSandbox(ctx context.Context, filter *runtimeapi.PodSandboxFilter) []*runtimeapi.PodSandbox {
	r.mu.Lock()
	all := make([]*sandbox, 0, len(r.sandboxes))
	for _, s := range r.sandboxes {
		all = append(all, s)
	}
	r.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].rec.CreatedAt.Before(all[j].rec.CreatedAt) })
	var out []*runtimeapi.PodSandbox
	for _, s := range all {
		st := r.sandboxStatus(s)
		if f := filter; f != nil {
			if f.GetId() != "" && !strings.HasPrefix(st.Id, f.GetId()) {
				continue
			}
			if f.GetState() != nil && f.GetState().GetState() != st.State {
				continue
			}
			if !labelsMatch(st.Labels, f.GetLabelSelector()) {
				continue
			}
		}
		out = append(out, &runtimeapi.PodSandbox{
			Id: st.Id, Metadata: st.Metadata, State: st.State, CreatedAt: st.CreatedAt,
			Labels: st.Labels, Annotations: st.Annotations,
		})
	}
	return out
}

func labelsMatch(labels, selector map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
