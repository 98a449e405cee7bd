package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

const (
	// benchNS is the namespace of the benchmark's pods.
	benchNS = "skiff-bench"
	// imageRef names the imported toolbox image. Pods use it with
	// imagePullPolicy Never, and the name points at a loopback port where
	// nothing listens: nothing is ever pulled from anywhere.
	imageRef = "127.0.0.1:1/skiff-bench/toolbox:1"
	// pause is how long the node is left alone between phases.
	pause = 3 * time.Second
)

func run(ctx context.Context, w io.Writer, o options) (err error) {
	logf := func(format string, args ...any) {
		if o.verbose {
			fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
		}
	}
	dir, err := os.MkdirTemp("", "skiff-pods-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	bin := o.skiff
	if bin == "" {
		logf("building skiff")
		if bin, err = buildSkiff(ctx, dir); err != nil {
			return err
		}
	}
	if bin, err = filepath.Abs(bin); err != nil {
		return err
	}
	var img *testimage.Image
	if err := useTB(func(t testing.TB) { img = testimage.Toolbox(t) }); err != nil {
		return err
	}

	if err := waitNoOtherAgents(ctx, o.waitOthers, o.quiet); err != nil {
		return err
	}

	// Everything below is undone by cleanup, whatever happens.
	rec := newRecorder(benchNS)
	pr := &peer{image: imageRef, logDir: filepath.Join(dir, "peer-logs")}
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var background sync.WaitGroup
	logf("starting skiff server")
	n, startErr := startNode(ctx, bin, dir)
	defer func() {
		stopBackground()
		background.Wait()
		cleanup(n, pr, rec, logf)
		if err != nil {
			fmt.Fprintf(os.Stderr, "skiff server log, last lines (%s):\n%s\n", n.logFile, n.logTail(60))
		}
	}()
	if startErr != nil {
		return startErr
	}
	readyAt := time.Now()
	logf("node %s Ready", n.name)

	if err := n.importImage(ctx, img, imageRef, dir); err != nil {
		return err
	}
	conn, err := grpc.NewClient("unix://"+n.criSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("CRI socket: %w", err)
	}
	pr.conn, pr.rtc = conn, runtimeapi.NewRuntimeServiceClient(conn)

	if _, err := n.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: benchNS}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("namespace %s: %w", benchNS, err)
	}
	if err := waitFor(ctx, time.Minute, "the namespace's default ServiceAccount", func() (bool, string) {
		_, err := n.client.CoreV1().ServiceAccounts(benchNS).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	}); err != nil {
		return err
	}
	list, err := n.client.CoreV1().Pods(benchNS).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	// Another node agent started meanwhile would share the host's pod
	// bridge with this one: note it, the figures are then suspect.
	var othersMu sync.Mutex
	var othersSeen []string
	background.Add(1)
	go func() {
		defer background.Done()
		for bgCtx.Err() == nil {
			if others := otherAgents(n.cmd.Process.Pid); len(others) > 0 {
				othersMu.Lock()
				if len(othersSeen) == 0 {
					logf("another node agent runs: %s", strings.Join(others, "; "))
				}
				othersSeen = others
				othersMu.Unlock()
			}
			sleep(bgCtx, 2*time.Second)
		}
	}()
	eventsUp := make(chan struct{})
	background.Add(2)
	go func() { defer background.Done(); rec.watchPods(bgCtx, n.client, list.ResourceVersion, logf) }()
	go func() { defer background.Done(); rec.watchContainers(bgCtx, pr.rtc, eventsUp, logf) }()
	select {
	case <-eventsUp:
	case <-ctx.Done():
		return ctx.Err()
	}

	// Idle memory, once the agent has given back its start-up memory.
	if d := time.Until(readyAt.Add(o.settle)); d > 0 {
		logf("waiting %v for the node to settle", d.Round(time.Second))
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
	idle, err := readMemory(bin, n.cmd.Process.Pid)
	if err != nil {
		return err
	}
	logf("idle: server RSS %s, PSS %s", mb(idle.serverRSS), mb(idle.skiffPSS))

	// Grace 0: the peer, then skiff.
	logf("peer: starting %d sandboxes through the CRI", o.pods)
	peer0, err := pr.startAll(ctx, "peer0", o.pods, []string{"sleep", "infinity"})
	if err != nil {
		return err
	}
	if err := pr.stopAll(ctx, peer0, 0); err != nil {
		return err
	}
	if err := sleep(ctx, pause); err != nil {
		return err
	}
	logf("skiff: creating %d pods (sleep infinity)", o.pods)
	batch1, err := createAll(ctx, n.client, rec, "sleep", o.pods, []string{"sleep", "infinity"}, 0)
	if err != nil {
		return err
	}
	if err := waitRunning(ctx, rec, batch1); err != nil {
		return err
	}
	logf("all Running; reading memory in 10 s")
	if err := sleep(ctx, 10*time.Second); err != nil {
		return err
	}
	busy, err := readMemory(bin, n.cmd.Process.Pid)
	if err != nil {
		return err
	}
	logf("deleting with grace 0")
	delStart := time.Now()
	if err := deleteAll(ctx, n.client, rec, batch1, 0); err != nil {
		return err
	}
	if err := waitDeleted(ctx, rec, batch1); err != nil {
		return err
	}
	cleanNode, cleanErr := waitNodeClean(ctx, pr.rtc, delStart)
	if cleanErr != nil {
		logf("%v", cleanErr)
	}
	if err := sleep(ctx, pause); err != nil {
		return err
	}

	// Grace 30 with a process that exits on SIGTERM.
	logf("peer: starting %d sandboxes (signals 0)", o.pods)
	peer30, err := pr.startAll(ctx, "peer30", o.pods, []string{"signals", "0"})
	if err != nil {
		return err
	}
	if err := waitFor(ctx, 2*time.Minute, "the peer's containers to handle SIGTERM", func() (bool, string) {
		for _, p := range peer30 {
			if !logSays(p.logPath, "ready") {
				return false, p.logPath + " does not say ready"
			}
		}
		return true, ""
	}); err != nil {
		return err
	}
	if err := pr.stopAll(ctx, peer30, 30); err != nil {
		return err
	}
	if err := sleep(ctx, pause); err != nil {
		return err
	}
	logf("skiff: creating %d pods (signals 0)", o.pods)
	batch2, err := createAll(ctx, n.client, rec, "signals", o.pods, []string{"signals", "0"}, 30)
	if err != nil {
		return err
	}
	if err := waitRunning(ctx, rec, batch2); err != nil {
		return err
	}
	// Running means started, not yet handling SIGTERM: the program says
	// "ready" once it does.
	if err := waitFor(ctx, 2*time.Minute, "the pods' containers to handle SIGTERM", func() (bool, string) {
		for i, t := range rec.snapshot(batch2) {
			if t.logPath == "" || !logSays(t.logPath, "ready") {
				return false, batch2[i] + " does not say ready"
			}
		}
		return true, ""
	}); err != nil {
		return err
	}
	logf("deleting with grace 30")
	if err := deleteAll(ctx, n.client, rec, batch2, 30); err != nil {
		return err
	}
	if err := waitDeleted(ctx, rec, batch2); err != nil {
		return err
	}
	if err := sleep(ctx, 10*time.Second); err != nil {
		return err
	}
	after, err := readMemory(bin, n.cmd.Process.Pid)
	if err != nil {
		return err
	}

	r := report{
		pods: o.pods, bin: bin,
		batch1: rec.snapshot(batch1), batch2: rec.snapshot(batch2),
		peer0: peer0, peer30: peer30,
		idle: idle, busy: busy, after: after,
		cleanNode: cleanNode, cleanErr: cleanErr,
	}
	othersMu.Lock()
	r.others = othersSeen
	othersMu.Unlock()
	r.write(w)
	return nil
}

