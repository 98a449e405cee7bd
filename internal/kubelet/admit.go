package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/kubelet/qos"
	"github.com/skiff-sh/skiff/internal/sys/cgroups"
)

// admit decides whether a new pod may run here, against the pods already
// admitted: the node's pod count, its node selector and required
// affinity, and allocatable resources. It returns upstream's reason and
// message when the pod is rejected, and records the pod as admitted when
// it is not.
func (k *Kubelet) admit(pod *corev1.Pod) (reason, message string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.admitted[pod.UID]; ok {
		return "", ""
	}
	if used := len(k.admitted); used+1 > k.cfg.MaxPods {
		return "OutOfpods", fmt.Sprintf("Node didn't have enough resource: pods, requested: 1, used: %d, capacity: %d", used, k.cfg.MaxPods)
	}
	if k.node != nil {
		if ok, _ := nodeaffinity.GetRequiredNodeAffinity(pod).Match(k.node); !ok {
			return "NodeAffinity", "Predicate NodeAffinity failed"
		}
	}
	requested := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	used := corev1.ResourceList{}
	for _, p := range k.admitted {
		for name, q := range resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{}) {
			sum := used[name]
			sum.Add(q)
			used[name] = sum
		}
	}
	names := make([]string, 0, len(requested))
	for name := range requested {
		names = append(names, string(name))
	}
	sort.Strings(names)
	for _, n := range names {
		name := corev1.ResourceName(n)
		req := requested[name]
		if req.Sign() <= 0 || name == corev1.ResourcePods {
			continue
		}
		alloc, ok := k.allocatable[name]
		u := used[name]
		total := u.DeepCopy()
		total.Add(req)
		if ok && total.Cmp(alloc) <= 0 {
			continue
		}
		value := func(q interface {
			MilliValue() int64
			Value() int64
		}) int64 {
			if name == corev1.ResourceCPU {
				return q.MilliValue()
			}
			return q.Value()
		}
		return "OutOf" + string(name), fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d",
			name, value(&req), value(&u), value(&alloc))
	}
	k.admitted[pod.UID] = pod
	return "", ""
}

// markAdmitted records a pod that already runs (found in the runtime).
func (k *Kubelet) markAdmitted(pod *corev1.Pod) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.admitted[pod.UID] = pod
}

// unadmit frees a pod's share of the node.
func (k *Kubelet) unadmit(uid types.UID) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.admitted, uid)
}

// adoptRunning marks the pods the runtime already runs as admitted, so
// that they count before any new pod is admitted after a restart.
func (k *Kubelet) adoptRunning(ctx context.Context) {
	resp, err := k.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, sb := range resp.Items {
		uid := types.UID(sb.GetMetadata().GetUid())
		if p, ok := k.pods[uid]; ok && !isTerminal(p.Status.Phase) && sb.State == runtimeapi.PodSandboxState_SANDBOX_READY {
			k.admitted[uid] = p
		}
	}
}

// ensureQoSCgroups keeps kubepods and the QoS class cgroups in line with
// the node's allocatable and the admitted pods. Unchanged values are not
// written again.
func (k *Kubelet) ensureQoSCgroups() error {
	k.mu.Lock()
	capacity := k.capacity.DeepCopy()
	pods := make([]*corev1.Pod, 0, len(k.admitted))
	for _, p := range k.admitted {
		pods = append(pods, p)
	}
	k.mu.Unlock()
	// The pods' cgroup may use all but what is reserved for the system;
	// the eviction threshold is kept for pods, not taken from them.
	alloc := corev1.ResourceList{}
	for name, q := range capacity {
		a := q.DeepCopy()
		if r, ok := k.cfg.Reserved[name]; ok {
			a.Sub(r)
		}
		alloc[name] = a
	}
	burstable, besteffort := qos.ClassResources(pods)
	for _, c := range []struct {
		path string
		res  *cgroups.Resources
	}{{qos.Root, qos.NodeResources(alloc)}, {qos.Burstable, burstable}, {qos.BestEffort, besteffort}} {
		data, _ := json.Marshal(c.res)
		key := string(data)
		k.qosMu.Lock()
		same := k.qosApplied[c.path] == key
		k.qosMu.Unlock()
		if same {
			continue
		}
		if err := k.cfg.Cgroups.Ensure(c.path, c.res); err != nil {
			return fmt.Errorf("cgroup %s: %w", c.path, err)
		}
		k.qosMu.Lock()
		k.qosApplied[c.path] = key
		k.qosMu.Unlock()
	}
	return nil
}
