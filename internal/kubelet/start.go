package kubelet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/kubelet/prober"
	"github.com/skiff-sh/skiff/internal/kubelet/qos"
)

// podLogDir is the pod's log directory: <ns>_<name>_<uid>.
func (k *Kubelet) podLogDir(namespace, name, uid string) string {
	return filepath.Join(k.cfg.PodLogsDir, namespace+"_"+name+"_"+uid)
}

// podDir is the pod's state directory under RootDir.
func (k *Kubelet) podDir(uid string) string { return filepath.Join(k.cfg.RootDir, "pods", uid) }

func hostNetwork(pod *corev1.Pod) bool { return pod.Spec.HostNetwork }

// createSandbox runs the pod's sandbox and connects it to the pod network.
func (k *Kubelet) createSandbox(ctx context.Context, w *podWorker, pod *corev1.Pod, attempt uint32) (string, error) {
	if k.cfg.Network != nil && !hostNetwork(pod) {
		k.mu.Lock()
		msg := k.networkErr
		k.mu.Unlock()
		if msg != "" {
			return "", fmt.Errorf("network is not ready: %s", msg)
		}
	}
	cfg := k.sandboxConfig(pod, attempt)
	if err := os.MkdirAll(cfg.LogDirectory, 0o755); err != nil {
		return "", fmt.Errorf("pod log directory: %w", err)
	}
	if attempt > 0 {
		k.recorder.Event(pod, corev1.EventTypeNormal, "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
	}
	req := &runtimeapi.RunPodSandboxRequest{Config: cfg}
	if pod.Spec.RuntimeClassName != nil {
		req.RuntimeHandler = *pod.Spec.RuntimeClassName
	}
	resp, err := k.rt.RunPodSandbox(ctx, req)
	if err != nil {
		return "", fmt.Errorf("run sandbox: %w", err)
	}
	id := resp.PodSandboxId
	if k.cfg.Network == nil || hostNetwork(pod) {
		return id, nil
	}
	st, err := k.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		k.removeSandbox(ctx, id)
		return "", fmt.Errorf("sandbox %s status: %w", id, err)
	}
	sb := Sandbox{ID: id, NetNS: netnsFromInfo(st.Info), Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, PortMappings: cfg.PortMappings}
	if sb.NetNS == "" {
		k.removeSandbox(ctx, id)
		return "", fmt.Errorf("sandbox %s: runtime did not report its network namespace", id)
	}
	ips, err := k.cfg.Network.SetUp(ctx, sb)
	if err != nil {
		if terr := k.cfg.Network.TearDown(ctx, sb); terr != nil {
			k.log.Warn("cannot undo pod network", "pod", podKey(pod), "err", terr)
		}
		k.removeSandbox(ctx, id)
		return "", fmt.Errorf("set up pod network: %w", err)
	}
	w.ips[id] = ipStrings(ips)
	return id, nil
}

func (k *Kubelet) removeSandbox(ctx context.Context, id string) {
	if _, err := k.rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil && !isNotFound(err) {
		k.log.Warn("cannot stop sandbox", "sandbox", id, "err", err)
	}
	if _, err := k.rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil && !isNotFound(err) {
		k.log.Warn("cannot remove sandbox", "sandbox", id, "err", err)
	}
}

func ipStrings(ips []net.IP) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	// IPv4 first, as the API wants podIPs[0] to be the primary family.
	slices.SortStableFunc(out, func(a, b string) int {
		a4, b4 := !strings.Contains(a, ":"), !strings.Contains(b, ":")
		switch {
		case a4 == b4:
			return 0
		case a4:
			return -1
		}
		return 1
	})
	return out
}

