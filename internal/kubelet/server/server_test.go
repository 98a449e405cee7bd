package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	utilexec "k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/skiff-sh/skiff/internal/auth/pki"
)

func newFixture(t testing.TB) *testServer {
	t.Helper()
	pods := &fakePods{
		pods: []*corev1.Pod{testPod("web", "uid-web"), testPod("db", "uid-db")},
		containers: map[string]Container{
			"default/web/main": {ID: "ctr-main", Running: true},
			"default/web/done": {ID: "ctr-done", Running: false},
		},
	}
	rt := &fakeRuntime{
		stream: newStreamServer(t),
		states: map[string]runtimeapi.ContainerState{"ctr-main": runtimeapi.ContainerState_CONTAINER_RUNNING},
		sandboxes: []*runtimeapi.PodSandbox{
			{Id: "sb-web", State: runtimeapi.PodSandboxState_SANDBOX_READY, Labels: map[string]string{LabelPodUID: "uid-web"},
				Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "uid-web"}},
		},
	}
	return startServer(t, pods, rt)
}

func TestServer_Authentication(t *testing.T) {
	ts := newFixture(t)
	tests := []struct {
		name string
		cert func() *pki.KeyPair
		path string
		want int
	}{
		{"API server's kubelet client", func() *pki.KeyPair { return ts.pki.client(t, ts.pki.ca, DefaultAPIServerUser) }, "/pods", http.StatusOK},
		{"system:masters", func() *pki.KeyPair { return ts.pki.client(t, ts.pki.ca, "someone", "system:masters") }, "/pods", http.StatusOK},
		{"node identity is forbidden", func() *pki.KeyPair { return ts.pki.client(t, ts.pki.ca, "system:node:node-1", "system:nodes") }, "/pods", http.StatusForbidden},
		{"other user is forbidden", func() *pki.KeyPair { return ts.pki.client(t, ts.pki.ca, "alice") }, "/stats/summary", http.StatusForbidden},
		{"certificate of another CA", func() *pki.KeyPair { return ts.pki.client(t, ts.pki.other, DefaultAPIServerUser, "system:masters") }, "/pods", http.StatusUnauthorized},
		{"no certificate", func() *pki.KeyPair { return nil }, "/pods", http.StatusUnauthorized},
		{"no certificate on exec", func() *pki.KeyPair { return nil }, "/exec/default/web/main?command=echo&stdout=1", http.StatusUnauthorized},
		{"no certificate on healthz", func() *pki.KeyPair { return nil }, "/healthz", http.StatusOK},
		{"certificate of another CA on healthz", func() *pki.KeyPair { return ts.pki.client(t, ts.pki.other, "x") }, "/healthz", http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := ts.httpClient(t, tc.cert()).Get(ts.url + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
			}
			if tc.want != http.StatusOK {
				var st metav1.Status
				if err := json.Unmarshal(body, &st); err != nil || st.Kind != "Status" || int(st.Code) != tc.want {
					t.Errorf("body is not a Status with code %d: %s", tc.want, body)
				}
			}
		})
	}
}

func TestServer_Pods(t *testing.T) {
	ts := newFixture(t)
	code, body := ts.get(t, "/pods")
	if code != http.StatusOK {
		t.Fatalf("status %d: %s", code, body)
	}
	var list corev1.PodList
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Items {
		names = append(names, p.Name)
	}
	if diff := cmp.Diff([]string{"db", "web"}, names); diff != "" || list.Kind != "PodList" {
		t.Errorf("pods (-want +got):\n%s (kind %q)", diff, list.Kind)
	}
}

