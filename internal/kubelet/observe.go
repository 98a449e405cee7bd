package kubelet

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels and annotations the kubelet puts on sandboxes and containers,
// upstream's names.
const (
	labelPodName       = "io.kubernetes.pod.name"
	labelPodNamespace  = "io.kubernetes.pod.namespace"
	labelPodUID        = "io.kubernetes.pod.uid"
	labelContainerName = "io.kubernetes.container.name"
	labelManaged       = "io.skiff.managed"

	annotationHash               = "io.kubernetes.container.hash"
	annotationRestartCount       = "io.kubernetes.container.restartCount"
	annotationTerminationPath    = "io.kubernetes.container.terminationMessagePath"
	annotationTerminationPolicy  = "io.kubernetes.container.terminationMessagePolicy"
	annotationGracePeriod        = "io.kubernetes.pod.terminationGracePeriod"
	annotationPreStopHandler     = "io.kubernetes.container.preStopHandler"
	annotationTerminationHostDir = "io.skiff.container.terminationMessageHostPath"
)

// runtimePod is what the runtime holds for one pod: its sandboxes and
// every container instance, newest first.
type runtimePod struct {
	uid       types.UID
	sandboxes []*runtimeapi.PodSandbox
	// status is the newest sandbox's status (nil without a sandbox).
	status *runtimeapi.PodSandboxStatus
	// netns is the newest sandbox's network namespace file, "" when
	// unknown or host network.
	netns string
	// containers maps a container name to its instances, newest first.
	containers map[string][]*runtimeapi.ContainerStatus
	// sandboxOf maps a container ID to its sandbox's.
	sandboxOf map[string]string
}

// sandbox is the newest sandbox, or nil.
func (rp *runtimePod) sandbox() *runtimeapi.PodSandbox {
	if rp == nil || len(rp.sandboxes) == 0 {
		return nil
	}
	return rp.sandboxes[0]
}

// sandboxReady reports whether the newest sandbox is ready.
func (rp *runtimePod) sandboxReady() bool {
	sb := rp.sandbox()
	return sb != nil && sb.State == runtimeapi.PodSandboxState_SANDBOX_READY
}

// latest is the newest instance of container name, or nil.
func (rp *runtimePod) latest(name string) *runtimeapi.ContainerStatus {
	if rp == nil {
		return nil
	}
	if l := rp.containers[name]; len(l) > 0 {
		return l[0]
	}
	return nil
}

// previous is the instance before the newest, or nil.
func (rp *runtimePod) previous(name string) *runtimeapi.ContainerStatus {
	if rp == nil {
		return nil
	}
	if l := rp.containers[name]; len(l) > 1 {
		return l[1]
	}
	return nil
}

// running lists the running container instances.
func (rp *runtimePod) running() []*runtimeapi.ContainerStatus {
	if rp == nil {
		return nil
	}
	var out []*runtimeapi.ContainerStatus
	for _, name := range slices.Sorted(maps.Keys(rp.containers)) {
		for _, c := range rp.containers[name] {
			if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
				out = append(out, c)
			}
		}
	}
	return out
}

// empty reports whether the runtime holds nothing of the pod.
func (rp *runtimePod) empty() bool {
	return rp == nil || (len(rp.sandboxes) == 0 && len(rp.containers) == 0)
}

// observe asks the runtime for everything it holds of pod uid.
func (k *Kubelet) observe(ctx context.Context, uid types.UID) (*runtimePod, error) {
	sel := map[string]string{labelPodUID: string(uid)}
	sbs, err := k.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: sel}})
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	cs, err := k.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{LabelSelector: sel}})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	rp := &runtimePod{uid: uid, sandboxes: sbs.Items, containers: map[string][]*runtimeapi.ContainerStatus{}, sandboxOf: map[string]string{}}
	slices.SortFunc(rp.sandboxes, func(a, b *runtimeapi.PodSandbox) int {
		return cmp.Or(-cmp.Compare(a.GetMetadata().GetAttempt(), b.GetMetadata().GetAttempt()), -cmp.Compare(a.CreatedAt, b.CreatedAt))
	})
	if sb := rp.sandbox(); sb != nil {
		st, err := k.rt.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: sb.Id, Verbose: true})
		if err != nil {
			if !isNotFound(err) {
				return nil, fmt.Errorf("sandbox %s status: %w", sb.Id, err)
			}
		} else {
			rp.status = st.Status
			rp.netns = netnsFromInfo(st.Info)
		}
	}
	for _, c := range cs.Containers {
		st, err := k.rt.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.Id})
		if isNotFound(err) {
			continue // removed since the list
		}
		if err != nil {
			return nil, fmt.Errorf("container %s status: %w", c.Id, err)
		}
		s := st.Status
		if s.Labels == nil {
			s.Labels = c.Labels
		}
		if s.Annotations == nil {
			s.Annotations = c.Annotations
		}
		name := c.GetMetadata().GetName()
		rp.sandboxOf[c.Id] = c.PodSandboxId
		rp.containers[name] = append(rp.containers[name], s)
	}
	for _, l := range rp.containers {
		slices.SortFunc(l, func(a, b *runtimeapi.ContainerStatus) int {
			return cmp.Or(-cmp.Compare(a.GetMetadata().GetAttempt(), b.GetMetadata().GetAttempt()), -cmp.Compare(a.CreatedAt, b.CreatedAt))
		})
	}
	return rp, nil
}

// netnsFromInfo finds the network namespace file in a verbose
// PodSandboxStatus: the "netns" key of the JSON in the "info" entry (the
// built-in runtime), or containerd's runtimeSpec namespaces.
func netnsFromInfo(info map[string]string) string {
	raw, ok := info["info"]
	if !ok {
		return ""
	}
	var v struct {
		NetNS       string `json:"netns"`
		RuntimeSpec struct {
			Linux struct {
				Namespaces []struct {
					Type string `json:"type"`
					Path string `json:"path"`
				} `json:"namespaces"`
			} `json:"linux"`
		} `json:"runtimeSpec"`
	}
	if json.Unmarshal([]byte(raw), &v) != nil {
		return ""
	}
	if v.NetNS != "" {
		return v.NetNS
	}
	for _, ns := range v.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			return ns.Path
		}
	}
	return ""
}

// restartCountOf reads a container instance's attempt.
func restartCountOf(c *runtimeapi.ContainerStatus) int32 {
	if c == nil {
		return 0
	}
	if a := c.GetMetadata().GetAttempt(); a > 0 {
		return int32(a)
	}
	if n, err := strconv.Atoi(c.Annotations[annotationRestartCount]); err == nil {
		return int32(n)
	}
	return 0
}
