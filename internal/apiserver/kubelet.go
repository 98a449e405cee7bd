package apiserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// KubeletConfig says how the API server reaches node agents (for logs,
// exec, attach, port-forward and node proxy).
type KubeletConfig struct {
	// TLS carries the API server's client certificate for the kubelets
	// and how their serving certificates are checked.
	TLS *tls.Config
	// DefaultPort is used when a Node does not report its kubelet port;
	// 0 means 10250.
	DefaultPort int
}

// kubeletClient reaches kubelets.
type kubeletClient struct {
	cfg       KubeletConfig
	transport *http.Transport
}

func newKubeletClient(cfg KubeletConfig) *kubeletClient {
	if cfg.DefaultPort == 0 {
		cfg.DefaultPort = 10250
	}
	tc := cfg.TLS.Clone()
	// Streams are upgraded HTTP/1.1 connections.
	tc.NextProtos = []string{"http/1.1"}
	return &kubeletClient{cfg: cfg, transport: &http.Transport{
		TLSClientConfig:     tc,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 10,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// nodeAddress returns host:port of the kubelet on node.
func (k *kubeletClient) nodeAddress(node *corev1.Node) (string, error) {
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = k.cfg.DefaultPort
	}
	for _, want := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeHostName, corev1.NodeExternalIP} {
		for _, a := range node.Status.Addresses {
			if a.Type == want && a.Address != "" {
				return net.JoinHostPort(a.Address, strconv.Itoa(port)), nil
			}
		}
	}
	return "", fmt.Errorf("node %s reports no address", node.Name)
}

// kubeletURL returns the URL of path on the kubelet running pod.
func (q *request) kubeletURL(pod *corev1.Pod, path string, query url.Values) (*url.URL, error) {
	if q.s.kubelets == nil {
		return nil, apierrors.NewServiceUnavailable("this API server has no kubelet client configured")
	}
	if pod.Spec.NodeName == "" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	obj, ok := q.s.Lookup(corev1.SchemeGroupVersion.WithResource("nodes"), "", pod.Spec.NodeName)
	if !ok {
		return nil, apierrors.NewNotFound(corev1.Resource("nodes"), pod.Spec.NodeName)
	}
	addr, err := q.s.kubelets.nodeAddress(obj.(*corev1.Node))
	if err != nil {
		return nil, apierrors.NewServiceUnavailable(err.Error())
	}
	return &url.URL{Scheme: "https", Host: addr, Path: path, RawQuery: query.Encode()}, nil
}

// podForStreaming reads the pod a log or stream request is about.
func (q *request) podForStreaming() (*corev1.Pod, error) {
	obj, err := q.s.store.Get(q.ctx, q.ep.key(q.info.Namespace, q.info.Name))
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Pod), nil
}

