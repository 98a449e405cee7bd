package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/sys/caps"
	"github.com/skiff-sh/skiff/internal/sys/seccomp"
)

// ErrInvalid is returned (wrapped) for a request that cannot become a
// container: no command, a relative container path, an unknown capability
// or seccomp profile, an unresolvable user.
var ErrInvalid = errors.New("invalid container config")

// DefaultPath is PATH for containers whose image sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Sandbox is what a container takes from its pod's sandbox.
type Sandbox struct {
	// Config is the pod's CRI config.
	Config *runtimeapi.PodSandboxConfig
	// Namespaces maps "network", "ipc", "uts" to the files that hold the
	// pod's namespaces; a type left out is the host's.
	Namespaces map[specs.LinuxNamespaceType]string
	// Hostname, Hosts, ResolvConf are the pod's files for /etc/hostname,
	// /etc/hosts and /etc/resolv.conf; Shm is its /dev/shm directory.
	// Empty ones are not mounted.
	Hostname, Hosts, ResolvConf, Shm string
}

// Input is everything Build needs.
type Input struct {
	Sandbox   Sandbox
	Container *runtimeapi.ContainerConfig
	// Image is the image's config (ENTRYPOINT, CMD, ENV, USER, WORKDIR).
	Image imagespec.ImageConfig
	// Users is the image's /etc/passwd and /etc/group.
	Users UserDB
	// Rootfs is the container's root directory (the mounted overlay).
	Rootfs string
	// CgroupsPath is the container's cgroup, relative to the hierarchy root.
	CgroupsPath string
	// Rlimits are applied to every container.
	Rlimits []specs.POSIXRlimit
	// SeccompProfileRoot is where Localhost profiles are looked up when
	// their reference is relative. Localhost profiles are read by Build.
	SeccompProfileRoot string
	// Cgroup2 mounts a cgroup2 filesystem at /sys/fs/cgroup; otherwise the
	// v1 Controllers are each mounted below it.
	Cgroup2 bool
	// Controllers are the v1 hierarchies to mount (cpu, memory, ...).
	Controllers []string
}

// DefaultMaskedPaths are hidden from non-privileged containers.
func DefaultMaskedPaths() []string {
	return []string{
		"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
}

// DefaultReadonlyPaths are read-only in non-privileged containers.
func DefaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// Argv combines the image's ENTRYPOINT and CMD with the request's command
// and args the way Kubernetes does.
func Argv(img imagespec.ImageConfig, command, args []string) []string {
	if len(command) == 0 {
		if len(args) == 0 {
			args = img.Cmd
		}
		command = img.Entrypoint
	}
	return append(slices.Clone(command), args...)
}

// Env merges the image's environment with the request's: later keys
// replace earlier ones in place; PATH and HOSTNAME are added when missing.
func Env(img imagespec.ImageConfig, kvs []*runtimeapi.KeyValue, hostname string, tty bool) []string {
	var out []string
	index := map[string]int{}
	set := func(k, v string) {
		if i, ok := index[k]; ok {
			out[i] = k + "=" + v
			return
		}
		index[k] = len(out)
		out = append(out, k+"="+v)
	}
	for _, e := range img.Env {
		k, v, _ := strings.Cut(e, "=")
		set(k, v)
	}
	if _, ok := index["PATH"]; !ok {
		set("PATH", DefaultPath)
	}
	if hostname != "" {
		set("HOSTNAME", hostname)
	}
	if tty {
		if _, ok := index["TERM"]; !ok {
			set("TERM", "xterm")
		}
	}
	for _, kv := range kvs {
		set(kv.GetKey(), string(kv.GetValue()))
	}
	return out
}

// user picks the identity: RunAsUser / RunAsUsername / RunAsGroup from the
// request, else the image's USER.
func user(in Input, sc *runtimeapi.LinuxContainerSecurityContext) (User, error) {
	userSpec := in.Image.User
	switch {
	case sc.GetRunAsUser() != nil:
		userSpec = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10)
	case sc.GetRunAsUsername() != "":
		userSpec = sc.GetRunAsUsername()
	}
	u, err := in.Users.Resolve(userSpec)
	if err != nil {
		return User{}, err
	}
	if g := sc.GetRunAsGroup(); g != nil {
		u.GID = uint32(g.GetValue())
	}
	if sc.GetSupplementalGroupsPolicy() == runtimeapi.SupplementalGroupsPolicy_Strict {
		u.Additional = nil
	}
	// The primary group comes first, as containerd lists it.
	u.Additional = append([]uint32{u.GID}, slices.DeleteFunc(u.Additional, func(g uint32) bool { return g == u.GID })...)
	for _, g := range sc.GetSupplementalGroups() {
		if !slices.Contains(u.Additional, uint32(g)) {
			u.Additional = append(u.Additional, uint32(g))
		}
	}
	return u, nil
}

