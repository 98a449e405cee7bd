package agent_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/transport/spdy"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/streaming/pkg/httpstream"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/auth/pki"
	"github.com/skiff-sh/skiff/internal/kubelet/server"
	"github.com/skiff-sh/skiff/internal/kubelet/volume"
	"github.com/skiff-sh/skiff/internal/sys/cgroups"
	"github.com/skiff-sh/skiff/internal/sys/mount"
	"github.com/skiff-sh/skiff/internal/sys/ns"
	"github.com/skiff-sh/skiff/internal/testserver"
	"github.com/skiff-sh/skiff/internal/testutil"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

func randomName(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { recover() }()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// node is an agent against a test API server, with its pod network in a
// network namespace of its own and its pods under a cgroup parent of
// its own.
type node struct {
	agent   *agent.Agent
	client  kubernetes.Interface
	kubelet *rest.Config // an API-server-like client of the kubelet API
	// apiConfig is an admin client of the API server.
	apiConfig *rest.Config
	// cfg starts the agent again after a stop; cancel and done belong
	// to the running one.
	cfg    agent.Config
	cancel func()
	done   chan error
	image  string
	root   string
}

// cluster is a test API server with the toolbox image in a registry.
type cluster struct {
	ts     *testserver.Server
	client kubernetes.Interface
	image  string
	// kubeletClient is the API server's kubelet client certificate.
	kubeletClient *pki.KeyPair
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	testutil.RequireRoot(t)
	ts := testserver.Start(t)
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	bundle, err := pki.Ensure(pki.Config{Dir: ts.DataDir + "/tls"})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := bundle.CA.IssueClient(server.DefaultAPIServerUser, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{
		ts: ts, client: kubernetes.NewForConfigOrDie(ts.Config),
		image: testimage.Toolbox(t).Push(t, reg, "toolbox:1"), kubeletClient: kp,
	}
}

// pinNetNS makes a network namespace for a node's pod network.
func pinNetNS(t *testing.T) string {
	t.Helper()
	paths, err := ns.Pin(t.TempDir(), []ns.Type{ns.Net}, ns.LoopbackUp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Unpin(paths[ns.Net]) })
	return paths[ns.Net]
}

// startNode runs one node with its pod network in its own namespace.
func startNode(t *testing.T) *node {
	c := startCluster(t)
	return c.startNode(t, pinNetNS(t), "10.42.7.0/24", net.IPv4(127, 0, 0, 1))
}

// startNode runs one node; edits change its Config before it starts.
func (c *cluster) startNode(t *testing.T, netns, podCIDR string, nodeIP net.IP, edits ...func(*agent.Config)) *node {
	t.Helper()
	root, logs := t.TempDir(), t.TempDir()
	parent := randomName("skiff-test-agent-")
	n := &node{client: c.client, image: c.image, root: root, apiConfig: c.ts.Config, cfg: agent.Config{
		NodeName: randomName("node-"), Client: c.ts.Config, RootDir: root, PodLogsDir: logs,
		CgroupParent: parent, PodCIDR: podCIDR, PodNetworkNetNS: netns,
		NodeIP: nodeIP, KubeletAddress: "127.0.0.1", KubeletPort: freePort(t),
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}}
	for _, edit := range edits {
		edit(&n.cfg)
	}
	t.Cleanup(func() { n.cleanup(t, root, parent) })
	n.start(t)
	n.kubelet = &rest.Config{
		Host: "https://" + n.agent.KubeletAddr().String(),
		// The kubelet's certificate is self-signed here.
		TLSClientConfig: rest.TLSClientConfig{Insecure: true, CertData: c.kubeletClient.CertPEM, KeyData: c.kubeletClient.KeyPEM},
	}
	return n
}

// start runs the node's agent and waits until it is ready.
func (n *node) start(t *testing.T) {
	t.Helper()
	a, err := agent.New(n.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	n.agent, n.cancel, n.done = a, cancel, done
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("agent not ready after 60s")
	}
}

// stop stops the node's agent; its containers keep running.
func (n *node) stop(t *testing.T) {
	t.Helper()
	if n.cancel == nil {
		return
	}
	n.cancel()
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("agent: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("agent did not stop")
	}
	n.cancel = nil
}

// cleanup deletes every pod, waits for the agent to tear them down, stops
// the agent and checks nothing is left: sandboxes, mounts, cgroups.
func (n *node) cleanup(t *testing.T, root, parent string) {
	ctx := context.Background()
	pods, _ := n.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	grace := int64(1)
	for _, p := range pods.Items {
		n.client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		pods, err := n.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Whatever the kubelet did not remove goes through the CRI and the
	// volume manager directly, so that the test leaves nothing behind.
	n.removeLeftovers(t, root)
	n.stop(t)
	mounts, _ := mount.Self()
	if left := mount.Under(mounts, root); len(left) > 0 {
		t.Errorf("mounts left under the agent's root: %v", left)
		mount.UnmountAll(root)
	}
	if cg, err := cgroups.New(cgroups.Config{Parent: parent}); err == nil {
		if c, err := cg.Open(""); err == nil {
			kctx, kcancel := context.WithTimeout(ctx, 10*time.Second)
			c.Kill(kctx)
			if err := c.Remove(kctx); err != nil {
				t.Errorf("cleanup: cgroup %s: %v", parent, err)
			}
			kcancel()
		}
	}
}

func (n *node) removeLeftovers(t *testing.T, root string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+n.agent.CRISocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	defer conn.Close()
	rt := runtimeapi.NewRuntimeServiceClient(conn)
	resp, err := rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	for _, sb := range resp.GetItems() {
		t.Logf("cleanup: removing sandbox %s of pod %s/%s the kubelet left", sb.Id, sb.GetMetadata().GetNamespace(), sb.GetMetadata().GetName())
		rt.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id})
		if _, err := rt.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			t.Errorf("cleanup: remove sandbox %s: %v", sb.Id, err)
		}
	}
	vm, err := volume.New(volume.Config{RootDir: root})
	if err != nil {
		t.Errorf("cleanup: %v", err)
		return
	}
	uids, _ := vm.PodsOnDisk()
	for _, uid := range uids {
		if err := vm.TearDown(ctx, uid); err != nil {
			t.Errorf("cleanup: volumes of pod %s: %v", uid, err)
		}
	}
}

