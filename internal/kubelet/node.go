package kubelet

import (
	"context"
	"encoding/json"
	"fmt"
	goruntime "runtime"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/version"
)

// Node conditions the kubelet owns, in upstream's order, with their
// reasons. Each is True or False; Unknown is set by the node lifecycle
// controller when the kubelet stops posting.
//
//	MemoryPressure  False KubeletHasSufficientMemory ⇄ True KubeletHasInsufficientMemory
//	DiskPressure    False KubeletHasNoDiskPressure
//	PIDPressure     False KubeletHasSufficientPID
//	Ready           True KubeletReady ⇄ False KubeletNotReady (runtime or network not ready)
const nodeLeaseNamespace = "kube-node-lease"

// registerNode creates this node's Node, or adopts an existing one,
// retrying until the API server answers.
func (k *Kubelet) registerNode(ctx context.Context) error {
	delay := 100 * time.Millisecond
	for {
		err := k.tryRegister(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) || apierrors.IsInvalid(err) {
			return fmt.Errorf("kubelet: register node %s: %w", k.cfg.NodeName, err)
		}
		k.log.Warn("cannot register node; retrying", "node", k.cfg.NodeName, "err", err)
		t := k.clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C():
		}
		delay = min(2*delay, 7*time.Second)
	}
}

func (k *Kubelet) nodeLabels() map[string]string {
	labels := map[string]string{
		corev1.LabelHostname:      k.cfg.NodeName,
		corev1.LabelOSStable:      goruntime.GOOS,
		corev1.LabelArchStable:    goruntime.GOARCH,
		"beta.kubernetes.io/os":   goruntime.GOOS,
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
	for key, v := range k.cfg.Labels {
		labels[key] = v
	}
	return labels
}

func (k *Kubelet) tryRegister(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Labels: k.nodeLabels()},
		Spec:       corev1.NodeSpec{Taints: slices.Clone(k.cfg.Taints)},
	}
	if k.cfg.PodCIDR != "" {
		node.Spec.PodCIDR, node.Spec.PodCIDRs = k.cfg.PodCIDR, []string{k.cfg.PodCIDR}
	}
	node.Status = k.nodeStatus(ctx, nil)
	created, err := k.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err == nil {
		k.log.Info("node registered", "node", k.cfg.NodeName)
		k.setNode(created)
		return k.updateNodeStatus(ctx, created, true)
	}
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	existing, err := k.client.CoreV1().Nodes().Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	// Adopt it: our labels win; taints and the pod CIDR stay as they are.
	updated := existing.DeepCopy()
	if updated.Labels == nil {
		updated.Labels = map[string]string{}
	}
	for key, v := range k.nodeLabels() {
		updated.Labels[key] = v
	}
	if !apiequality.Semantic.DeepEqual(existing.Labels, updated.Labels) {
		if updated, err = k.client.CoreV1().Nodes().Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	k.log.Info("node already registered; adopted", "node", k.cfg.NodeName)
	k.setNode(updated)
	return k.updateNodeStatus(ctx, updated, true)
}

// setNode records this node's Node and reacts to a new pod CIDR.
func (k *Kubelet) setNode(node *corev1.Node) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.node = node
	cidrs := node.Spec.PodCIDRs
	if len(cidrs) == 0 && node.Spec.PodCIDR != "" {
		cidrs = []string{node.Spec.PodCIDR}
	}
	if len(cidrs) == 0 && k.cfg.PodCIDR != "" {
		cidrs = []string{k.cfg.PodCIDR}
	}
	if !slices.Equal(cidrs, k.podCIDRs) {
		k.podCIDRs, k.cidrsSent = cidrs, false
	}
}

// nodeChanged handles the node informer.
func (k *Kubelet) nodeChanged(ctx context.Context, obj any) {
	node, ok := obj.(*corev1.Node)
	if !ok {
		return
	}
	k.setNode(node)
	k.sendPodCIDRs(ctx)
}

// sendPodCIDRs tells the runtime and the network the node's pod CIDRs
// once they are known or changed.
func (k *Kubelet) sendPodCIDRs(ctx context.Context) {
	k.mu.Lock()
	cidrs, sent := slices.Clone(k.podCIDRs), k.cidrsSent
	k.mu.Unlock()
	if sent || len(cidrs) == 0 {
		if len(cidrs) == 0 && k.cfg.Network != nil {
			k.setNetworkErr("pod CIDR not assigned yet")
		}
		return
	}
	if _, err := k.rt.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{
		RuntimeConfig: &runtimeapi.RuntimeConfig{NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: strings.Join(cidrs, ",")}},
	}); err != nil && ctx.Err() == nil {
		k.log.Debug("runtime did not take the pod CIDR", "err", err)
	}
	if s, ok := k.cfg.Network.(PodCIDRSetter); ok {
		if err := s.SetPodCIDRs(ctx, cidrs); err != nil {
			k.setNetworkErr(fmt.Sprintf("pod network rejected pod CIDRs %v: %v", cidrs, err))
			return
		}
	}
	k.setNetworkErr("")
	k.mu.Lock()
	if slices.Equal(cidrs, k.podCIDRs) {
		k.cidrsSent = true
	}
	k.mu.Unlock()
	k.log.Info("pod CIDRs", "cidrs", cidrs)
}

