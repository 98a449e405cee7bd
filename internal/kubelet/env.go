package kubelet

import (
	"context"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// expand replaces $(NAME) references in s with lookup(NAME) the way
// Kubernetes expands command, args and env values: a reference to an
// undefined name is left as written, $$ is an escaped $, and a $( with no
// closing parenthesis is kept literally.
func expand(s string, lookup func(string) (string, bool)) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; next {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := lookup(name); ok && name != "" {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// envList is an ordered environment: the first definition of a name
// fixes its place, the last one its value.
type envList struct {
	names  []string
	values map[string]string
}

func newEnvList() *envList { return &envList{values: map[string]string{}} }

func (e *envList) set(name, value string) {
	if _, ok := e.values[name]; !ok {
		e.names = append(e.names, name)
	}
	e.values[name] = value
}

func (e *envList) lookup(name string) (string, bool) {
	v, ok := e.values[name]
	return v, ok
}

// objectSource fetches the ConfigMaps and Secrets that env and envFrom
// refer to. Missing objects are apierrors NotFound.
type objectSource interface {
	ConfigMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error)
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// envInput is what a container's environment is made from.
type envInput struct {
	pod       *corev1.Pod
	container *corev1.Container
	// services are the Services whose variables the container gets.
	services []*corev1.Service
	podIPs   []string
	hostIPs  []string
	// allocatable fills in resourceFieldRef limits the container does not
	// set.
	allocatable corev1.ResourceList
	objects     objectSource
}

// makeEnv builds a container's environment in upstream's order: service
// variables, then envFrom sources, then env entries (expanded against
// everything defined before them). An error names the missing source and
// becomes CreateContainerConfigError.
func makeEnv(ctx context.Context, in envInput) (*envList, error) {
	env := newEnvList()
	for _, kv := range serviceEnv(in.services) {
		env.set(kv[0], kv[1])
	}
	pod, c := in.pod, in.container
	cms := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	configMap := func(name string, optional *bool) (*corev1.ConfigMap, error) {
		if cm, ok := cms[name]; ok {
			return cm, nil
		}
		cm, err := in.objects.ConfigMap(ctx, pod.Namespace, name)
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			cms[name] = nil
			return nil, nil
		}
		if err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("configmap %q not found", name)
			}
			return nil, fmt.Errorf("configmap %q: %w", name, err)
		}
		cms[name] = cm
		return cm, nil
	}
	secret := func(name string, optional *bool) (*corev1.Secret, error) {
		if s, ok := secrets[name]; ok {
			return s, nil
		}
		s, err := in.objects.Secret(ctx, pod.Namespace, name)
		if apierrors.IsNotFound(err) && optional != nil && *optional {
			secrets[name] = nil
			return nil, nil
		}
		if err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("secret %q not found", name)
			}
			return nil, fmt.Errorf("secret %q: %w", name, err)
		}
		secrets[name] = s
		return s, nil
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := configMap(from.ConfigMapRef.Name, from.ConfigMapRef.Optional)
			if err != nil {
				return nil, err
			}
			if cm == nil {
				continue
			}
			for _, k := range sortedKeys(cm.Data) {
				if name := from.Prefix + k; validEnvName(name) {
					env.set(name, cm.Data[k])
				}
			}
		case from.SecretRef != nil:
			s, err := secret(from.SecretRef.Name, from.SecretRef.Optional)
			if err != nil {
				return nil, err
			}
			if s == nil {
				continue
			}
			for _, k := range sortedKeys(s.Data) {
				if name := from.Prefix + k; validEnvName(name) {
					env.set(name, string(s.Data[k]))
				}
			}
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env.set(e.Name, expand(e.Value, env.lookup))
			continue
		}
		vf := e.ValueFrom
		switch {
		case vf.FieldRef != nil:
			v, err := podField(pod, vf.FieldRef.FieldPath, in.podIPs, in.hostIPs)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			env.set(e.Name, v)
		case vf.ResourceFieldRef != nil:
			v, err := resourceField(pod, c, vf.ResourceFieldRef, in.allocatable)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			env.set(e.Name, v)
		case vf.ConfigMapKeyRef != nil:
			ref := vf.ConfigMapKeyRef
			cm, err := configMap(ref.Name, ref.Optional)
			if err != nil {
				return nil, err
			}
			if cm == nil {
				continue
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if b, ok := cm.BinaryData[ref.Key]; ok {
					v = string(b)
				} else if ref.Optional != nil && *ref.Optional {
					continue
				} else {
					return nil, fmt.Errorf("couldn't find key %s in ConfigMap %s/%s", ref.Key, pod.Namespace, ref.Name)
				}
			}
			env.set(e.Name, v)
		case vf.SecretKeyRef != nil:
			ref := vf.SecretKeyRef
			s, err := secret(ref.Name, ref.Optional)
			if err != nil {
				return nil, err
			}
			if s == nil {
				continue
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				if ref.Optional != nil && *ref.Optional {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
			}
			env.set(e.Name, string(v))
		default:
			return nil, fmt.Errorf("env %s: unsupported valueFrom", e.Name)
		}
	}
	return env, nil
}

func validEnvName(name string) bool { return len(validation.IsEnvVarName(name)) == 0 }