// podIPs returns the pod's IPs in its current sandbox. With setup, a
// ready sandbox whose IPs the kubelet does not know (it restarted) is set
// up again, which the network does idempotently.
func (k *Kubelet) podIPs(ctx context.Context, w *podWorker, pod *corev1.Pod, rp *runtimePod, setup bool) []string {
	if hostNetwork(pod) {
		return k.nodeIPStrings()
	}
	sb := rp.sandbox()
	if sb == nil || sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil
	}
	if ips, ok := w.ips[sb.Id]; ok {
		return ips
	}
	if k.cfg.Network == nil {
		var ips []string
		if n := rp.status.GetNetwork(); n != nil && n.Ip != "" {
			ips = append(ips, n.Ip)
			for _, ip := range n.AdditionalIps {
				ips = append(ips, ip.Ip)
			}
		}
		return ips
	}
	if !setup || rp.netns == "" {
		return nil
	}
	ips, err := k.cfg.Network.SetUp(ctx, Sandbox{ID: sb.Id, NetNS: rp.netns, Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, PortMappings: portMappings(pod)})
	if err != nil {
		k.log.Warn("cannot recover pod IPs", "pod", podKey(pod), "err", err)
		return nil
	}
	w.ips[sb.Id] = ipStrings(ips)
	return w.ips[sb.Id]
}

// sandboxConfig is the CRI config of the pod's sandbox.
func (k *Kubelet) sandboxConfig(pod *corev1.Pod, attempt uint32) *runtimeapi.PodSandboxConfig {
	k.mu.Lock()
	hostname := k.machine.Hostname
	k.mu.Unlock()
	if !hostNetwork(pod) {
		hostname = podHostname(pod)
	}
	labels := map[string]string{}
	for key, v := range pod.Labels {
		labels[key] = v
	}
	labels[labelPodName], labels[labelPodNamespace], labels[labelPodUID] = pod.Name, pod.Namespace, string(pod.UID)
	labels[labelManaged] = "true"
	annotations := map[string]string{}
	for key, v := range pod.Annotations {
		annotations[key] = v
	}
	annotations[annotationGracePeriod] = strconv.FormatInt(k.gracePeriod(pod, nil), 10)
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: pod.Name, Uid: string(pod.UID), Namespace: pod.Namespace, Attempt: attempt},
		Hostname:     hostname,
		LogDirectory: k.podLogDir(pod.Namespace, pod.Name, string(pod.UID)),
		DnsConfig:    k.dnsConfig(pod),
		PortMappings: portMappings(pod),
		Labels:       labels,
		Annotations:  annotations,
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			SecurityContext: sandboxSecurityContext(pod),
			Sysctls:         sysctls(pod),
		},
	}
	if k.cfg.Cgroups != nil {
		cfg.Linux.CgroupParent = path.Join("/", k.cfg.CgroupRoot, qos.PodCgroup(pod))
	}
	return cfg
}

// podHostname is the pod's hostname: spec.hostname, else its name cut to
// 63 characters without a trailing '-' or '.'.
func podHostname(pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" {
		return pod.Spec.Hostname
	}
	h := pod.Name
	if len(h) > 63 {
		h = strings.TrimRight(h[:63], "-.")
	}
	return h
}

func portMappings(pod *corev1.Pod) []*runtimeapi.PortMapping {
	var out []*runtimeapi.PortMapping
	for _, c := range allContainers(pod) {
		for _, p := range c.Ports {
			if p.HostPort <= 0 {
				continue
			}
			proto := runtimeapi.Protocol_TCP
			switch p.Protocol {
			case corev1.ProtocolUDP:
				proto = runtimeapi.Protocol_UDP
			case corev1.ProtocolSCTP:
				proto = runtimeapi.Protocol_SCTP
			}
			out = append(out, &runtimeapi.PortMapping{Protocol: proto, ContainerPort: p.ContainerPort, HostPort: p.HostPort, HostIp: p.HostIP})
		}
	}
	return out
}

