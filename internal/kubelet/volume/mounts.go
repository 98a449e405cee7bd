package volume

import (
	"fmt"
	"os"
	"strings"

	v1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Mounts returns the CRI mounts of container c of pod, in the order of
// its volumeMounts, after SetUp succeeded for the pod. A subPath (or a
// subPathExpr, expanded with env, the container's environment) is bind
// mounted under the pod's volume-subpaths directory first; the bind
// stays until TearDown and is reused when the container restarts.
// configMap, secret, downwardAPI and projected volumes are always
// read-only, as in Kubernetes. The caller owns the returned slice.
// Errors wrap ErrInvalid, ErrNotFound or ErrUnsupported and name the
// mount.
func (m *Manager) Mounts(pod *v1.Pod, c *v1.Container, env map[string]string) ([]*runtimeapi.Mount, error) {
	if len(c.VolumeDevices) > 0 {
		return nil, fmt.Errorf("pod %s/%s: container %q: %w: volumeDevices (block volumes)", pod.Namespace, pod.Name, c.Name, ErrUnsupported)
	}
	vols := make(map[string]*v1.Volume, len(pod.Spec.Volumes))
	for i := range pod.Spec.Volumes {
		vols[pod.Spec.Volumes[i].Name] = &pod.Spec.Volumes[i]
	}
	out := make([]*runtimeapi.Mount, 0, len(c.VolumeMounts))
	for i, vm := range c.VolumeMounts {
		mnt, err := m.mount(pod, c, i, &vm, vols[vm.Name], env)
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: container %q: mount %q at %s: %w", pod.Namespace, pod.Name, c.Name, vm.Name, vm.MountPath, err)
		}
		out = append(out, mnt)
	}
	return out, nil
}

func (m *Manager) mount(pod *v1.Pod, c *v1.Container, index int, vm *v1.VolumeMount, vol *v1.Volume, env map[string]string) (*runtimeapi.Mount, error) {
	if vol == nil {
		return nil, fmt.Errorf("%w: the pod has no volume %q", ErrInvalid, vm.Name)
	}
	if !strings.HasPrefix(vm.MountPath, "/") {
		return nil, fmt.Errorf("%w: mountPath must be absolute", ErrInvalid)
	}
	host, apiData, err := m.hostPathOf(pod, vol)
	if err != nil {
		return nil, err
	}
	readOnly := vm.ReadOnly || apiData
	sub := vm.SubPath
	if vm.SubPathExpr != "" {
		if sub, err = expandSubPath(vm.SubPathExpr, env); err != nil {
			return nil, err
		}
	}
	if sub != "" {
		if _, err := os.Stat(host); err != nil {
			return nil, fmt.Errorf("volume not set up: %w", err)
		}
		create := !apiData && !vm.ReadOnly
		if host, err = m.bindSubPath(pod.UID, vol.Name, c.Name, index, host, sub, create, readOnly); err != nil {
			return nil, err
		}
	}
	mnt := &runtimeapi.Mount{
		ContainerPath: vm.MountPath,
		HostPath:      host,
		Readonly:      readOnly,
		Propagation:   propagation(vm.MountPropagation),
	}
	if vm.RecursiveReadOnly != nil && *vm.RecursiveReadOnly == v1.RecursiveReadOnlyEnabled {
		if !readOnly {
			return nil, fmt.Errorf("%w: recursiveReadOnly needs readOnly", ErrInvalid)
		}
		mnt.RecursiveReadOnly = true
	}
	return mnt, nil
}

func propagation(p *v1.MountPropagationMode) runtimeapi.MountPropagation {
	if p == nil {
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE
	}
	switch *p {
	case v1.MountPropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
	case v1.MountPropagationBidirectional:
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
	}
	return runtimeapi.MountPropagation_PROPAGATION_PRIVATE
}

// expandSubPath expands $(VAR) references in a subPathExpr from env, as
// the kubelet does; $$ is a literal $. A reference to a variable env
// lacks is an error, and so is a result that is absolute or has "..".
func expandSubPath(expr string, env map[string]string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(expr); i++ {
		ch := expr[i]
		if ch != '$' || i+1 >= len(expr) {
			b.WriteByte(ch)
			continue
		}
		switch expr[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '(':
			end := strings.IndexByte(expr[i+2:], ')')
			if end < 0 {
				b.WriteString(expr[i:])
				i = len(expr)
				continue
			}
			name := expr[i+2 : i+2+end]
			val, ok := env[name]
			if !ok {
				return "", fmt.Errorf("%w: subPathExpr %q: variable %q is not set", ErrInvalid, expr, name)
			}
			b.WriteString(val)
			i += 2 + end
			continue
		}
		b.WriteByte(ch)
	}
	out := b.String()
	if strings.HasPrefix(out, "/") || hasDotDot(out) {
		return "", fmt.Errorf("%w: subPathExpr %q expands to %q: must be relative without '..'", ErrInvalid, expr, out)
	}
	return out, nil
}
