package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/container/shim"
	"github.com/skiff-sh/skiff/internal/container/spec"
	"github.com/skiff-sh/skiff/internal/sys/cgroups"
)

// handshakeTimeout bounds container creation when ctx has no deadline.
const handshakeTimeout = 30 * time.Second

// containerName is the reserved name of a container, as containerd makes it.
func containerName(c *runtimeapi.ContainerMetadata, p *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("%s_%s_%s_%s_%d", c.GetName(), p.GetName(), p.GetNamespace(), p.GetUid(), c.GetAttempt())
}

// devices is the device cgroup allow list: Docker's defaults without
// mknod, so a container cannot create device nodes even holding
// CAP_MKNOD (the init bind-mounts the nodes it needs instead).
func devices() []cgroups.DeviceRule {
	var out []cgroups.DeviceRule
	for _, d := range cgroups.DefaultDevices() {
		d.Access = strings.ReplaceAll(d.Access, "m", "")
		if d.Access != "" {
			out = append(out, d)
		}
	}
	return out
}

// convertResources turns CRI resources into cgroup resources.
func convertResources(res *runtimeapi.LinuxContainerResources, pidsLimit int64) *cgroups.Resources {
	out := &cgroups.Resources{}
	if res != nil {
		cpu := &cgroups.CPU{}
		if sh := res.GetCpuShares(); sh > 0 {
			v := uint64(min(max(sh, cgroups.MinShares), cgroups.MaxShares))
			cpu.Shares = &v
		}
		if q := res.GetCpuQuota(); q > 0 {
			v := max(q, cgroups.MinQuota)
			cpu.Quota = &v
		}
		if p := res.GetCpuPeriod(); p > 0 {
			v := uint64(p)
			cpu.Period = &v
		}
		if cpu.Shares != nil || cpu.Quota != nil || cpu.Period != nil {
			out.CPU = cpu
		}
		if res.GetCpusetCpus() != "" || res.GetCpusetMems() != "" {
			out.CPUSet = &cgroups.CPUSet{CPUs: res.GetCpusetCpus(), Mems: res.GetCpusetMems()}
		}
		if m := res.GetMemoryLimitInBytes(); m > 0 {
			out.Memory = &cgroups.Memory{Max: &m}
		}
		for _, h := range res.GetHugepageLimits() {
			out.HugeTLB = append(out.HugeTLB, cgroups.HugeTLB{PageSize: h.GetPageSize(), Limit: int64(h.GetLimit())})
		}
		if v, ok := res.GetUnified()["pids.max"]; ok {
			if v == "max" {
				pidsLimit = -1
			} else if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				pidsLimit = n
			}
		}
	}
	if pidsLimit != 0 {
		out.PidsMax = &pidsLimit
	}
	return out
}

// readInRoot reads path inside root without following symlinks out of it.
func readInRoot(root, path string) []byte {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, strings.TrimPrefix(path, "/"), &unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT})
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	data := make([]byte, 1<<20)
	n, _ := f.Read(data)
	return data[:n]
}

// mountRootfs mounts the image's layers with a writable upper layer at
// bundle/rootfs.
func mountRootfs(bundle string, layers []string) error {
	for _, d := range []string{"rootfs", "upper", "work"} {
		if err := os.MkdirAll(filepath.Join(bundle, d), 0o755); err != nil {
			return err
		}
	}
	lower := slices.Clone(layers)
	slices.Reverse(lower) // overlayfs wants the top layer first
	if len(lower) == 0 {
		empty := filepath.Join(bundle, "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return err
		}
		lower = []string{empty}
	}
	data := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(lower, ":"),
		filepath.Join(bundle, "upper"), filepath.Join(bundle, "work"))
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("mount rootfs: %d layers make overlay options longer than a page", len(layers))
	}
	if err := unix.Mount("overlay", filepath.Join(bundle, "rootfs"), "overlay", 0, data); err != nil {
		return fmt.Errorf("mount rootfs: %w", err)
	}
	return nil
}