// Capabilities returns the container's capability set: Docker's default
// (or every capability when privileged) with the request's add and drop
// applied; "ALL" in add or drop stands for every capability, and drop
// wins over add.
func Capabilities(c *runtimeapi.Capability, privileged bool) (caps.Set, error) {
	set := caps.Default
	if privileged {
		return caps.All(), nil
	}
	var add, drop []string
	for _, n := range c.GetAddCapabilities() {
		if strings.EqualFold(n, "ALL") {
			set = caps.All()
			continue
		}
		add = append(add, n)
	}
	for _, n := range c.GetDropCapabilities() {
		if strings.EqualFold(n, "ALL") {
			set = 0
			continue
		}
		drop = append(drop, n)
	}
	a, err := caps.ParseSet(add)
	if err != nil {
		return 0, fmt.Errorf("%w: add: %w", ErrInvalid, err)
	}
	d, err := caps.ParseSet(drop)
	if err != nil {
		return 0, fmt.Errorf("%w: drop: %w", ErrInvalid, err)
	}
	return (set | a) &^ d, nil
}

// Build makes the OCI spec for in.
func Build(in Input) (*specs.Spec, error) {
	c := in.Container
	if c == nil || c.GetMetadata().GetName() == "" {
		return nil, fmt.Errorf("%w: no container name", ErrInvalid)
	}
	sc := c.GetLinux().GetSecurityContext()
	privileged := sc.GetPrivileged()
	argv := Argv(in.Image, c.GetCommand(), c.GetArgs())
	if len(argv) == 0 || argv[0] == "" {
		return nil, fmt.Errorf("%w: no command: the image has no ENTRYPOINT or CMD and the request gives none", ErrInvalid)
	}
	u, err := user(in, sc)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	cwd := c.GetWorkingDir()
	if cwd == "" {
		cwd = in.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return nil, fmt.Errorf("%w: working dir %q is not absolute", ErrInvalid, cwd)
	}
	capSet, err := Capabilities(sc.GetCapabilities(), privileged)
	if err != nil {
		return nil, err
	}
	hostname := in.Sandbox.Config.GetHostname()
	if _, ok := in.Sandbox.Namespaces[specs.UTSNamespace]; !ok {
		hostname, _ = os.Hostname()
	}
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: c.GetTty(),
			User: specs.User{
				UID: u.UID, GID: u.GID, AdditionalGids: u.Additional,
			},
			Args:            argv,
			Env:             Env(in.Image, c.GetEnvs(), hostname, c.GetTty()),
			Cwd:             filepath.Clean(cwd),
			NoNewPrivileges: sc.GetNoNewPrivs(),
			Rlimits:         in.Rlimits,
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  capSet.Names(),
				Effective: capSet.Names(),
				Permitted: capSet.Names(),
			},
		},
		Root:     &specs.Root{Path: in.Rootfs, Readonly: sc.GetReadonlyRootfs()},
		Hostname: hostname,
		Linux: &specs.Linux{
			CgroupsPath:       in.CgroupsPath,
			Sysctl:            in.Sandbox.Config.GetLinux().GetSysctls(),
			RootfsPropagation: "rslave",
		},
		Annotations: map[string]string{},
	}
	if len(s.Linux.Sysctl) == 0 {
		s.Linux.Sysctl = nil
	}
	if len(s.Process.User.AdditionalGids) == 0 {
		s.Process.User.AdditionalGids = nil
	}
	for _, a := range sc.GetCapabilities().GetAddAmbientCapabilities() {
		ac, err := caps.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("%w: ambient: %w", ErrInvalid, err)
		}
		s.Process.Capabilities.Ambient = append(s.Process.Capabilities.Ambient, ac.String())
		s.Process.Capabilities.Inheritable = append(s.Process.Capabilities.Inheritable, ac.String())
	}
	// Namespaces: own pid and mount; the pod's network, IPC and UTS.
	s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}}
	if sc.GetNamespaceOptions().GetPid() != runtimeapi.NamespaceMode_NODE {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	for _, t := range []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace} {
		if p, ok := in.Sandbox.Namespaces[t]; ok {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t, Path: p})
		}
	}
	mounts, err := mountsFor(in, privileged)
	if err != nil {
		return nil, err
	}
	s.Mounts = mounts
	if !privileged {
		s.Linux.MaskedPaths = sc.GetMaskedPaths()
		if len(s.Linux.MaskedPaths) == 0 {
			s.Linux.MaskedPaths = DefaultMaskedPaths()
		}
		s.Linux.ReadonlyPaths = sc.GetReadonlyPaths()
		if len(s.Linux.ReadonlyPaths) == 0 {
			s.Linux.ReadonlyPaths = DefaultReadonlyPaths()
		}
		s.Linux.Devices = nil
	}
	prof, err := seccompProfile(in, sc, capSet)
	if err != nil {
		return nil, err
	}
	s.Linux.Seccomp = prof
	if img := in.Image.StopSignal; img != "" {
		s.Annotations["io.skiff.stop-signal"] = img
	}
	if len(s.Annotations) == 0 {
		s.Annotations = nil
	}
	return s, nil
}

