package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestServer_KillNineKeepsAcknowledgedObjects writes objects, kills the
// server with SIGKILL, restarts it on the same data dir and finds every
// acknowledged object with the same resourceVersion.
func TestServer_KillNineKeepsAcknowledgedObjects(t *testing.T) {
	c := startCluster(t)
	client := c.client()
	ctx := context.Background()
	want := map[string]string{}
	for i := range 50 {
		cm, err := client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("durable-%02d", i)},
			Data:       map[string]string{"i": fmt.Sprint(i)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want[cm.Name] = cm.ResourceVersion
	}
	// An update acknowledged just before the kill.
	cm, _ := client.CoreV1().ConfigMaps("default").Get(ctx, "durable-07", metav1.GetOptions{})
	cm.Data["i"] = "updated"
	cm, err := client.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want[cm.Name] = cm.ResourceVersion

	c.stop(syscall.SIGKILL)
	c.start()
	client = c.client()
	list, err := client.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, cm := range list.Items {
		if strings.HasPrefix(cm.Name, "durable-") {
			got[cm.Name] = cm.ResourceVersion
			if cm.Name == "durable-07" && cm.Data["i"] != "updated" {
				t.Fatalf("lost the acknowledged update: %v", cm.Data)
			}
		}
	}
	for name, rv := range want {
		if got[name] != rv {
			t.Errorf("%s: resourceVersion %q after restart, %q before", name, got[name], rv)
		}
	}
}

// TestServer_GracefulStopAndRestartKeepsIdentity stops with SIGTERM (a
// clean exit), restarts, and checks that the certificates were reused (the
// old kubeconfig still works) and the data is there.
func TestServer_GracefulStopAndRestartKeepsIdentity(t *testing.T) {
	c := startCluster(t)
	c.mustKubectl(t, "create", "namespace", "keep")
	ca, err := os.ReadFile(filepath.Join(c.dataDir, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := c.cmd
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("server did not exit cleanly on SIGTERM: %v\n%s", err, c.log.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop within 20s of SIGTERM")
	}
	c.cmd = nil
	c.start()
	ca2, _ := os.ReadFile(filepath.Join(c.dataDir, "tls", "ca.crt"))
	if string(ca) != string(ca2) {
		t.Fatal("the cluster CA changed across a restart")
	}
	contains(t, c.mustKubectl(t, "get", "ns", "keep"), "keep", "Active")
	fi, err := os.Stat(c.kubeconfig)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin kubeconfig mode: %v %v", fi.Mode(), err)
	}
}

// TestServer_AuthenticationAndPublicEndpoints checks that anonymous
// requests get 401 with a Status body, health and version are public, a
// token from --token-auth-file works, and /metrics has the API metrics.
func TestServer_AuthenticationAndPublicEndpoints(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens.csv")
	os.WriteFile(tokens, []byte("s3cret-token,alice,1001,\"dev,ops\"\n"), 0o600)
	c := startCluster(t, "--token-auth-file", tokens)
	base := fmt.Sprintf("https://127.0.0.1:%d", c.port)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, Timeout: 10 * time.Second}
	get := func(path, token string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("/api/v1/namespaces", "")
	if code != 401 || !strings.Contains(body, `"kind":"Status"`) || !strings.Contains(body, `"reason":"Unauthorized"`) {
		t.Fatalf("anonymous: %d %s", code, body)
	}
	if code, _ := get("/api/v1/namespaces", "wrong"); code != 401 {
		t.Fatalf("bad token: %d", code)
	}
	if code, body := get("/api/v1/namespaces", "s3cret-token"); code != 200 || !strings.Contains(body, "kube-system") {
		t.Fatalf("token: %d %s", code, body)
	}
	for _, p := range []string{"/healthz", "/livez", "/readyz"} {
		if code, body := get(p, ""); code != 200 || body != "ok" {
			t.Fatalf("%s: %d %q", p, code, body)
		}
	}
	if code, body := get("/readyz?verbose", ""); code != 200 || !strings.Contains(body, "[+]etcd ok") {
		t.Fatalf("readyz verbose: %d %s", code, body)
	}
	if code, body := get("/version", ""); code != 200 || !strings.Contains(body, `"gitVersion": "v1.37.2`) {
		t.Fatalf("version: %d %s", code, body)
	}
	if code, _ := get("/metrics", ""); code != 401 {
		t.Fatalf("anonymous metrics: %d", code)
	}
	c.mustKubectl(t, "get", "pods")
	c.kubectl("get", "pods", "-w", "--request-timeout=1s")
	code, body = get("/metrics", "s3cret-token")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, m := range []string{"apiserver_request_total{", "apiserver_request_duration_seconds_bucket{", "etcd_request_duration_seconds_bucket{", "apiserver_storage_objects{", "apiserver_registered_watchers"} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %s", m)
		}
	}
}

// kubectl120 returns the path of Debian's kubectl 1.20 (hack/test installs
// it and sets SKIFF_KUBECTL_1_20).
func kubectl120(t *testing.T) string {
	t.Helper()
	p := os.Getenv("SKIFF_KUBECTL_1_20")
	if p == "" {
		if os.Getenv("SKIFF_REQUIRE_ROOT") == "1" {
			t.Fatal("SKIFF_KUBECTL_1_20 is not set: hack/test installs Debian's kubectl 1.20 and sets it")
		}
		t.Skip("SKIFF_KUBECTL_1_20 not set (hack/test sets it)")
	}
	return p
}

// TestKubectl120_GetApplyDelete drives the cluster with Debian's kubectl
// 1.20, which speaks OpenAPI v2 only and no WatchList.
func TestKubectl120_GetApplyDelete(t *testing.T) {
	old := kubectl120(t)
	c := startCluster(t)
	dir := t.TempDir()
	manifest := writeFile(t, dir, "web.yaml", webManifest)
	run := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, old, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
		cmd.Env = append(os.Environ(), "HOME="+dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl 1.20 %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	contains(t, run("version"), `GitVersion:"v1.20.2"`, `GitVersion:"v1.37.2`)
	contains(t, run("apply", "-f", manifest), "configmap/web-config created", "deployment.apps/web created", "service/web created")
	contains(t, run("apply", "-f", manifest), "unchanged")
	contains(t, run("get", "deploy,svc,cm", "-o", "wide"), "web", "registry.local/web:1", "ClusterIP")
	contains(t, run("get", "namespaces"), "kube-system")
	contains(t, run("delete", "-f", manifest), `configmap "web-config" deleted`, `service "web" deleted`)
}
