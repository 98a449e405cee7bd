// Package fakecri is a small in-memory container runtime behind a real
// CRI gRPC server, for tests of the kubelet and of anything else that
// drives a runtime through the CRI. Containers run nothing: a test makes
// them exit (Exit), decides what exec returns (ExecFunc), and reads what
// was asked (Calls, Container).
//
//	rt := fakecri.New(clock)
//	conn := rt.Serve(t) // bufconn; closed when the test ends
//	runtime := runtimeapi.NewRuntimeServiceClient(conn)
//	images := runtimeapi.NewImageServiceClient(conn)
//
// Images must be added (AddImage) or pulls allowed (AllowPulls) before
// they can be used. Every state change sends a container event, as the
// built-in runtime does.
package fakecri

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"
)

// Runtime is the fake runtime. Its methods are safe for concurrent use.
type Runtime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	clock clock.PassiveClock

	// mu guards everything below.
	mu         sync.Mutex
	next       int
	sandboxes  map[string]*runtimeapi.PodSandboxStatus
	sbConfigs  map[string]*runtimeapi.PodSandboxConfig
	containers map[string]*Container
	images     map[string]*runtimeapi.Image
	allowPulls bool
	pullErrs   map[string]error
	// blocked lists images whose pulls hang until the caller gives up.
	blocked  map[string]bool
	pulls    []*runtimeapi.PullImageRequest
	calls    []string
	failNext map[string]error
	subs     map[chan *runtimeapi.ContainerEventResponse]struct{}
	exec     func(id string, cmd []string) ([]byte, int32, error)
	// ignoreTerm lists containers that do not exit on SIGTERM.
	ignoreTerm map[string]bool
	// memory is the working set reported per container.
	memory map[string]uint64
	stops  []Stop
}

// Stop is one StopContainer call.
type Stop struct {
	ID, Name string
	Timeout  int64
}

// Stops returns the StopContainer calls received, in order.
func (r *Runtime) Stops() []Stop {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.stops)
}

// Container is one fake container.
type Container struct {
	Status    *runtimeapi.ContainerStatus
	SandboxID string
	Config    *runtimeapi.ContainerConfig
	// StopTimeouts are the timeouts StopContainer was called with.
	StopTimeouts []int64
}

// New makes an empty runtime whose timestamps come from c.
func New(c clock.PassiveClock) *Runtime {
	return &Runtime{
		clock: c, sandboxes: map[string]*runtimeapi.PodSandboxStatus{}, sbConfigs: map[string]*runtimeapi.PodSandboxConfig{},
		containers: map[string]*Container{}, images: map[string]*runtimeapi.Image{}, pullErrs: map[string]error{},
		failNext: map[string]error{}, subs: map[chan *runtimeapi.ContainerEventResponse]struct{}{},
		ignoreTerm: map[string]bool{}, memory: map[string]uint64{}, blocked: map[string]bool{},
	}
}

// Serve serves the runtime on an in-memory connection until the test
// ends and returns a client connection to it.
func (r *Runtime) Serve(t testing.TB) *grpc.ClientConn {
	t.Helper()
	ln := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	runtimeapi.RegisterRuntimeServiceServer(srv, r)
	runtimeapi.RegisterImageServiceServer(srv, r)
	go srv.Serve(ln)
	conn, err := grpc.NewClient("passthrough:///fakecri",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return ln.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
	})
	return conn
}

// AddImage makes an image present.
func (r *Runtime) AddImage(ref string, uid *int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	img := &runtimeapi.Image{Id: "sha256:" + fmt.Sprintf("%064x", len(r.images)+1), RepoTags: []string{ref}, Size: 1 << 20}
	if uid != nil {
		img.Uid = &runtimeapi.Int64Value{Value: *uid}
	}
	r.images[ref] = img
}

// AllowPulls makes pulls of any image succeed (except those set to fail).
func (r *Runtime) AllowPulls() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.allowPulls = true
}

