package e2e

import (
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// TestNode_PodsRunAndKubectlReachesThem runs real pods on the server's own
// node and drives them with kubectl: logs, exec, cp, port-forward, top;
// and the workload controllers: deployment rollouts and rollbacks, scale,
// foreground deletion, jobs, cronjobs, daemonsets.
func TestNode_PodsRunAndKubectlReachesThem(t *testing.T) {
	c := nodeCluster(t)
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	tb := testimage.Toolbox(t)
	img1 := tb.Push(t, reg, "e2e/toolbox:1")
	img2 := tb.Push(t, reg, "e2e/toolbox:2")

	t.Run("a pod runs and reports Running with an IP", func(t *testing.T) {
		c.mustKubectl(t, "run", "hello", "--image="+img1, "--restart=Never", "--", "sh", "-c", "print-lines 5")
		waitFor(t, 60*time.Second, "pod hello to complete", func() bool {
			out, _ := c.kubectl("get", "pod", "hello", "-o", "jsonpath={.status.phase}")
			return out == "Succeeded"
		})
		contains(t, c.mustKubectl(t, "get", "pod", "hello"), "Completed")
		out := c.mustKubectl(t, "logs", "hello")
		if !strings.Contains(out, "line 5") && strings.Count(out, "\n") < 5 {
			t.Fatalf("logs: %q", out)
		}
		contains(t, c.mustKubectl(t, "logs", "hello", "--tail=1", "--timestamps"), "Z ")
	})

	t.Run("deployment create scale rollout undo", func(t *testing.T) {
		contains(t, c.mustKubectl(t, "create", "deployment", "web", "--image="+img1, "--replicas=2", "--port=8080", "--", "serve-http", "8080", "hello-from-web"), "deployment.apps/web created")
		contains(t, c.mustKubectl(t, "rollout", "status", "deployment/web", "--timeout=120s"), "successfully rolled out")
		out := c.mustKubectl(t, "get", "pods", "-l", "app=web", "-o", "wide")
		if strings.Count(out, "Running") != 2 || !strings.Contains(out, "10.42.") {
			t.Fatalf("pods: %s", out)
		}
		contains(t, c.mustKubectl(t, "scale", "deployment/web", "--replicas=3"), "scaled")
		contains(t, c.mustKubectl(t, "rollout", "status", "deployment/web", "--timeout=120s"), "successfully rolled out")
		contains(t, c.mustKubectl(t, "set", "image", "deployment/web", "toolbox="+img2), "image updated")
		contains(t, c.mustKubectl(t, "rollout", "status", "deployment/web", "--timeout=120s"), "successfully rolled out")
		contains(t, c.mustKubectl(t, "rollout", "history", "deployment/web"), "REVISION", "1", "2")
		contains(t, c.mustKubectl(t, "rollout", "undo", "deployment/web"), "rolled back")
		contains(t, c.mustKubectl(t, "rollout", "status", "deployment/web", "--timeout=120s"), "successfully rolled out")
		contains(t, c.mustKubectl(t, "get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}"), img1)
	})

	t.Run("exec cp port-forward top", func(t *testing.T) {
		pod := strings.TrimPrefix(strings.TrimSpace(c.mustKubectl(t, "get", "pods", "-l", "app=web", "-o", "name")), "pod/")
		pod = strings.Fields(pod)[0]
		contains(t, c.mustKubectl(t, "exec", pod, "--", "echo", "from-exec"), "from-exec")
		contains(t, c.mustKubectl(t, "exec", pod, "--", "hostname"), pod)
		out, err := c.kubectlIn("piped-stdin\n", "exec", "-i", pod, "--", "read-stdin")
		if err != nil || !strings.Contains(out, "piped-stdin") {
			t.Fatalf("exec -i: %v %q", err, out)
		}
		local := writeFile(t, t.TempDir(), "note.txt", "copied in")
		c.mustKubectl(t, "cp", local, pod+":/tmp/note.txt")
		contains(t, c.mustKubectl(t, "exec", pod, "--", "cat", "/tmp/note.txt"), "copied in")

		port := freePort(t)
		pf := exec.Command(skiffBin, "kubectl", "--kubeconfig", c.kubeconfig, "port-forward", "pod/"+pod, fmt.Sprintf("%d:8080", port))
		pf.Env = append(pf.Environ(), "HOME="+c.dataDir)
		if err := pf.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { pf.Process.Kill(); pf.Wait() }()
		var body string
		waitFor(t, 30*time.Second, "port-forward", func() bool {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			buf := make([]byte, 256)
			n, _ := resp.Body.Read(buf)
			body = string(buf[:n])
			return true
		})
		if !strings.Contains(body, "hello-from-web") {
			t.Fatalf("port-forward answer %q", body)
		}
		waitFor(t, 60*time.Second, "kubectl top", func() bool {
			out, err := c.kubectl("top", "pods", "-l", "app=web")
			return err == nil && strings.Contains(out, "MEMORY(bytes)") && strings.Contains(out, pod)
		})
		contains(t, c.mustKubectl(t, "top", "nodes"), "CPU(cores)")
	})

	t.Run("kubectl 1.20 logs and exec over SPDY", func(t *testing.T) {
		k120 := kubectl120(t)
		pod := strings.Fields(strings.TrimPrefix(strings.TrimSpace(c.mustKubectl(t, "get", "pods", "-l", "app=web", "-o", "name")), "pod/"))[0]
		out, err := exec.Command(k120, "--kubeconfig", c.kubeconfig, "exec", pod, "--", "echo", "old-client").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "old-client") {
			t.Fatalf("kubectl 1.20 exec: %v %s", err, out)
		}
		out, err = exec.Command(k120, "--kubeconfig", c.kubeconfig, "logs", "hello").CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl 1.20 logs: %v %s", err, out)
		}
	})

	t.Run("job cronjob daemonset", func(t *testing.T) {
		c.mustKubectl(t, "create", "job", "once", "--image="+img1, "--", "echo", "job-done")
		contains(t, c.mustKubectl(t, "wait", "--for=condition=Complete", "job/once", "--timeout=120s"), "condition met")
		contains(t, c.mustKubectl(t, "logs", "job/once"), "job-done")
		c.mustKubectl(t, "create", "cronjob", "tick", "--image="+img1, "--schedule=* * * * *", "--", "echo", "tick")
		waitFor(t, 150*time.Second, "the cronjob to run a job", func() bool {
			out, _ := c.kubectl("get", "jobs", "-o", "name")
			return strings.Contains(out, "job.batch/tick-")
		})
		ds := fmt.Sprintf(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers: [{name: agent, image: %q, args: ["sleep", "3600"]}]
`, img1)
		c.mustKubectlIn(t, ds, "apply", "-f", "-")
		contains(t, c.mustKubectl(t, "rollout", "status", "daemonset/agent", "--timeout=120s"), "successfully rolled out")
	})

	t.Run("foreground deletion waits for dependents", func(t *testing.T) {
		contains(t, c.mustKubectl(t, "delete", "deployment", "web", "--cascade=foreground", "--timeout=120s"), "deleted")
		waitFor(t, 60*time.Second, "the web pods to go", func() bool {
			out, _ := c.kubectl("get", "pods", "-l", "app=web", "-o", "name")
			return strings.TrimSpace(out) == ""
		})
		out, _ := c.kubectl("get", "rs", "-l", "app=web", "-o", "name")
		if strings.TrimSpace(out) != "" {
			t.Fatalf("replica sets left: %s", out)
		}
	})
}

func (c *cluster) mustKubectlIn(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, err := c.kubectlIn(stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}
