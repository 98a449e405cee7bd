package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// TestPods_KubernetesSemanticsOnTheServersNode drives single pods on the
// node agent of a real `skiff server` with skiff kubectl and checks what
// the issue of the node agent asks for: logs -f, exec with a terminal and
// with stdin, probes, restart policies and backoff, OOM kills, init
// containers, configMap and secret volumes and env, preStop and grace
// periods, pod-to-pod traffic, bad input (missing image, command,
// configMap; runAsNonRoot), the events of each, and that restarting the
// server (and so its agent) leaves running containers alone.
//
// The cases share one cluster and run in parallel; each has its own pods.
func TestPods_KubernetesSemanticsOnTheServersNode(t *testing.T) {
	c := nodeCluster(t)
	client := c.client()
	reg := testimage.NewRegistry(t, testimage.RegistryOptions{})
	img := testimage.Toolbox(t).Push(t, reg, "e2e/pods:1")
	p := &podTester{c: c, client: client, img: img}

	t.Run("cases", func(t *testing.T) {
		t.Run("logs -f follows a container until it exits", func(t *testing.T) {
			t.Parallel()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: follow}
spec:
  terminationGracePeriodSeconds: 10
  containers: [{name: main, image: $IMAGE, command: [signals, "0"]}]
`)
			p.waitRunning(t, "follow")
			cmd, out := c.kubectlCmd("logs", "-f", "follow")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer cmd.Process.Kill()
			waitFor(t, 30*time.Second, "logs -f to print ready", func() bool { return strings.Contains(out.String(), "ready") })
			// SIGTERM makes the container print two more lines and exit;
			// a follower sees them and then ends by itself.
			c.mustKubectl(t, "delete", "pod", "follow", "--wait=false")
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("logs -f: %v\n%s", err, out.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("logs -f did not end when the container exited; output:\n%s", out.String())
			}
			if got := out.String(); got != "ready\ngot SIGTERM\nexiting\n" {
				t.Fatalf("logs -f printed %q", got)
			}
			p.wantEvents(t, "follow", "Scheduled", "Pulled", "Created", "Started", "Killing")
		})

		t.Run("exec -it gets a terminal and exec -i pipes stdin", func(t *testing.T) {
			t.Parallel()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: $IMAGE}]
`)
			p.waitRunning(t, "shell")
			out, err := c.kubectlIn("line one\nline two\n", "exec", "-i", "shell", "--", "cat")
			if err != nil || out != "line one\nline two\n" {
				t.Fatalf("exec -i cat: %v %q", err, out)
			}
			// Without -i, stdin is not passed on: cat sees EOF at once.
			if out, err := c.kubectlIn("ignored\n", "exec", "shell", "--", "cat"); err != nil || out != "" {
				t.Fatalf("exec without -i: %v %q", err, out)
			}
			out, err = c.kubectlIn("", "exec", "shell", "--", "exit", "3")
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
				t.Fatalf("exec exit 3: %v %q", err, out)
			}

			// -it on a real terminal: the command's stdin is a pty in the
			// container, and what is typed reaches it.
			term := c.kubectlOnTerminal(t, "exec", "-it", "shell", "--", "stat", "/proc/self/fd/0")
			if out, err := term.wait(t); err != nil || !strings.Contains(out, "-> /dev/pts/") {
				t.Fatalf("exec -it stat: %v %q", err, out)
			}
			term = c.kubectlOnTerminal(t, "exec", "-it", "shell", "--", "read-stdin")
			term.waitRaw(t)
			term.write(t, "typed-in\r")
			// The container's terminal echoes the line and read-stdin
			// prints it back: twice in all.
			waitFor(t, 20*time.Second, "the typed line echoed and read", func() bool {
				return strings.Count(term.out.String(), "typed-in") >= 2
			})
			term.write(t, "\x04") // ^D: end of input on the container's terminal
			if out, err := term.wait(t); err != nil {
				t.Fatalf("exec -it read-stdin: %v %q", err, out)
			}
		})

		t.Run("a failing liveness probe restarts the container", func(t *testing.T) {
			t.Parallel()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: liveness}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $IMAGE
    command: [signals, "0"]
    livenessProbe:
      exec: {command: [cat, /tmp/alive]}
      periodSeconds: 1
      failureThreshold: 2
`)
			waitFor(t, 60*time.Second, "a liveness restart", func() bool {
				cs := p.container(t, "liveness", "main")
				return cs != nil && cs.RestartCount >= 1
			})
			cs := p.container(t, "liveness", "main")
			if last := cs.LastTerminationState.Terminated; last == nil || last.ContainerID == "" || last.FinishedAt.IsZero() {
				t.Fatalf("lastState after a liveness restart: %+v", cs.LastTerminationState)
			}
			// The restart was graceful: the old instance got SIGTERM, and
			// its log is still there for --previous.
			waitFor(t, 20*time.Second, "logs --previous", func() bool {
				out, _ := c.kubectl("logs", "liveness", "--previous")
				return out == "ready\ngot SIGTERM\nexiting\n"
			})
			p.wantEvents(t, "liveness", "Unhealthy", "Killing")
			p.wantEventMessage(t, "liveness", "Unhealthy", "Liveness probe failed")
			p.wantEventMessage(t, "liveness", "Killing", "failed liveness probe, will be restarted")
		})

		t.Run("readiness flips Ready", func(t *testing.T) {
			t.Parallel()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: readiness}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $IMAGE
    readinessProbe:
      exec: {command: [cat, /tmp/ready]}
      periodSeconds: 1
`)
			p.waitRunning(t, "readiness")
			p.waitReady(t, "readiness", corev1.ConditionFalse)
			c.mustKubectl(t, "exec", "readiness", "--", "write", "/tmp/ready", "yes")
			p.waitReady(t, "readiness", corev1.ConditionTrue)
			contains(t, c.mustKubectl(t, "get", "pod", "readiness"), "1/1")
			c.mustKubectl(t, "exec", "readiness", "--", "rm", "/tmp/ready")
			p.waitReady(t, "readiness", corev1.ConditionFalse)
			contains(t, c.mustKubectl(t, "get", "pod", "readiness"), "0/1", "Running")
			if cs := p.container(t, "readiness", "main"); cs.RestartCount != 0 {
				t.Fatalf("a readiness failure restarted the container: %+v", cs)
			}
			p.wantEventMessage(t, "readiness", "Unhealthy", "Readiness probe failed")
		})

		t.Run("a crashing container reaches CrashLoopBackOff with growing backoff", func(t *testing.T) {
			t.Parallel()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  containers: [{name: main, image: $IMAGE, command: [exit, "3"]}]
`)
			waitFor(t, 60*time.Second, "CrashLoopBackOff", func() bool {
				cs := p.container(t, "crash", "main")
				return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff"
			})
			cs := p.container(t, "crash", "main")
			if last := cs.LastTerminationState.Terminated; last == nil || last.ExitCode != 3 || last.Reason != "Error" {
				t.Fatalf("lastState: %+v", cs.LastTerminationState)
			}
			if msg := cs.State.Waiting.Message; !strings.HasPrefix(msg, "back-off 10s restarting failed container=main pod=crash_default(") {
				t.Fatalf("first backoff message %q", msg)
			}
			contains(t, c.mustKubectl(t, "get", "pod", "crash"), "CrashLoopBackOff")
			waitFor(t, 60*time.Second, "the backoff to double", func() bool {
				cs := p.container(t, "crash", "main")
				return cs.State.Waiting != nil && strings.HasPrefix(cs.State.Waiting.Message, "back-off 20s ")
			})
			if cs := p.container(t, "crash", "main"); cs.RestartCount != 2 {
				t.Fatalf("restartCount %d after the second backoff, want 2", cs.RestartCount)
			}
			if phase := p.get(t, "crash").Status.Phase; phase != corev1.PodRunning {
				t.Fatalf("phase of a crash-looping pod: %s, want Running", phase)
			}
			p.wantEvents(t, "crash", "Created", "Started", "BackOff")
			p.wantEventMessage(t, "crash", "BackOff", "Back-off restarting failed container main")
		})

		t.Run("restartPolicy Never pods end Succeeded or Failed with the exit code", func(t *testing.T) {
			t.Parallel()
			for _, tc := range []struct {
				name, cmd, phase, reason, column, readyReason string
				code                                          int32
			}{
				{"done-ok", "true", "Succeeded", "Completed", "Completed", "PodCompleted", 0},
				{"done-bad", "exit 7", "Failed", "Error", "Error", "PodFailed", 7},
			} {
				p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: `+tc.name+`}
spec:
  restartPolicy: Never
  containers: [{name: main, image: $IMAGE, command: [sh, -c, `+fmt.Sprintf("%q", tc.cmd)+`]}]
`)
				p.waitPhase(t, tc.name, corev1.PodPhase(tc.phase))
				cs := p.container(t, tc.name, "main")
				term := cs.State.Terminated
				if term == nil || term.ExitCode != tc.code || term.Reason != tc.reason || term.StartedAt.IsZero() || term.FinishedAt.IsZero() || cs.RestartCount != 0 {
					t.Fatalf("%s: container status %+v", tc.name, cs)
				}
				contains(t, c.mustKubectl(t, "get", "pod", tc.name), tc.column, "0/1")
				pod := p.get(t, tc.name)
				if cond := podCondition(pod, corev1.PodReady); cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != tc.readyReason {
					t.Fatalf("%s: Ready condition %+v", tc.name, cond)
				}
			}
		})

		t.Run("a memory hog over its limit is OOMKilled", func(t *testing.T) {
			t.Parallel()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: hog}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: $IMAGE
    command: [hog, "512"]
    resources: {limits: {memory: 32Mi}}
`)
			p.waitPhase(t, "hog", corev1.PodFailed)
			term := p.container(t, "hog", "main").State.Terminated
			if term == nil || term.Reason != "OOMKilled" || term.ExitCode != 137 {
				t.Fatalf("terminated state %+v", term)
			}
			contains(t, c.mustKubectl(t, "get", "pod", "hog"), "OOMKilled")
			if qos := p.get(t, "hog").Status.QOSClass; qos != corev1.PodQOSBurstable {
				t.Fatalf("qosClass %s, want Burstable (a memory limit alone)", qos)
			}
		})

		t.Run("a failing init container blocks the app containers", func(t *testing.T) {
			t.Parallel()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: init-never}
spec:
  restartPolicy: Never
  initContainers:
  - {name: fails, image: $IMAGE, command: [exit, "2"]}
  - {name: after, image: $IMAGE, command: ["true"]}
  containers: [{name: app, image: $IMAGE}]
---
apiVersion: v1
kind: Pod
metadata: {name: init-always}
spec:
  terminationGracePeriodSeconds: 1
  initContainers: [{name: fails, image: $IMAGE, command: [exit, "2"]}]
  containers: [{name: app, image: $IMAGE}]
`)
			p.waitPhase(t, "init-never", corev1.PodFailed)
			pod := p.get(t, "init-never")
			if len(pod.Status.InitContainerStatuses) != 2 {
				t.Fatalf("init container statuses %+v", pod.Status.InitContainerStatuses)
			}
			if term := pod.Status.InitContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 2 || term.Reason != "Error" {
				t.Fatalf("failed init container: %+v", pod.Status.InitContainerStatuses[0].State)
			}
			if st := pod.Status.InitContainerStatuses[1].State; st.Waiting == nil || st.Waiting.Reason != "PodInitializing" {
				t.Fatalf("the init container after a failed one: %+v", st)
			}
			if st := pod.Status.ContainerStatuses[0].State; st.Waiting == nil || st.Waiting.Reason != "PodInitializing" {
				t.Fatalf("app container of a failed init: %+v", st)
			}
			if cond := podCondition(pod, corev1.PodInitialized); cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != "ContainersNotInitialized" {
				t.Fatalf("Initialized condition %+v", cond)
			}
			if cond := podCondition(pod, corev1.PodReady); cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != "PodFailed" {
				t.Fatalf("Ready condition %+v", cond)
			}
			contains(t, c.mustKubectl(t, "get", "pod", "init-never"), "Init:Error")

			waitFor(t, 60*time.Second, "the init container to crash-loop", func() bool {
				pod := p.get(t, "init-always")
				return len(pod.Status.InitContainerStatuses) == 1 && pod.Status.InitContainerStatuses[0].RestartCount >= 1
			})
			waitFor(t, 30*time.Second, "Init:CrashLoopBackOff", func() bool {
				out, _ := c.kubectl("get", "pod", "init-always")
				return strings.Contains(out, "Init:CrashLoopBackOff")
			})
			pod = p.get(t, "init-always")
			if pod.Status.Phase != corev1.PodPending {
				t.Fatalf("phase %s, want Pending", pod.Status.Phase)
			}
			if st := pod.Status.ContainerStatuses[0].State; st.Waiting == nil || st.Waiting.Reason != "PodInitializing" {
				t.Fatalf("app container behind a crash-looping init container: %+v", st)
			}
			for _, name := range []string{"init-never", "init-always"} {
				out := c.mustKubectl(t, "get", "events", "--field-selector", "involvedObject.name="+name+",reason=Started", "-o", "jsonpath={.items[*].involvedObject.fieldPath}")
				if strings.Contains(out, "spec.containers") {
					t.Fatalf("%s: an app container started: %s", name, out)
				}
			}
		})

		t.Run("configMap and secret reach volumes and env and configMap changes reach the file", func(t *testing.T) {
			t.Parallel()
			c.mustKubectl(t, "create", "configmap", "app-config", "--from-literal=greeting=hello", "--from-literal=color=blue")
			c.mustKubectl(t, "create", "secret", "generic", "app-secret", "--from-literal=password=s3cret")
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: config}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $IMAGE
    env:
    - name: GREETING
      valueFrom: {configMapKeyRef: {name: app-config, key: greeting}}
    - name: PASSWORD
      valueFrom: {secretKeyRef: {name: app-secret, key: password}}
    - name: MESSAGE
      value: "$(GREETING) world"
    envFrom:
    - {configMapRef: {name: app-config}, prefix: CM_}
    volumeMounts:
    - {name: config, mountPath: /etc/config}
    - {name: secret, mountPath: /etc/secret, readOnly: true}
  volumes:
  - {name: config, configMap: {name: app-config}}
  - {name: secret, secret: {secretName: app-secret, defaultMode: 0400}}
`)
			p.waitRunning(t, "config")
			contains(t, c.mustKubectl(t, "exec", "config", "--", "env"), "GREETING=hello\n", "PASSWORD=s3cret\n", "MESSAGE=hello world\n", "CM_color=blue\n", "CM_greeting=hello\n")
			if out := c.mustKubectl(t, "exec", "config", "--", "cat", "/etc/config/greeting"); out != "hello" {
				t.Fatalf("configMap file: %q", out)
			}
			if out := c.mustKubectl(t, "exec", "config", "--", "cat", "/etc/secret/password"); out != "s3cret" {
				t.Fatalf("secret file: %q", out)
			}
			contains(t, c.mustKubectl(t, "exec", "config", "--", "stat", "/etc/secret/..data/password"), " file 0400 0 0 6")
			out, err := c.kubectl("exec", "config", "--", "write", "/etc/secret/password", "x")
			if err == nil {
				t.Fatalf("a readOnly secret volume took a write: %s", out)
			}

			c.mustKubectl(t, "patch", "configmap", "app-config", "-p", `{"data":{"greeting":"changed"}}`)
			waitFor(t, 60*time.Second, "the configMap change in the mounted file", func() bool {
				out, _ := c.kubectl("exec", "config", "--", "cat", "/etc/config/greeting")
				return out == "changed"
			})
			// Environment variables are fixed when the container starts.
			contains(t, c.mustKubectl(t, "exec", "config", "--", "env"), "GREETING=hello\n")
		})

		t.Run("deleting a pod runs preStop and honours the grace period", func(t *testing.T) {
			t.Parallel()
			hostDir := t.TempDir()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: graceful}
spec:
  terminationGracePeriodSeconds: 3
  containers:
  - name: main
    image: $IMAGE
    command: [signals, "600"]
    lifecycle:
      preStop:
        exec: {command: [write, /host/prestop, ran]}
    volumeMounts: [{name: host, mountPath: /host}]
  volumes:
  - {name: host, hostPath: {path: `+fmt.Sprintf("%q", hostDir)+`, type: Directory}}
`)
			p.waitRunning(t, "graceful")
			waitFor(t, 10*time.Second, "the signal handler", func() bool {
				out, _ := c.kubectl("logs", "graceful")
				return strings.Contains(out, "ready")
			})
			start := time.Now()
			c.mustKubectl(t, "delete", "pod", "graceful", "--wait=true", "--timeout=60s")
			took := time.Since(start)
			// The process ignores SIGTERM for 600 s: only the SIGKILL at
			// the end of the 3 s grace period stops it.
			if took < 2500*time.Millisecond || took > 10*time.Second {
				t.Fatalf("deleting a pod with a 3s grace period and a process that ignores SIGTERM took %s", took)
			}
			if b, err := os.ReadFile(filepath.Join(hostDir, "prestop")); err != nil || string(b) != "ran" {
				t.Fatalf("preStop did not run: %q %v", b, err)
			}
			p.wantEventMessage(t, "graceful", "Killing", "Stopping container main")
		})

		t.Run("two pods reach each other by IP", func(t *testing.T) {
			t.Parallel()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: server}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: $IMAGE, command: [serve-http, "8080", hello-from-server]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: $IMAGE, command: [serve-http, "8080", hello-from-client]}]