// benchPod is one of the benchmark's pods: one toolbox container running
// command, BestEffort, as `kubectl run` would make it.
func benchPod(name string, command []string, grace int64) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "skiff-bench"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: &grace,
			Containers: []corev1.Container{{
				Name: "app", Image: imageRef, ImagePullPolicy: corev1.PullNever, Command: command,
			}},
		},
	}
}

// createAll creates n pods at once, named prefix-NNN, and returns their
// names.
func createAll(ctx context.Context, client kubernetes.Interface, rec *recorder, prefix string, n int, command []string, grace int64) ([]string, error) {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	err := all(names, func(name string) error {
		pod := benchPod(name, command, grace)
		rec.update(name, func(t *podTimes) { t.create = time.Now() })
		_, err := client.CoreV1().Pods(benchNS).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
	return names, err
}

// deleteAll deletes the named pods at once with the grace period.
func deleteAll(ctx context.Context, client kubernetes.Interface, rec *recorder, names []string, grace int64) error {
	return all(names, func(name string) error {
		rec.update(name, func(t *podTimes) { t.delete = time.Now() })
		return client.CoreV1().Pods(benchNS).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	})
}

// all runs f for every name at once and returns the first error.
func all(names []string, f func(name string) error) error {
	errs := make([]error, len(names))
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			if err := f(name); err != nil {
				errs[i] = fmt.Errorf("pod %s: %w", name, err)
			}
		}()
	}
	close(gate)
	wg.Wait()
	return errors.Join(errs...)
}

