package framework

import (
	"maps"
	"strings"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// Default requests counted for scoring when a container sets none, as
// upstream does, so that a node full of best-effort pods does not look
// empty to LeastAllocated and BalancedAllocation. Filtering never uses
// them.
const (
	DefaultMilliCPURequest int64 = 100               // 0.1 core
	DefaultMemoryRequest   int64 = 200 * 1024 * 1024 // 200 MiB
)

// Resource is an amount of node resources in the units the scheduler
// compares: millicores, bytes and counts. The zero value is nothing.
type Resource struct {
	MilliCPU         int64
	Memory           int64
	EphemeralStorage int64
	// AllowedPodNumber is the node's pod capacity (allocatable "pods");
	// unused in requests.
	AllowedPodNumber int64
	// Scalar holds extended resources (example.com/gpu), hugepages-* and
	// other named resources. Nil when there are none.
	Scalar map[v1.ResourceName]int64
}

// NewResource converts a resource list. Unknown unprefixed names
// ("storage") are ignored, as upstream does.
func NewResource(rl v1.ResourceList) Resource {
	var r Resource
	for name, q := range rl {
		r.addQuantity(name, q)
	}
	return r
}

func (r *Resource) addQuantity(name v1.ResourceName, q resource.Quantity) {
	switch name {
	case v1.ResourceCPU:
		r.MilliCPU += q.MilliValue()
	case v1.ResourceMemory:
		r.Memory += q.Value()
	case v1.ResourceEphemeralStorage:
		r.EphemeralStorage += q.Value()
	case v1.ResourcePods:
		r.AllowedPodNumber += q.Value()
	default:
		if IsScalarResourceName(name) {
			if r.Scalar == nil {
				r.Scalar = map[v1.ResourceName]int64{}
			}
			r.Scalar[name] += q.Value()
		}
	}
}

// IsScalarResourceName reports whether name is counted in Resource.Scalar:
// extended resources (a domain-prefixed name outside kubernetes.io, not
// requests.*), hugepages-*, attachable-volumes-* and kubernetes.io/
// prefixed native resources.
func IsScalarResourceName(name v1.ResourceName) bool {
	s := string(name)
	switch {
	case strings.HasPrefix(s, v1.ResourceHugePagesPrefix), strings.HasPrefix(s, v1.ResourceAttachableVolumesPrefix):
		return true
	case strings.HasPrefix(s, v1.DefaultResourceRequestsPrefix):
		return false
	}
	return strings.Contains(s, "/")
}

// Add adds o to r.
func (r *Resource) Add(o *Resource) {
	r.MilliCPU += o.MilliCPU
	r.Memory += o.Memory
	r.EphemeralStorage += o.EphemeralStorage
	r.AllowedPodNumber += o.AllowedPodNumber
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[v1.ResourceName]int64{}
		}
		r.Scalar[name] += v
	}
}

// Sub subtracts o from r.
func (r *Resource) Sub(o *Resource) {
	r.MilliCPU -= o.MilliCPU
	r.Memory -= o.Memory
	r.EphemeralStorage -= o.EphemeralStorage
	r.AllowedPodNumber -= o.AllowedPodNumber
	for name, v := range o.Scalar {
		if r.Scalar == nil {
			r.Scalar = map[v1.ResourceName]int64{}
		}
		r.Scalar[name] -= v
	}
}

// Clone returns a deep copy.
func (r Resource) Clone() Resource {
	r.Scalar = maps.Clone(r.Scalar)
	return r
}

// Get returns the amount of one resource (0 when absent).
func (r *Resource) Get(name v1.ResourceName) int64 {
	switch name {
	case v1.ResourceCPU:
		return r.MilliCPU
	case v1.ResourceMemory:
		return r.Memory
	case v1.ResourceEphemeralStorage:
		return r.EphemeralStorage
	case v1.ResourcePods:
		return r.AllowedPodNumber
	}
	return r.Scalar[name]
}

// IsZero reports whether r asks for nothing.
func (r *Resource) IsZero() bool {
	if r.MilliCPU != 0 || r.Memory != 0 || r.EphemeralStorage != 0 || r.AllowedPodNumber != 0 {
		return false
	}
	for _, v := range r.Scalar {
		if v != 0 {
			return false
		}
	}
	return true
}

// PodRequests computes a pod's effective requests the way the kubelet
// admits it: the larger of the containers' sum and each init container
// (sidecars counted as running), plus the pod overhead; pod-level
// resources win where set.
func PodRequests(pod *v1.Pod) Resource {
	return NewResource(resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{}))
}

// podNonZeroRequests is podRequests with the default cpu and memory
// filled in for containers that set none; only cpu and memory are kept.
func podNonZeroRequests(pod *v1.Pod) Resource {
	rl := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{
		NonMissingContainerRequests: v1.ResourceList{
			v1.ResourceCPU:    *resource.NewMilliQuantity(DefaultMilliCPURequest, resource.DecimalSI),
			v1.ResourceMemory: *resource.NewQuantity(DefaultMemoryRequest, resource.BinarySI),
		},
	})
	r := Resource{}
	if q, ok := rl[v1.ResourceCPU]; ok {
		r.MilliCPU = q.MilliValue()
	}
	if q, ok := rl[v1.ResourceMemory]; ok {
		r.Memory = q.Value()
	}
	return r
}