`)
			server, client := p.waitRunning(t, "server"), p.waitRunning(t, "client")
			if server.Status.PodIP == "" || server.Status.PodIP == client.Status.PodIP {
				t.Fatalf("pod IPs %q and %q", server.Status.PodIP, client.Status.PodIP)
			}
			waitFor(t, 20*time.Second, "client to reach server", func() bool {
				out, _ := c.kubectl("exec", "client", "--", "fetch", "http://"+server.Status.PodIP+":8080/")
				return out == "hello-from-server\n"
			})
			contains(t, c.mustKubectl(t, "exec", "server", "--", "fetch", "http://"+client.Status.PodIP+":8080/"), "hello-from-client")
		})

		t.Run("an image that does not exist gives ErrImagePull then ImagePullBackOff", func(t *testing.T) {
			t.Parallel()
			missing := reg.Ref("e2e/missing:1")
			seen := p.watchWaitingReasons(t, "noimage")
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: noimage}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: `+fmt.Sprintf("%q", missing)+`}]
`)
			waitFor(t, 60*time.Second, "ErrImagePull then ImagePullBackOff", func() bool {
				r := seen()
				return r["ErrImagePull"] && r["ImagePullBackOff"]
			})
			cs := p.container(t, "noimage", "main")
			if w := cs.State.Waiting; w == nil || (w.Reason != "ImagePullBackOff" && w.Reason != "ErrImagePull") || !strings.Contains(w.Message, missing) {
				t.Fatalf("waiting state %+v", cs.State)
			}
			p.wantEvents(t, "noimage", "Pulling", "Failed", "BackOff")
			p.wantEventMessage(t, "noimage", "Failed", "Failed to pull image "+fmt.Sprintf("%q", missing))
			p.wantEventMessage(t, "noimage", "BackOff", "Back-off pulling image "+fmt.Sprintf("%q", missing))
			if p.get(t, "noimage").Status.Phase != corev1.PodPending {
				t.Fatal("a pod whose image cannot be pulled is not Pending")
			}
		})

		t.Run("a command that is not found fails the container", func(t *testing.T) {
			t.Parallel()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: nocommand}
spec:
  restartPolicy: Never
  containers: [{name: main, image: $IMAGE, command: [/no/such/command]}]
`)
			waitFor(t, 60*time.Second, "the start to fail", func() bool {
				cs := p.container(t, "nocommand", "main")
				if cs == nil {
					return false
				}
				if w := cs.State.Waiting; w != nil {
					return w.Reason == "CreateContainerError" || w.Reason == "RunContainerError"
				}
				return cs.State.Terminated != nil
			})
			cs := p.container(t, "nocommand", "main")
			if term := cs.State.Terminated; term != nil {
				// Upstream with containerd or CRI-O: the task fails to
				// start and the container is terminated with StartError.
				if term.Reason != "StartError" || term.ExitCode != 128 || !strings.Contains(term.Message, "/no/such/command") {
					t.Fatalf("terminated state %+v", term)
				}
				p.waitPhase(t, "nocommand", corev1.PodFailed)
			} else if !strings.Contains(cs.State.Waiting.Message, "/no/such/command") {
				t.Fatalf("waiting state %+v", cs.State.Waiting)
			}
			p.wantEventMessage(t, "nocommand", "Failed", "/no/such/command")
		})

		t.Run("a missing configMap keeps the pod waiting with a clear event", func(t *testing.T) {
			t.Parallel()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: nocm-volume}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: main, image: $IMAGE, volumeMounts: [{name: config, mountPath: /etc/config}]}
  volumes: [{name: config, configMap: {name: absent-volume}}]
---
apiVersion: v1
kind: Pod
metadata: {name: nocm-env}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $IMAGE
    env: [{name: X, valueFrom: {configMapKeyRef: {name: absent-env, key: x}}}]
`)
			p.waitEventMessage(t, "nocm-volume", "FailedMount", `MountVolume.SetUp failed for volume "config" : configmap "absent-volume" not found`)
			cs := p.container(t, "nocm-volume", "main")
			if w := cs.State.Waiting; w == nil || w.Reason != "ContainerCreating" {
				t.Fatalf("container behind a missing configMap volume: %+v", cs.State)
			}
			waitFor(t, 30*time.Second, "CreateContainerConfigError", func() bool {
				cs := p.container(t, "nocm-env", "main")
				return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CreateContainerConfigError"
			})
			if msg := p.container(t, "nocm-env", "main").State.Waiting.Message; msg != `configmap "absent-env" not found` {
				t.Fatalf("CreateContainerConfigError message %q", msg)
			}
			contains(t, c.mustKubectl(t, "get", "pod", "nocm-env"), "CreateContainerConfigError")
			for _, name := range []string{"nocm-volume", "nocm-env"} {
				if phase := p.get(t, name).Status.Phase; phase != corev1.PodPending {
					t.Fatalf("%s: phase %s, want Pending", name, phase)
				}
			}
			// Once the configMaps exist, the pods start by themselves.
			c.mustKubectl(t, "create", "configmap", "absent-volume", "--from-literal=k=v")
			c.mustKubectl(t, "create", "configmap", "absent-env", "--from-literal=x=y")
			p.waitRunning(t, "nocm-volume")
			p.waitRunning(t, "nocm-env")
			contains(t, c.mustKubectl(t, "exec", "nocm-env", "--", "env"), "X=y\n")
		})

		t.Run("runAsNonRoot with an image that runs as root fails with CreateContainerConfigError", func(t *testing.T) {
			t.Parallel()
			p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true}
  containers: [{name: main, image: $IMAGE}]
---
apiVersion: v1
kind: Pod
metadata: {name: nonroot-ok}
spec:
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true, runAsUser: 1000}
  containers: [{name: main, image: $IMAGE}]