func (k *Kubelet) setNetworkErr(msg string) {
	k.mu.Lock()
	changed := k.networkErr != msg
	k.networkErr = msg
	k.mu.Unlock()
	if changed && msg == "" {
		// Pods waiting for the network can go on.
		k.mu.Lock()
		uids := make([]types.UID, 0, len(k.pods))
		for uid := range k.pods {
			uids = append(uids, uid)
		}
		k.mu.Unlock()
		for _, uid := range uids {
			k.enqueue(uid)
		}
	}
}

// nodeStatus computes this node's status; old gives the transition times
// to keep.
func (k *Kubelet) nodeStatus(ctx context.Context, old *corev1.Node) corev1.NodeStatus {
	info, err := k.cfg.Machine.Info()
	k.mu.Lock()
	if err == nil {
		k.machine = info
		k.capacity, k.allocatable = k.resourcesLocked(info)
	} else {
		info = k.machine
	}
	capacity, allocatable := k.capacity.DeepCopy(), k.allocatable.DeepCopy()
	nodeIPs := slices.Clone(k.nodeIPs)
	memoryPressure := k.memoryPressure
	networkErr := k.networkErr
	k.mu.Unlock()

	runtimeVersion := ""
	if v, err := k.rt.Version(ctx, &runtimeapi.VersionRequest{}); err == nil {
		runtimeVersion = v.RuntimeName + "://" + v.RuntimeVersion
	}
	notReady := k.runtimeNotReady(ctx)
	if notReady == "" && networkErr != "" && k.cfg.Network != nil {
		notReady = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:" + networkErr
	}
	k.mu.Lock()
	k.runtimeErr = notReady
	k.mu.Unlock()

	now := metav1.NewTime(k.clock.Now())
	cond := func(t corev1.NodeConditionType, status bool, reason, msg string) corev1.NodeCondition {
		s := corev1.ConditionFalse
		if status {
			s = corev1.ConditionTrue
		}
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	conds := []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, false, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		cond(corev1.NodeReady, true, "KubeletReady", "kubelet is posting ready status"),
	}
	if memoryPressure {
		conds[0] = cond(corev1.NodeMemoryPressure, true, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
	}
	if notReady != "" {
		conds[3] = cond(corev1.NodeReady, false, "KubeletNotReady", notReady)
	}
	if old != nil {
		for i := range conds {
			for _, o := range old.Status.Conditions {
				if o.Type == conds[i].Type && o.Status == conds[i].Status {
					conds[i].LastTransitionTime = o.LastTransitionTime
				}
			}
		}
	}
	st := corev1.NodeStatus{
		Capacity:        capacity,
		Allocatable:     allocatable,
		Conditions:      conds,
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: k.cfg.Port}},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID:               info.MachineID,
			SystemUUID:              info.SystemUUID,
			BootID:                  info.BootID,
			KernelVersion:           info.KernelVersion,
			OSImage:                 info.OSImage,
			ContainerRuntimeVersion: runtimeVersion,
			KubeletVersion:          version.Kubernetes,
			OperatingSystem:         goruntime.GOOS,
			Architecture:            goruntime.GOARCH,
		},
	}
	for _, ip := range nodeIPs {
		st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	if info.Hostname != "" {
		st.Addresses = append(st.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: info.Hostname})
	}
	st.Images = k.nodeImages(ctx)
	return st
}

// runtimeNotReady asks the runtime whether it is ready; "" when it is.
func (k *Kubelet) runtimeNotReady(ctx context.Context) string {
	resp, err := k.rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		return fmt.Sprintf("container runtime status check may not have completed yet: %v", grpcMessage(err))
	}
	for _, c := range resp.GetStatus().GetConditions() {
		if c.Type == runtimeapi.RuntimeReady && !c.Status {
			return fmt.Sprintf("container runtime not ready: RuntimeReady=false reason:%s message:%s", c.Reason, c.Message)
		}
		if c.Type == runtimeapi.NetworkReady && !c.Status && k.cfg.Network == nil {
			return fmt.Sprintf("container runtime network not ready: NetworkReady=false reason:%s message:%s", c.Reason, c.Message)
		}
	}
	return ""
}

// maxNodeImages is how many images a Node's status lists (upstream's
// default), largest first.
const maxNodeImages = 50

