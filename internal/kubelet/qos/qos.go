// Package qos computes a pod's quality-of-service class and maps its
// requests and limits to cgroups and to CRI container resources the way
// the kubelet does.
//
// # The cgroup hierarchy
//
//	kubepods                      cpu shares and memory max = allocatable
//	├── pod<uid>                  Guaranteed pods
//	│   └── <container>           (made by the runtime)
//	├── burstable                 cpu shares = Σ requests of its pods
//	│   └── pod<uid>
//	└── besteffort                cpu shares = 2
//	    └── pod<uid>
//
// A pod cgroup gets cpu shares from its CPU requests, a CFS quota when
// every container has a CPU limit, and a memory max when every container
// has a memory limit (Guaranteed pods always have both). Containers get
// shares, quota and memory limit from their own requests and limits, and
// an oom_score_adj by class: -997 Guaranteed, 1000 BestEffort, and for
// Burstable 1000 - 1000*request/capacity kept within [3, 999].
//
// Every function here is pure: paths and values only, nothing touches
// the host.
package qos

import (
	"path"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/sys/cgroups"
)

// Cgroup names of the hierarchy.
const (
	Root       = "kubepods"
	Burstable  = "kubepods/burstable"
	BestEffort = "kubepods/besteffort"
)

// OOM score adjustments, as upstream.
const (
	GuaranteedOOMScoreAdj = -997
	BestEffortOOMScoreAdj = 1000
)

// computeResources are the resources that decide the class.
func isCompute(name corev1.ResourceName) bool {
	return name == corev1.ResourceCPU || name == corev1.ResourceMemory
}

// Class returns the pod's QoS class. A class already in the pod's status
// wins: it is fixed once set. Otherwise: BestEffort when no container
// requests or limits CPU or memory; Guaranteed when every container
// limits both and the requests equal the limits; Burstable otherwise.
func Class(pod *corev1.Pod) corev1.PodQOSClass {
	if pod.Status.QOSClass != "" {
		return pod.Status.QOSClass
	}
	return Compute(pod)
}

// Compute is Class ignoring the pod's status.
func Compute(pod *corev1.Pod) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	add := func(list corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
		sum := list[name]
		sum.Add(q)
		list[name] = sum
	}
	visit := func(c *corev1.Container) {
		for name, q := range c.Resources.Requests {
			if isCompute(name) && q.Sign() > 0 {
				add(requests, name, q)
			}
		}
		found := 0
		for name, q := range c.Resources.Limits {
			if isCompute(name) && q.Sign() > 0 {
				add(limits, name, q)
				found++
			}
		}
		if found < 2 {
			guaranteed = false
		}
	}
	for i := range pod.Spec.InitContainers {
		visit(&pod.Spec.InitContainers[i])
	}
	for i := range pod.Spec.Containers {
		visit(&pod.Spec.Containers[i])
	}
	if pl := pod.Spec.Resources; pl != nil {
		// Pod-level resources override the containers' sums.
		for name, q := range pl.Requests {
			if isCompute(name) && q.Sign() > 0 {
				requests[name] = q.DeepCopy()
			}
		}
		found := 0
		for name, q := range pl.Limits {
			if isCompute(name) && q.Sign() > 0 {
				limits[name] = q.DeepCopy()
				found++
			}
		}
		if found == 2 {
			guaranteed = true
		}
	}
	if len(requests) == 0 && len(limits) == 0 {
		return corev1.PodQOSBestEffort
	}
	if !guaranteed || len(requests) != len(limits) {
		return corev1.PodQOSBurstable
	}
	for name, req := range requests {
		if lim, ok := limits[name]; !ok || lim.Cmp(req) != 0 {
			return corev1.PodQOSBurstable
		}
	}
	return corev1.PodQOSGuaranteed
}

// ClassCgroup is the cgroup of a class's pods.
func ClassCgroup(class corev1.PodQOSClass) string {
	switch class {
	case corev1.PodQOSGuaranteed:
		return Root
	case corev1.PodQOSBestEffort:
		return BestEffort
	default:
		return Burstable
	}
}

// PodCgroup is the pod's cgroup: <class cgroup>/pod<uid>.
func PodCgroup(pod *corev1.Pod) string {
	return path.Join(ClassCgroup(Class(pod)), "pod"+string(pod.UID))
}