func (n *node) waitRunning(t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last *corev1.Pod
	for time.Now().Before(deadline) {
		p, err := n.client.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil {
			last = p
			if p.Status.Phase == corev1.PodRunning {
				ready := true
				for _, cs := range p.Status.ContainerStatuses {
					ready = ready && cs.State.Running != nil
				}
				if ready {
					return p
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("pod %s/%s not running: %+v", ns, name, last.Status)
	return nil
}

// exec runs a command in a container through the kubelet API.
func (n *node) exec(t *testing.T, newExec func(*rest.Config, *url.URL) (remotecommand.Executor, error), ns, pod, ctr string, cmd ...string) (string, string, error) {
	t.Helper()
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "command": cmd}
	u, _ := url.Parse(fmt.Sprintf("%s/exec/%s/%s/%s?%s", n.kubelet.Host, ns, pod, ctr, q.Encode()))
	ex, err := newExec(n.kubelet, u)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut})
	return out.String(), errOut.String(), err
}

func spdyExec(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
	return remotecommand.NewSPDYExecutor(cfg, "POST", u)
}

// kubectlExec is what kubectl 1.37 does: WebSocket v5 first, SPDY when
// the upgrade fails.
func kubectlExec(cfg *rest.Config, u *url.URL) (remotecommand.Executor, error) {
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
}

func TestAgent_RunsPodWithVolumesAndServesTheKubeletAPI(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	const nsName = "default"
	mustCreate := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := n.client.CoreV1().ConfigMaps(nsName).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "app"}, Data: map[string]string{"app.conf": "color=blue\n"}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = n.client.CoreV1().Secrets(nsName).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, StringData: map[string]string{"password": "hunter2"}}, metav1.CreateOptions{})
	mustCreate(err)
	_, err = n.client.CoreV1().ServiceAccounts(nsName).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "builder"}}, metav1.CreateOptions{})
	mustCreate(err)
	expiry := int64(3600)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			NodeName:           n.agent.NodeName(),
			ServiceAccountName: "builder",
			Containers: []corev1.Container{{
				Name: "server", Image: n.image, Command: []string{"serve-tcp", "8080"},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: "/etc/app"},
					{Name: "secret", MountPath: "/etc/secret"},
					{Name: "projected", MountPath: "/var/run/info"},
					{Name: "scratch", MountPath: "/scratch"},
					{Name: "config", MountPath: "/app.conf", SubPath: "app.conf"},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}},
				{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: new(int32(0o400))}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}},
				{Name: "projected", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "vault", ExpirationSeconds: &expiry}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
					}}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}, Items: []corev1.KeyToPath{{Key: "app.conf", Path: "conf/app.conf"}}}},
				}}}},
			},
		},
	}
	_, err = n.client.CoreV1().Pods(nsName).Create(ctx, pod, metav1.CreateOptions{})
	mustCreate(err)
	running := n.waitRunning(t, nsName, "web")
	if running.Status.PodIP == "" || !strings.HasPrefix(running.Status.PodIP, "10.42.7.") {
		t.Errorf("pod IP %q, want one from 10.42.7.0/24", running.Status.PodIP)
	}

	t.Run("volumes have the right content inside the container", func(t *testing.T) {
		tests := []struct {
			path, want string
		}{
			{"/etc/app/app.conf", "color=blue\n"},
			{"/app.conf", "color=blue\n"},
			{"/etc/secret/password", "hunter2"},
			{"/var/run/info/labels", `app="web"`},
			{"/var/run/info/conf/app.conf", "color=blue\n"},
		}
		for _, tc := range tests {
			out, errOut, err := n.exec(t, spdyExec, nsName, "web", "server", "cat", tc.path)
			if err != nil || out != tc.want {
				t.Errorf("cat %s = %q (stderr %q, err %v), want %q", tc.path, out, errOut, err, tc.want)
			}
		}
		out, _, err := n.exec(t, spdyExec, nsName, "web", "server", "cat", "/var/run/info/token")
		if err != nil || strings.Count(out, ".") != 2 {
			t.Errorf("token = %q, %v: want a JWT", out, err)
		}
		out, _, err = n.exec(t, spdyExec, nsName, "web", "server", "stat", "/etc/secret/..data/password")
		if err != nil || !strings.Contains(out, " 0400 ") {
			t.Errorf("stat of the secret file: %q, %v; want mode 0400", out, err)
		}
		out, _, err = n.exec(t, spdyExec, nsName, "web", "server", "mounts")
		if err != nil || !strings.Contains(out, "/scratch") || !strings.Contains(out, "tmpfs") {
			t.Errorf("mounts: %q, %v; want a tmpfs at /scratch", out, err)
		}
	})

	t.Run("configmap changes reach the running pod", func(t *testing.T) {
		cm, err := n.client.CoreV1().ConfigMaps(nsName).Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["app.conf"] = "color=green\n"
		if _, err := n.client.CoreV1().ConfigMaps(nsName).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			out, _, _ := n.exec(t, spdyExec, nsName, "web", "server", "cat", "/etc/app/app.conf")
			if out == "color=green\n" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("volume still has %q", out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	t.Run("exec as kubectl does", func(t *testing.T) {
		out, _, err := n.exec(t, kubectlExec, nsName, "web", "server", "echo", "hello", "there")
		if err != nil || out != "hello there\n" {
			t.Errorf("echo = %q, %v", out, err)
		}
		_, _, err = n.exec(t, kubectlExec, nsName, "web", "server", "exit", "7")
		if err == nil || !strings.Contains(err.Error(), "7") {
			t.Errorf("exit 7: err %v", err)
		}
	})

	t.Run("logs", func(t *testing.T) {
		hc, err := rest.HTTPClientFor(n.kubelet)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(n.kubelet.Host + "/containerLogs/default/web/server?tailLines=10")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "serve-tcp: listening on") {
			t.Errorf("logs: %d %q", resp.StatusCode, body)
		}
	})

	t.Run("port-forward", func(t *testing.T) {
		u, _ := url.Parse(n.kubelet.Host + "/portForward/default/web")
		tr, upgrader, err := spdy.RoundTripperFor(n.kubelet)
		if err != nil {
			t.Fatal(err)
		}
		dialer := spdy.NewDialer(upgrader, &http.Client{Transport: tr}, "POST", u)
		stop, ready := make(chan struct{}), make(chan struct{})
		fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
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
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping\n" {
			t.Errorf("echo through port-forward: %q, %v", buf, err)
		}
	})

	t.Run("logs, exec and port-forward through the API server as kubectl does", func(t *testing.T) {
		logs, err := n.client.CoreV1().Pods(nsName).GetLogs("web", &corev1.PodLogOptions{Container: "server", Timestamps: true}).DoRaw(ctx)
		if err != nil || !strings.Contains(string(logs), "serve-tcp: listening on") {
			t.Errorf("pods/log: %q, %v", logs, err)
		}
		req := n.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(nsName).Name("web").SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: "server", Command: []string{"cat", "/etc/secret/password"}, Stdout: true, Stderr: true}, scheme.ParameterCodec)
		ex, err := kubectlExec(n.apiConfig, req.URL())
		if err != nil {
			t.Fatal(err)
		}
		var out, errOut bytes.Buffer
		if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut}); err != nil || out.String() != "hunter2" {
			t.Errorf("pods/exec: %q %q %v", out.String(), errOut.String(), err)
		}

		pfURL := n.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(nsName).Name("web").SubResource("portforward").URL()
		tr, upgrader, err := spdy.RoundTripperFor(n.apiConfig)
		if err != nil {
			t.Fatal(err)
		}
		spdyDialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: tr}, "POST", pfURL)
		wsDialer, err := portforward.NewSPDYOverWebsocketDialerForStreaming(pfURL, n.apiConfig)
		if err != nil {
			t.Fatal(err)
		}
		dialer := portforward.NewFallbackDialerForStreaming(wsDialer, spdyDialer, func(err error) bool {
			return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
		})
		stop, ready := make(chan struct{}), make(chan struct{})
		fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:8080"}, stop, ready, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- fw.ForwardPorts() }()
		defer close(stop)
		select {
		case <-ready:
		case err := <-errc:
			t.Fatalf("pods/portforward: %v", err)
		}
		ports, err := fw.GetPorts()
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0].Local), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write([]byte("via api\n"))
		buf := make([]byte, 8)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "via api\n" {
			t.Errorf("echo through pods/portforward: %q, %v", buf, err)
		}
	})

	t.Run("pod metrics for kubectl top", func(t *testing.T) {
		mc, err := metricsclient.NewForConfig(n.apiConfig)
		if err != nil {
			t.Fatal(err)
		}
		// CPU rates need two readings; the kubelet API reads stats every
		// 10 seconds.
		deadline := time.Now().Add(45 * time.Second)
		for {
			pm, err := mc.MetricsV1beta1().PodMetricses(nsName).Get(ctx, "web", metav1.GetOptions{})
			if err == nil && len(pm.Containers) == 1 {
				if mem := pm.Containers[0].Usage.Memory(); mem.IsZero() {
					t.Errorf("container memory usage is zero: %+v", pm.Containers[0].Usage)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no pod metrics: %v %+v", err, pm)
			}
			time.Sleep(time.Second)
		}
		nm, err := mc.MetricsV1beta1().NodeMetricses().Get(ctx, n.agent.NodeName(), metav1.GetOptions{})
		if err != nil || nm.Usage.Memory().IsZero() {
			t.Errorf("node metrics: %+v, %v", nm, err)
		}
	})

	t.Run("attach", func(t *testing.T) {
		// One pod per way in: the runtime closes a container's stdin when
		// an attach with stdin ends, even without stdinOnce (containerd
		// keeps it open), so the echo program ends after the first.
		newEcho := func(name string) {
			echo := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: corev1.PodSpec{NodeName: n.agent.NodeName(), Containers: []corev1.Container{{
					Name: "echo", Image: n.image, Command: []string{"read-stdin"}, Stdin: true,
				}}},
			}
			if _, err := n.client.CoreV1().Pods(nsName).Create(ctx, echo, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			n.waitRunning(t, nsName, name)
		}
		newEcho("echo-kubelet")
		newEcho("echo-api")
		for _, via := range []struct {
			name string
			url  *url.URL
			cfg  *rest.Config
		}{
			{"kubelet API", mustURL(t, n.kubelet.Host+"/attach/default/echo-kubelet/echo?input=1&output=1"), n.kubelet},
			{"API server", n.client.CoreV1().RESTClient().Post().Resource("pods").Namespace(nsName).Name("echo-api").SubResource("attach").
				VersionedParams(&corev1.PodAttachOptions{Container: "echo", Stdin: true, Stdout: true}, scheme.ParameterCodec).URL(), n.apiConfig},
		} {
			t.Run(via.name, func(t *testing.T) {
				ex, err := kubectlExec(via.cfg, via.url)
				if err != nil {
					t.Fatal(err)
				}
				actx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				inR, inW := io.Pipe()
				outR, outW := io.Pipe()
				defer inW.Close()
				defer outR.Close()
				go ex.StreamWithContext(actx, remotecommand.StreamOptions{Stdin: inR, Stdout: outW})
				go inW.Write([]byte("over " + via.name + "\n"))
				want := "over " + via.name + "\n"
				got := make(chan string, 1)
				go func() {
					buf := make([]byte, len(want))
					n, _ := io.ReadFull(outR, buf)
					got <- string(buf[:n])
				}()
				select {
				case g := <-got:
					if g != want {
						t.Errorf("attach echoed %q, want %q", g, want)
					}
				case <-actx.Done():
					t.Error("no echo through attach")
				}
			})
		}
	})

	t.Run("stats", func(t *testing.T) {
		hc, err := rest.HTTPClientFor(n.kubelet)
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{"/stats/summary", "/metrics/resource"} {
			resp, err := hc.Get(n.kubelet.Host + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "web") {
				t.Errorf("%s: %d %.400s", path, resp.StatusCode, body)
			}
		}
	})
}