func seccompProfile(in Input, sc *runtimeapi.LinuxContainerSecurityContext, capSet caps.Set) (*specs.LinuxSeccomp, error) {
	if sc.GetPrivileged() {
		return nil, nil
	}
	var p *seccomp.Profile
	prof := sc.GetSeccomp()
	switch {
	case prof == nil && sc.GetSeccompProfilePath() == "":
		return nil, nil
	case prof == nil:
		// The deprecated string form.
		switch path := sc.GetSeccompProfilePath(); {
		case path == "unconfined":
			return nil, nil
		case path == "runtime/default" || path == "docker/default":
			p = seccomp.RuntimeDefault(capSet.Names())
		case strings.HasPrefix(path, "localhost/"):
			lp, err := localhost(in, strings.TrimPrefix(path, "localhost/"), capSet)
			if err != nil {
				return nil, err
			}
			p = lp
		default:
			return nil, fmt.Errorf("%w: seccomp profile %q", ErrInvalid, path)
		}
	case prof.GetProfileType() == runtimeapi.SecurityProfile_Unconfined:
		return nil, nil
	case prof.GetProfileType() == runtimeapi.SecurityProfile_RuntimeDefault:
		p = seccomp.RuntimeDefault(capSet.Names())
	case prof.GetProfileType() == runtimeapi.SecurityProfile_Localhost:
		lp, err := localhost(in, prof.GetLocalhostRef(), capSet)
		if err != nil {
			return nil, err
		}
		p = lp
	}
	data, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	var out specs.LinuxSeccomp
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	return &out, nil
}

