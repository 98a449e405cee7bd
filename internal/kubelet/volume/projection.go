package volume

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"sort"
	"strconv"
	"strings"

	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Default file modes, as the API defaults them.
const (
	defaultFileMode = 0o644
)

// buildPayload computes the files of a configMap, secret, downwardAPI or
// projected volume.
func (m *Manager) buildPayload(ctx context.Context, pod *v1.Pod, vol *v1.Volume) (payload, error) {
	src := &vol.VolumeSource
	switch {
	case src.ConfigMap != nil:
		s := src.ConfigMap
		cm, err := m.getConfigMap(ctx, pod.Namespace, s.Name)
		if err != nil {
			return nil, err
		}
		return configMapPayload(cm, s.Name, s.Items, modeOr(s.DefaultMode, defaultFileMode), isTrue(s.Optional))
	case src.Secret != nil:
		s := src.Secret
		sec, err := m.getSecret(ctx, pod.Namespace, s.SecretName)
		if err != nil {
			return nil, err
		}
		return secretPayload(sec, s.SecretName, s.Items, modeOr(s.DefaultMode, defaultFileMode), isTrue(s.Optional))
	case src.DownwardAPI != nil:
		s := src.DownwardAPI
		return downwardPayload(pod, s.Items, modeOr(s.DefaultMode, defaultFileMode), m.allocatable())
	case src.Projected != nil:
		return m.projectedPayload(ctx, pod, vol.Name, src.Projected)
	}
	return nil, fmt.Errorf("%w: not an API-data volume", ErrInvalid)
}

func (m *Manager) allocatable() v1.ResourceList {
	if m.cfg.Allocatable == nil {
		return nil
	}
	return m.cfg.Allocatable()
}

func (m *Manager) projectedPayload(ctx context.Context, pod *v1.Pod, volName string, s *v1.ProjectedVolumeSource) (payload, error) {
	mode := modeOr(s.DefaultMode, defaultFileMode)
	out := payload{}
	merge := func(p payload) {
		for k, f := range p {
			out[k] = f
		}
	}
	for i, src := range s.Sources {
		switch {
		case src.ConfigMap != nil:
			c := src.ConfigMap
			cm, err := m.getConfigMap(ctx, pod.Namespace, c.Name)
			if err != nil {
				return nil, err
			}
			p, err := configMapPayload(cm, c.Name, c.Items, mode, isTrue(c.Optional))
			if err != nil {
				return nil, err
			}
			merge(p)
		case src.Secret != nil:
			c := src.Secret
			sec, err := m.getSecret(ctx, pod.Namespace, c.Name)
			if err != nil {
				return nil, err
			}
			p, err := secretPayload(sec, c.Name, c.Items, mode, isTrue(c.Optional))
			if err != nil {
				return nil, err
			}
			merge(p)
		case src.DownwardAPI != nil:
			p, err := downwardPayload(pod, src.DownwardAPI.Items, mode, m.allocatable())
			if err != nil {
				return nil, err
			}
			merge(p)
		case src.ServiceAccountToken != nil:
			tp := src.ServiceAccountToken
			if err := validateRelPath(tp.Path); err != nil {
				return nil, fmt.Errorf("%w: serviceAccountToken: %w", ErrInvalid, err)
			}
			tok, err := m.token(ctx, pod, tokenKey{uid: pod.UID, volume: volName, source: i}, tp)
			if err != nil {
				return nil, err
			}
			f := file{Data: []byte(tok), Mode: fs.FileMode(mode)}
			// As the kubelet does: when the pod runs as one user or has
			// an fsGroup, the token is readable by that user (or
			// group) alone.
			uid := podFSUser(pod)
			if uid != nil || podFSGroup(pod) != nil {
				f.Mode = 0o600
				f.UID = uid
			}
			out[tp.Path] = f
		case src.ClusterTrustBundle != nil:
			return nil, fmt.Errorf("%w: clusterTrustBundle projections are not supported on this node", ErrUnsupported)
		case src.PodCertificate != nil:
			return nil, fmt.Errorf("%w: podCertificate projections are not supported on this node", ErrUnsupported)
		default:
			return nil, fmt.Errorf("%w: projected source %d has no kind", ErrInvalid, i)
		}
	}
	return out, nil
}

// podFSUser is the user every container of the pod runs as, when they
// all run as the same one; nil otherwise.
func podFSUser(pod *v1.Pod) *int64 {
	var podUser *int64
	if sc := pod.Spec.SecurityContext; sc != nil {
		podUser = sc.RunAsUser
	}
	var user *int64
	all := append(append([]v1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	for i, c := range all {
		u := podUser
		if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			u = c.SecurityContext.RunAsUser
		}
		if u == nil {
			return nil
		}
		if i > 0 && *u != *user {
			return nil
		}
		user = u
	}
	return user
}

func (m *Manager) getConfigMap(ctx context.Context, ns, name string) (*v1.ConfigMap, error) {
	if m.cfg.Client == nil {
		return nil, fmt.Errorf("%w: configMap volumes need an API client", ErrUnsupported)
	}
	cm, err := m.cfg.Client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get configmap %s/%s: %w", ns, name, err)
	}
	return cm, nil
}

func (m *Manager) getSecret(ctx context.Context, ns, name string) (*v1.Secret, error) {
	if m.cfg.Client == nil {
		return nil, fmt.Errorf("%w: secret volumes need an API client", ErrUnsupported)
	}
	s, err := m.cfg.Client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get secret %s/%s: %w", ns, name, err)
	}
	return s, nil
}

