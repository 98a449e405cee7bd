package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	criremote "k8s.io/cri-streaming/pkg/streaming/remotecommand"

	"github.com/skiff-sh/skiff/internal/testserver"
)

// echoExecutor answers an exec with its command line and whatever stdin
// said.
type echoExecutor struct{}

func (echoExecutor) ExecInContainer(ctx context.Context, name, uid, container string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan criremote.TerminalSize, timeout time.Duration) error {
	fmt.Fprintf(out, "%s/%s ran %s\n", name, container, strings.Join(cmd, " "))
	if in != nil {
		io.Copy(out, in)
	}
	return nil
}

// fakeKubelet serves the kubelet paths the API server proxies to and
// records who called.
// podUID is the UID the fake kubelet reports for default/web; the test
// sets it once the pod exists.
var podUID string

func fakeKubelet(t *testing.T) (*httptest.Server, *[]string) {
	var seen []string
	mux := http.NewServeMux()
	mux.HandleFunc("/containerLogs/", func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.PeerCertificates) > 0 {
			seen = append(seen, r.TLS.PeerCertificates[0].Subject.CommonName)
		}
		fmt.Fprintf(w, "log of %s tail=%s\n", r.URL.Path, r.URL.Query().Get("tailLines"))
	})
	mux.HandleFunc("/stats/summary", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"node":{"nodeName":"n1","cpu":{"time":"2026-01-01T00:00:00Z","usageNanoCores":250000000},"memory":{"time":"2026-01-01T00:00:00Z","workingSetBytes":104857600}},
		  "pods":[{"podRef":{"name":"web","namespace":"default","uid":"`+podUID+`"},"containers":[{"name":"app","cpu":{"time":"2026-01-01T00:00:00Z","usageNanoCores":5000000},"memory":{"time":"2026-01-01T00:00:00Z","workingSetBytes":2097152}}]}]}`)
	})
	mux.HandleFunc("/exec/", func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/") // exec ns pod container
		opts, err := criremote.NewOptions(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		criremote.ServeExec(w, r, echoExecutor{}, parts[2], "", parts[3], r.URL.Query()["command"], opts, time.Minute, 30*time.Second, []string{"v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io", "channel.k8s.io"})
	})
	ts := httptest.NewUnstartedServer(mux)
	ts.TLS = &tlsConfigRequestingClientCerts
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts, &seen
}

func TestServer_ProxiesLogsAndExecToTheKubelet(t *testing.T) {
	ts := testserver.Start(t)
	c := kubernetes.NewForConfigOrDie(ts.Config)
	ctx := context.Background()
	kl, seen := fakeKubelet(t)
	_, portStr, _ := net.SplitHostPort(kl.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
	}}
	if _, err := c.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "app", Image: "img"}}},
	}
	pod, err := c.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	podUID = string(pod.UID)
	// Logs of a container that has not started are refused as upstream.
	// (Stream, as kubectl logs does: DoRaw hides the Status message.)
	_, err = c.CoreV1().Pods("default").GetLogs("web", &corev1.PodLogOptions{}).Stream(ctx)
	if err == nil || !strings.Contains(err.Error(), `container "app" in pod "web" is waiting to start: ContainerCreating`) {
		t.Fatalf("logs before start: %v", err)
	}
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
	pod.Status.Phase = corev1.PodRunning
	if _, err := c.CoreV1().Pods("default").UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	tail := int64(5)
	logs, err := c.CoreV1().Pods("default").GetLogs("web", &corev1.PodLogOptions{TailLines: &tail}).DoRaw(ctx)
	if err != nil || string(logs) != "log of /containerLogs/default/web/app tail=5\n" {
		t.Fatalf("logs: %q %v", logs, err)
	}
	if len(*seen) == 0 || (*seen)[0] != "kube-apiserver-kubelet-client" {
		t.Fatalf("the kubelet saw client certificate %v", *seen)
	}

	req := c.CoreV1().RESTClient().Post().Resource("pods").Namespace("default").Name("web").SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: "app", Command: []string{"echo", "hi"}, Stdin: true, Stdout: true}, scheme.ParameterCodec)
	spdy, err := remotecommand.NewSPDYExecutor(ts.Config, "POST", req.URL())
	if err != nil {
		t.Fatal(err)
	}
	ws, err := remotecommand.NewWebSocketExecutor(ts.Config, "GET", req.URL().String())
	if err != nil {
		t.Fatal(err)
	}
	// kubectl 1.37 tries WebSocket first and falls back to SPDY.
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: strings.NewReader("from stdin"), Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "web/app ran echo hi\nfrom stdin" {
		t.Fatalf("exec output %q", out.String())
	}

	// kubectl top reads metrics.k8s.io, served from the kubelets' summaries.
	nodes, err := c.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/nodes").DoRaw(ctx)
	if err != nil || !strings.Contains(string(nodes), `"cpu":"250m"`) || !strings.Contains(string(nodes), `"memory":"100Mi"`) {
		t.Fatalf("node metrics: %s %v", nodes, err)
	}
	pods, err := c.CoreV1().RESTClient().Get().AbsPath("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods").DoRaw(ctx)
	if err != nil || !strings.Contains(string(pods), `"name":"app"`) || !strings.Contains(string(pods), `"cpu":"5m"`) {
		t.Fatalf("pod metrics: %s %v", pods, err)
	}
	groups, _ := c.Discovery().ServerGroups()
	found := false
	for _, g := range groups.Groups {
		found = found || g.Name == "metrics.k8s.io"
	}
	if !found {
		t.Fatal("metrics.k8s.io is not in discovery")
	}
}