`)
			waitFor(t, 30*time.Second, "CreateContainerConfigError", func() bool {
				cs := p.container(t, "nonroot", "main")
				return cs != nil && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CreateContainerConfigError"
			})
			want := `container has runAsNonRoot and image will run as root (pod: "nonroot_default(`
			if msg := p.container(t, "nonroot", "main").State.Waiting.Message; !strings.HasPrefix(msg, want) {
				t.Fatalf("message %q, want it to start %q", msg, want)
			}
			p.wantEventMessage(t, "nonroot", "Failed", "Error: container has runAsNonRoot and image will run as root")
			p.waitRunning(t, "nonroot-ok")
			contains(t, c.mustKubectl(t, "exec", "nonroot-ok", "--", "id"), "uid=1000(app)")
		})
	})

	t.Run("restarting the server leaves running containers alone", func(t *testing.T) {
		p.apply(t, `
apiVersion: v1
kind: Pod
metadata: {name: steady}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: $IMAGE
    command: [serve-http, "8080", steady]
    readinessProbe:
      httpGet: {path: /healthz, port: 8080}
      periodSeconds: 1
`)
		p.waitRunning(t, "steady")
		p.waitReady(t, "steady", corev1.ConditionTrue)
		before := p.container(t, "steady", "main")
		c.stop(syscall.SIGTERM)
		c.start()
		waitFor(t, 60*time.Second, "the node to be Ready again", func() bool {
			out, _ := c.kubectl("get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}")
			return strings.TrimSpace(out) == "True"
		})
		waitFor(t, 30*time.Second, "exec through the new agent", func() bool {
			out, _ := c.kubectl("exec", "steady", "--", "fetch", "http://127.0.0.1:8080/")
			return out == "steady\n"
		})
		// Give the new agent a few seconds to act on what it found.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			after := p.container(t, "steady", "main")
			if after.ContainerID != before.ContainerID || after.RestartCount != before.RestartCount ||
				after.State.Running == nil || !after.State.Running.StartedAt.Equal(&before.State.Running.StartedAt) {
				t.Fatalf("the container changed across a server restart:\nbefore %+v\nafter  %+v", before, after)
			}
			time.Sleep(500 * time.Millisecond)
		}
		p.waitReady(t, "steady", corev1.ConditionTrue)
		out, _ := c.kubectl("get", "events", "--field-selector", "involvedObject.name=steady,reason=Killing", "-o", "name")
		if strings.TrimSpace(out) != "" {
			t.Fatalf("the container was killed across a server restart: %s", out)
		}
	})
}