func waitRunning(ctx context.Context, rec *recorder, names []string) error {
	return waitFor(ctx, 5*time.Minute, "pods Running", func() (bool, string) {
		left := 0
		for _, t := range rec.snapshot(names) {
			if t.running.IsZero() || t.started.IsZero() {
				left++
			}
		}
		return left == 0, fmt.Sprintf("%d of %d not Running (or no CRI start event)", left, len(names))
	})
}

func waitDeleted(ctx context.Context, rec *recorder, names []string) error {
	return waitFor(ctx, 3*time.Minute, "pods deleted", func() (bool, string) {
		left := 0
		for _, t := range rec.snapshot(names) {
			if t.deleted.IsZero() || t.stopped.IsZero() {
				left++
			}
		}
		return left == 0, fmt.Sprintf("%d of %d not DELETED (or no CRI stop event)", left, len(names))
	})
}

// waitNodeClean waits until the runtime holds none of the benchmark's
// sandboxes, and returns how long after start that was.
func waitNodeClean(ctx context.Context, rtc runtimeapi.RuntimeServiceClient, start time.Time) (time.Duration, error) {
	var at time.Duration
	err := waitFor(ctx, 2*time.Minute, "the node to remove the deleted pods' sandboxes", func() (bool, string) {
		l, err := rtc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
			LabelSelector: map[string]string{labelPodNamespace: benchNS},
		}})
		if err != nil {
			return false, err.Error()
		}
		if len(l.Items) == 0 {
			at = time.Since(start)
			return true, ""
		}
		return false, fmt.Sprintf("%d sandboxes left", len(l.Items))
	})
	return at, err
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// cleanup removes everything the run made: the pods (through the API,
// so that the agent tears them down), every sandbox left in the agent's
// runtime (all of them this run's), the server, and what the agent leaves
// on the host. It runs on a context of its own: the run's may be
// cancelled.
func cleanup(n *node, pr *peer, rec *recorder, logf func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if n.client != nil && n.running() {
		zero := int64(0)
		err := n.client.CoreV1().Pods(benchNS).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			logf("cleanup: delete pods: %v", err)
		}
		if pr.rtc != nil {
			wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
			_, err := waitNodeClean(wctx, pr.rtc, time.Now())
			wcancel()
			if err != nil {
				logf("cleanup: %v", err)
			}
		}
	}
	if pr.rtc != nil {
		if l, err := pr.rtc.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{}); err == nil {
			for _, s := range l.Items {
				pr.rtc.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: s.Id})
				pr.rtc.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: s.Id})
			}
		}
		pr.conn.Close()
	}
	logf("stopping skiff server")
	n.stop()
	cleanupHost(n.dataDir, benchNS, rec.uids(), pr.sandboxIDs(), logf)
}

// report holds the run's figures.
type report struct {
	pods           int
	bin            string
	batch1, batch2 []podTimes
	peer0, peer30  []peerPod
	idle, busy     memory
	after          memory
	cleanNode      time.Duration
	cleanErr       error
	others         []string // other node agents seen on the host during the run
}

