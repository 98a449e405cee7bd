package cri_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/container"
	"github.com/skiff-sh/skiff/internal/container/cri"
	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/sys/cgroups"
	"github.com/skiff-sh/skiff/internal/sys/mount"
	"github.com/skiff-sh/skiff/internal/testutil"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// BenchmarkPodStart times a pod from the first CRI call to a running
// container, through the gRPC server on a unix socket: RunPodSandbox,
// CreateContainer, StartContainer. It runs SKIFF_BENCH_RUNS pods (default
// 50) one after another and reports the median and p99; pods are removed
// between runs, untimed.
func BenchmarkPodStart(b *testing.B) {
	testutil.RequireRoot(b)
	root := b.TempDir()
	var rb [6]byte
	rand.Read(rb[:])
	cg, err := cgroups.New(cgroups.Config{Parent: "skiff-bench-" + hex.EncodeToString(rb[:])})
	if err != nil {
		b.Fatal(err)
	}
	store, err := image.New(image.Config{Root: filepath.Join(root, "images"), NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	archive := filepath.Join(b.TempDir(), "toolbox.tar")
	testimage.Toolbox(b).WriteOCIArchive(b, archive, "skiff.test/toolbox:latest")
	if _, err := store.ImportPath(b.Context(), archive, nil); err != nil {
		b.Fatal(err)
	}
	rt, err := container.New(container.Config{Root: filepath.Join(root, "runtime"), Cgroups: container.HostCgroups(cg), Images: store, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := cri.New(cri.Config{Runtime: rt, Images: store})
	if err != nil {
		b.Fatal(err)
	}
	sock := filepath.Join(root, "cri.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go srv.Serve(ctx, ln)
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	client := runtimeapi.NewRuntimeServiceClient(conn)
	b.Cleanup(func() {
		for _, p := range rt.ListPodSandbox(context.Background(), nil) {
			rt.RemovePodSandbox(context.Background(), p.Id)
		}
		conn.Close()
		cancel()
		rt.Close()
		time.Sleep(200 * time.Millisecond)
		mount.UnmountAll(root)
		if c, err := cg.Open(""); err == nil {
			c.Remove(context.Background())
		}
	})
	runs := 50
	if n, err := strconv.Atoi(os.Getenv("SKIFF_BENCH_RUNS")); err == nil && n > 0 {
		runs = n
	}
	pod := func(i int) time.Duration {
		name := fmt.Sprintf("bench-%d", i)
		podCfg := &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name},
			Hostname: name, LogDirectory: filepath.Join(root, "logs", name), Linux: &runtimeapi.LinuxPodSandboxConfig{},
		}
		ctrCfg := &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Image:    &runtimeapi.ImageSpec{Image: "skiff.test/toolbox:latest"},
			Args:     []string{"sleep", "3600"}, LogPath: "app.log", Linux: &runtimeapi.LinuxContainerConfig{},
		}
		start := time.Now()
		p, err := client.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: podCfg})
		if err != nil {
			b.Fatal(err)
		}
		c, err := client.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: p.PodSandboxId, Config: ctrCfg, SandboxConfig: podCfg})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := client.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
			b.Fatal(err)
		}
		d := time.Since(start)
		if _, err := client.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.PodSandboxId}); err != nil {
			b.Fatal(err)
		}
		if _, err := client.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.PodSandboxId}); err != nil {
			b.Fatal(err)
		}
		return d
	}
	pod(-1)
	var times []time.Duration
	for i := 0; i < runs; i++ {
		times = append(times, pod(i))
	}
	slices.Sort(times)
	med, p99 := times[len(times)/2], times[int(float64(len(times)-1)*0.99)]
	b.Logf("pod sandbox + one container, CRI call to running, %d runs: median %.2f ms, p99 %.2f ms", runs, float64(med.Microseconds())/1000, float64(p99.Microseconds())/1000)
	b.ReportMetric(float64(med.Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
}