func TestServer_BadRequests(t *testing.T) {
	ts := newFixture(t)
	tests := []struct {
		name, path string
		want       int
	}{
		{"unknown pod", "/containerLogs/default/nope/main", http.StatusNotFound},
		{"unknown container", "/containerLogs/default/web/nope", http.StatusNotFound},
		{"bad tailLines", "/containerLogs/default/web/main?tailLines=x", http.StatusBadRequest},
		{"negative tailLines", "/containerLogs/default/web/main?tailLines=-1", http.StatusBadRequest},
		{"bad sinceTime", "/containerLogs/default/web/main?sinceTime=yesterday", http.StatusBadRequest},
		{"since twice", "/containerLogs/default/web/main?sinceTime=2026-01-01T00:00:00Z&sinceSeconds=5", http.StatusBadRequest},
		{"bad stream", "/containerLogs/default/web/main?stream=both", http.StatusBadRequest},
		{"exec without command", "/exec/default/web/main?stdout=1", http.StatusBadRequest},
		{"exec without streams", "/exec/default/web/main?command=echo", http.StatusBadRequest},
		{"exec bad boolean", "/exec/default/web/main?command=echo&stdout=maybe", http.StatusBadRequest},
		{"exec in stopped container", "/exec/default/web/done?command=echo&stdout=1", http.StatusBadRequest},
		{"exec with wrong UID", "/exec/default/web/uid-other/main?command=echo&stdout=1", http.StatusNotFound},
		{"port-forward to pod without sandbox", "/portForward/default/db", http.StatusBadRequest},
		{"exec without upgrade", "/exec/default/web/main?command=echo&stdout=1", http.StatusInternalServerError},
		{"unknown path", "/nothing", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := ts.get(t, tc.path)
			if code != tc.want {
				t.Fatalf("status %d, want %d: %s", code, tc.want, body)
			}
		})
	}
}

// execCase runs one remote command through the server with an executor.
type execCase struct {
	name       string
	path       string
	stdin      string
	tty        bool
	wantOut    string
	wantErrOut string
	wantExit   int
}

func runExec(t *testing.T, ts *testServer, newExec func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error), tc execCase) {
	t.Helper()
	u, err := url.Parse(ts.url + tc.path)
	if err != nil {
		t.Fatal(err)
	}
	ex, err := newExec(ts.restConfig(t, DefaultAPIServerUser), u)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	opts := remotecommand.StreamOptions{Stdout: &out, Tty: tc.tty}
	if strings.Contains(tc.path, "stderr=1") || strings.Contains(tc.path, "error=1") {
		opts.Stderr = &errOut
	}
	if strings.Contains(tc.path, "stdin=1") || strings.Contains(tc.path, "input=1") {
		opts.Stdin = strings.NewReader(tc.stdin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = ex.StreamWithContext(ctx, opts)
	exit := 0
	var ce utilexec.CodeExitError
	if errors.As(err, &ce) {
		exit = ce.Code
	} else if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if exit != tc.wantExit {
		t.Errorf("exit %d, want %d", exit, tc.wantExit)
	}
	if out.String() != tc.wantOut || errOut.String() != tc.wantErrOut {
		t.Errorf("stdout %q stderr %q, want %q %q", out.String(), errOut.String(), tc.wantOut, tc.wantErrOut)
	}
}

func TestServer_ExecAndAttach(t *testing.T) {
	ts := newFixture(t)
	cases := []execCase{
		{name: "exec echo", path: "/exec/default/web/main?command=echo&command=hello&command=world&stdout=1&stderr=1", wantOut: "hello world\n"},
		{name: "exec with UID in the path", path: "/exec/default/web/uid-web/main?command=echo&command=hi&stdout=1", wantOut: "hi\n"},
		{name: "exec with the API server's parameter names", path: "/exec/default/web/main?command=cat&input=1&output=1&error=1", stdin: "piped", wantOut: "piped"},
		{name: "exec stdin", path: "/exec/default/web/main?command=cat&stdin=1&stdout=1&stderr=1", stdin: "from stdin", wantOut: "from stdin"},
		{name: "exec exit code and stderr", path: "/exec/default/web/main?command=fail&stdout=1&stderr=1", wantErrOut: "failing in ctr-main\n", wantExit: 3},
		{name: "attach", path: "/attach/default/web/main?stdin=1&stdout=1&stderr=1", stdin: "typed", wantOut: "attached to ctr-main\ntyped"},
	}
	executors := []struct {
		name string
		new  func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error)
	}{
		{"SPDY", func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
			return remotecommand.NewSPDYExecutor(cfg, "POST", u)
		}},
		{"WebSocket v4", func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutorForProtocols(cfg, "GET", u.String(), "v4.channel.k8s.io")
		}},
		{"kubectl's WebSocket v5 falling back to SPDY", func(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
			ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
			if err != nil {
				return nil, err
			}
			sp, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
			if err != nil {
				return nil, err
			}
			return remotecommand.NewFallbackExecutor(ws, sp, func(err error) bool {
				return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
			})
		}},
	}
	for _, ex := range executors {
		for _, tc := range cases {
			if ex.name == "WebSocket v4" && tc.stdin != "" {
				// The v4 WebSocket protocol cannot half-close stdin: a
				// command that reads to EOF never ends. That is why v5
				// exists; upstream's kubelet has the same limit.
				continue
			}
			t.Run(ex.name+"/"+tc.name, func(t *testing.T) { runExec(t, ts, ex.new, tc) })
		}
	}
}