// FailPull makes pulls of ref fail with err (nil: succeed again).
func (r *Runtime) FailPull(ref string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.pullErrs, ref)
		return
	}
	r.pullErrs[ref] = err
}

// BlockPull makes pulls of ref hang until the caller cancels them.
func (r *Runtime) BlockPull(ref string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blocked[ref] = true
}

// Pulls returns the pull requests received.
func (r *Runtime) Pulls() []*runtimeapi.PullImageRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pulls)
}

// FailNext makes the next call of method (such as "CreateContainer")
// fail with err.
func (r *Runtime) FailNext(method string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failNext[method] = err
}

// ExecFunc sets what ExecSync does (default: exit 0, no output).
func (r *Runtime) ExecFunc(f func(id string, cmd []string) ([]byte, int32, error)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.exec = f
}

// IgnoreSIGTERM makes containers of this name keep running through
// SIGTERM: StopContainer then reports exit code 137 instead of 143.
func (r *Runtime) IgnoreSIGTERM(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ignoreTerm[name] = true
}

// SetMemory sets the working set reported for container id.
func (r *Runtime) SetMemory(id string, bytes uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.memory[id] = bytes
}

// Calls returns the names of the methods called, in order.
func (r *Runtime) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// Containers returns copies of the containers whose name is name (all
// when empty), oldest first.
func (r *Runtime) Containers(name string) []Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Container
	for _, c := range r.containers {
		if name == "" || c.Status.Metadata.Name == name {
			out = append(out, Container{Status: cloneStatus(c.Status), SandboxID: c.SandboxID, Config: c.Config, StopTimeouts: slices.Clone(c.StopTimeouts)})
		}
	}
	slices.SortFunc(out, func(a, b Container) int { return int(a.Status.CreatedAt - b.Status.CreatedAt) })
	return out
}

// Sandboxes returns the sandboxes, oldest first.
func (r *Runtime) Sandboxes() []*runtimeapi.PodSandboxStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*runtimeapi.PodSandboxStatus
	for _, s := range r.sandboxes {
		out = append(out, proto.Clone(s).(*runtimeapi.PodSandboxStatus))
	}
	slices.SortFunc(out, func(a, b *runtimeapi.PodSandboxStatus) int { return int(a.CreatedAt - b.CreatedAt) })
	return out
}

// Exit makes a running container exit with code and reason ("" for the
// default: Completed or Error).
func (r *Runtime) Exit(id string, code int32, reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[id]
	if c == nil {
		return fmt.Errorf("no container %s", id)
	}
	if c.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		return fmt.Errorf("container %s is not running", id)
	}
	r.exitLocked(c, code, reason)
	return nil
}

func (r *Runtime) exitLocked(c *Container, code int32, reason string) {
	if reason == "" {
		reason = "Completed"
		if code != 0 {
			reason = "Error"
		}
	}
	c.Status.State = runtimeapi.ContainerState_CONTAINER_EXITED
	c.Status.ExitCode, c.Status.Reason = code, reason
	c.Status.FinishedAt = r.clock.Now().UnixNano()
	r.emitLocked(c, runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT)
}

func (r *Runtime) call(method string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, method)
	if err, ok := r.failNext[method]; ok {
		delete(r.failNext, method)
		return err
	}
	return nil
}

func (r *Runtime) id() string {
	r.next++
	return fmt.Sprintf("%064x", r.next)
}

func cloneStatus(s *runtimeapi.ContainerStatus) *runtimeapi.ContainerStatus {
	return proto.Clone(s).(*runtimeapi.ContainerStatus)
}

