// Command scheduler benchmarks skiff's scheduler against the real
// control plane in one run: it starts a server (API server on embedded
// etcd, HTTPS) in this process, creates 1,000 nodes and then 5,000 pods
// through the API (the peer figure: the API's own create rate for the
// same pods), and starts the scheduler in a child process so that its
// memory is its own. It measures the time until every pod is bound and
// reads the scheduler's peak RSS and Go heap.
//
//	go run ./bench/scheduler [-nodes 1000] [-pods 5000] [-workload basic|spread] [-out report.txt]
//
// The ratio bound/s ÷ created/s compares the scheduler with the API it
// drives, in the same run: these machines are too noisy for absolute
// figures to compare across runs. Upstream kube-scheduler cannot run
// here; the design notes record its 200–216 pods/s and 166 MB on the same
// workload.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/internal/server"
)

func main() {
	var (
		nodes    = flag.Int("nodes", 1000, "fake nodes")
		pods     = flag.Int("pods", 5000, "pods to schedule")
		workload = flag.String("workload", "basic", "basic: cpu and memory requests; spread: also a zone topology spread constraint and a preferred host anti-affinity")
		conc     = flag.Int("concurrency", 16, "concurrent creates")
		out      = flag.String("out", "", "also write the report to this file")
		profile  = flag.String("profile", "", "write the scheduler's CPU and heap profiles into this directory")
		verbose  = flag.Bool("v", false, "show the scheduler's debug log")
	)
	flag.Parse()
	if *workload != "basic" && *workload != "spread" {
		fatal(fmt.Errorf("unknown workload %q", *workload))
	}
	var w io.Writer = os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	if err := run(w, *nodes, *pods, *conc, *workload, *profile, *verbose); err != nil {
		fatal(err)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}

func run(w io.Writer, numNodes, numPods, conc int, workload, profile string, verbose bool) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir, err := os.MkdirTemp("", "skiff-sched-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg, kubeconfig, stopServer, err := startServer(ctx, dir)
	if err != nil {
		return err
	}
	defer stopServer()
	// Protobuf, as the scheduler speaks: the peers must cost the API
	// server what the scheduler's requests cost it.
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}

	fmt.Fprintf(w, "skiff scheduler benchmark: %d nodes, %d pods, workload %s, %d CPUs, %s\n", numNodes, numPods, workload, runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	start := time.Now()
	if err := parallel(numNodes, conc, func(i int) error { return createNode(ctx, client, i) }); err != nil {
		return fmt.Errorf("create nodes: %w", err)
	}
	fmt.Fprintf(w, "%-44s %8.2fs\n", fmt.Sprintf("create %d nodes (create + status)", numNodes), time.Since(start).Seconds())

	// The peer: the API's own create rate for these pods.
	start = time.Now()
	if err := parallel(numPods, conc, func(i int) error {
		_, err := client.CoreV1().Pods("default").Create(ctx, benchPod(i, workload), metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("create pods: %w", err)
	}
	createdIn := time.Since(start)
	createRate := float64(numPods) / createdIn.Seconds()
	fmt.Fprintf(w, "%-44s %8.2fs %8.0f pods/s\n", fmt.Sprintf("peer: create %d pods, concurrency %d", numPods, conc), createdIn.Seconds(), createRate)

	// Count bindings with a watch from now on.
	wi, err := watchPods(ctx, client, "default")
	if err != nil {
		return err
	}
	defer wi.Stop()

	exe, err := buildSchedproc(dir)
	if err != nil {
		return err
	}
	args := []string{"-kubeconfig", kubeconfig}
	if profile != "" {
		args = append(args, "-profile", profile)
	}
	if verbose {
		args = append(args, "-v")
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	start = time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	childDone := false
	defer func() {
		if !childDone {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	first, last, err := waitBound(ctx, wi, numPods, 10*time.Minute)
	if err != nil {
		return err
	}
	rss, hwm := procMemory(cmd.Process.Pid)
	// The Scheduled event follows each binding: let the last ones land.
	events := waitEvents(ctx, client, "default", numPods, 15*time.Second)
	_ = cmd.Process.Signal(syscall.SIGUSR1)
	heap := readHeap(stdout)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_, _ = io.Copy(io.Discard, stdout)
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("scheduler process: %w", err)
	}
	childDone = true

	total := last.Sub(start)
	binding := last.Sub(first)
	boundRate := float64(numPods) / binding.Seconds()
	fmt.Fprintf(w, "%-44s %8.2fs\n", "scheduler start → first pod bound", first.Sub(start).Seconds())
	fmt.Fprintf(w, "%-44s %8.2fs %8.0f pods/s\n", "first → last pod bound", binding.Seconds(), boundRate)
	fmt.Fprintf(w, "%-44s %8.2fs %8.0f pods/s\n", "scheduler start → all bound", total.Seconds(), float64(numPods)/total.Seconds())
	fmt.Fprintf(w, "%-44s %8.1f MB (peak %.1f MB)\n", "scheduler process RSS when done", float64(rss)/1e6, float64(hwm)/1e6)
	if heap != "" {
		fmt.Fprintf(w, "%-44s %s\n", "scheduler Go memory when done", heap)
	}
	fmt.Fprintf(w, "%-44s %8.2f\n", "ratio bound/s ÷ created/s", boundRate/createRate)

	fmt.Fprintf(w, "%-44s %8d of %d\n", "Scheduled events recorded", events, numPods)

	// The second peer: the same writes the scheduler makes (a binding and
	// an event per pod), made directly at the scheduler's concurrency,
	// without any scheduling decision: the API's ceiling for a scheduler.
	if _, err := client.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "peer"}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	if err := parallel(numPods, conc, func(i int) error {
		p := benchPod(i, workload)
		p.Spec.SchedulerName = "nobody"
		_, err := client.CoreV1().Pods("peer").Create(ctx, p, metav1.CreateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("create peer pods: %w", err)
	}
	pw, err := watchPods(ctx, client, "peer")
	if err != nil {
		return err
	}
	defer pw.Stop()
	bindErr := make(chan error, 1)
	go func() {
		bindErr <- parallel(numPods, 64, func(i int) error {
			name := fmt.Sprintf("pod-%05d", i)
			node := fmt.Sprintf("node-%04d", i%numNodes)
			b := &v1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name}, Target: v1.ObjectReference{Kind: "Node", Name: node}}
			if err := client.CoreV1().Pods("peer").Bind(ctx, b, metav1.CreateOptions{}); err != nil {
				return err
			}
			_, err := client.CoreV1().Events("peer").Create(ctx, &v1.Event{
				ObjectMeta:     metav1.ObjectMeta{GenerateName: name + "."},
				InvolvedObject: v1.ObjectReference{Kind: "Pod", Namespace: "peer", Name: name},
				Reason:         "Scheduled", Message: "Successfully assigned peer/" + name + " to " + node, Type: v1.EventTypeNormal,
				Source: v1.EventSource{Component: "bench"}, FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
			}, metav1.CreateOptions{})
			return err
		})
	}()
	pfirst, plast, err := waitBound(ctx, pw, numPods, 10*time.Minute)
	if err != nil {
		return err
	}
	if err := <-bindErr; err != nil {
		return fmt.Errorf("bind peer pods: %w", err)
	}
	direct := plast.Sub(pfirst)
	directRate := float64(numPods) / direct.Seconds()
	fmt.Fprintf(w, "%-44s %8.2fs %8.0f pods/s\n", "peer: bind + event directly, concurrency 64", direct.Seconds(), directRate)
	fmt.Fprintf(w, "%-44s %8.2f\n", "ratio bound/s ÷ direct binds/s", boundRate/directRate)
	return nil
}

// buildSchedproc builds the scheduler's own binary (./schedproc) into
// dir, so that the process measured holds the scheduler only, not this
// program's API server and etcd.
func buildSchedproc(dir string) (string, error) {
	out := filepath.Join(dir, "schedproc")
	_, self, _, _ := runtime.Caller(0)
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join(filepath.Dir(self), "schedproc")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build schedproc: %w\n%s", err, msg)
	}
	return out, nil
}

func startServer(ctx context.Context, dir string) (*rest.Config, string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s, err := server.New(server.Config{
		DataDir:          dir,
		BindAddress:      "127.0.0.1",
		HTTPSPort:        port,
		AdvertiseAddress: net.IPv4(127, 0, 0, 1),
		// No Extend: the API server alone. The scheduler under test runs
		// in the child process, and nothing else writes.
		CompactionInterval: -1,
		Logger:             slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		return nil, "", nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(sctx) }()
	stop := func() { cancel(); <-done }
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		return nil, "", nil, fmt.Errorf("server: %w", err)
	case <-time.After(60 * time.Second):
		stop()
		return nil, "", nil, errors.New("server not ready after 60s")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", s.KubeconfigPath())
	if err != nil {
		stop()
		return nil, "", nil, err
	}
	cfg.QPS, cfg.Burst = -1, 0
	return cfg, s.KubeconfigPath(), stop, nil
}

func parallel(n, conc int, op func(i int) error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := op(i); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

const zones = 10

func createNode(ctx context.Context, client kubernetes.Interface, i int) error {
	name := fmt.Sprintf("node-%04d", i)
	n := &v1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		v1.LabelHostname:      name,
		v1.LabelTopologyZone:  fmt.Sprintf("zone-%d", i%zones),
		v1.LabelOSStable:      "linux",
		v1.LabelArchStable:    "amd64",
		"node.skiff.sh/bench": "true",
	}}}
	created, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	rl := v1.ResourceList{
		v1.ResourceCPU:    resource.MustParse("32"),
		v1.ResourceMemory: resource.MustParse("128Gi"),
		v1.ResourcePods:   resource.MustParse("110"),
	}
	created.Status = v1.NodeStatus{
		Capacity: rl, Allocatable: rl,
		Conditions: []v1.NodeCondition{{Type: v1.NodeReady, Status: v1.ConditionTrue, Reason: "KubeletReady", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
	}
	_, err = client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

func benchPod(i int, workload string) *v1.Pod {
	app := fmt.Sprintf("app-%d", i%50)
	p := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%05d", i), Labels: map[string]string{"app": app}},
		Spec: v1.PodSpec{
			Containers: []v1.Container{{
				Name: "app", Image: "registry.local/bench/app:1.0",
				Resources: v1.ResourceRequirements{Requests: v1.ResourceList{
					v1.ResourceCPU:    resource.MustParse("100m"),
					v1.ResourceMemory: resource.MustParse("128Mi"),
				}},
			}},
		},
	}
	if workload == "spread" {
		sel := &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}
		p.Spec.TopologySpreadConstraints = []v1.TopologySpreadConstraint{{
			MaxSkew: 1, TopologyKey: v1.LabelTopologyZone, WhenUnsatisfiable: v1.DoNotSchedule, LabelSelector: sel,
		}}
		p.Spec.Affinity = &v1.Affinity{PodAntiAffinity: &v1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []v1.WeightedPodAffinityTerm{{
				Weight: 10, PodAffinityTerm: v1.PodAffinityTerm{LabelSelector: sel, TopologyKey: v1.LabelHostname},
			}},
		}}
	}
	return p
}

// watchPods watches a namespace's pods from now on.
func watchPods(ctx context.Context, client kubernetes.Interface, ns string) (watch.Interface, error) {
	list, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return nil, err
	}
	return client.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
}

// waitEvents waits until a namespace has n Scheduled events, or until
// timeout, and returns how many it has.
func waitEvents(ctx context.Context, client kubernetes.Interface, ns string, n int, timeout time.Duration) int {
	deadline := time.Now().Add(timeout)
	for {
		list, err := client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "reason=Scheduled"})
		if err != nil {
			return 0
		}
		if len(list.Items) >= n || time.Now().After(deadline) {
			return len(list.Items)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitBound counts pods getting spec.nodeName on the watch, and returns
// when the first and the last were seen.
func waitBound(ctx context.Context, wi watch.Interface, n int, timeout time.Duration) (first, last time.Time, err error) {
	seen := map[string]bool{}
	deadline := time.After(timeout)
	for len(seen) < n {
		select {
		case ev, ok := <-wi.ResultChan():
			if !ok {
				return first, last, fmt.Errorf("watch closed after %d bound pods", len(seen))
			}
			p, ok := ev.Object.(*v1.Pod)
			if !ok || p.Spec.NodeName == "" || seen[p.Name] {
				continue
			}
			seen[p.Name] = true
			if len(seen) == 1 {
				first = time.Now()
			}
			last = time.Now()
		case <-deadline:
			return first, last, fmt.Errorf("only %d of %d pods bound after %v", len(seen), n, timeout)
		case <-ctx.Done():
			return first, last, ctx.Err()
		}
	}
	return first, last, nil
}

// procMemory reads VmRSS and VmHWM (bytes) of a process.
func procMemory(pid int) (rss, hwm int64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = v * 1024
		case "VmHWM:":
			hwm = v * 1024
		}
	}
	return rss, hwm
}

func readHeap(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "heap_inuse=") {
			continue
		}
		var inuse, heapSys, sys int64
		fmt.Sscanf(line, "heap_inuse=%d heap_sys=%d sys=%d", &inuse, &heapSys, &sys)
		return fmt.Sprintf("live heap %.1f MB, from the OS %.1f MB", float64(inuse)/1e6, float64(sys)/1e6)
	}
	return ""
}