func allContainers(pod *corev1.Pod) []*corev1.Container {
	out := make([]*corev1.Container, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for i := range pod.Spec.InitContainers {
		out = append(out, &pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		out = append(out, &pod.Spec.Containers[i])
	}
	return out
}

func namespaceOptions(pod *corev1.Pod) *runtimeapi.NamespaceOption {
	o := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	if pod.Spec.HostNetwork {
		o.Network = runtimeapi.NamespaceMode_NODE
	}
	if pod.Spec.HostIPC {
		o.Ipc = runtimeapi.NamespaceMode_NODE
	}
	switch {
	case pod.Spec.HostPID:
		o.Pid = runtimeapi.NamespaceMode_NODE
	case pod.Spec.ShareProcessNamespace != nil && *pod.Spec.ShareProcessNamespace:
		o.Pid = runtimeapi.NamespaceMode_POD
	}
	return o
}

func sandboxSecurityContext(pod *corev1.Pod) *runtimeapi.LinuxSandboxSecurityContext {
	sc := &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: namespaceOptions(pod)}
	if psc := pod.Spec.SecurityContext; psc != nil {
		if psc.RunAsUser != nil {
			sc.RunAsUser = &runtimeapi.Int64Value{Value: *psc.RunAsUser}
		}
		if psc.RunAsGroup != nil {
			sc.RunAsGroup = &runtimeapi.Int64Value{Value: *psc.RunAsGroup}
		}
		sc.SupplementalGroups = supplementalGroups(pod)
		sc.Seccomp = seccompProfile(psc.SeccompProfile)
	}
	for _, c := range allContainers(pod) {
		if c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged {
			sc.Privileged = true
		}
	}
	return sc
}

func sysctls(pod *corev1.Pod) map[string]string {
	if pod.Spec.SecurityContext == nil || len(pod.Spec.SecurityContext.Sysctls) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, s := range pod.Spec.SecurityContext.Sysctls {
		out[s.Name] = s.Value
	}
	return out
}

func supplementalGroups(pod *corev1.Pod) []int64 {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		return nil
	}
	groups := slices.Clone(psc.SupplementalGroups)
	if psc.FSGroup != nil && !slices.Contains(groups, *psc.FSGroup) {
		groups = append(groups, *psc.FSGroup)
	}
	return groups
}

func seccompProfile(p *corev1.SeccompProfile) *runtimeapi.SecurityProfile {
	if p == nil {
		return nil
	}
	switch p.Type {
	case corev1.SeccompProfileTypeRuntimeDefault:
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	case corev1.SeccompProfileTypeLocalhost:
		ref := ""
		if p.LocalhostProfile != nil {
			ref = *p.LocalhostProfile
		}
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: ref}
	}
	return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}
}

// dnsConfig follows the pod's dnsPolicy: ClusterFirst uses the cluster
// DNS (the host's resolv.conf when none is configured, and for host
// network pods unless ClusterFirstWithHostNet), Default the host's, None
// only the pod's dnsConfig. nil means the runtime's default: the host's
// resolv.conf.
func (k *Kubelet) dnsConfig(pod *corev1.Pod) *runtimeapi.DNSConfig {
	policy := pod.Spec.DNSPolicy
	if policy == "" {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && pod.Spec.HostNetwork {
		policy = corev1.DNSDefault
	}
	if policy == corev1.DNSClusterFirstWithHostNet {
		policy = corev1.DNSClusterFirst
	}
	if policy == corev1.DNSClusterFirst && len(k.cfg.ClusterDNS) == 0 {
		policy = corev1.DNSDefault
	}
	var cfg *runtimeapi.DNSConfig
	switch policy {
	case corev1.DNSClusterFirst:
		d := k.cfg.ClusterDomain
		cfg = &runtimeapi.DNSConfig{
			Servers:  slices.Clone(k.cfg.ClusterDNS),
			Searches: []string{pod.Namespace + ".svc." + d, "svc." + d, d},
			Options:  []string{"ndots:5"},
		}
	case corev1.DNSNone:
		cfg = &runtimeapi.DNSConfig{}
	}
	pc := pod.Spec.DNSConfig
	if pc == nil {
		return cfg
	}
	if cfg == nil {
		cfg = hostDNS()
	}
	for _, s := range pc.Nameservers {
		if !slices.Contains(cfg.Servers, s) {
			cfg.Servers = append(cfg.Servers, s)
		}
	}
	for _, s := range pc.Searches {
		if !slices.Contains(cfg.Searches, s) {
			cfg.Searches = append(cfg.Searches, s)
		}
	}
	for _, o := range pc.Options {
		opt := o.Name
		if o.Value != nil {
			opt += ":" + *o.Value
		}
		cfg.Options = slices.DeleteFunc(cfg.Options, func(s string) bool {
			name, _, _ := strings.Cut(s, ":")
			return name == o.Name
		})
		cfg.Options = append(cfg.Options, opt)
	}
	return cfg
}

// hostDNS reads the host's resolv.conf.
func hostDNS() *runtimeapi.DNSConfig {
	cfg := &runtimeapi.DNSConfig{}
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return cfg
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "nameserver":
			cfg.Servers = append(cfg.Servers, f[1])
		case "search", "domain":
			cfg.Searches = append(cfg.Searches, f[1:]...)
		case "options":
			cfg.Options = append(cfg.Options, f[1:]...)
		}
	}
	return cfg
}

