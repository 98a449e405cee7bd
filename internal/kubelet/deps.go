package kubelet

import (
	"context"
	"errors"
	"fmt"
	"net"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/sys/cgroups"
)

// The interfaces in this file are what the kubelet consumes from the parts
// of the node agent that others write: volumes, the pod network, the
// cgroup hierarchy and the host. The agent (internal/agent) wires the real
// ones in; tests use small fakes.

// Volumes makes a pod's volumes (emptyDir, hostPath, configMap, secret,
// downwardAPI, projected) exist on the host and turns a container's
// volumeMounts into CRI mounts. Package volume implements it.
type Volumes interface {
	// SetUp makes every volume of pod ready on the host. The kubelet calls
	// it before it creates the pod's first container, and again on every
	// resync of a pod that should be running (about once a minute, and
	// whenever the pod changes), so SetUp is also where configMap, secret,
	// downwardAPI and projected contents are refreshed. It must be
	// idempotent and cheap when nothing changed. An error stops the pod's
	// containers from being created on this sync: the kubelet records a
	// FailedMount event with the error and retries on a later sync. An
	// error about one volume should have (through errors.As) a
	// VolumeName() string method and unwrap to its cause: the event then
	// reads as upstream's, `MountVolume.SetUp failed for volume "v" :
	// cause`.
	SetUp(ctx context.Context, pod *corev1.Pod) error
	// Mounts returns the CRI mounts for container c of pod, one per entry
	// of c.VolumeMounts, in order, with the host path, subPath (and
	// subPathExpr expanded against env, the container's environment),
	// readOnly and propagation resolved. It is called after a successful
	// SetUp. An error fails the container with CreateContainerConfigError.
	// The caller owns the returned slice.
	Mounts(pod *corev1.Pod, c *corev1.Container, env map[string]string) ([]*runtimeapi.Mount, error)
	// TearDown unmounts and removes every volume of the pod with this UID.
	// The kubelet calls it once none of the pod's containers runs (the pod
	// finished, was deleted or was evicted), and on start for pods it finds
	// on disk that are no longer bound to this node. The pod object may be
	// gone. It is idempotent; tearing down an unknown UID succeeds.
	TearDown(ctx context.Context, uid types.UID) error
}

// Sandbox identifies a pod sandbox for the pod network.
type Sandbox struct {
	// ID is the CRI sandbox ID.
	ID string
	// NetNS is the file holding the sandbox's network namespace, from the
	// "netns" key of PodSandboxStatus' verbose info.
	NetNS string
	// Namespace, Name and UID identify the pod.
	Namespace, Name string
	UID             types.UID
	// PortMappings are the pod's hostPorts, as in the sandbox's CRI
	// config. SetUp gets them; TearDown may not (the network keeps
	// what it needs to undo them).
	PortMappings []*runtimeapi.PortMapping
}

// Network connects pod sandboxes to the pod network. The built-in runtime
// creates a sandbox with only a loopback interface; the kubelet then calls
// SetUp with the sandbox's netns and records the IPs it returns as the
// pod's. When Config.Network is nil the runtime is expected to do it (CNI
// inside containerd or CRI-O) and the IPs come from PodSandboxStatus.
// Package podnet implements it.
type Network interface {
	// SetUp gives the sandbox an interface and IPs on the pod network and
	// returns the IPs, IPv4 first. It is called right after RunPodSandbox,
	// never for hostNetwork pods. It must be idempotent for one sandbox ID:
	// after a kubelet restart it is called again for running sandboxes and
	// must return the IPs it gave before. An error fails the sandbox: the
	// kubelet removes it and retries with backoff.
	SetUp(ctx context.Context, sb Sandbox) ([]net.IP, error)
	// TearDown releases what SetUp took for the sandbox (its IPs and
	// links). The kubelet calls it before it stops or removes a sandbox.
	// It is idempotent; the netns may already be gone.
	TearDown(ctx context.Context, sb Sandbox) error
}

// PodCIDRSetter is an optional interface of a Network: the kubelet calls
// SetPodCIDRs when it learns the node's pod CIDRs (Node spec.podCIDRs, or
// Config.PodCIDR while those are empty) and whenever they change, before
// it sets up any sandbox. Until the network has a CIDR, sandboxes wait and
// the node reports NotReady.
type PodCIDRSetter interface {
	SetPodCIDRs(ctx context.Context, cidrs []string) error
}

// Cgroups is the pod cgroup hierarchy as the kubelet drives it. Paths are
// slash-separated and relative to the manager's parent: "kubepods",
// "kubepods/burstable", "kubepods/burstable/pod<uid>". HostCgroups adapts
// a *cgroups.Manager.
type Cgroups interface {
	// Ensure creates the cgroup (and missing parents) if needed, then
	// applies r (nil fields are left alone). It is idempotent.
	Ensure(path string, r *cgroups.Resources) error
	// Remove kills what is left in the cgroup and deletes it; removing a
	// missing cgroup succeeds.
	Remove(ctx context.Context, path string) error
	// Stats reads the cgroup's usage. A missing cgroup wraps
	// cgroups.ErrNotExist.
	Stats(path string) (*cgroups.Stats, error)
}

// Machine describes the host. HostMachine reads the real one.
type Machine interface {
	// Info returns the host's static facts. It is called at start and on
	// every node status update, so it may cache.
	Info() (MachineInfo, error)
	// MemoryAvailable is the node's memory.available signal in bytes, as
	// the kubelet's eviction manager computes it: capacity minus the
	// working set of all processes.
	MemoryAvailable() (int64, error)
}

// MachineInfo is the part of a Node's status that comes from the host.
type MachineInfo struct {
	Hostname         string
	NumCPU           int
	MemoryCapacity   int64 // bytes
	EphemeralStorage int64 // bytes of the filesystem holding Config.RootDir
	MachineID        string
	SystemUUID       string
	BootID           string
	KernelVersion    string
	OSImage          string
}

// volumeError is the optional side of a Volumes.SetUp error that names
// the volume it concerns.
type volumeError interface {
	VolumeName() string
	Unwrap() error
}

// failedMountMessage is the FailedMount event message for a SetUp error:
// upstream's words for an error about one volume, else the error as is.
func failedMountMessage(err error) string {
	var ve volumeError
	if errors.As(err, &ve) && ve.Unwrap() != nil {
		return fmt.Sprintf("MountVolume.SetUp failed for volume %q : %v", ve.VolumeName(), ve.Unwrap())
	}
	return fmt.Sprintf("Unable to attach or mount volumes: %v", err)
}
