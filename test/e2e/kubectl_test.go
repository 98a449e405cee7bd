package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const webManifest = `apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  labels:
    app: web
data:
  greeting: hello
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: registry.local/web:1
        ports:
        - containerPort: 80
---
apiVersion: v1
kind: Service
metadata:
  name: web
  labels:
    app: web
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 80
`

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func contains(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Fatalf("output does not contain %q:\n%s", w, out)
		}
	}
}

func TestKubectl_EverydayCommands(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	manifest := writeFile(t, dir, "web.yaml", webManifest)

	t.Run("version and discovery", func(t *testing.T) {
		contains(t, c.mustKubectl(t, "version"), "Server Version: v1.37")
		contains(t, c.mustKubectl(t, "api-versions"), "apps/v1", "batch/v1", "v1", "rbac.authorization.k8s.io/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1")
		out := c.mustKubectl(t, "api-resources")
		contains(t, out, "pods", "po", "deployments", "deploy", "apps/v1", "namespaces", "ns", "false", "Namespace")
		contains(t, c.mustKubectl(t, "get", "namespaces"), "default", "kube-system", "kube-public", "kube-node-lease", "Active")
		contains(t, c.mustKubectl(t, "get", "svc", "kubernetes", "-o", "wide"), "kubernetes", "ClusterIP", "10.43.0.1", "443/TCP")
	})

	t.Run("apply multi-document file and re-apply an update", func(t *testing.T) {
		out := c.mustKubectl(t, "apply", "-f", manifest)
		contains(t, out, "configmap/web-config created", "deployment.apps/web created", "service/web created")
		contains(t, c.mustKubectl(t, "apply", "-f", manifest), "configmap/web-config unchanged", "deployment.apps/web unchanged")
		updated := strings.Replace(webManifest, "replicas: 2", "replicas: 3", 1)
		writeFile(t, dir, "web.yaml", updated)
		contains(t, c.mustKubectl(t, "apply", "-f", manifest), "deployment.apps/web configured")
		contains(t, c.mustKubectl(t, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"), "3")
		if ip := c.mustKubectl(t, "get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"); !strings.HasPrefix(ip, "10.43.") {
			t.Fatalf("service web got cluster IP %q", ip)
		}
		c.mustKubectl(t, "create", "service", "nodeport", "np", "--tcp=80:8080")
		port := c.mustKubectl(t, "get", "svc", "np", "-o", "jsonpath={.spec.ports[0].nodePort}")
		if n, err := strconv.Atoi(port); err != nil || n < 30000 || n > 32767 {
			t.Fatalf("NodePort service got node port %q", port)
		}
	})

	t.Run("apply a directory", func(t *testing.T) {
		sub := filepath.Join(dir, "more")
		os.Mkdir(sub, 0o755)
		writeFile(t, sub, "a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dir-a\ndata:\n  k: v\n")
		writeFile(t, sub, "b.json", `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"dir-b"},"stringData":{"k":"v"}}`)
		contains(t, c.mustKubectl(t, "apply", "-f", sub), "configmap/dir-a created", "secret/dir-b created")
	})

	t.Run("get in every format", func(t *testing.T) {
		contains(t, c.mustKubectl(t, "get", "deployments"), "NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "web", "0/3")
		contains(t, c.mustKubectl(t, "get", "deploy", "-o", "wide"), "CONTAINERS", "IMAGES", "SELECTOR", "registry.local/web:1", "app=web")
		contains(t, c.mustKubectl(t, "get", "deploy", "web", "-o", "yaml"), "kind: Deployment", "replicas: 3", "uid:", "resourceVersion:")
		var obj map[string]interface{}
		if err := json.Unmarshal([]byte(c.mustKubectl(t, "get", "cm", "web-config", "-o", "json")), &obj); err != nil {
			t.Fatal(err)
		}
		if obj["kind"] != "ConfigMap" {
			t.Fatalf("json kind %v", obj["kind"])
		}
		contains(t, c.mustKubectl(t, "get", "cm", "-o", "custom-columns=NAME:.metadata.name,GREETING:.data.greeting"), "GREETING", "web-config", "hello")
		contains(t, c.mustKubectl(t, "get", "all", "-l", "app=web"), "deployment.apps/web", "service/web")
		contains(t, c.mustKubectl(t, "get", "cm", "--show-labels"), "LABELS", "app=web")
		contains(t, c.mustKubectl(t, "get", "cm", "-A", "--field-selector", "metadata.name=web-config"), "NAMESPACE", "default", "web-config")
		if out := c.mustKubectl(t, "get", "cm", "--field-selector", "metadata.name=nope"); !strings.Contains(out, "No resources found") {
			t.Fatalf("empty selection: %s", out)
		}
	})

	t.Run("describe", func(t *testing.T) {
		contains(t, c.mustKubectl(t, "describe", "deployment", "web"), "Name:", "web", "Replicas:", "3 desired", "StrategyType:", "RollingUpdate", "registry.local/web:1")
		contains(t, c.mustKubectl(t, "describe", "svc", "web"), "Selector:", "app=web", "Port:")
	})

	t.Run("patch label annotate scale", func(t *testing.T) {
		contains(t, c.mustKubectl(t, "patch", "cm", "web-config", "-p", `{"data":{"extra":"1"}}`), "configmap/web-config patched")
		contains(t, c.mustKubectl(t, "patch", "cm", "web-config", "--type=merge", "-p", `{"data":{"merge":"1"}}`), "patched")
		contains(t, c.mustKubectl(t, "patch", "cm", "web-config", "--type=json", "-p", `[{"op":"add","path":"/data/json","value":"1"}]`), "patched")
		contains(t, c.mustKubectl(t, "get", "cm", "web-config", "-o", "jsonpath={.data}"), `"extra":"1"`, `"merge":"1"`, `"json":"1"`)
		contains(t, c.mustKubectl(t, "label", "cm", "web-config", "tier=front"), "labeled")
		contains(t, c.mustKubectl(t, "annotate", "cm", "web-config", "note=hi"), "annotated")
		contains(t, c.mustKubectl(t, "get", "cm", "-l", "tier=front", "-o", "name"), "configmap/web-config")
		contains(t, c.mustKubectl(t, "scale", "deployment", "web", "--replicas=5"), "deployment.apps/web scaled")
		contains(t, c.mustKubectl(t, "wait", "--for=jsonpath={.spec.replicas}=5", "deployment/web", "--timeout=20s"), "condition met")
	})

	t.Run("edit", func(t *testing.T) {
		editor := writeFile(t, dir, "editor.sh", "#!/bin/sh\nsed -i 's/greeting: hello/greeting: edited/' \"$1\"\n")
		os.Chmod(editor, 0o755)
		out, err := c.kubectlEnv([]string{"KUBE_EDITOR=" + editor}, "edit", "cm", "web-config")
		if err != nil {
			t.Fatalf("edit: %v\n%s", err, out)
		}
		contains(t, out, "configmap/web-config edited")
		contains(t, c.mustKubectl(t, "get", "cm", "web-config", "-o", "jsonpath={.data.greeting}"), "edited")
	})

	t.Run("diff", func(t *testing.T) {
		changed := strings.Replace(webManifest, "greeting: hello", "greeting: changed", 1)
		p := writeFile(t, dir, "changed.yaml", changed)
		out, err := c.kubectl("diff", "-f", p)
		if err == nil {
			t.Fatalf("diff with changes exited 0:\n%s", out)
		}
		contains(t, out, "greeting: changed")
	})

	t.Run("wait for a condition", func(t *testing.T) {
		// This cluster has no node: the Deployment makes progress (its
		// ReplicaSet is created) but never becomes available.
		contains(t, c.mustKubectl(t, "wait", "--for=condition=Progressing", "deployment/web", "--timeout=20s"), "condition met")
		contains(t, c.mustKubectl(t, "wait", "--for=condition=Available=False", "deployment/web", "--timeout=20s"), "condition met")
	})

	t.Run("server-side apply", func(t *testing.T) {
		p := writeFile(t, dir, "ssa.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  a: \"1\"\n")
		contains(t, c.mustKubectl(t, "apply", "--server-side", "-f", p), "configmap/ssa serverside-applied")
		contains(t, c.mustKubectl(t, "get", "cm", "ssa", "-o", "yaml", "--show-managed-fields"), "manager: kubectl", "operation: Apply")
		c.mustKubectl(t, "patch", "cm", "ssa", "-p", `{"data":{"a":"2"}}`)
		out, err := c.kubectl("apply", "--server-side", "-f", p)
		if err == nil || !strings.Contains(out, "conflict") {
			t.Fatalf("conflicting apply: %v\n%s", err, out)
		}
		contains(t, c.mustKubectl(t, "apply", "--server-side", "--force-conflicts", "-f", p), "serverside-applied")
	})

	t.Run("explain", func(t *testing.T) {
		contains(t, c.mustKubectl(t, "explain", "pod.spec.containers"), "KIND:", "Pod", "FIELD:", "containers", "DESCRIPTION:", "image")
		contains(t, c.mustKubectl(t, "explain", "deployment.spec.strategy"), "rollingUpdate")
	})

	t.Run("watch", func(t *testing.T) {
		done := make(chan string)
		go func() {
			out, _ := c.kubectl("get", "cm", "-w", "--request-timeout=6s")
			done <- out
		}()
		time.Sleep(2 * time.Second)
		c.mustKubectl(t, "create", "configmap", "watched", "--from-literal=k=v")
		out := <-done
		contains(t, out, "web-config", "watched")
	})

	t.Run("delete and wait for deletion", func(t *testing.T) {
		contains(t, c.mustKubectl(t, "delete", "cm", "dir-a", "--wait=true"), `configmap "dir-a" deleted`)
		c.mustKubectl(t, "create", "configmap", "held", "--from-literal=k=v")
		c.mustKubectl(t, "patch", "cm", "held", "--type=merge", "-p", `{"metadata":{"finalizers":["example.com/hold"]}}`)
		contains(t, c.mustKubectl(t, "delete", "cm", "held", "--wait=false"), "deleted")
		done := make(chan string)
		go func() {
			out, _ := c.kubectl("wait", "--for=delete", "cm/held", "--timeout=30s")
			done <- out
		}()
		time.Sleep(time.Second)
		c.mustKubectl(t, "patch", "cm", "held", "--type=json", "-p", `[{"op":"remove","path":"/metadata/finalizers"}]`)
		contains(t, <-done, "condition met")
		// Orphaning waits for the garbage collector to remove the
		// "orphan" finalizer it adds.
		contains(t, c.mustKubectl(t, "delete", "deployment", "web", "--cascade=orphan"), "deleted")
		c.mustKubectl(t, "wait", "--for=delete", "deployment/web", "--timeout=30s")
		contains(t, c.mustKubectl(t, "delete", "-f", manifest, "--ignore-not-found", "--grace-period=0"), "deleted")
	})

	t.Run("create deployment sends protobuf", func(t *testing.T) {
		contains(t, c.mustKubectl(t, "create", "deployment", "proto", "--image=registry.local/p:1", "--replicas=2"), "deployment.apps/proto created")
		contains(t, c.mustKubectl(t, "get", "deploy", "proto"), "proto")
	})
}
