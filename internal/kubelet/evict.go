package kubelet

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/kubelet/qos"
)

// Node-pressure eviction, memory only: every EvictionInterval the kubelet
// compares memory.available with the hard threshold. Under it, the node
// reports MemoryPressure and one pod is evicted per round, upstream's
// order:
//
//	1. pods using more memory than they request (BestEffort pods always do)
//	2. lower priority first
//	3. more memory used above the request first
//
// An evicted pod is killed at once (grace period 0) and ends Failed with
// reason Evicted and a DisruptionTarget condition.

// runEviction checks for memory pressure until ctx ends.
func (k *Kubelet) runEviction(ctx context.Context) {
	ticker := k.clock.NewTicker(k.cfg.EvictionInterval)
	defer ticker.Stop()
	for {
		k.checkEviction(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

// podUsage is a pod's memory working set, per container.
type podUsage struct {
	pod        *corev1.Pod
	total      int64
	containers map[string]int64
}

func (k *Kubelet) checkEviction(ctx context.Context) {
	avail, err := k.cfg.Machine.MemoryAvailable()
	if err != nil {
		k.log.Warn("cannot read memory.available", "err", err)
		return
	}
	threshold := k.cfg.EvictionMemoryAvailable.Value()
	pressure := avail < threshold
	k.mu.Lock()
	changed := k.memoryPressure != pressure
	k.memoryPressure = pressure
	node := k.node
	k.mu.Unlock()
	if changed {
		k.log.Info("memory pressure", "under", pressure, "available", avail, "threshold", threshold)
		if node != nil {
			if err := k.updateNodeStatus(ctx, node, false); err != nil && ctx.Err() == nil {
				k.log.Warn("cannot update node status", "err", err)
			}
		}
	}
	if !pressure {
		return
	}
	usage, err := k.podUsages(ctx)
	if err != nil {
		k.log.Warn("cannot read pod memory usage", "err", err)
		return
	}
	victim := rankForEviction(usage)
	if victim == nil {
		k.log.Warn("memory pressure but no pod to evict")
		return
	}
	msg := evictionMessage(victim, k.cfg.EvictionMemoryAvailable, avail)
	k.recorder.Event(victim.pod, corev1.EventTypeWarning, "Evicted", msg)
	k.log.Info("evicting pod", "pod", podKey(victim.pod), "message", msg)
	k.metrics.evictions.Inc()
	k.mu.Lock()
	k.evictions[victim.pod.UID] = &terminalStatus{reason: "Evicted", message: msg, disruption: true, grace: new(int64(0))}
	k.mu.Unlock()
	k.enqueue(victim.pod.UID)
}

func (k *Kubelet) takeEviction(uid types.UID) *terminalStatus {
	k.mu.Lock()
	defer k.mu.Unlock()
	t := k.evictions[uid]
	delete(k.evictions, uid)
	return t
}

// podUsages reads the working set of every admitted pod's containers.
func (k *Kubelet) podUsages(ctx context.Context) ([]podUsage, error) {
	resp, err := k.rt.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
	if err != nil {
		return nil, err
	}
	byPod := map[types.UID]map[string]int64{}
	for _, s := range resp.Stats {
		uid := types.UID(s.GetAttributes().GetLabels()[labelPodUID])
		if uid == "" {
			continue
		}
		if byPod[uid] == nil {
			byPod[uid] = map[string]int64{}
		}
		byPod[uid][s.GetAttributes().GetMetadata().GetName()] += int64(s.GetMemory().GetWorkingSetBytes().GetValue())
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []podUsage
	for uid, p := range k.admitted {
		if _, evicting := k.evictions[uid]; evicting || p.DeletionTimestamp != nil {
			continue
		}
		u := podUsage{pod: p, containers: byPod[uid]}
		for _, v := range u.containers {
			u.total += v
		}
		out = append(out, u)
	}
	return out, nil
}

func memoryRequest(pod *corev1.Pod) int64 {
	var sum int64
	for i := range pod.Spec.Containers {
		sum += pod.Spec.Containers[i].Resources.Requests.Memory().Value()
	}
	return sum
}

// rankForEviction picks the pod to evict first, or nil.
func rankForEviction(pods []podUsage) *podUsage {
	if len(pods) == 0 {
		return nil
	}
	priority := func(p *corev1.Pod) int32 {
		if p.Spec.Priority != nil {
			return *p.Spec.Priority
		}
		return 0
	}
	slices.SortStableFunc(pods, func(a, b podUsage) int {
		ea, eb := a.total > memoryRequest(a.pod), b.total > memoryRequest(b.pod)
		if ea != eb {
			if ea {
				return -1
			}
			return 1
		}
		if pa, pb := priority(a.pod), priority(b.pod); pa != pb {
			if pa < pb {
				return -1
			}
			return 1
		}
		oa, ob := a.total-memoryRequest(a.pod), b.total-memoryRequest(b.pod)
		switch {
		case oa > ob:
			return -1
		case oa < ob:
			return 1
		}
		// Then BestEffort before Burstable before Guaranteed.
		return classRank(a.pod) - classRank(b.pod)
	})
	return &pods[0]
}

func classRank(p *corev1.Pod) int {
	switch qos.Class(p) {
	case corev1.PodQOSBestEffort:
		return 0
	case corev1.PodQOSBurstable:
		return 1
	}
	return 2
}

// evictionMessage is upstream's message for a memory eviction.
func evictionMessage(u *podUsage, threshold resource.Quantity, available int64) string {
	var b strings.Builder
	fmt.Fprintf(&b, "The node was low on resource: memory. Threshold quantity: %s, available: %s. ",
		threshold.String(), resource.NewQuantity(available, resource.BinarySI).String())
	for i := range u.pod.Spec.Containers {
		c := &u.pod.Spec.Containers[i]
		used := u.containers[c.Name]
		req := c.Resources.Requests.Memory()
		if used > req.Value() {
			fmt.Fprintf(&b, "Container %s was using %s, request is %s, has larger consumption of memory. ", c.Name, resource.NewQuantity(used, resource.BinarySI).String(), req.String())
		}
	}
	return b.String()
}
