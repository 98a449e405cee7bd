package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// peer starts and stops pods through the CRI alone: what the kubelet asks
// of the runtime for one of the benchmark's pods (a sandbox and one
// container, BestEffort, with a termination message file), without the
// API, the pod network or volumes.
type peer struct {
	conn   *grpc.ClientConn
	rtc    runtimeapi.RuntimeServiceClient
	image  string
	logDir string // sandboxes' log directories go under it

	// mu guards ids.
	mu  sync.Mutex
	ids []string // every sandbox made, for the cleanup
}

// peerPod is one pod the peer started.
type peerPod struct {
	sandbox, container string
	logPath            string
	start              time.Duration    // RunPodSandbox + CreateContainer + StartContainer
	steps              [3]time.Duration // each of the three
	stop               time.Duration    // StopContainer + StopPodSandbox + RemovePodSandbox
}

// startAll starts n pods at once, each running command, and returns them
// with how long each took.
func (p *peer) startAll(ctx context.Context, prefix string, n int, command []string) ([]peerPod, error) {
	pods := make([]peerPod, n)
	errs := make([]error, n)
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			pods[i], errs[i] = p.start(ctx, fmt.Sprintf("%s-%03d", prefix, i), command)
		}()
	}
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return pods, err
		}
	}
	return pods, nil
}

func (p *peer) start(ctx context.Context, name string, command []string) (peerPod, error) {
	sb := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench-peer", Uid: name},
		Hostname:     name,
		LogDirectory: filepath.Join(p.logDir, name),
		Linux:        &runtimeapi.LinuxPodSandboxConfig{},
	}
	msg := filepath.Join(p.logDir, name+".msg")
	if err := os.MkdirAll(sb.LogDirectory, 0o755); err != nil {
		return peerPod{}, err
	}
	if err := os.WriteFile(msg, nil, 0o666); err != nil {
		return peerPod{}, err
	}
	ctr := &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
		Image:    &runtimeapi.ImageSpec{Image: p.image},
		Command:  command,
		LogPath:  "app/0.log",
		Mounts:   []*runtimeapi.Mount{{ContainerPath: "/dev/termination-log", HostPath: msg}},
		Linux: &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
			CpuShares: 2, CpuPeriod: 100000, OomScoreAdj: 1000,
		}},
	}
	var pp peerPod
	start := time.Now()
	s, err := p.rtc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sb})
	if err != nil {
		return pp, fmt.Errorf("peer %s: run sandbox: %w", name, err)
	}
	pp.steps[0] = time.Since(start)
	p.mu.Lock()
	p.ids = append(p.ids, s.PodSandboxId)
	p.mu.Unlock()
	c, err := p.rtc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: s.PodSandboxId, Config: ctr, SandboxConfig: sb})
	if err != nil {
		return pp, fmt.Errorf("peer %s: create container: %w", name, err)
	}
	pp.steps[1] = time.Since(start) - pp.steps[0]
	if _, err := p.rtc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		return pp, fmt.Errorf("peer %s: start container: %w", name, err)
	}
	pp.start = time.Since(start)
	pp.steps[2] = pp.start - pp.steps[0] - pp.steps[1]
	pp.sandbox, pp.container = s.PodSandboxId, c.ContainerId
	pp.logPath = filepath.Join(sb.LogDirectory, ctr.LogPath)
	return pp, nil
}

// stopAll stops and removes pods at once, each container with grace
// seconds between its stop signal and SIGKILL, and records how long each
// took.
func (p *peer) stopAll(ctx context.Context, pods []peerPod, grace int64) error {
	errs := make([]error, len(pods))
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range pods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			pp := &pods[i]
			start := time.Now()
			if _, err := p.rtc.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: pp.container, Timeout: grace}); err != nil {
				errs[i] = fmt.Errorf("peer: stop container: %w", err)
				return
			}
			if _, err := p.rtc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: pp.sandbox}); err != nil {
				errs[i] = fmt.Errorf("peer: stop sandbox: %w", err)
				return
			}
			if _, err := p.rtc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: pp.sandbox}); err != nil {
				errs[i] = fmt.Errorf("peer: remove sandbox: %w", err)
				return
			}
			pp.stop = time.Since(start)
		}()
	}
	close(gate)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// sandboxIDs returns every sandbox the peer made.
func (p *peer) sandboxIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ids...)
}