// PodResources is what the pod cgroup is limited to.
func PodResources(pod *corev1.Pod) *cgroups.Resources {
	class := Class(pod)
	if class == corev1.PodQOSBestEffort {
		return &cgroups.Resources{CPU: &cgroups.CPU{Shares: ptr(uint64(cgroups.MinShares))}}
	}
	reqs := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	lims := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
	cpuLimited, memLimited := true, true
	for _, c := range allContainers(pod) {
		if c.Resources.Limits.Cpu().IsZero() {
			cpuLimited = false
		}
		if c.Resources.Limits.Memory().IsZero() {
			memLimited = false
		}
	}
	if pl := pod.Spec.Resources; pl != nil {
		cpuLimited = cpuLimited || !pl.Limits.Cpu().IsZero()
		memLimited = memLimited || !pl.Limits.Memory().IsZero()
	}
	cpuLimit, memLimit := lims[corev1.ResourceCPU], lims[corev1.ResourceMemory]
	cpuRequest := reqs[corev1.ResourceCPU]
	r := &cgroups.Resources{CPU: &cgroups.CPU{Shares: ptr(cgroups.MilliCPUToShares(cpuRequest.MilliValue()))}}
	if class == corev1.PodQOSGuaranteed || cpuLimited {
		if q := cgroups.MilliCPUToQuota(cpuLimit.MilliValue(), cgroups.QuotaPeriod); q > 0 {
			r.CPU.Quota, r.CPU.Period = ptr(q), ptr(uint64(cgroups.QuotaPeriod))
		}
	}
	if class == corev1.PodQOSGuaranteed || memLimited {
		if m := memLimit.Value(); m > 0 {
			r.Memory = &cgroups.Memory{Max: ptr(m)}
		}
	}
	return r
}

// ClassResources is what the burstable and besteffort cgroups are set to
// for the given active pods: burstable gets the shares of the summed CPU
// requests of its pods, besteffort the least shares.
func ClassResources(pods []*corev1.Pod) (burstable, besteffort *cgroups.Resources) {
	var milli int64
	for _, p := range pods {
		if Class(p) == corev1.PodQOSBurstable {
			req := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})[corev1.ResourceCPU]
			milli += req.MilliValue()
		}
	}
	burstable = &cgroups.Resources{CPU: &cgroups.CPU{Shares: ptr(cgroups.MilliCPUToShares(milli))}}
	besteffort = &cgroups.Resources{CPU: &cgroups.CPU{Shares: ptr(uint64(cgroups.MinShares))}}
	return burstable, besteffort
}

// NodeResources is what the kubepods cgroup is limited to: the node's
// allocatable CPU (as shares) and memory, given capacity less reserved.
func NodeResources(allocatable corev1.ResourceList) *cgroups.Resources {
	r := &cgroups.Resources{CPU: &cgroups.CPU{Shares: ptr(cgroups.MilliCPUToShares(allocatable.Cpu().MilliValue()))}}
	if m := allocatable.Memory().Value(); m > 0 {
		r.Memory = &cgroups.Memory{Max: ptr(m)}
	}
	return r
}

// ContainerResources maps container c of pod to CRI resources:
// cpu_shares from the CPU request (or the limit when there is no
// request), a CFS quota over the kubelet's 100 ms period from the CPU
// limit (0: none), the memory limit, and the oom_score_adj of the pod's
// class. memoryCapacity is the node's memory in bytes.
func ContainerResources(pod *corev1.Pod, c *corev1.Container, memoryCapacity int64) *runtimeapi.LinuxContainerResources {
	req, lim := c.Resources.Requests.Cpu(), c.Resources.Limits.Cpu()
	shares := cgroups.MilliCPUToShares(req.MilliValue())
	if req.IsZero() && !lim.IsZero() {
		shares = cgroups.MilliCPUToShares(lim.MilliValue())
	}
	r := &runtimeapi.LinuxContainerResources{
		CpuShares:   int64(shares),
		CpuPeriod:   cgroups.QuotaPeriod,
		CpuQuota:    cgroups.MilliCPUToQuota(lim.MilliValue(), cgroups.QuotaPeriod),
		OomScoreAdj: OOMScoreAdj(pod, c, memoryCapacity),
	}
	if m := c.Resources.Limits.Memory().Value(); m > 0 {
		r.MemoryLimitInBytes = m
	}
	return r
}

// OOMScoreAdj is the oom_score_adj of container c of pod.
func OOMScoreAdj(pod *corev1.Pod, c *corev1.Container, memoryCapacity int64) int64 {
	switch Class(pod) {
	case corev1.PodQOSGuaranteed:
		return GuaranteedOOMScoreAdj
	case corev1.PodQOSBestEffort:
		return BestEffortOOMScoreAdj
	}
	if memoryCapacity <= 0 {
		return BestEffortOOMScoreAdj - 1
	}
	request := c.Resources.Requests.Memory().Value()
	if isSidecar(pod, c) {
		// A sidecar must not be killed before the containers it serves:
		// it gets the lowest score among the pod's app containers.
		for i := range pod.Spec.Containers {
			request = max(request, pod.Spec.Containers[i].Resources.Requests.Memory().Value())
		}
	}
	adj := BestEffortOOMScoreAdj - (1000*request)/memoryCapacity
	// Burstable pods must score above any Guaranteed one and below any
	// BestEffort one.
	return min(max(adj, 1000+GuaranteedOOMScoreAdj), BestEffortOOMScoreAdj-1)
}

func isSidecar(pod *corev1.Pod, c *corev1.Container) bool {
	if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		return false
	}
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == c.Name {
			return true
		}
	}
	return false
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

func ptr[T any](v T) *T { return &v }
