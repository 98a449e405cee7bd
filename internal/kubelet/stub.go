package kubelet

import (
	"context"

	corev1 "k8s.io/api/core/v1"
)

// Kubelet is the node agent core. Make one with New; its methods are safe
// for concurrent use.
type Kubelet struct {
	cfg   Config
	ready chan struct{}
}

func newKubelet(cfg Config) *Kubelet { return &Kubelet{cfg: cfg, ready: make(chan struct{})} }

func (k *Kubelet) run(ctx context.Context) error { <-ctx.Done(); return nil }

func (k *Kubelet) lookupPod(namespace, name string) (*corev1.Pod, bool) { return nil, false }

func (k *Kubelet) listPods() []*corev1.Pod { return nil }

func (k *Kubelet) findContainer(ctx context.Context, namespace, podName, name string, previous bool) (ContainerRef, error) {
	return ContainerRef{}, ErrPodNotFound
}