// containerFor resolves the container a request names (or the only one),
// with upstream's messages.
func containerFor(pod *corev1.Pod, name string) (string, error) {
	if name == "" {
		if len(pod.Spec.Containers) == 1 {
			return pod.Spec.Containers[0].Name, nil
		}
		var names, inits []string
		for _, c := range pod.Spec.Containers {
			names = append(names, c.Name)
		}
		for _, c := range pod.Spec.InitContainers {
			inits = append(inits, c.Name)
		}
		msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", pod.Name, names)
		if len(inits) > 0 {
			msg += fmt.Sprintf(" or one of the init containers: %v", inits)
		}
		return "", apierrors.NewBadRequest(msg)
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			return name, nil
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == name {
			return name, nil
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return name, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
}

func containerStatus(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// logs serves pods/log by streaming the kubelet's containerLogs.
func (q *request) logs() {
	v := q.query()
	var errs field.ErrorList
	for _, p := range []string{"sinceSeconds", "tailLines", "limitBytes"} {
		if s := v.Get(p); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				q.fail(apierrors.NewBadRequest(fmt.Sprintf("invalid %s %q", p, s)))
				return
			}
			switch {
			case p == "sinceSeconds" && n < 1:
				errs = append(errs, field.Invalid(field.NewPath(p), n, "must be greater than 0"))
			case p != "sinceSeconds" && n < 0:
				errs = append(errs, field.Invalid(field.NewPath(p), n, "must be greater than or equal to 0"))
			}
		}
	}
	if v.Get("sinceSeconds") != "" && v.Get("sinceTime") != "" {
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	}
	if len(errs) > 0 {
		q.fail(apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("PodLogOptions").GroupKind(), q.info.Name, errs))
		return
	}
	pod, err := q.podForStreaming()
	if err != nil {
		q.fail(err)
		return
	}
	name, err := containerFor(pod, v.Get("container"))
	if err != nil {
		q.fail(err)
		return
	}
	previous := v.Get("previous") == "true"
	if st := containerStatus(pod, name); st != nil || !previous {
		switch {
		case previous && (st == nil || st.LastTerminationState.Terminated == nil):
			q.fail(apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", name, pod.Name)))
			return
		case !previous && (st == nil || (st.State.Waiting != nil && st.LastTerminationState.Terminated == nil)):
			reason := "ContainerCreating"
			if st != nil && st.State.Waiting != nil && st.State.Waiting.Reason != "" {
				reason = st.State.Waiting.Reason
			}
			q.fail(apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: %s", name, pod.Name, reason)))
			return
		}
	}
	query := url.Values{}
	for _, p := range []string{"follow", "previous", "sinceSeconds", "sinceTime", "timestamps", "tailLines", "limitBytes"} {
		if s := v.Get(p); s != "" {
			query.Set(p, s)
		}
	}
	loc, err := q.kubeletURL(pod, "/containerLogs/"+pod.Namespace+"/"+pod.Name+"/"+name, query)
	if err != nil {
		q.fail(err)
		return
	}
	req, err := http.NewRequestWithContext(q.ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		q.fail(err)
		return
	}
	resp, err := q.s.kubelets.transport.RoundTrip(req)
	if err != nil {
		q.fail(apierrors.NewServiceUnavailable(fmt.Sprintf("get logs from node %s: %v", pod.Spec.NodeName, err)))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		q.fail(apierrors.NewGenericServerResponse(resp.StatusCode, "get", corev1.Resource("pods/log"), pod.Name, strings.TrimSpace(string(body)), 0, false))
		return
	}
	q.w.Header().Set("Content-Type", "text/plain")
	q.w.Header().Set("Transfer-Encoding", "chunked")
	q.w.WriteHeader(http.StatusOK)
	flusher, _ := q.w.(http.Flusher)
	buf := make([]byte, 32*1024)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := q.w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return
		}
	}
}

// stream proxies exec, attach and portforward to the kubelet: the client's
// upgraded connection (SPDY or WebSocket) is spliced to the kubelet's.
func (q *request) stream(kind string) {
	pod, err := q.podForStreaming()
	if err != nil {
		q.fail(err)
		return
	}
	v := q.query()
	var path string
	switch kind {
	case "exec", "attach":
		name, err := containerFor(pod, v.Get("container"))
		if err != nil {
			q.fail(err)
			return
		}
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			q.fail(apierrors.NewBadRequest(fmt.Sprintf("cannot %s into a container in a completed pod; current phase is %s", kind, pod.Status.Phase)))
			return
		}
		if kind == "exec" && len(v["command"]) == 0 {
			q.fail(apierrors.NewBadRequest("you must specify at least 1 command"))
			return
		}
		v = kubeletStreamParams(v)
		path = "/" + kind + "/" + pod.Namespace + "/" + pod.Name + "/" + name
	case "portforward":
		path = "/portForward/" + pod.Namespace + "/" + pod.Name
	}
	loc, err := q.kubeletURL(pod, path, v)
	if err != nil {
		q.fail(err)
		return
	}
	h := proxy.NewUpgradeAwareHandler(loc, q.s.kubelets.transport, false, true, proxyResponder{q})
	h.UpgradeTransport = proxy.NewUpgradeRequestRoundTripper(q.s.kubelets.transport, q.s.kubelets.transport)
	h.ServeHTTP(q.w, q.r)
}

// kubeletStreamParams translates PodExecOptions / PodAttachOptions query
// parameters (stdin, stdout, stderr, tty, command) into the kubelet's
// (input, output, error, tty, command), as upstream's API server does.
func kubeletStreamParams(v url.Values) url.Values {
	out := url.Values{}
	for _, m := range [][2]string{{"stdin", "input"}, {"stdout", "output"}, {"stderr", "error"}, {"tty", "tty"}} {
		if b, _ := strconv.ParseBool(v.Get(m[0])); b {
			out.Set(m[1], "1")
		}
	}
	for _, c := range v["command"] {
		out.Add("command", c)
	}
	return out
}

type proxyResponder struct{ q *request }

func (p proxyResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	var se *apierrors.StatusError
	if errors.As(err, &se) {
		p.q.fail(err)
		return
	}
	p.q.fail(apierrors.NewServiceUnavailable(fmt.Sprintf("error proxying to the kubelet: %v", err)))
}