// podField resolves a downward API field path.
func podField(pod *corev1.Pod, fieldPath string, podIPs, hostIPs []string) (string, error) {
	first := func(ips []string) string {
		if len(ips) > 0 {
			return ips[0]
		}
		return ""
	}
	switch fieldPath {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return first(hostIPs), nil
	case "status.hostIPs":
		return strings.Join(hostIPs, ","), nil
	case "status.podIP":
		return first(podIPs), nil
	case "status.podIPs":
		return strings.Join(podIPs, ","), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	}
	for _, p := range []struct {
		prefix string
		m      map[string]string
	}{{"metadata.labels", pod.Labels}, {"metadata.annotations", pod.Annotations}} {
		if rest, ok := strings.CutPrefix(fieldPath, p.prefix+"['"); ok {
			if key, ok := strings.CutSuffix(rest, "']"); ok {
				return p.m[key], nil
			}
		}
	}
	return "", fmt.Errorf("unsupported fieldPath %q", fieldPath)
}

// formatMap renders labels or annotations as the downward API does:
// key="value" lines, sorted, values quoted.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(k + "=" + strconv.Quote(m[k]))
	}
	return b.String()
}

// resourceField resolves a resourceFieldRef: the container's request or
// limit divided by the divisor and rounded up; a limit the container does
// not set is the node's allocatable.
func resourceField(pod *corev1.Pod, self *corev1.Container, ref *corev1.ResourceFieldSelector, allocatable corev1.ResourceList) (string, error) {
	c := self
	if ref.ContainerName != "" && ref.ContainerName != self.Name {
		c = findContainer(pod, ref.ContainerName)
		if c == nil {
			return "", fmt.Errorf("resourceFieldRef: no container %q", ref.ContainerName)
		}
	}
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok || (kind != "limits" && kind != "requests") {
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	rn := corev1.ResourceName(name)
	var q resource.Quantity
	if kind == "limits" {
		q = c.Resources.Limits[rn]
		if q.IsZero() {
			q = allocatable[rn]
		}
	} else {
		q = c.Resources.Requests[rn]
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if rn == corev1.ResourceCPU {
		return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10), nil
	}
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10), nil
}

func findContainer(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == name {
			return &pod.Spec.InitContainers[i]
		}
	}
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

// serviceEnv makes the Docker-link style variables of services, as
// upstream does: <NAME>_SERVICE_HOST, <NAME>_SERVICE_PORT (first port),
// <NAME>_SERVICE_PORT_<PORTNAME>, <NAME>_PORT, and per port
// <NAME>_PORT_<port>_<PROTO>{,_PROTO,_PORT,_ADDR}. Services without a
// cluster IP are skipped.
func serviceEnv(services []*corev1.Service) [][2]string {
	var out [][2]string
	add := func(k, v string) { out = append(out, [2]string{k, v}) }
	for _, s := range services {
		ip := s.Spec.ClusterIP
		if ip == "" || ip == corev1.ClusterIPNone || len(s.Spec.Ports) == 0 {
			continue
		}
		prefix := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
		add(prefix+"_SERVICE_HOST", ip)
		add(prefix+"_SERVICE_PORT", strconv.Itoa(int(s.Spec.Ports[0].Port)))
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				add(prefix+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(p.Name, "-", "_")), strconv.Itoa(int(p.Port)))
			}
		}
		url := func(p corev1.ServicePort) string {
			return strings.ToLower(string(p.Protocol)) + "://" + net.JoinHostPort(ip, strconv.Itoa(int(p.Port)))
		}
		add(prefix+"_PORT", url(s.Spec.Ports[0]))
		for _, p := range s.Spec.Ports {
			port := strconv.Itoa(int(p.Port))
			proto := strings.ToUpper(string(p.Protocol))
			base := prefix + "_PORT_" + port + "_" + proto
			add(base, url(p))
			add(base+"_PROTO", strings.ToLower(proto))
			add(base+"_PORT", port)
			add(base+"_ADDR", ip)
		}
	}
	return out
}

// servicesForEnv picks the Services a pod's containers see: with
// enableServiceLinks (the default) every Service of the pod's namespace,
// and always the API server's "kubernetes" Service of the default
// namespace.
func servicesForEnv(pod *corev1.Pod, all []*corev1.Service) []*corev1.Service {
	links := pod.Spec.EnableServiceLinks == nil || *pod.Spec.EnableServiceLinks
	byName := map[string]*corev1.Service{}
	var names []string
	for _, s := range all {
		master := s.Namespace == metav1.NamespaceDefault && s.Name == "kubernetes"
		if !master && !(links && s.Namespace == pod.Namespace) {
			continue
		}
		if master && pod.Namespace != metav1.NamespaceDefault {
			if _, taken := byName[s.Name]; taken {
				continue
			}
		}
		if _, seen := byName[s.Name]; !seen {
			names = append(names, s.Name)
		}
		if prev, ok := byName[s.Name]; ok && prev.Namespace == pod.Namespace {
			continue // the pod's own namespace wins over the master service
		}
		byName[s.Name] = s
	}
	sortStrings(names)
	out := make([]*corev1.Service, 0, len(names))
	for _, n := range names {
		out = append(out, byName[n])
	}
	return out
}