// podTester holds what the pod cases share: the cluster, a client for
// polling status (cheaper than a kubectl process per poll) and the
// toolbox image.
type podTester struct {
	c      *cluster
	client kubernetes.Interface
	img    string
}

// apply creates the objects of a manifest with kubectl; $IMAGE in it
// stands for the toolbox image. When the test fails, it logs what
// kubectl describe says about each pod of the manifest.
func (p *podTester) apply(t *testing.T, manifest string) {
	t.Helper()
	out := p.c.mustKubectlIn(t, strings.ReplaceAll(manifest, "$IMAGE", fmt.Sprintf("%q", p.img)), "apply", "-f", "-")
	for _, line := range strings.Split(out, "\n") {
		if name, ok := strings.CutPrefix(line, "pod/"); ok {
			name = strings.Fields(name)[0]
			t.Cleanup(func() {
				if t.Failed() {
					desc, _ := p.c.kubectl("describe", "pod", name)
					t.Logf("kubectl describe pod %s:\n%s", name, desc)
				}
			})
		}
	}
}

func (p *podTester) get(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	pod, err := p.client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", name, err)
	}
	return pod
}

// container returns the status of a container or init container, nil
// when the pod reports none yet.
func (p *podTester) container(t *testing.T, pod, name string) *corev1.ContainerStatus {
	t.Helper()
	got := p.get(t, pod)
	for _, list := range [][]corev1.ContainerStatus{got.Status.ContainerStatuses, got.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

func (p *podTester) waitPhase(t *testing.T, name string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, 60*time.Second, fmt.Sprintf("pod %s to be %s", name, phase), func() bool {
		pod = p.get(t, name)
		return pod.Status.Phase == phase
	})
	return pod
}

// waitRunning waits for the pod to be Running with an IP and returns it.
func (p *podTester) waitRunning(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	waitFor(t, 60*time.Second, fmt.Sprintf("pod %s to run", name), func() bool {
		pod = p.get(t, name)
		return pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != ""
	})
	return pod
}

func (p *podTester) waitReady(t *testing.T, name string, want corev1.ConditionStatus) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("pod %s Ready=%s", name, want), func() bool {
		pod := p.get(t, name)
		ready, containersReady := podCondition(pod, corev1.PodReady), podCondition(pod, corev1.ContainersReady)
		return ready != nil && ready.Status == want && containersReady != nil && containersReady.Status == want &&
			len(pod.Status.ContainerStatuses) == 1 && pod.Status.ContainerStatuses[0].Ready == (want == corev1.ConditionTrue)
	})
}