func (r report) write(w io.Writer) {
	load, _ := os.ReadFile("/proc/loadavg")
	uname, _ := exec.Command("uname", "-sr").Output()
	version, _ := exec.Command(r.bin, "version").Output()
	fmt.Fprintf(w, "# skiff pods benchmark: `skiff server` with its node agent, %d pods per batch, created (and deleted) at once\n", r.pods)
	fmt.Fprintf(w, "date:    %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "host:    %s, %d CPUs, load %s\n", strings.TrimSpace(string(uname)), runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Fprintf(w, "skiff:   %s\n", firstLine(string(version)))
	if len(r.others) > 0 {
		fmt.Fprintf(w, "WARNING: another node agent ran on this host during the run (%s): the figures are suspect\n", strings.Join(r.others, "; "))
	}
	fmt.Fprintln(w, "peer:    the same sandbox + container starts and stops made directly on the agent's CRI socket, at once (no API, pod network or volumes)")
	fmt.Fprintln(w, "goals:   (issue 4) start p50 ≤ 50 ms, p99 ≤ 500 ms; idle memory ≤ 80 MB")
	fmt.Fprintln(w)

	create := func(t podTimes) time.Time { return t.create }
	bound := func(t podTimes) time.Time { return t.bound }
	started := func(t podTimes) time.Time { return t.started }
	running := func(t podTimes) time.Time { return t.running }
	del := func(t podTimes) time.Time { return t.delete }
	stopped := func(t podTimes) time.Time { return t.stopped }
	deleted := func(t podTimes) time.Time { return t.deleted }
	peerStep := func(ps []peerPod, step int) stats {
		var d []time.Duration
		for _, p := range ps {
			d = append(d, p.steps[step])
		}
		return percentiles(d)
	}
	peerStart := func(ps []peerPod) stats {
		var d []time.Duration
		for _, p := range ps {
			d = append(d, p.start)
		}
		return percentiles(d)
	}
	peerStop := func(ps []peerPod) stats {
		var d []time.Duration
		for _, p := range ps {
			d = append(d, p.stop)
		}
		return percentiles(d)
	}

	header := func(title string) {
		fmt.Fprintf(w, "%-58s %9s %9s %9s %9s\n", title, "p50 ms", "p90 ms", "p99 ms", "max ms")
	}
	row := func(label string, s stats) {
		if s.n == 0 {
			fmt.Fprintf(w, "  %-56s %9s\n", label, "no data")
			return
		}
		note := ""
		if s.n != r.pods {
			note = fmt.Sprintf("  (%d of %d pods)", s.n, r.pods)
		}
		fmt.Fprintf(w, "  %-56s %9.1f %9.1f %9.1f %9.1f%s\n", label, ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), note)
	}
	ratio := func(label string, a, b stats) {
		fmt.Fprintf(w, "  %-56s %9.2f %9.2f %9.2f\n", label, ratioOf(a.p50, b.p50), ratioOf(a.p90, b.p90), ratioOf(a.p99, b.p99))
	}

	for _, b := range []struct {
		title string
		pods  []podTimes
		peer  []peerPod
	}{
		{"start, batch 1 (sleep infinity)", r.batch1, r.peer0},
		{"start, batch 2 (signals 0)", r.batch2, r.peer30},
	} {
		start := percentiles(between(b.pods, create, running))
		floor := percentiles(between(b.pods, create, bound))
		cri := peerStart(b.peer)
		header(b.title)
		row("create → Running seen on the watch", start)
		row("  create → bound (API + scheduler floor)", floor)
		row("  bound → container started (CRI event)", percentiles(between(b.pods, bound, started)))
		row("  container started → Running seen", percentiles(between(b.pods, started, running)))
		row("peer: CRI RunPodSandbox + CreateContainer + StartContainer", cri)
		row("  RunPodSandbox", peerStep(b.peer, 0))
		row("  CreateContainer", peerStep(b.peer, 1))
		row("  StartContainer", peerStep(b.peer, 2))
		ratio("ratio skiff ÷ CRI peer", start, cri)
		ratio("ratio skiff ÷ create→bound", start, floor)
		fmt.Fprintln(w)
	}

	header("delete, grace period 0 (sleep infinity)")
	row("delete → DELETED on the watch", percentiles(between(r.batch1, del, deleted)))
	d0 := percentiles(between(r.batch1, del, stopped))
	row("delete → container stopped (CRI event)", d0)
	p0 := peerStop(r.peer0)
	row("peer: CRI StopContainer(0) + StopPodSandbox + RemovePod…", p0)
	ratio("ratio container stopped ÷ CRI peer", d0, p0)
	if r.cleanErr != nil {
		fmt.Fprintf(w, "  every sandbox removed from the node: %v\n", r.cleanErr)
	} else {
		fmt.Fprintf(w, "  every sandbox removed from the node %.0f ms after the first delete\n", ms(r.cleanNode))
	}
	fmt.Fprintln(w)

	header("delete, grace period 30 (signals 0: exits on SIGTERM)")
	d30 := percentiles(between(r.batch2, del, deleted))
	row("delete → DELETED on the watch", d30)
	row("delete → container stopped (CRI event)", percentiles(between(r.batch2, del, stopped)))
	p30 := peerStop(r.peer30)
	row("peer: CRI StopContainer(30) + StopPodSandbox + RemovePod…", p30)
	ratio("ratio DELETED ÷ CRI peer", d30, p30)
	fmt.Fprintln(w)

	fmt.Fprintln(w, "memory (RSS of the server process; PSS summed over the processes mapping the skiff binary)")
	for _, m := range []struct {
		label string
		m     memory
	}{
		{"idle", r.idle},
		{fmt.Sprintf("%d pods running", r.pods), r.busy},
		{"after deleting them all", r.after},
	} {
		fmt.Fprintf(w, "  %-24s server RSS %8s (anonymous %8s)   skiff PSS %8s  (%s)\n", m.label, mb(m.m.serverRSS), mb(m.m.serverAnon), mb(m.m.skiffPSS), m.m.procs())
	}
	perPod := float64(r.busy.skiffPSS-r.idle.skiffPSS) / float64(r.pods) / 1024
	fmt.Fprintf(w, "  with %d pods ÷ idle: RSS %.2f, PSS %.2f (%.0f KiB PSS per pod)\n", r.pods,
		float64(r.busy.serverRSS)/float64(r.idle.serverRSS), float64(r.busy.skiffPSS)/float64(r.idle.skiffPSS), perPod)
	fmt.Fprintf(w, "  not counted: the containers' own processes, %d with PSS %s in all\n", r.busy.ctrProc, mb(r.busy.ctrPSS))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/(1<<20)) }

func ratioOf(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
