package kubelet_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// benchRuns is how many pods each side of a benchmark starts
// (SKIFF_BENCH_RUNS, default 50).
func benchRuns() int {
	if n, err := strconv.Atoi(os.Getenv("SKIFF_BENCH_RUNS")); err == nil && n > 0 {
		return n
	}
	return 50
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// BenchmarkPodStart compares, on the built-in runtime, a pod from its
// creation in the API to the kubelet reporting it Running (the API server,
// the kubelet's watch, sandbox, network, container and the status write)
// with the same container started through the CRI alone (RunPodSandbox,
// CreateContainer, StartContainer): the peer. Each side starts
// SKIFF_BENCH_RUNS pods one after another (default 50); pods are removed
// between runs, untimed. It reports medians, p99s and their ratio.
func BenchmarkPodStart(b *testing.B) {
	h := newRealHarness(b)
	ctx := context.Background()
	runs := benchRuns()
	for range b.N {
		// The peer: the runtime alone, through the same CRI socket.
		var peer []time.Duration
		for i := range runs {
			name := fmt.Sprintf("peer-%d", i)
			sb := &runtimeapi.PodSandboxConfig{
				Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "bench", Uid: name},
				Hostname:     name,
				LogDirectory: filepath.Join(h.logsDir, "peer", name),
				Linux:        &runtimeapi.LinuxPodSandboxConfig{},
			}
			// The container the kubelet makes for the same pod: BestEffort
			// resources and a termination message file.
			msg := filepath.Join(h.logsDir, "peer", name+".msg")
			os.MkdirAll(filepath.Dir(msg), 0o755)
			os.WriteFile(msg, nil, 0o666)
			ctr := &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
				Image:    &runtimeapi.ImageSpec{Image: toolboxImage},
				Command:  []string{"sleep", "infinity"}, LogPath: "app/0.log",
				Mounts: []*runtimeapi.Mount{{ContainerPath: "/dev/termination-log", HostPath: msg}},
				Linux: &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{
					CpuShares: 2, CpuPeriod: 100000, OomScoreAdj: 1000,
				}},
			}
			start := time.Now()
			s, err := h.rtc.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: sb})
			if err != nil {
				b.Fatal(err)
			}
			c, err := h.rtc.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: s.PodSandboxId, Config: ctr, SandboxConfig: sb})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := h.rtc.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
				b.Fatal(err)
			}
			peer = append(peer, time.Since(start))
			h.rtc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.PodSandboxId})
			h.rtc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.PodSandboxId})
		}

		// The kubelet: API create to status Running.
		var kube []time.Duration
		for i := range runs {
			name := fmt.Sprintf("bench-%d", i)
			pod := toolboxPod(name, "sleep", "infinity")
			pod.Spec.TerminationGracePeriodSeconds = new(int64(0))
			pod.Namespace, pod.Spec.NodeName = "default", "node-1"
			w, err := h.client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if _, err := h.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
			running := false
			for ev := range w.ResultChan() {
				if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type == watch.Modified && p.Status.Phase == corev1.PodRunning {
					running = true
					break
				}
			}
			kube = append(kube, time.Since(start))
			w.Stop()
			if !running {
				b.Fatalf("pod %s: watch ended before Running", name)
			}
			if err := h.client.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil {
				b.Fatal(err)
			}
		}
		eventually(b, "bench pods removed", func() (bool, string) {
			return len(h.rt.ListPodSandbox(ctx, nil)) == 0, ""
		})
		pm, p99 := percentile(peer, 0.5), percentile(peer, 0.99)
		km, k99 := percentile(kube, 0.5), percentile(kube, 0.99)
		b.ReportMetric(float64(km.Microseconds())/1000, "kubelet-median-ms")
		b.ReportMetric(float64(k99.Microseconds())/1000, "kubelet-p99-ms")
		b.ReportMetric(float64(pm.Microseconds())/1000, "cri-median-ms")
		b.ReportMetric(float64(p99.Microseconds())/1000, "cri-p99-ms")
		b.ReportMetric(float64(km)/float64(pm), "median-ratio")
		b.Logf("%d pods each: API create → Running median %v p99 %v; CRI sandbox+create+start median %v p99 %v; ratio %.2f",
			runs, km.Round(time.Microsecond), k99.Round(time.Microsecond), pm.Round(time.Microsecond), p99.Round(time.Microsecond), float64(km)/float64(pm))
	}
}

// BenchmarkPodMemory reports the Go heap of the test process, which holds
// the API server, the runtime and the kubelet, with the kubelet idle and
// with SKIFF_BENCH_RUNS pods (default 50) running: the difference is
// what those pods cost in this process, API server included.
func BenchmarkPodMemory(b *testing.B) {
	h := newRealHarness(b)
	ctx := context.Background()
	runs := benchRuns()
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	for range b.N {
		idle := heap()
		for i := range runs {
			pod := toolboxPod(fmt.Sprintf("mem-%d", i), "sleep", "infinity")
			pod.Spec.TerminationGracePeriodSeconds = new(int64(0))
			h.createPod(pod)
		}
		eventually(b, "all pods running", func() (bool, string) {
			l, err := h.client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err.Error()
			}
			n := 0
			for _, p := range l.Items {
				if p.Status.Phase == corev1.PodRunning {
					n++
				}
			}
			return n == runs, fmt.Sprintf("%d running", n)
		})
		busy := heap()
		b.ReportMetric(float64(idle)/(1<<20), "idle-heap-MiB")
		b.ReportMetric(float64(busy)/(1<<20), "busy-heap-MiB")
		b.ReportMetric(float64(int64(busy)-int64(idle))/float64(runs)/(1<<10), "KiB/pod")
		b.Logf("heap in use: idle %.1f MiB, with %d pods %.1f MiB (%.0f KiB per pod, API server and runtime included)",
			float64(idle)/(1<<20), runs, float64(busy)/(1<<20), float64(int64(busy)-int64(idle))/float64(runs)/(1<<10))
		for i := range runs {
			h.client.CoreV1().Pods("default").Delete(ctx, fmt.Sprintf("mem-%d", i), metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))})
		}
		eventually(b, "pods removed", func() (bool, string) {
			return len(h.rt.ListPodSandbox(ctx, nil)) == 0, ""
		})
	}
}