func modeOr(m *int32, def int32) int32 {
	if m != nil {
		return *m
	}
	return def
}

func isTrue(b *bool) bool { return b != nil && *b }

// keyedPayload turns a ConfigMap's or Secret's data into files: every
// key, or only items (each key to its path, with its own mode). A
// missing object (nil data) or key is an error wrapping ErrNotFound
// unless optional.
func keyedPayload(kind, name string, exists bool, data map[string][]byte, items []v1.KeyToPath, mode int32, optional bool) (payload, error) {
	if !exists {
		if optional {
			return payload{}, nil
		}
		return nil, &notFoundError{fmt.Sprintf("%s %q not found", kind, name)}
	}
	out := payload{}
	if len(items) == 0 {
		for k, v := range data {
			if err := validateRelPath(k); err != nil {
				return nil, fmt.Errorf("%w: %s %q: key %q: %w", ErrInvalid, kind, name, k, err)
			}
			out[k] = file{Data: v, Mode: fs.FileMode(mode)}
		}
		return out, nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return nil, &notFoundError{fmt.Sprintf("%s %q has no key %q", kind, name, it.Key)}
		}
		if err := validateRelPath(it.Path); err != nil {
			return nil, fmt.Errorf("%w: %s %q: item %q: %w", ErrInvalid, kind, name, it.Key, err)
		}
		out[it.Path] = file{Data: v, Mode: fs.FileMode(modeOr(it.Mode, mode))}
	}
	return out, nil
}

func configMapPayload(cm *v1.ConfigMap, name string, items []v1.KeyToPath, mode int32, optional bool) (payload, error) {
	var data map[string][]byte
	if cm != nil {
		data = make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
		for k, v := range cm.Data {
			data[k] = []byte(v)
		}
		for k, v := range cm.BinaryData {
			data[k] = v
		}
	}
	return keyedPayload("configmap", name, cm != nil, data, items, mode, optional)
}

func secretPayload(s *v1.Secret, name string, items []v1.KeyToPath, mode int32, optional bool) (payload, error) {
	var data map[string][]byte
	if s != nil {
		data = s.Data
	}
	return keyedPayload("secret", name, s != nil, data, items, mode, optional)
}

// downwardPayload computes downwardAPI files from the pod.
func downwardPayload(pod *v1.Pod, items []v1.DownwardAPIVolumeFile, mode int32, alloc v1.ResourceList) (payload, error) {
	out := payload{}
	for _, it := range items {
		if err := validateRelPath(it.Path); err != nil {
			return nil, fmt.Errorf("%w: downwardAPI: %w", ErrInvalid, err)
		}
		var val string
		var err error
		switch {
		case it.FieldRef != nil:
			val, err = podField(pod, it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			val, err = containerResource(pod, it.ResourceFieldRef, alloc)
		default:
			err = fmt.Errorf("%w: downwardAPI item %q has neither fieldRef nor resourceFieldRef", ErrInvalid, it.Path)
		}
		if err != nil {
			return nil, err
		}
		out[it.Path] = file{Data: []byte(val), Mode: fs.FileMode(modeOr(it.Mode, mode))}
	}
	return out, nil
}

// podField reads one of the fields a downwardAPI volume may project.
func podField(pod *v1.Pod, path string) (string, error) {
	if key, ok := subscript(path, "metadata.labels"); ok {
		return pod.Labels[key], nil
	}
	if key, ok := subscript(path, "metadata.annotations"); ok {
		return pod.Annotations[key], nil
	}
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	}
	return "", fmt.Errorf("%w: downwardAPI fieldPath %q is not supported in volumes", ErrInvalid, path)
}

// subscript splits "metadata.labels['key']".
func subscript(path, prefix string) (string, bool) {
	rest, ok := strings.CutPrefix(path, prefix+"['")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, "']")
}

// formatMap writes a map as sorted key="value" lines (value quoted as Go
// quotes strings), the format the kubelet uses for labels and annotations.
func formatMap(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	return b.String()
}

// containerResource reads a container's request or limit in units of the
// divisor, rounded up. An unset limit reads as the node's allocatable.
func containerResource(pod *v1.Pod, ref *v1.ResourceFieldSelector, alloc v1.ResourceList) (string, error) {
	var c *v1.Container
	for _, list := range [][]v1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for i := range list {
			if list[i].Name == ref.ContainerName {
				c = &list[i]
			}
		}
	}
	if c == nil {
		return "", fmt.Errorf("%w: resourceFieldRef: container %q", ErrNotFound, ref.ContainerName)
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("%w: resourceFieldRef: resource %q", ErrInvalid, ref.Resource)
	}
	rn := v1.ResourceName(name)
	switch {
	case rn == v1.ResourceCPU, rn == v1.ResourceMemory, rn == v1.ResourceEphemeralStorage, strings.HasPrefix(name, v1.ResourceHugePagesPrefix):
	default:
		return "", fmt.Errorf("%w: resourceFieldRef: resource %q", ErrInvalid, ref.Resource)
	}
	list := c.Resources.Requests
	if kind == "limits" {
		list = c.Resources.Limits
	}
	q, set := list[rn]
	if !set && kind == "limits" {
		q = alloc[rn]
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if rn == v1.ResourceCPU {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}