func (r *Runtime) emitLocked(c *Container, kind runtimeapi.ContainerEventType) {
	ev := &runtimeapi.ContainerEventResponse{
		ContainerId: c.Status.Id, ContainerEventType: kind, CreatedAt: r.clock.Now().UnixNano(),
		ContainersStatuses: []*runtimeapi.ContainerStatus{cloneStatus(c.Status)},
	}
	if sb := r.sandboxes[c.SandboxID]; sb != nil {
		ev.PodSandboxStatus = proto.Clone(sb).(*runtimeapi.PodSandboxStatus)
	}
	for ch := range r.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func notFound(what, id string) error {
	return status.Errorf(codes.NotFound, "%s %q not found", what, id)
}

func matches(labels, sel map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// Version implements the CRI.
func (r *Runtime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	if err := r.call("Version"); err != nil {
		return nil, err
	}
	return &runtimeapi.VersionResponse{Version: "0.1.0", RuntimeName: "fake", RuntimeVersion: "1.0", RuntimeApiVersion: "v1"}, nil
}

// Status implements the CRI.
func (r *Runtime) Status(context.Context, *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	if err := r.call("Status"); err != nil {
		return nil, err
	}
	return &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true}, {Type: runtimeapi.NetworkReady, Status: true},
	}}}, nil
}

// UpdateRuntimeConfig implements the CRI.
func (r *Runtime) UpdateRuntimeConfig(context.Context, *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	return &runtimeapi.UpdateRuntimeConfigResponse{}, r.call("UpdateRuntimeConfig")
}

// RunPodSandbox implements the CRI.
func (r *Runtime) RunPodSandbox(_ context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	if err := r.call("RunPodSandbox"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.id()
	cfg := req.Config
	st := &runtimeapi.PodSandboxStatus{
		Id: id, Metadata: cfg.Metadata, State: runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: r.clock.Now().UnixNano(),
		Network: &runtimeapi.PodSandboxNetworkStatus{Ip: "10.88.0." + strconv.Itoa(r.next%250+1)},
		Linux:   &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: cfg.GetLinux().GetSecurityContext().GetNamespaceOptions()}},
		Labels:  maps.Clone(cfg.Labels), Annotations: maps.Clone(cfg.Annotations),
	}
	r.sandboxes[id] = st
	r.sbConfigs[id] = cfg
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// SandboxConfig returns the config sandbox id was made with.
func (r *Runtime) SandboxConfig(id string) *runtimeapi.PodSandboxConfig {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sbConfigs[id]
}