// connectHosts joins two node network namespaces with a veth pair,
// 192.168.250.1/24 in a and .2/24 in b: the nodes' LAN.
func connectHosts(t *testing.T, a, b string) (net.IP, net.IP) {
	t.Helper()
	fa, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: "lana", Namespace: netlink.NsFd(int(fa.Fd()))},
		PeerName:  "lanb", PeerNamespace: netlink.NsFd(int(fb.Fd())),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatalf("veth between the nodes: %v", err)
	}
	ips := []net.IP{net.IPv4(192, 168, 250, 1), net.IPv4(192, 168, 250, 2)}
	for i, side := range []struct {
		f    *os.File
		name string
	}{{fa, "lana"}, {fb, "lanb"}} {
		h, err := netlink.NewHandleAt(netns.NsHandle(int(side.f.Fd())))
		if err != nil {
			t.Fatal(err)
		}
		link, err := h.LinkByName(side.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.AddrAdd(link, &netlink.Addr{IPNet: &net.IPNet{IP: ips[i], Mask: net.CIDRMask(24, 32)}}); err != nil {
			t.Fatal(err)
		}
		if err := h.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
		h.Close()
	}
	return ips[0], ips[1]
}

// TestAgent_PodsOnTwoNodesReachEachOther runs two agents whose pod
// networks live in two namespaces joined like two hosts on a LAN: a pod
// on node B reaches a pod on node A by its IP, through the routes the
// agents' route syncers make from the Nodes.
func TestAgent_PodsOnTwoNodesReachEachOther(t *testing.T) {
	c := startCluster(t)
	nsA, nsB := pinNetNS(t), pinNetNS(t)
	ipA, ipB := connectHosts(t, nsA, nsB)
	a := c.startNode(t, nsA, "10.42.10.0/24", ipA)
	b := c.startNode(t, nsB, "10.42.11.0/24", ipB)
	ctx := context.Background()
	pod := func(name, node string, cmd ...string) *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: c.image, Command: cmd}}},
		}
	}
	if _, err := c.client.CoreV1().Pods("default").Create(ctx, pod("server", a.agent.NodeName(), "serve-tcp", "8080"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.client.CoreV1().Pods("default").Create(ctx, pod("client", b.agent.NodeName(), "sleep", "infinity"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	server := a.waitRunning(t, "default", "server")
	client := b.waitRunning(t, "default", "client")
	if server.Status.PodIP == "" || client.Status.PodIP == "" {
		t.Fatalf("pod IPs %q and %q", server.Status.PodIP, client.Status.PodIP)
	}
	sandboxes, err := filepath.Glob(filepath.Join(b.root, "cri", "runtime", "sandboxes", "*", "ns", "net"))
	if err != nil || len(sandboxes) != 1 {
		t.Fatalf("client sandbox netns: %v %v", sandboxes, err)
	}
	target := net.JoinHostPort(server.Status.PodIP, "8080")
	var last error
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		last = ns.Do(map[ns.Type]string{ns.Net: sandboxes[0]}, func() error {
			conn, err := net.DialTimeout("tcp", target, 2*time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write([]byte("across\n")); err != nil {
				return err
			}
			buf := make([]byte, 7)
			if _, err := io.ReadFull(conn, buf); err != nil {
				return err
			}
			if string(buf) != "across\n" {
				return fmt.Errorf("echo %q", buf)
			}
			return nil
		})
		if last == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("pod %s on node B cannot reach %s on node A: %v", client.Status.PodIP, target, last)
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestAgent_RestartAdoptsRunningPods stops the agent while a pod runs and
// starts a new one on the same root: the container kept running, and the
// new agent serves it (exec, volumes kept up to date) without restarting
// it.
func TestAgent_RestartAdoptsRunningPods(t *testing.T) {
	n := startNode(t)
	ctx := context.Background()
	if _, err := n.client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "conf"}, Data: map[string]string{"v": "1"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "steady"},
		Spec: corev1.PodSpec{NodeName: n.cfg.NodeName, Containers: []corev1.Container{{
			Name: "c", Image: n.image, Command: []string{"sleep", "infinity"},
			VolumeMounts: []corev1.VolumeMount{{Name: "conf", MountPath: "/conf"}},
		}}, Volumes: []corev1.Volume{{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}}}},
	}
	if _, err := n.client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	before := n.waitRunning(t, "default", "steady")
	n.stop(t)
	n.start(t)
	read := func() string {
		out, _, _ := n.exec(t, spdyExec, "default", "steady", "c", "cat", "/conf/v")
		return out
	}
	if got := read(); got != "1" {
		t.Fatalf("after the restart the volume reads %q", got)
	}
	cm, err := n.client.CoreV1().ConfigMaps("default").Get(ctx, "conf", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["v"] = "2"
	if _, err := n.client.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for read() != "2" {
		if time.Now().After(deadline) {
			t.Fatal("the configMap update never reached the adopted pod")
		}
		time.Sleep(250 * time.Millisecond)
	}
	after, err := n.client.CoreV1().Pods("default").Get(ctx, "steady", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, a := before.Status.ContainerStatuses[0], after.Status.ContainerStatuses[0]
	if a.RestartCount != b.RestartCount || a.ContainerID != b.ContainerID {
		t.Errorf("container restarted across the agent restart: %s (%d) -> %s (%d)", b.ContainerID, b.RestartCount, a.ContainerID, a.RestartCount)
	}
}