func localhost(in Input, ref string, capSet caps.Set) (*seccomp.Profile, error) {
	if ref == "" {
		return nil, fmt.Errorf("%w: Localhost seccomp profile without a path", ErrInvalid)
	}
	if !filepath.IsAbs(ref) {
		ref = filepath.Join(in.SeccompProfileRoot, ref)
	}
	data, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: seccomp profile: %w", ErrInvalid, err)
	}
	p, err := seccomp.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%w: seccomp profile %s: %w", ErrInvalid, ref, err)
	}
	if _, err := seccomp.Compile(p); err != nil {
		return nil, fmt.Errorf("%w: seccomp profile %s: %w", ErrInvalid, ref, err)
	}
	return p.ForCaps(capSet.Names()), nil
}

func mountsFor(in Input, privileged bool) ([]specs.Mount, error) {
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	cgOpts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	if privileged {
		sysOpts = []string{"nosuid", "noexec", "nodev", "rw"}
		cgOpts = []string{"nosuid", "noexec", "nodev", "relatime", "rw"}
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
	}
	if privileged {
		ms[1] = specs.Mount{Destination: "/dev", Type: "bind", Source: "/dev", Options: []string{"rbind", "nosuid", "rslave"}}
		ms = slices.Delete(ms, 2, 3) // /dev/pts comes with /dev
	}
	if _, ownNet := in.Sandbox.Namespaces[specs.NetworkNamespace]; !ownNet {
		// sysfs shows the network namespace it was mounted in: with the
		// host's network, bind the host's /sys.
		for i := range ms {
			if ms[i].Destination == "/sys" {
				ms[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: append([]string{"rbind"}, sysOpts...)}
			}
		}
	}
	if in.Cgroup2 {
		ms = append(ms, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup", Options: cgOpts})
	} else if len(in.Controllers) > 0 {
		ms = append(ms, specs.Mount{Destination: "/sys/fs/cgroup", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "nodev", "mode=755", "size=64k"}})
		ctrls := slices.Clone(in.Controllers)
		sort.Strings(ctrls)
		for _, ctl := range ctrls {
			ms = append(ms, specs.Mount{Destination: "/sys/fs/cgroup/" + ctl, Type: "cgroup", Source: "cgroup", Options: append(slices.Clone(cgOpts), ctl)})
		}
	}
	if in.Sandbox.Shm != "" {
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: in.Sandbox.Shm, Options: []string{"rbind", "nosuid", "nodev", "noexec", "rprivate"}})
	} else {
		ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}})
	}
	userMounts := map[string]bool{}
	for _, m := range in.Container.GetMounts() {
		userMounts[filepath.Clean(m.GetContainerPath())] = true
	}
	for _, f := range []struct{ dst, src string }{
		{"/etc/hosts", in.Sandbox.Hosts},
		{"/etc/hostname", in.Sandbox.Hostname},
		{"/etc/resolv.conf", in.Sandbox.ResolvConf},
	} {
		if f.src == "" || userMounts[f.dst] {
			continue
		}
		opts := []string{"rbind", "rprivate"}
		if in.Container.GetLinux().GetSecurityContext().GetReadonlyRootfs() {
			opts = append(opts, "ro")
		}
		ms = append(ms, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: opts})
	}
	for _, m := range in.Container.GetMounts() {
		dst, src := m.GetContainerPath(), m.GetHostPath()
		if !filepath.IsAbs(dst) {
			return nil, fmt.Errorf("%w: mount destination %q is not absolute", ErrInvalid, dst)
		}
		if !filepath.IsAbs(src) {
			return nil, fmt.Errorf("%w: mount source %q is not absolute", ErrInvalid, src)
		}
		opts := []string{"rbind"}
		switch m.GetPropagation() {
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			opts = append(opts, "rslave")
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			opts = append(opts, "rshared")
		default:
			opts = append(opts, "rprivate")
		}
		if m.GetReadonly() {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		opts = append(opts, m.GetMountOptions()...)
		ms = append(ms, specs.Mount{Destination: filepath.Clean(dst), Type: "bind", Source: filepath.Clean(src), Options: opts})
	}
	return ms, nil
}
