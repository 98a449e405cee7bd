package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/proxy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// streamOptions are the query parameters of /exec and /attach, as the
// API server sends them (corev1.ExecStdinParam and friends): input,
// output, error and tty ("1" or "true"), and for exec the command, one
// "command" parameter per argument. stdin, stdout and stderr are accepted
// as other names of input, output and error.
type streamOptions struct {
	stdin, stdout, stderr, tty bool
	command                    []string
}

func parseStreamOptions(r *http.Request, exec bool) (streamOptions, error) {
	q := r.URL.Query()
	var o streamOptions
	for _, p := range []struct {
		names []string
		dst   *bool
	}{
		{[]string{corev1.ExecStdinParam, "stdin"}, &o.stdin},
		{[]string{corev1.ExecStdoutParam, "stdout"}, &o.stdout},
		{[]string{corev1.ExecStderrParam, "stderr"}, &o.stderr},
		{[]string{corev1.ExecTTYParam}, &o.tty},
	} {
		for _, name := range p.names {
			v := q.Get(name)
			if v == "" {
				continue
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return o, fmt.Errorf("%s=%q: not a boolean", name, v)
			}
			*p.dst = *p.dst || b
		}
	}
	if !o.stdin && !o.stdout && !o.stderr {
		return o, fmt.Errorf("you must specify at least one of stdin, stdout, stderr")
	}
	if o.tty && o.stderr {
		// With a terminal, stderr goes to the terminal too.
		o.stderr = false
	}
	if exec {
		o.command = q[corev1.ExecCommandParam]
		if len(o.command) == 0 {
			return o, fmt.Errorf("no command given: pass it as command=<arg> parameters")
		}
	}
	return o, nil
}

func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) { s.serveRemoteCommand(w, r, true) }
func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	s.serveRemoteCommand(w, r, false)
}

// serveRemoteCommand asks the runtime for an exec or attach URL and
// proxies the client's upgraded connection (SPDY or WebSocket) to it.
func (s *Server) serveRemoteCommand(w http.ResponseWriter, r *http.Request, exec bool) {
	ns, podName, name := r.PathValue("ns"), r.PathValue("pod"), r.PathValue("container")
	opts, err := parseStreamOptions(r, exec)
	if err != nil {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
		return
	}
	if _, ok := s.lookupPod(w, r); !ok {
		return
	}
	ref, err := s.cfg.Pods.Container(r.Context(), ns, podName, name, false)
	if err != nil {
		containerError(w, ns, podName, name, err)
		return
	}
	if !ref.Running {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest,
			fmt.Sprintf("container %q in pod %s/%s is not running", name, ns, podName))
		return
	}
	var streamURL string
	if exec {
		resp, err := s.cfg.Runtime.Exec(r.Context(), &runtimeapi.ExecRequest{
			ContainerId: ref.ID, Cmd: opts.command, Tty: opts.tty,
			Stdin: opts.stdin, Stdout: opts.stdout, Stderr: opts.stderr,
		})
		if err != nil {
			writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, fmt.Sprintf("exec in container %q: %v", name, err))
			return
		}
		streamURL = resp.GetUrl()
	} else {
		resp, err := s.cfg.Runtime.Attach(r.Context(), &runtimeapi.AttachRequest{
			ContainerId: ref.ID, Tty: opts.tty,
			Stdin: opts.stdin, Stdout: opts.stdout, Stderr: opts.stderr,
		})
		if err != nil {
			writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, fmt.Sprintf("attach to container %q: %v", name, err))
			return
		}
		streamURL = resp.GetUrl()
	}
	s.proxyStream(w, r, streamURL)
}

// servePortForward asks the runtime for a port-forward URL for the pod's
// sandbox and proxies the upgraded connection to it. The ports travel
// inside the stream (SPDY stream headers), as in Kubernetes.
func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	pod, ok := s.lookupPod(w, r)
	if !ok {
		return
	}
	resp, err := s.cfg.Runtime.ListPodSandbox(r.Context(), &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State:         &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
		LabelSelector: map[string]string{LabelPodUID: string(pod.UID)},
	}})
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, fmt.Sprintf("find the sandbox of pod %s/%s: %v", pod.Namespace, pod.Name, err))
		return
	}
	if len(resp.GetItems()) == 0 {
		writeStatus(w, http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("pod %s/%s has no running sandbox", pod.Namespace, pod.Name))
		return
	}
	pf, err := s.cfg.Runtime.PortForward(r.Context(), &runtimeapi.PortForwardRequest{PodSandboxId: resp.GetItems()[0].GetId()})
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, fmt.Sprintf("port-forward to pod %s/%s: %v", pod.Namespace, pod.Name, err))
		return
	}
	s.proxyStream(w, r, pf.GetUrl())
}

// LabelPodUID is the CRI sandbox label that carries the pod's UID, as
// the kubelet sets it.
const LabelPodUID = "io.kubernetes.pod.uid"

// proxyStream hands the client's upgrade request to the runtime's
// streaming server and copies bytes both ways until either side closes.
// Whatever protocol the client and the runtime agree on (SPDY 3.1 or
// WebSocket, channel.k8s.io v1 to v4, portforward.k8s.io) goes through
// untouched.
func (s *Server) proxyStream(w http.ResponseWriter, r *http.Request, streamURL string) {
	u, err := url.Parse(streamURL)
	if err != nil || u.Host == "" {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, fmt.Sprintf("runtime gave a bad streaming URL %q", streamURL))
		return
	}
	h := proxy.NewUpgradeAwareHandler(u, nil, false, true, streamResponder{s})
	h.ServeHTTP(w, r)
}

type streamResponder struct{ s *Server }

func (sr streamResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	sr.s.log.Info("stream proxy failed", "path", r.URL.Path, "err", err)
	writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
}