// containerHash identifies a container's spec: a changed spec (a new
// image) restarts the container.
func containerHash(c *corev1.Container) string {
	// Only fields that can change in a pod's spec count, so that hashes
	// stay stable across API versions that add fields.
	data, _ := json.Marshal(struct {
		Name  string
		Image string
	}{c.Name, c.Image})
	h := fnv.New32a()
	h.Write(data)
	return strconv.FormatUint(uint64(h.Sum32()), 16)
}

// startContainer pulls the image, creates and starts one container and
// runs its postStart hook. On failure it returns why, as the container's
// waiting state.
func (k *Kubelet) startContainer(ctx context.Context, w *podWorker, pod *corev1.Pod, c *corev1.Container, sandboxID string, sb *runtimeapi.PodSandboxConfig, podIPs []string, attempt uint32) (waitState, error) {
	ref := containerRef(pod, c.Name)
	if ws, err := k.ensureImage(ctx, w, pod, c, sb); err != nil {
		return ws, err
	}
	cfg, err := k.containerConfig(ctx, pod, c, attempt, podIPs)
	if err != nil {
		k.recorder.Eventf(ref, corev1.EventTypeWarning, "Failed", "Error: %v", err)
		return waitState{"CreateContainerConfigError", err.Error()}, err
	}
	resp, err := k.rt.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: sandboxID, Config: cfg, SandboxConfig: sb})
	if err != nil {
		msg := grpcMessage(err)
		k.recorder.Eventf(ref, corev1.EventTypeWarning, "Failed", "Error: %v", msg)
		return waitState{"CreateContainerError", msg}, err
	}
	k.recorder.Eventf(ref, corev1.EventTypeNormal, "Created", "Created container: %s", c.Name)
	if _, err := k.rt.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: resp.ContainerId}); err != nil {
		msg := grpcMessage(err)
		k.recorder.Eventf(ref, corev1.EventTypeWarning, "Failed", "Error: %v", msg)
		return waitState{"RunContainerError", msg}, err
	}
	k.recorder.Eventf(ref, corev1.EventTypeNormal, "Started", "Started container %s", c.Name)
	k.metrics.containerStarts.Inc()
	if c.Lifecycle != nil && c.Lifecycle.PostStart != nil {
		ip := ""
		if len(podIPs) > 0 {
			ip = podIPs[0]
		}
		if err := k.runHook(ctx, pod, c, resp.ContainerId, ip, c.Lifecycle.PostStart); err != nil {
			msg := fmt.Sprintf("PostStartHook failed: %v", err)
			k.recorder.Event(ref, corev1.EventTypeWarning, "FailedPostStartHook", msg)
			st := &runtimeapi.ContainerStatus{Id: resp.ContainerId, State: runtimeapi.ContainerState_CONTAINER_RUNNING}
			k.killContainer(ctx, pod, c, st, k.gracePeriod(pod, nil))
			return waitState{"PostStartHookError", msg}, err
		}
	}
	return waitState{}, nil
}