func TestServer_PortForward(t *testing.T) {
	ts := newFixture(t)
	cfg := ts.restConfig(t, DefaultAPIServerUser)
	for _, path := range []string{"/portForward/default/web", "/portForward/default/web/uid-web"} {
		t.Run(path, func(t *testing.T) {
			u, _ := url.Parse(ts.url + path)
			tr, upgrader, err := spdy.RoundTripperFor(cfg)
			if err != nil {
				t.Fatal(err)
			}
			dialer := spdy.NewDialer(upgrader, &http.Client{Transport: tr}, "POST", u)
			conn, proto, err := dialer.Dial(portforward.PortForwardProtocolV1Name)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if proto != portforward.PortForwardProtocolV1Name {
				t.Fatalf("protocol %q", proto)
			}
			for _, port := range []int{8080, 9090} {
				h := http.Header{}
				h.Set(corev1.StreamType, corev1.StreamTypeError)
				h.Set(corev1.PortHeader, fmt.Sprint(port))
				h.Set(corev1.PortForwardRequestIDHeader, fmt.Sprint(port))
				errStream, err := conn.CreateStream(h)
				if err != nil {
					t.Fatal(err)
				}
				errStream.Close()
				h.Set(corev1.StreamType, corev1.StreamTypeData)
				data, err := conn.CreateStream(h)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := data.Write([]byte("hello")); err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(data)
				if err != nil {
					t.Fatal(err)
				}
				if want := fmt.Sprintf("sb-web:%d:hello", port); string(got) != want {
					t.Errorf("read %q, want %q", got, want)
				}
				if msg, _ := io.ReadAll(errStream); len(msg) > 0 {
					t.Errorf("error stream: %s", msg)
				}
			}
		})
	}
}

// TestServer_PortForwardAsKubectl forwards a port the way kubectl 1.37
// does: WebSocket tunnelling first, SPDY when the upgrade fails.
func TestServer_PortForwardAsKubectl(t *testing.T) {
	ts := newFixture(t)
	cfg := ts.restConfig(t, DefaultAPIServerUser)
	u, _ := url.Parse(ts.url + "/portForward/default/web")
	tr, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	spdyDialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: tr}, "POST", u)
	wsDialer, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dialer := portforward.NewFallbackDialerForStreaming(wsDialer, spdyDialer, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	stop, ready := make(chan struct{}), make(chan struct{})
	fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:7070"}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- fw.ForwardPorts() }()
	defer close(stop)
	select {
	case <-ready:
	case err := <-errc:
		t.Fatalf("port-forward: %v", err)
	}
	ports, err := fw.GetPorts()
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	if string(got) != "sb-web:7070:hello" {
		t.Errorf("read %q", got)
	}
}