func podCondition(pod *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == typ {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

// events returns "REASON: MESSAGE" for every event about the pod, through
// kubectl get events.
func (p *podTester) events(t *testing.T, name string) []string {
	t.Helper()
	out := p.c.mustKubectl(t, "get", "events", "--field-selector", "involvedObject.name="+name,
		"-o", `jsonpath={range .items[*]}{.reason}{": "}{.message}{"\n"}{end}`)
	return strings.Split(strings.TrimSpace(out), "\n")
}

// wantEvents waits for events with each of the reasons about the pod.
func (p *podTester) wantEvents(t *testing.T, name string, reasons ...string) {
	t.Helper()
	for _, r := range reasons {
		p.waitEventMessage(t, name, r, "")
	}
}

func (p *podTester) wantEventMessage(t *testing.T, name, reason, msg string) {
	t.Helper()
	p.waitEventMessage(t, name, reason, msg)
}

// waitEventMessage waits for an event about the pod with the reason and a
// message that contains msg (events are written asynchronously).
func (p *podTester) waitEventMessage(t *testing.T, name, reason, msg string) {
	t.Helper()
	var events []string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		events = p.events(t, name)
		for _, e := range events {
			if strings.HasPrefix(e, reason+": ") && strings.Contains(e, msg) {
				return
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("no %s event containing %q about pod %s; events:\n%s", reason, msg, name, strings.Join(events, "\n"))
}

// watchWaitingReasons watches the pod (which need not exist yet) until the
// test ends and returns a function that reports every container waiting
// reason seen so far, so that short-lived states are not missed between
// polls.
func (p *podTester) watchWaitingReasons(t *testing.T, name string) func() map[string]bool {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := p.client.CoreV1().Pods("default").Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			mu.Lock()
			for _, cs := range pod.Status.ContainerStatuses {
				if cs.State.Waiting != nil {
					seen[cs.State.Waiting.Reason] = true
				}
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return func() map[string]bool {
		mu.Lock()
		defer mu.Unlock()
		out := make(map[string]bool, len(seen))
		for k, v := range seen {
			out[k] = v
		}
		return out
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// kubectlCmd returns a `skiff kubectl` command for the cluster whose
// combined output goes to the returned buffer; the caller starts it.
func (c *cluster) kubectlCmd(args ...string) (*exec.Cmd, *syncBuffer) {
	cmd := exec.Command(skiffBin, append([]string{"kubectl", "--kubeconfig", c.kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+c.dataDir)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	return cmd, out
}

// terminal is a kubectl process whose stdin, stdout and stderr are the
// slave side of a pseudo-terminal that the test holds the master of.
type terminal struct {
	cmd    *exec.Cmd
	master *os.File
	out    *syncBuffer
	read   chan struct{} // closed when the master reads EOF or EIO
}

// kubectlOnTerminal starts kubectl on a new pseudo-terminal, so that
// kubectl sees a real terminal (as `exec -it` wants). The process and the
// terminal are cleaned up when the test ends.
func (c *cluster) kubectlOnTerminal(t *testing.T, args ...string) *terminal {
	t.Helper()
	master, slave, err := openPTY()
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	defer slave.Close()
	cmd := exec.Command(skiffBin, append([]string{"kubectl", "--kubeconfig", c.kubeconfig}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+c.dataDir, "TERM=xterm")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		master.Close()
		t.Fatal(err)
	}
	term := &terminal{cmd: cmd, master: master, out: &syncBuffer{}, read: make(chan struct{})}
	go func() {
		defer close(term.read)
		io.Copy(term.out, master) //nolint:errcheck // ends with EIO once kubectl exits
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		master.Close()
	})
	return term
}

// waitRaw waits until kubectl has put the terminal into raw mode (echo
// off), after which what the test types goes to the container unchanged.
func (term *terminal) waitRaw(t *testing.T) {
	t.Helper()
	waitFor(t, 30*time.Second, "kubectl to put the terminal in raw mode", func() bool {
		var tio syscall.Termios
		if err := ioctl(term.master.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&tio))); err != nil {
			return false
		}
		return tio.Lflag&syscall.ECHO == 0
	})
}

func (term *terminal) write(t *testing.T, s string) {
	t.Helper()
	if _, err := term.master.WriteString(s); err != nil {
		t.Fatalf("type into the terminal: %v", err)
	}
}

// wait waits for kubectl to exit and returns what it printed.
func (term *terminal) wait(t *testing.T) (string, error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- term.cmd.Wait() }()
	select {
	case err := <-done:
		select {
		case <-term.read:
		case <-time.After(5 * time.Second):
		}
		return term.out.String(), err
	case <-time.After(30 * time.Second):
		term.cmd.Process.Kill()
		<-done
		t.Fatalf("kubectl on a terminal did not exit; output:\n%s", term.out.String())
		return "", nil
	}
}

// openPTY opens a new pseudo-terminal pair with a 24x80 window.
func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	var unlock int32
	if err := ioctl(master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	var n uint32
	if err := ioctl(master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	ws := struct{ rows, cols, x, y uint16 }{24, 80, 0, 0}
	if err := ioctl(master.Fd(), syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws))); err != nil {
		master.Close()
		slave.Close()
		return nil, nil, fmt.Errorf("pty window size: %w", err)
	}
	return master, slave, nil
}

func ioctl(fd, req, arg uintptr) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, req, arg); errno != 0 {
		return errno
	}
	return nil
}