// ensureImage makes the container's image present as its pull policy
// asks, with the pod's pull secrets and with backoff after failures.
func (k *Kubelet) ensureImage(ctx context.Context, w *podWorker, pod *corev1.Pod, c *corev1.Container, sb *runtimeapi.PodSandboxConfig) (waitState, error) {
	ref := containerRef(pod, c.Name)
	image := c.Image
	if image == "" {
		err := errors.New("container has no image")
		return waitState{"InvalidImageName", err.Error()}, err
	}
	spec := &runtimeapi.ImageSpec{Image: image, UserSpecifiedImage: image}
	present := false
	st, err := k.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
	if err == nil && st.Image != nil {
		present = true
	}
	policy := c.ImagePullPolicy
	if policy == "" {
		policy = corev1.PullIfNotPresent
		if !strings.Contains(lastSegment(image), ":") || strings.HasSuffix(image, ":latest") {
			policy = corev1.PullAlways
		}
	}
	switch {
	case policy == corev1.PullNever && !present:
		msg := fmt.Sprintf("Container image %q is not present with pull policy of Never", image)
		k.recorder.Event(ref, corev1.EventTypeWarning, "ErrImageNeverPull", msg)
		return waitState{"ErrImageNeverPull", msg}, errors.New(msg)
	case policy == corev1.PullNever || (policy == corev1.PullIfNotPresent && present):
		k.recorder.Eventf(ref, corev1.EventTypeNormal, "Pulled", "Container image %q already present on machine", image)
		return waitState{}, nil
	}
	key := string(pod.UID) + "/" + image
	if f, ok := w.pullFailed[image]; ok {
		if hold, _, _ := k.pulls.InBackoffSince(key, f.at); hold {
			k.recorder.Eventf(ref, corev1.EventTypeNormal, "BackOff", "Back-off pulling image %q", image)
			msg := fmt.Sprintf("Back-off pulling image %q: ErrImagePull: %s", image, f.err)
			return waitState{"ImagePullBackOff", msg}, errors.New(msg)
		}
	}
	if w.reportPending != nil {
		w.reportPending()
	}
	k.recorder.Eventf(ref, corev1.EventTypeNormal, "Pulling", "Pulling image %q", image)
	start := k.clock.Now()
	auths, err := k.pullAuths(ctx, pod, image)
	if err != nil {
		k.log.Warn("cannot read image pull secrets", "pod", podKey(pod), "err", err)
	}
	var pullErr error
	for _, auth := range auths {
		_, pullErr = k.img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec, Auth: auth, SandboxConfig: sb})
		if pullErr == nil {
			break
		}
	}
	if pullErr != nil {
		now := k.clock.Now()
		k.pulls.Next(key, now)
		msg := grpcMessage(pullErr)
		w.pullFailed[image] = pullFailure{at: now, err: msg}
		k.recorder.Eventf(ref, corev1.EventTypeWarning, "Failed", "Failed to pull image %q: %s", image, msg)
		k.recorder.Event(ref, corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
		return waitState{"ErrImagePull", msg}, pullErr
	}
	delete(w.pullFailed, image)
	k.pulls.Forget(key)
	took := k.clock.Since(start).Round(time.Millisecond)
	size := ""
	if st, err := k.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec}); err == nil && st.Image != nil {
		size = fmt.Sprintf(" Image size: %d bytes.", st.Image.Size)
	}
	k.recorder.Eventf(ref, corev1.EventTypeNormal, "Pulled", "Successfully pulled image %q in %v (%v including waiting).%s", image, took, took, size)
	return waitState{}, nil
}

func lastSegment(image string) string {
	if i := strings.LastIndexByte(image, '/'); i >= 0 {
		image = image[i+1:]
	}
	if i := strings.IndexByte(image, '@'); i >= 0 {
		return image[:i] + ":digest"
	}
	return image
}