// CreateContainer creates a container in a ready sandbox and returns its
// ID. The container's process is set up completely (namespaces, rootfs,
// user, capabilities, seccomp) and waits for StartContainer. Bad requests
// (unknown image, missing executable, invalid mount source, duplicate
// name) fail here with ErrNotFound, ErrInvalid or ErrAlreadyExists, and
// leave nothing mounted or running.
func (r *Runtime) CreateContainer(ctx context.Context, sandboxID string, cfg *runtimeapi.ContainerConfig) (_ string, err error) {
	s, err := r.lookupSandbox(sandboxID)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	ready := s.rec.State == sandboxReady
	srec := s.rec
	s.mu.Unlock()
	if !ready {
		return "", fmt.Errorf("sandbox %s is not ready: %w", s.rec.ID, ErrNotReady)
	}
	if cfg.GetMetadata().GetName() == "" {
		return "", fmt.Errorf("container config: no name: %w", ErrInvalid)
	}
	if cfg.GetImage().GetImage() == "" {
		return "", fmt.Errorf("container config: no image: %w", ErrInvalid)
	}
	if r.cfg.Images == nil {
		return "", fmt.Errorf("container runtime has no image store: %w", ErrNotReady)
	}
	release, err := r.acquireStart(ctx)
	if err != nil {
		return "", fmt.Errorf("container %s: %w", cfg.GetMetadata().GetName(), err)
	}
	defer release()
	id := newID()
	name := containerName(cfg.GetMetadata(), s.config.GetMetadata())
	if err := r.reserveName(name, id); err != nil {
		return "", fmt.Errorf("container %s: %w", cfg.GetMetadata().GetName(), err)
	}
	bundle := filepath.Join(r.containersDir(), id)
	c := &ctr{bundle: bundle, config: cfg, exited: make(chan struct{})}
	defer func() {
		if err == nil {
			return
		}
		cleanup := context.WithoutCancel(ctx)
		if c.rec.Pid > 0 {
			signalProcess(c.rec.Pid, c.rec.PidStart, unix.SIGKILL)
		}
		if c.cgroup != nil {
			kctx, cancel := ctxOrTimeout(cleanup, r.cfg.StopTimeout)
			c.cgroup.Kill(kctx)
			c.cgroup.Remove(kctx)
			cancel()
		}
		r.cleanupBundle(bundle, id)
		r.releaseName(name, id)
	}()

	img, err := r.cfg.Images.Lease(id, cfg.GetImage().GetImage())
	if err != nil {
		if errors.Is(err, image.ErrNotFound) {
			return "", fmt.Errorf("container %s: image %q: %w", cfg.GetMetadata().GetName(), cfg.GetImage().GetImage(), ErrNotFound)
		}
		return "", fmt.Errorf("container %s: image %q: %w", cfg.GetMetadata().GetName(), cfg.GetImage().GetImage(), err)
	}
	if err := os.MkdirAll(bundle, 0o711); err != nil {
		return "", err
	}
	if err := mountRootfs(bundle, img.LayerDirs()); err != nil {
		return "", fmt.Errorf("container %s: %w", cfg.GetMetadata().GetName(), err)
	}
	rootfs := filepath.Join(bundle, "rootfs")

	cgPath := srec.Cgroup + "/" + id
	var imgCfg imagespec.ImageConfig
	if img.Config != nil {
		ic := img.Config.Config
		imgCfg = imagespec.ImageConfig{User: ic.User, Env: ic.Env, Entrypoint: ic.Entrypoint, Cmd: ic.Cmd, WorkingDir: ic.WorkingDir, StopSignal: ic.StopSignal}
	}
	nsPaths := map[specs.LinuxNamespaceType]string{}
	for t, p := range srec.Namespaces {
		switch t {
		case "net":
			nsPaths[specs.NetworkNamespace] = p
		case "ipc":
			nsPaths[specs.IPCNamespace] = p
		case "uts":
			nsPaths[specs.UTSNamespace] = p
		}
	}
	logPath := ""
	if d, p := s.config.GetLogDirectory(), cfg.GetLogPath(); d != "" && p != "" {
		logPath = filepath.Join(d, p)
	}
	sp, err := spec.Build(spec.Input{
		Sandbox: spec.Sandbox{
			Config: s.config, Namespaces: nsPaths,
			Hostname: srec.Hostname, Hosts: srec.Hosts, ResolvConf: srec.ResolvConf, Shm: srec.Shm,
		},
		Container:          cfg,
		Image:              imgCfg,
		Users:              spec.UserDB{Passwd: readInRoot(rootfs, "/etc/passwd"), Group: readInRoot(rootfs, "/etc/group")},
		Rootfs:             rootfs,
		CgroupsPath:        cgPath,
		Rlimits:            r.cfg.Rlimits,
		SeccompProfileRoot: r.cfg.SeccompProfileRoot,
		Cgroup2:            r.cgroupUnified,
		Controllers:        r.cgroupV1,
	})
	if err != nil {
		if errors.Is(err, spec.ErrInvalid) {
			err = fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return "", fmt.Errorf("container %s: %w", cfg.GetMetadata().GetName(), err)
	}
	if err := saveJSON(filepath.Join(bundle, shim.SpecFile), sp); err != nil {
		return "", err
	}
	shimCfg := shim.Config{
		LogPath: logPath, LogMaxSize: max(r.cfg.LogMaxSize, 0), LogMaxFiles: r.cfg.LogMaxFiles,
		Terminal: cfg.GetTty(), Stdin: cfg.GetStdin(), StdinOnce: cfg.GetStdinOnce(),
		Namespaces: srec.Namespaces,
		NewPID:     cfg.GetLinux().GetSecurityContext().GetNamespaceOptions().GetPid() != runtimeapi.NamespaceMode_NODE,
	}
	if err := unix.Mkfifo(filepath.Join(bundle, shim.FifoFile), 0o622); err != nil {
		return "", err
	}

	c.rec = containerRecord{
		ID: id, SandboxID: srec.ID, Name: name, ImageID: img.ID, ImageRef: cfg.GetImage().GetImage(),
		LogPath: logPath, State: stateCreated, CreatedAt: r.cfg.Now(), Cgroup: cgPath,
		StopSignal: imgCfg.StopSignal,
	}
	if c.rec.Config, err = proto.Marshal(cfg); err != nil {
		return "", err
	}
	// Saved before the init starts, so that a runtime that dies from
	// here on finds the container (as UNKNOWN) and removes its cgroup.
	if err := c.saveLocked(); err != nil {
		return "", err
	}
	oomAdj := int(cfg.GetLinux().GetResources().GetOomScoreAdj())
	res := convertResources(cfg.GetLinux().GetResources(), r.cfg.PidsLimit)
	if !cfg.GetLinux().GetSecurityContext().GetPrivileged() {
		res.Devices = devices()
	}
	if err := r.startInit(ctx, c, shimCfg, res, oomAdj); err != nil {
		return "", fmt.Errorf("container %s: %w", cfg.GetMetadata().GetName(), err)
	}
	c.mu.Lock()
	err = c.saveLocked()
	c.mu.Unlock()
	if err != nil {
		return "", err
	}
	r.mu.Lock()
	r.containers[id] = c
	r.mu.Unlock()
	r.emit(c, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	// It may have died before it was registered, its exit event lost.
	if _, err := shim.ReadExit(bundle); err == nil {
		r.onExit(c)
	}
	return id, nil
}

// startInit has the monitor hand the container to an init and takes the
// init through its handshake: while the init builds the container's
// filesystem, the runtime creates the container's cgroup, applies its
// resources, moves the init in and says so; the init enters its cgroup
// namespace, finishes and reports it is created.
func (r *Runtime) startInit(ctx context.Context, c *ctr, cfg shim.Config, res *cgroups.Resources, oomAdj int) error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	parent := os.NewFile(uintptr(fds[0]), "sync")
	child := os.NewFile(uintptr(fds[1]), "sync")
	pid, err := shim.Create(r.cfg.Root, c.rec.ID, c.bundle, cfg, child)
	child.Close()
	if err != nil {
		parent.Close()
		var setup *shim.SetupError
		if errors.As(err, &setup) {
			return fmt.Errorf("%w: %s", ErrInvalid, setup.Reason)
		}
		return fmt.Errorf("start init: %w", err)
	}
	initStart, _ := startTime(pid)
	c.mu.Lock()
	c.rec.Pid, c.rec.PidStart = pid, initStart
	c.mu.Unlock()
	conn, err := net.FileConn(parent)
	parent.Close()
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(handshakeTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	conn.SetDeadline(deadline)
	// The init builds the container's filesystem meanwhile.
	cg, err := r.cfg.Cgroups.Create(c.rec.Cgroup)
	if err != nil {
		return err
	}
	c.cgroup = cg
	if err := cg.Apply(res); err != nil {
		if errors.Is(err, cgroups.ErrInvalid) {
			err = fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return fmt.Errorf("resources: %w", err)
	}
	if err := c.cgroup.AddProc(pid); err != nil {
		// The init may have failed, and gone, already: its reason is the
		// one to report.
		var m shim.Message
		conn.SetReadDeadline(time.Now().Add(time.Second))
		if json.NewDecoder(conn).Decode(&m) == nil && m.Type == "error" {
			return fmt.Errorf("%w: %s", ErrInvalid, m.Error)
		}
		return fmt.Errorf("join cgroup: %w", err)
	}
	if oomAdj != 0 {
		used, clamped, err := setOOMScoreAdj(pid, oomAdj)
		switch {
		case err != nil:
			r.log.Warn("cannot set oom_score_adj", "container", c.rec.ID, "want", oomAdj, "err", err)
		case clamped:
			r.oomAdjOnce.Do(func() {
				r.log.Warn("host does not allow lowering oom_score_adj (no CAP_SYS_RESOURCE); clamping", "want", oomAdj, "used", used)
			})
		}
	}
	if err := json.NewEncoder(conn).Encode(shim.Message{Type: "joined"}); err != nil {
		var m shim.Message
		conn.SetReadDeadline(time.Now().Add(time.Second))
		if json.NewDecoder(conn).Decode(&m) == nil && m.Type == "error" {
			return fmt.Errorf("%w: %s", ErrInvalid, m.Error)
		}
		return fmt.Errorf("container setup failed: init went away: %w", err)
	}
	var m shim.Message
	if err := json.NewDecoder(conn).Decode(&m); err != nil {
		return fmt.Errorf("container setup failed: init went away: %w", err)
	}
	switch m.Type {
	case "created":
		return nil
	case "error":
		return fmt.Errorf("%w: %s", ErrInvalid, m.Error)
	}
	return fmt.Errorf("init: unexpected message %q", m.Type)
}

// onExit records the exit of a container whose shim is gone.
func (r *Runtime) onExit(c *ctr) {
	st, err := shim.ReadExit(c.bundle)
	c.mu.Lock()
	if c.rec.State == stateExited || c.rec.State == stateUnknown {
		c.mu.Unlock()
		return
	}
	if err != nil {
		c.rec.ExitCode, c.rec.Reason = 255, "Unknown"
		c.rec.Message = "the container's shim exited without recording an exit status"
		c.rec.FinishedAt = r.cfg.Now()
		c.rec.State = stateUnknown
	} else {
		c.rec.State = stateExited
		c.rec.ExitCode, c.rec.FinishedAt = int32(st.ExitCode), st.FinishedAt
		switch {
		case st.Signal == int(unix.SIGKILL) && r.oomKilled(c):
			c.rec.Reason = "OOMKilled"
		case st.ExitCode == 0:
			c.rec.Reason = "Completed"
		default:
			c.rec.Reason = "Error"
		}
	}
	if err := c.saveLocked(); err != nil {
		r.log.Error("cannot save container state", "container", c.rec.ID, "err", err)
	}
	c.mu.Unlock()
	close(c.exited)
	r.log.Info("container exited", "container", c.rec.ID, "exitCode", c.rec.ExitCode, "reason", c.rec.Reason)
	r.emit(c, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
}

func (r *Runtime) oomKilled(c *ctr) bool {
	if c.cgroup == nil {
		return false
	}
	st, err := c.cgroup.Stats()
	return err == nil && st.Memory != nil && st.Memory.OOMKills > 0
}

// StartContainer starts a created container's program.
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	c, err := r.lookupContainer(id)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	state := c.rec.State
	c.mu.Unlock()
	if state != stateCreated {
		return fmt.Errorf("container %s is %s, not created: %w", c.rec.ID, state, ErrNotReady)
	}
	fifo := filepath.Join(c.bundle, shim.FifoFile)
	// O_RDWR never blocks on a FIFO; the init, blocked opening the write
	// end, goes on, writes one byte and execs.
	f, err := os.OpenFile(fifo, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("start container %s: %w", c.rec.ID, err)
	}
	defer f.Close()
	deadline := time.Now().Add(handshakeTimeout)
	buf := make([]byte, 1)
	for {
		f.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		n, err := f.Read(buf)
		if n == 1 {
			break
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("start container %s: %w", c.rec.ID, err)
		}
		select {
		case <-c.exited:
			return fmt.Errorf("start container %s: it exited before starting: %w", c.rec.ID, ErrNotReady)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("start container %s: timed out", c.rec.ID)
		}
	}
	os.Remove(fifo)
	c.mu.Lock()
	if c.rec.State == stateCreated {
		c.rec.State = stateRunning
		c.rec.StartedAt = r.cfg.Now()
	}
	err = c.saveLocked()
	c.mu.Unlock()
	r.emit(c, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	return err
}

// stopSignal is the signal StopContainer sends first.
func stopSignal(name string) unix.Signal {
	name = strings.TrimPrefix(strings.ToUpper(name), "SIG")
	if n, err := strconv.Atoi(name); err == nil && n > 0 && n < 65 {
		return unix.Signal(n)
	}
	if s := unix.SignalNum("SIG" + name); s != 0 {
		return s
	}
	return unix.SIGTERM
}

// StopContainer sends the container its stop signal (the image's, or
// SIGTERM), waits up to timeout seconds, then kills every process in its
// cgroup. Stopping a container that is not running succeeds.
func (r *Runtime) StopContainer(ctx context.Context, id string, timeout int64) error {
	c, err := r.lookupContainer(id)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	return r.stopLocked(ctx, c, timeout)
}

func (r *Runtime) stopLocked(ctx context.Context, c *ctr, timeout int64) error {
	c.mu.Lock()
	state, pid, start, sig := c.rec.State, c.rec.Pid, c.rec.PidStart, stopSignal(c.rec.StopSignal)
	c.mu.Unlock()
	if state != stateRunning && state != stateCreated {
		return nil
	}
	if timeout > 0 && state == stateRunning {
		if err := signalProcess(pid, start, sig); err != nil {
			r.log.Warn("cannot send stop signal", "container", c.rec.ID, "err", err)
		}
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		select {
		case <-c.exited:
			return nil
		case <-t.C:
		case <-ctx.Done():
		}
	}
	kctx, cancel := ctxOrTimeout(context.WithoutCancel(ctx), r.cfg.StopTimeout)
	defer cancel()
	signalProcess(pid, start, unix.SIGKILL)
	if c.cgroup != nil {
		if err := c.cgroup.Kill(kctx); err != nil {
			r.log.Warn("cannot kill container cgroup", "container", c.rec.ID, "err", err)
		}
	}
	select {
	case <-c.exited:
		return nil
	case <-kctx.Done():
		return fmt.Errorf("stop container %s: still running after SIGKILL", c.rec.ID)
	}
}

// RemoveContainer removes a container, killing it first if it runs.
// Removing an unknown container succeeds. The log file is kept (it is the
// kubelet's to remove).
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	c, err := r.lookupContainer(id)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	if err := r.stopLocked(ctx, c, 0); err != nil {
		return fmt.Errorf("remove container %s: %w", c.rec.ID, err)
	}
	if err := unmountAll(c.bundle); err != nil {
		return fmt.Errorf("remove container %s: %w", c.rec.ID, err)
	}
	if c.cgroup != nil {
		rctx, cancel := ctxOrTimeout(context.WithoutCancel(ctx), r.cfg.StopTimeout)
		err := c.cgroup.Remove(rctx)
		cancel()
		if err != nil && !errors.Is(err, cgroups.ErrNotExist) {
			return fmt.Errorf("remove container %s: %w", c.rec.ID, err)
		}
	}
	if r.cfg.Images != nil {
		r.cfg.Images.Release(c.rec.ID)
	}
	if err := os.RemoveAll(c.bundle); err != nil {
		return fmt.Errorf("remove container %s: %w", c.rec.ID, err)
	}
	r.mu.Lock()
	delete(r.containers, c.rec.ID)
	if r.names[c.rec.Name] == c.rec.ID {
		delete(r.names, c.rec.Name)
	}
	r.mu.Unlock()
	r.emit(c, runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT)
	return nil
}

func criState(s string) runtimeapi.ContainerState {
	switch s {
	case stateCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case stateRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case stateExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

func (r *Runtime) containerStatus(c *ctr) *runtimeapi.ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &runtimeapi.ContainerStatus{
		Id:          c.rec.ID,
		Metadata:    c.config.GetMetadata(),
		State:       criState(c.rec.State),
		CreatedAt:   c.rec.CreatedAt.UnixNano(),
		Image:       &runtimeapi.ImageSpec{Image: c.rec.ImageRef},
		ImageRef:    c.rec.ImageID,
		ImageId:     c.rec.ImageID,
		Labels:      c.config.GetLabels(),
		Annotations: c.config.GetAnnotations(),
		Mounts:      c.config.GetMounts(),
		LogPath:     c.rec.LogPath,
		Resources:   &runtimeapi.ContainerResources{Linux: c.config.GetLinux().GetResources()},
	}
	if !c.rec.StartedAt.IsZero() {
		st.StartedAt = c.rec.StartedAt.UnixNano()
	}
	if c.rec.State == stateExited || c.rec.State == stateUnknown {
		st.FinishedAt = c.rec.FinishedAt.UnixNano()
		st.ExitCode = c.rec.ExitCode
		st.Reason = c.rec.Reason
		st.Message = c.rec.Message
	}
	return st
}

// ContainerStatus returns the container's status; verbose adds an "info"
// entry with the PIDs, the sandbox and the OCI spec.
func (r *Runtime) ContainerStatus(ctx context.Context, id string, verbose bool) (*runtimeapi.ContainerStatus, map[string]string, error) {
	c, err := r.lookupContainer(id)
	if err != nil {
		return nil, nil, err
	}
	st := r.containerStatus(c)
	var info map[string]string
	if verbose {
		var sp any
		if data, err := os.ReadFile(filepath.Join(c.bundle, shim.SpecFile)); err == nil {
			json.Unmarshal(data, &sp)
		}
		c.mu.Lock()
		data, _ := json.Marshal(map[string]any{
			"sandboxID": c.rec.SandboxID, "pid": c.rec.Pid,
			"cgroup": c.rec.Cgroup, "bundle": c.bundle, "runtimeSpec": sp,
		})
		c.mu.Unlock()
		info = map[string]string{"info": string(data)}
	}
	return st, info, nil
}

// ListContainers lists containers matching filter (nil: all), oldest first.
func (r *Runtime) ListContainers(ctx context.Context, filter *runtimeapi.ContainerFilter) []*runtimeapi.Container {
	r.mu.Lock()
	all := make([]*ctr, 0, len(r.containers))
	for _, c := range r.containers {
		all = append(all, c)
	}
	r.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].rec.CreatedAt.Before(all[j].rec.CreatedAt) })
	var out []*runtimeapi.Container
	for _, c := range all {
		st := r.containerStatus(c)
		if f := filter; f != nil {
			if f.GetId() != "" && !strings.HasPrefix(st.Id, f.GetId()) {
				continue
			}
			if f.GetPodSandboxId() != "" && !strings.HasPrefix(c.rec.SandboxID, f.GetPodSandboxId()) {
				continue
			}
			if f.GetState() != nil && f.GetState().GetState() != st.State {
				continue
			}
			if !labelsMatch(st.Labels, f.GetLabelSelector()) {
				continue
			}
		}
		out = append(out, &runtimeapi.Container{
			Id: st.Id, PodSandboxId: c.rec.SandboxID, Metadata: st.Metadata, Image: st.Image,
			ImageRef: st.ImageRef, ImageId: st.ImageId, State: st.State, CreatedAt: st.CreatedAt,
			Labels: st.Labels, Annotations: st.Annotations,
		})
	}
	return out
}

// UpdateContainerResources applies new resources to the container's cgroup.
func (r *Runtime) UpdateContainerResources(ctx context.Context, id string, res *runtimeapi.LinuxContainerResources) error {
	c, err := r.lookupContainer(id)
	if err != nil {
		return err
	}
	if c.cgroup == nil {
		return errNotRunning(c.rec.ID)
	}
	if err := c.cgroup.Apply(convertResources(res, r.cfg.PidsLimit)); err != nil {
		if errors.Is(err, cgroups.ErrInvalid) {
			err = fmt.Errorf("%w: %w", ErrInvalid, err)
		}
		return fmt.Errorf("update container %s: %w", c.rec.ID, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.config.Linux == nil {
		c.config.Linux = &runtimeapi.LinuxContainerConfig{}
	}
	c.config.Linux.Resources = res
	if data, err := proto.Marshal(c.config); err == nil {
		c.rec.Config = data
		c.saveLocked()
	}
	return nil
}

// ReopenContainerLog makes the container's shim reopen its log file.
func (r *Runtime) ReopenContainerLog(ctx context.Context, id string) error {
	c, err := r.lookupContainer(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	state := c.rec.State
	c.mu.Unlock()
	if state != stateRunning {
		return errNotRunning(c.rec.ID)
	}
	if err := shim.Reopen(r.cfg.Root, c.rec.ID); err != nil {
		if errors.Is(err, shim.ErrNotRunning) {
			return errNotRunning(c.rec.ID)
		}
		return fmt.Errorf("reopen log of %s: %w", c.rec.ID, err)
	}
	return nil
}
