package kubelet

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Errors returned by the Kubelet's lookups; test them with errors.Is.
var (
	// ErrPodNotFound: no pod of that namespace and name is bound to this
	// node.
	ErrPodNotFound = errors.New("pod not found on this node")
	// ErrContainerNotFound: the pod has no such container, or the runtime
	// has no instance of it (yet, or any more).
	ErrContainerNotFound = errors.New("container not found")
)

// ContainerRef locates one instance of a pod's container in the runtime.
type ContainerRef struct {
	PodUID    types.UID
	SandboxID string
	// ID is the CRI container ID.
	ID string
	// Name is the container's name in the pod spec.
	Name string
	// Attempt is the instance's restart count: 0 for the first.
	Attempt uint32
	// LogPath is the instance's log file:
	// PodLogsDir/<ns>_<pod>_<uid>/<container>/<attempt>.log.
	LogPath string
	// Running says whether the instance is running now.
	Running bool
}

// New makes a Kubelet from cfg. It checks cfg and talks to nothing; Run
// starts the work.
func New(cfg Config) (*Kubelet, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return newKubelet(cfg), nil
}

// Run registers the Node and drives this node's pods until ctx ends. It
// returns nil once ctx ends and everything it started has stopped, or an
// error when it cannot start (the Node cannot be registered, the CRI does
// not answer). Containers keep running after Run returns: a kubelet that
// starts again adopts them.
func (k *Kubelet) Run(ctx context.Context) error { return k.run(ctx) }

// Ready is closed once the Node is registered and the kubelet has seen
// every pod bound to it.
func (k *Kubelet) Ready() <-chan struct{} { return k.ready }

// NodeName is the name of this node.
func (k *Kubelet) NodeName() string { return k.cfg.NodeName }

// Pod returns the pod of that namespace and name bound to this node, as
// the kubelet last saw it in the API. The caller must not modify it.
func (k *Kubelet) Pod(namespace, name string) (*corev1.Pod, bool) {
	return k.lookupPod(namespace, name)
}

// Pods returns every pod bound to this node, as the kubelet last saw them
// in the API. The caller owns the slice, not the pods.
func (k *Kubelet) Pods() []*corev1.Pod { return k.listPods() }

// Container finds container name of pod namespace/podName in the runtime:
// its current instance, or with previous its last terminated one before
// that (what kubectl logs --previous reads). It wraps ErrPodNotFound or
// ErrContainerNotFound when there is none, and returns CRI errors as they
// come.
func (k *Kubelet) Container(ctx context.Context, namespace, podName, name string, previous bool) (ContainerRef, error) {
	return k.findContainer(ctx, namespace, podName, name, previous)
}

// RuntimeService is the CRI runtime client the kubelet uses (exec, attach,
// port-forward and stats go through it).
func (k *Kubelet) RuntimeService() runtimeapi.RuntimeServiceClient { return k.cfg.Runtime }

// ImageService is the CRI image client the kubelet uses.
func (k *Kubelet) ImageService() runtimeapi.ImageServiceClient { return k.cfg.Images }