// containerConfig is the CRI config of one container of the pod.
func (k *Kubelet) containerConfig(ctx context.Context, pod *corev1.Pod, c *corev1.Container, attempt uint32, podIPs []string) (*runtimeapi.ContainerConfig, error) {
	k.mu.Lock()
	allocatable := k.allocatable.DeepCopy()
	memCapacity := k.machine.MemoryCapacity
	k.mu.Unlock()
	var services []*corev1.Service
	if k.serviceLister != nil {
		all, _ := k.serviceLister.List(everything())
		services = servicesForEnv(pod, all)
	}
	env, err := makeEnv(ctx, envInput{
		pod: pod, container: c, services: services, podIPs: podIPs, hostIPs: k.nodeIPStrings(),
		allocatable: allocatable, objects: apiObjects{k.client},
	})
	if err != nil {
		return nil, err
	}
	sc, err := k.containerSecurityContext(ctx, pod, c)
	if err != nil {
		return nil, err
	}
	cfg := &runtimeapi.ContainerConfig{
		Metadata:   &runtimeapi.ContainerMetadata{Name: c.Name, Attempt: attempt},
		Image:      &runtimeapi.ImageSpec{Image: c.Image, UserSpecifiedImage: c.Image},
		WorkingDir: c.WorkingDir,
		Labels: map[string]string{
			labelPodName: pod.Name, labelPodNamespace: pod.Namespace, labelPodUID: string(pod.UID),
			labelContainerName: c.Name, labelManaged: "true",
		},
		Annotations: map[string]string{
			annotationHash:              containerHash(c),
			annotationRestartCount:      strconv.Itoa(int(attempt)),
			annotationTerminationPath:   c.TerminationMessagePath,
			annotationTerminationPolicy: string(c.TerminationMessagePolicy),
			annotationGracePeriod:       strconv.FormatInt(k.gracePeriod(pod, nil), 10),
		},
		LogPath:   filepath.Join(c.Name, strconv.Itoa(int(attempt))+".log"),
		Stdin:     c.Stdin,
		StdinOnce: c.StdinOnce,
		Tty:       c.TTY,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       qos.ContainerResources(pod, c, memCapacity),
			SecurityContext: sc,
		},
	}
	for _, name := range env.names {
		cfg.Envs = append(cfg.Envs, &runtimeapi.KeyValue{Key: name, Value: []byte(env.values[name])})
	}
	for _, s := range c.Command {
		cfg.Command = append(cfg.Command, expand(s, env.lookup))
	}
	for _, s := range c.Args {
		cfg.Args = append(cfg.Args, expand(s, env.lookup))
	}
	if len(c.VolumeMounts) > 0 {
		if k.cfg.Volumes == nil {
			return nil, errors.New("volumes are not supported on this node")
		}
		mounts, err := k.cfg.Volumes.Mounts(pod, c, env.values)
		if err != nil {
			return nil, err
		}
		cfg.Mounts = append(cfg.Mounts, mounts...)
	}
	if c.TerminationMessagePath != "" && !mountsPath(cfg.Mounts, c.TerminationMessagePath) {
		file, err := k.terminationFile(pod, c.Name, attempt)
		if err != nil {
			return nil, err
		}
		cfg.Annotations[annotationTerminationHostDir] = file
		cfg.Mounts = append(cfg.Mounts, &runtimeapi.Mount{ContainerPath: c.TerminationMessagePath, HostPath: file})
	}
	if err := os.MkdirAll(filepath.Join(k.podLogDir(pod.Namespace, pod.Name, string(pod.UID)), c.Name), 0o755); err != nil {
		return nil, fmt.Errorf("container log directory: %w", err)
	}
	return cfg, nil
}

func mountsPath(mounts []*runtimeapi.Mount, p string) bool {
	for _, m := range mounts {
		if path.Clean(m.ContainerPath) == path.Clean(p) {
			return true
		}
	}
	return false
}

// terminationFile makes the empty file a container writes its
// termination message to: RootDir/pods/<uid>/containers/<name>/<attempt>.
func (k *Kubelet) terminationFile(pod *corev1.Pod, name string, attempt uint32) (string, error) {
	dir := filepath.Join(k.podDir(string(pod.UID)), "containers", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("termination message file: %w", err)
	}
	file := filepath.Join(dir, strconv.Itoa(int(attempt)))
	f, err := os.OpenFile(file, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o666)
	if err != nil {
		return "", fmt.Errorf("termination message file: %w", err)
	}
	f.Close()
	// Any user in the container may write it.
	if err := os.Chmod(file, 0o666); err != nil {
		return "", fmt.Errorf("termination message file: %w", err)
	}
	return file, nil
}