func (k *Kubelet) nodeImages(ctx context.Context) []corev1.ContainerImage {
	resp, err := k.img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil {
		return nil
	}
	imgs := resp.Images
	slices.SortStableFunc(imgs, func(a, b *runtimeapi.Image) int {
		switch {
		case a.Size > b.Size:
			return -1
		case a.Size < b.Size:
			return 1
		}
		return strings.Compare(a.Id, b.Id)
	})
	var out []corev1.ContainerImage
	for _, img := range imgs {
		if len(out) == maxNodeImages {
			break
		}
		names := append(slices.Clone(img.RepoDigests), img.RepoTags...)
		if len(names) == 0 {
			continue
		}
		out = append(out, corev1.ContainerImage{Names: names, SizeBytes: int64(img.Size)})
	}
	return out
}

// nodeStatusEqual compares statuses ignoring heartbeat times.
func nodeStatusEqual(a, b corev1.NodeStatus) bool {
	a, b = *a.DeepCopy(), *b.DeepCopy()
	for _, s := range []*corev1.NodeStatus{&a, &b} {
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
			s.Conditions[i].LastTransitionTime = metav1.Time{}
		}
	}
	return apiequality.Semantic.DeepEqual(a, b)
}

// updateNodeStatus writes the node's status when it changed, or when
// force is set.
func (k *Kubelet) updateNodeStatus(ctx context.Context, node *corev1.Node, force bool) error {
	st := k.nodeStatus(ctx, node)
	if !force && nodeStatusEqual(node.Status, st) {
		return nil
	}
	oldData, err := json.Marshal(corev1.Node{Status: node.Status})
	if err != nil {
		return err
	}
	newData, err := json.Marshal(corev1.Node{Status: st})
	if err != nil {
		return err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, corev1.Node{})
	if err != nil {
		return fmt.Errorf("node status patch: %w", err)
	}
	updated, err := k.client.CoreV1().Nodes().Patch(ctx, k.cfg.NodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("patch node status: %w", err)
	}
	k.setNode(updated)
	return nil
}

// runNodeStatus recomputes the node's status every
// NodeStatusUpdateInterval and writes it when it changed or
// NodeStatusReportInterval passed.
func (k *Kubelet) runNodeStatus(ctx context.Context) {
	lastReport := k.clock.Now()
	ticker := k.clock.NewTicker(k.cfg.NodeStatusUpdateInterval)
	defer ticker.Stop()
	for {
		k.sendPodCIDRs(ctx)
		k.mu.Lock()
		node := k.node
		k.mu.Unlock()
		if node != nil {
			force := k.clock.Since(lastReport) >= k.cfg.NodeStatusReportInterval
			if err := k.updateNodeStatus(ctx, node, force); err != nil {
				if ctx.Err() != nil {
					return
				}
				k.log.Warn("cannot update node status", "err", err)
			} else if force {
				lastReport = k.clock.Now()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

// runLease renews the node's Lease in kube-node-lease every
// HeartbeatInterval, creating it when missing.
func (k *Kubelet) runLease(ctx context.Context) {
	ticker := k.clock.NewTicker(k.cfg.HeartbeatInterval)
	defer ticker.Stop()
	var lease *coordinationv1.Lease
	for {
		var err error
		lease, err = k.renewLease(ctx, lease)
		if err != nil && ctx.Err() == nil {
			k.log.Warn("cannot renew node lease", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C():
		}
	}
}

func (k *Kubelet) renewLease(ctx context.Context, last *coordinationv1.Lease) (*coordinationv1.Lease, error) {
	leases := k.client.CoordinationV1().Leases(nodeLeaseNamespace)
	now := metav1.NewMicroTime(k.clock.Now())
	if last != nil {
		l := last.DeepCopy()
		l.Spec.RenewTime = &now
		updated, err := leases.Update(ctx, l, metav1.UpdateOptions{})
		if err == nil {
			return updated, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return last, err
		}
	}
	l, err := leases.Get(ctx, k.cfg.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l = &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: k.cfg.NodeName, Namespace: nodeLeaseNamespace},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       &k.cfg.NodeName,
				LeaseDurationSeconds: new(int32(k.cfg.LeaseDuration / time.Second)),
				RenewTime:            &now,
			},
		}
		k.mu.Lock()
		if k.node != nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: k.node.Name, UID: k.node.UID}}
		}
		k.mu.Unlock()
		return leases.Create(ctx, l, metav1.CreateOptions{})
	}
	if err != nil {
		return nil, err
	}
	l.Spec.HolderIdentity = &k.cfg.NodeName
	l.Spec.LeaseDurationSeconds = new(int32(k.cfg.LeaseDuration / time.Second))
	l.Spec.RenewTime = &now
	if len(l.OwnerReferences) == 0 {
		k.mu.Lock()
		if k.node != nil {
			l.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: k.node.Name, UID: k.node.UID}}
		}
		k.mu.Unlock()
	}
	return leases.Update(ctx, l, metav1.UpdateOptions{})
}
