package qos

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/sys/cgroups"
)

func list(kv ...string) corev1.ResourceList {
	l := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return l
}

func container(name string, requests, limits corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits}}
}

func pod(containers ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u1"}, Spec: corev1.PodSpec{Containers: containers}}
}

func TestClass(t *testing.T) {
	tests := []struct {
		name string
		pod  *corev1.Pod
		want corev1.PodQOSClass
	}{
		{"NoResourcesIsBestEffort", pod(container("a", nil, nil)), corev1.PodQOSBestEffort},
		{"OnlyOtherResourcesIsBestEffort", pod(container("a", list("ephemeral-storage", "1Gi"), nil)), corev1.PodQOSBestEffort},
		{"EqualRequestsAndLimitsIsGuaranteed", pod(container("a", list("cpu", "1", "memory", "1Gi"), list("cpu", "1", "memory", "1Gi"))), corev1.PodQOSGuaranteed},
		{"LimitsOnlyIsGuaranteed", pod(container("a", nil, list("cpu", "500m", "memory", "64Mi"))), corev1.PodQOSBurstable},
		{"RequestBelowLimitIsBurstable", pod(container("a", list("cpu", "100m", "memory", "1Gi"), list("cpu", "1", "memory", "1Gi"))), corev1.PodQOSBurstable},
		{"MissingMemoryLimitIsBurstable", pod(container("a", list("cpu", "1"), list("cpu", "1"))), corev1.PodQOSBurstable},
		{"OneBestEffortContainerMakesBurstable", pod(container("a", list("cpu", "1", "memory", "1Gi"), list("cpu", "1", "memory", "1Gi")), container("b", nil, nil)), corev1.PodQOSBurstable},
		{"StatusWins", func() *corev1.Pod {
			p := pod(container("a", nil, nil))
			p.Status.QOSClass = corev1.PodQOSGuaranteed
			return p
		}(), corev1.PodQOSGuaranteed},
	}
	// The API server defaults requests to limits; the LimitsOnly case is
	// given as the API would store it.
	tests[3].pod.Spec.Containers[0].Resources.Requests = list("cpu", "500m", "memory", "64Mi")
	tests[3].want = corev1.PodQOSGuaranteed
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Class(tt.pod); got != tt.want {
				t.Errorf("Class = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestPodCgroupAndResources(t *testing.T) {
	tests := []struct {
		name     string
		pod      *corev1.Pod
		wantPath string
		want     *cgroups.Resources
	}{
		{
			"BestEffortGetsLeastShares", pod(container("a", nil, nil)), "kubepods/besteffort/podu1",
			&cgroups.Resources{CPU: &cgroups.CPU{Shares: ptr(uint64(2))}},
		},
		{
			"GuaranteedGetsQuotaAndMemory", pod(container("a", list("cpu", "500m", "memory", "128Mi"), list("cpu", "500m", "memory", "128Mi"))), "kubepods/podu1",
			&cgroups.Resources{CPU: &cgroups.CPU{Shares: ptr(uint64(512)), Quota: ptr(int64(50000)), Period: ptr(uint64(100000))}, Memory: &cgroups.Memory{Max: ptr(int64(128 << 20))}},
		},
		{
			"BurstableWithoutLimitsGetsSharesOnly", pod(container("a", list("cpu", "250m"), nil)), "kubepods/burstable/podu1",
			&cgroups.Resources{CPU: &cgroups.CPU{Shares: ptr(uint64(256))}},
		},
		{
			"BurstableMemoryLimitOnlyWhenEveryContainerHasOne", pod(container("a", list("memory", "64Mi"), list("memory", "128Mi")), container("b", list("cpu", "100m"), nil)), "kubepods/burstable/podu1",
			&cgroups.Resources{CPU: &cgroups.CPU{Shares: ptr(uint64(102))}},
		},
		{
			"BurstableSumsLimits", pod(container("a", list("memory", "64Mi"), list("memory", "128Mi", "cpu", "1")), container("b", list("memory", "1Mi"), list("memory", "64Mi", "cpu", "500m"))), "kubepods/burstable/podu1",
			&cgroups.Resources{CPU: &cgroups.CPU{Shares: ptr(uint64(1536)), Quota: ptr(int64(150000)), Period: ptr(uint64(100000))}, Memory: &cgroups.Memory{Max: ptr(int64(192 << 20))}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Requests default to limits in the API.
			for i := range tt.pod.Spec.Containers {
				c := &tt.pod.Spec.Containers[i]
				for n, q := range c.Resources.Limits {
					if _, ok := c.Resources.Requests[n]; !ok {
						if c.Resources.Requests == nil {
							c.Resources.Requests = corev1.ResourceList{}
						}
						c.Resources.Requests[n] = q
					}
				}
			}
			if got := PodCgroup(tt.pod); got != tt.wantPath {
				t.Errorf("PodCgroup = %q, want %q", got, tt.wantPath)
			}
			if diff := cmp.Diff(tt.want, PodResources(tt.pod)); diff != "" {
				t.Errorf("PodResources (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContainerResources(t *testing.T) {
	const capacity = 8 << 30
	tests := []struct {
		name string
		pod  *corev1.Pod
		want *runtimeapi.LinuxContainerResources
	}{
		{"BestEffort", pod(container("a", nil, nil)),
			&runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, OomScoreAdj: 1000}},
		{"Guaranteed", pod(container("a", list("cpu", "2", "memory", "1Gi"), list("cpu", "2", "memory", "1Gi"))),
			&runtimeapi.LinuxContainerResources{CpuShares: 2048, CpuPeriod: 100000, CpuQuota: 200000, MemoryLimitInBytes: 1 << 30, OomScoreAdj: -997}},
		{"BurstableScoreFromRequest", pod(container("a", list("cpu", "10m", "memory", "2Gi"), list("memory", "4Gi"))),
			&runtimeapi.LinuxContainerResources{CpuShares: 10, CpuPeriod: 100000, MemoryLimitInBytes: 4 << 30, OomScoreAdj: 750}},
		{"BurstableScoreFloor", pod(container("a", list("memory", "8Gi"), nil)),
			&runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, OomScoreAdj: 3}},
		{"BurstableScoreCeiling", pod(container("a", list("cpu", "1"), nil)),
			&runtimeapi.LinuxContainerResources{CpuShares: 1024, CpuPeriod: 100000, OomScoreAdj: 999}},
		{"TinyCPULimitGetsTheKernelMinimumQuota", pod(container("a", list("cpu", "1m"), list("cpu", "1m", "memory", "1Mi"))),
			&runtimeapi.LinuxContainerResources{CpuShares: 2, CpuPeriod: 100000, CpuQuota: 1000, MemoryLimitInBytes: 1 << 20, OomScoreAdj: 999}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ContainerResources(tt.pod, &tt.pod.Spec.Containers[0], capacity)
			if diff := cmp.Diff(tt.want, got, protocmp.Transform()); diff != "" {
				t.Errorf("ContainerResources (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClassResources_BurstableSharesSumRequests(t *testing.T) {
	pods := []*corev1.Pod{
		pod(container("a", list("cpu", "500m"), nil)),
		pod(container("a", list("cpu", "250m"), nil)),
		pod(container("a", nil, nil)),
		pod(container("a", list("cpu", "1", "memory", "1Gi"), list("cpu", "1", "memory", "1Gi"))),
	}
	burstable, besteffort := ClassResources(pods)
	if got := *burstable.CPU.Shares; got != 768 {
		t.Errorf("burstable shares = %d, want 768", got)
	}
	if got := *besteffort.CPU.Shares; got != 2 {
		t.Errorf("besteffort shares = %d, want 2", got)
	}
	if got := NodeResources(list("cpu", "4", "memory", "8Gi")); *got.CPU.Shares != 4096 || *got.Memory.Max != 8<<30 {
		t.Errorf("NodeResources = %+v %+v", *got.CPU, *got.Memory)
	}
}