// StopPodSandbox implements the CRI.
func (r *Runtime) StopPodSandbox(_ context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	if err := r.call("StopPodSandbox"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sb := r.sandboxes[req.PodSandboxId]
	if sb == nil {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	for _, c := range r.containers {
		if c.SandboxID == sb.Id && c.Status.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
			r.exitLocked(c, 137, "Error")
		}
	}
	sb.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox implements the CRI.
func (r *Runtime) RemovePodSandbox(_ context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	if err := r.call("RemovePodSandbox"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, c := range r.containers {
		if c.SandboxID == req.PodSandboxId {
			delete(r.containers, id)
		}
	}
	delete(r.sandboxes, req.PodSandboxId)
	delete(r.sbConfigs, req.PodSandboxId)
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// PodSandboxStatus implements the CRI.
func (r *Runtime) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	if err := r.call("PodSandboxStatus"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sb := r.sandboxes[req.PodSandboxId]
	if sb == nil {
		return nil, notFound("sandbox", req.PodSandboxId)
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: proto.Clone(sb).(*runtimeapi.PodSandboxStatus)}
	if req.Verbose {
		resp.Info = map[string]string{"info": `{"netns":"/var/run/netns/fake-` + sb.Id[56:] + `"}`}
	}
	return resp, nil
}

// ListPodSandbox implements the CRI.
func (r *Runtime) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	if err := r.call("ListPodSandbox"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	resp := &runtimeapi.ListPodSandboxResponse{}
	for _, sb := range r.sandboxes {
		if f := req.Filter; f != nil && ((f.Id != "" && f.Id != sb.Id) || !matches(sb.Labels, f.LabelSelector)) {
			continue
		}
		resp.Items = append(resp.Items, &runtimeapi.PodSandbox{Id: sb.Id, Metadata: sb.Metadata, State: sb.State, CreatedAt: sb.CreatedAt, Labels: sb.Labels, Annotations: sb.Annotations})
	}
	return resp, nil
}

// CreateContainer implements the CRI.
func (r *Runtime) CreateContainer(_ context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	if err := r.call("CreateContainer"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sb := r.sandboxes[req.PodSandboxId]
	if sb == nil {
		return nil, notFound("sandbox", req.PodSandboxId)
	}
	if sb.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return nil, status.Errorf(codes.FailedPrecondition, "sandbox %s is not ready", sb.Id)
	}
	cfg := req.Config
	img := r.images[cfg.GetImage().GetImage()]
	if img == nil {
		return nil, notFound("image", cfg.GetImage().GetImage())
	}
	id := r.id()
	logPath := ""
	if dir := r.sbConfigs[sb.Id].GetLogDirectory(); dir != "" && cfg.LogPath != "" {
		logPath = dir + "/" + cfg.LogPath
	}
	c := &Container{SandboxID: sb.Id, Config: cfg, Status: &runtimeapi.ContainerStatus{
		Id: id, Metadata: cfg.Metadata, State: runtimeapi.ContainerState_CONTAINER_CREATED, CreatedAt: r.clock.Now().UnixNano(),
		Image: &runtimeapi.ImageSpec{Image: cfg.GetImage().GetImage()}, ImageRef: img.Id, ImageId: img.Id,
		Labels: maps.Clone(cfg.Labels), Annotations: maps.Clone(cfg.Annotations), Mounts: cfg.Mounts, LogPath: logPath,
	}}
	r.containers[id] = c
	r.emitLocked(c, runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT)
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// StartContainer implements the CRI.
func (r *Runtime) StartContainer(_ context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	if err := r.call("StartContainer"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[req.ContainerId]
	if c == nil {
		return nil, notFound("container", req.ContainerId)
	}
	if c.Status.State != runtimeapi.ContainerState_CONTAINER_CREATED {
		return nil, status.Errorf(codes.FailedPrecondition, "container %s is not created", c.Status.Id)
	}
	c.Status.State = runtimeapi.ContainerState_CONTAINER_RUNNING
	c.Status.StartedAt = r.clock.Now().UnixNano()
	r.emitLocked(c, runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT)
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer implements the CRI: the container exits at once, with
// 143 (SIGTERM) or, when it ignores SIGTERM, 137.
func (r *Runtime) StopContainer(_ context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	if err := r.call("StopContainer"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[req.ContainerId]
	if c == nil {
		return nil, notFound("container", req.ContainerId)
	}
	c.StopTimeouts = append(c.StopTimeouts, req.Timeout)
	r.stops = append(r.stops, Stop{ID: c.Status.Id, Name: c.Status.Metadata.Name, Timeout: req.Timeout})
	if c.Status.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
		code := int32(143)
		if r.ignoreTerm[c.Status.Metadata.Name] || req.Timeout == 0 {
			code = 137
		}
		r.exitLocked(c, code, "Error")
	} else if c.Status.State == runtimeapi.ContainerState_CONTAINER_CREATED {
		r.exitLocked(c, 0, "Error")
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// RemoveContainer implements the CRI.
func (r *Runtime) RemoveContainer(_ context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	if err := r.call("RemoveContainer"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.containers, req.ContainerId)
	return &runtimeapi.RemoveContainerResponse{}, nil
}

// ListContainers implements the CRI.
func (r *Runtime) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	if err := r.call("ListContainers"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	resp := &runtimeapi.ListContainersResponse{}
	for _, c := range r.containers {
		s := c.Status
		if f := req.Filter; f != nil && ((f.Id != "" && f.Id != s.Id) || (f.PodSandboxId != "" && f.PodSandboxId != c.SandboxID) || !matches(s.Labels, f.LabelSelector)) {
			continue
		}
		resp.Containers = append(resp.Containers, &runtimeapi.Container{
			Id: s.Id, PodSandboxId: c.SandboxID, Metadata: s.Metadata, Image: s.Image, ImageRef: s.ImageRef,
			State: s.State, CreatedAt: s.CreatedAt, Labels: s.Labels, Annotations: s.Annotations,
		})
	}
	return resp, nil
}

// ContainerStatus implements the CRI.
func (r *Runtime) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	if err := r.call("ContainerStatus"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.containers[req.ContainerId]
	if c == nil {
		return nil, notFound("container", req.ContainerId)
	}
	return &runtimeapi.ContainerStatusResponse{Status: cloneStatus(c.Status)}, nil
}

// ExecSync implements the CRI.
func (r *Runtime) ExecSync(_ context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	if err := r.call("ExecSync"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	c, f := r.containers[req.ContainerId], r.exec
	r.mu.Unlock()
	if c == nil {
		return nil, notFound("container", req.ContainerId)
	}
	if f == nil {
		return &runtimeapi.ExecSyncResponse{}, nil
	}
	out, code, err := f(req.ContainerId, req.Cmd)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecSyncResponse{Stdout: out, ExitCode: code}, nil
}

// ListContainerStats implements the CRI.
func (r *Runtime) ListContainerStats(context.Context, *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	if err := r.call("ListContainerStats"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	resp := &runtimeapi.ListContainerStatsResponse{}
	for _, c := range r.containers {
		if c.Status.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			continue
		}
		resp.Stats = append(resp.Stats, &runtimeapi.ContainerStats{
			Attributes: &runtimeapi.ContainerAttributes{Id: c.Status.Id, Metadata: c.Status.Metadata, Labels: c.Status.Labels},
			Memory:     &runtimeapi.MemoryUsage{WorkingSetBytes: &runtimeapi.UInt64Value{Value: r.memory[c.Status.Id]}},
		})
	}
	return resp, nil
}

// GetContainerEvents implements the CRI.
func (r *Runtime) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	ch := make(chan *runtimeapi.ContainerEventResponse, 256)
	r.mu.Lock()
	r.subs[ch] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.subs, ch)
		r.mu.Unlock()
	}()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case ev := <-ch:
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
	}
}

// ImageStatus implements the CRI.
func (r *Runtime) ImageStatus(_ context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	if err := r.call("ImageStatus"); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return &runtimeapi.ImageStatusResponse{Image: r.images[req.GetImage().GetImage()]}, nil
}

// ListImages implements the CRI.
func (r *Runtime) ListImages(context.Context, *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	resp := &runtimeapi.ListImagesResponse{}
	for _, ref := range slices.Sorted(maps.Keys(r.images)) {
		resp.Images = append(resp.Images, r.images[ref])
	}
	return resp, nil
}

// PullImage implements the CRI.
func (r *Runtime) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	if err := r.call("PullImage"); err != nil {
		return nil, err
	}
	ref := req.GetImage().GetImage()
	r.mu.Lock()
	r.pulls = append(r.pulls, req)
	err, allowed, blocked := r.pullErrs[ref], r.allowPulls, r.blocked[ref]
	r.mu.Unlock()
	if blocked {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if err != nil {
		return nil, err
	}
	if !allowed {
		return nil, status.Errorf(codes.NotFound, "pull %s: manifest unknown", ref)
	}
	r.mu.Lock()
	_, ok := r.images[ref]
	r.mu.Unlock()
	if !ok {
		r.AddImage(ref, nil)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return &runtimeapi.PullImageResponse{ImageRef: r.images[ref].Id}, nil
}

// ImageFsInfo implements the CRI.
func (r *Runtime) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	return &runtimeapi.ImageFsInfoResponse{}, nil
}