// containerSecurityContext merges the pod's and the container's security
// contexts and enforces runAsNonRoot.
func (k *Kubelet) containerSecurityContext(ctx context.Context, pod *corev1.Pod, c *corev1.Container) (*runtimeapi.LinuxContainerSecurityContext, error) {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	csc := c.SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	sc := &runtimeapi.LinuxContainerSecurityContext{
		NamespaceOptions:   namespaceOptions(pod),
		SupplementalGroups: supplementalGroups(pod),
	}
	runAsUser := cmpOr(csc.RunAsUser, psc.RunAsUser)
	if runAsUser != nil {
		sc.RunAsUser = &runtimeapi.Int64Value{Value: *runAsUser}
	}
	if g := cmpOr(csc.RunAsGroup, psc.RunAsGroup); g != nil {
		sc.RunAsGroup = &runtimeapi.Int64Value{Value: *g}
	}
	if csc.Privileged != nil {
		sc.Privileged = *csc.Privileged
	}
	if caps := csc.Capabilities; caps != nil {
		sc.Capabilities = &runtimeapi.Capability{}
		for _, cp := range caps.Add {
			sc.Capabilities.AddCapabilities = append(sc.Capabilities.AddCapabilities, string(cp))
		}
		for _, cp := range caps.Drop {
			sc.Capabilities.DropCapabilities = append(sc.Capabilities.DropCapabilities, string(cp))
		}
	}
	if csc.ReadOnlyRootFilesystem != nil {
		sc.ReadonlyRootfs = *csc.ReadOnlyRootFilesystem
	}
	if csc.AllowPrivilegeEscalation != nil {
		sc.NoNewPrivs = !*csc.AllowPrivilegeEscalation
	}
	if p := csc.SeccompProfile; p != nil {
		sc.Seccomp = seccompProfile(p)
	} else {
		sc.Seccomp = seccompProfile(psc.SeccompProfile)
	}
	if nonRoot := cmpOr(csc.RunAsNonRoot, psc.RunAsNonRoot); nonRoot != nil && *nonRoot {
		if err := k.verifyNonRoot(ctx, pod, c, runAsUser); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

// verifyNonRoot refuses a container that would run as root, with
// upstream's messages.
func (k *Kubelet) verifyNonRoot(ctx context.Context, pod *corev1.Pod, c *corev1.Container, runAsUser *int64) error {
	if runAsUser != nil {
		if *runAsUser == 0 {
			return fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", podDesc(pod), c.Name)
		}
		return nil
	}
	st, err := k.img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: c.Image}})
	if err != nil || st.Image == nil {
		return fmt.Errorf("cannot verify that image %q runs as non-root: image status unknown", c.Image)
	}
	switch {
	case st.Image.Uid != nil && st.Image.Uid.Value != 0:
		return nil
	case st.Image.Uid == nil && st.Image.Username != "":
		return fmt.Errorf("container has runAsNonRoot and image has non-numeric user (%s), cannot verify user is non-root (pod: %q, container: %s)", st.Image.Username, podDesc(pod), c.Name)
	}
	return fmt.Errorf("container has runAsNonRoot and image will run as root (pod: %q, container: %s)", podDesc(pod), c.Name)
}

// runHook runs a lifecycle handler (exec, httpGet or sleep) for a
// container; tcpSocket handlers are accepted and ignored, as upstream.
func (k *Kubelet) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id, podIP string, h *corev1.LifecycleHandler) error {
	r := prober.Runner{Exec: criExecer{k.rt}}
	t := prober.Target{Pod: pod, Container: c, ContainerID: id, PodIP: podIP}
	timeout := time.Duration(k.gracePeriod(pod, nil)+1) * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	switch {
	case h.Exec != nil:
		_, err := r.RunExec(ctx, h.Exec.Command, t, timeout)
		return err
	case h.HTTPGet != nil:
		_, err := r.RunHTTPGet(ctx, h.HTTPGet, t, timeout)
		return err
	case h.Sleep != nil:
		timer := k.clock.NewTimer(time.Duration(h.Sleep.Seconds) * time.Second)
		defer timer.Stop()
		select {
		case <-timer.C():
		case <-ctx.Done():
		}
	}
	return nil
}

// criExecer runs commands through the CRI's ExecSync.
type criExecer struct {
	rt runtimeapi.RuntimeServiceClient
}

func (e criExecer) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) ([]byte, int32, error) {
	secs := int64(max(timeout.Round(time.Second)/time.Second, 1))
	ctx, cancel := context.WithTimeout(ctx, timeout+2*time.Second)
	defer cancel()
	resp, err := e.rt.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: secs})
	if err != nil {
		if ctx.Err() != nil || isDeadline(err) {
			return nil, 0, fmt.Errorf("exec in %s: %w", id, prober.ErrTimeout)
		}
		return nil, 0, err
	}
	return append(resp.Stdout, resp.Stderr...), resp.ExitCode, nil
}
