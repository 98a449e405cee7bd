// Command apiserver benchmarks skiff's API server against its own etcd, in
// one run: creates, gets, lists and watches through the real HTTPS API with
// client-go at concurrency 1, 16 and 64, raw etcd puts of the same value
// size through the same embedded etcd, a LIST of 10,000 pods from the watch
// cache, and 1,000 watchers receiving 10,000 events.
//
//	go run ./bench/apiserver [-quick]
//
// It prints a report (and writes it with -out). Figures are throughput and
// p50/p99 latency; the ratio API creates/s ÷ raw etcd puts/s compares skiff
// with its own storage in the same run, which is what these noisy machines
// allow.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/apiserver"
	"github.com/skiff-sh/skiff/internal/registry"
	"github.com/skiff-sh/skiff/internal/registry/core"
	"github.com/skiff-sh/skiff/internal/registry/workload"
	"github.com/skiff-sh/skiff/internal/storage"
)

func main() {
	quick := flag.Bool("quick", false, "smaller runs (for a smoke test)")
	out := flag.String("out", "", "also write the report to this file")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.IntVar(&sizes.ops, "ops", 0, "operations per create/get/list measurement (default 3000; 300 with -quick)")
	flag.IntVar(&sizes.watchers, "watchers", 0, "watchers in the fan-out measurement (default 1000; 50 with -quick)")
	flag.IntVar(&sizes.events, "events", 0, "events in the fan-out measurement (default 10000; 500 with -quick)")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fatal(err)
		}
		defer pprof.StopCPUProfile()
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
	if err := run(w, *quick); err != nil {
		pprof.StopCPUProfile()
		fatal(err)
	}
}

// sizes overrides the measurements' sizes from flags; zero keeps the
// default.
var sizes struct{ ops, watchers, events int }

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}

type env struct {
	etcd   *storage.Embedded
	client kubernetes.Interface
	cfg    *rest.Config
}

func start(ctx context.Context, dir string) (*env, func(), error) {
	e, err := storage.StartEmbedded(ctx, storage.EmbeddedConfig{Dir: dir})
	if err != nil {
		return nil, nil, err
	}
	st, err := storage.NewStore(e.Client(), storage.NewProtobufCodec(scheme.Scheme), prometheus.NewRegistry())
	if err != nil {
		return nil, nil, err
	}
	var res []*registry.Resource
	res = append(res, core.Resources(core.Config{Reservations: storage.NewReservations(st)})...)
	res = append(res, workload.Resources(workload.Config{})...)
	api, err := apiserver.New(apiserver.Config{Store: st, Scheme: scheme.Scheme, Resources: res, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithCancel(ctx)
	if err := api.Start(cctx); err != nil {
		cancel()
		return nil, nil, err
	}
	// Real clients speak HTTP/2 over TLS; so does the benchmark.
	hs := newTLSServer(api)
	cfg := &rest.Config{Host: hs.url, QPS: -1, TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	for _, ns := range []string{"default", "bench"} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			cancel()
			return nil, nil, err
		}
	}
	return &env{etcd: e, client: client, cfg: cfg}, func() { hs.close(); cancel(); e.Close() }, nil
}

func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "bench", "tier": "backend"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.local/bench/app:1.0",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}},
				Env:   []corev1.EnvVar{{Name: "MODE", Value: "bench"}},
			}},
		},
	}
}

// result is one measured run.
type result struct {
	name      string
	ops       int
	elapsed   time.Duration
	latencies []time.Duration
}

func (r result) rate() float64 { return float64(r.ops) / r.elapsed.Seconds() }

func (r result) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	sort.Slice(r.latencies, func(i, j int) bool { return r.latencies[i] < r.latencies[j] })
	return r.latencies[int(float64(len(r.latencies)-1)*p)]
}

func (r result) String() string {
	return fmt.Sprintf("%-34s %8d ops %10.0f ops/s   p50 %8s   p99 %8s", r.name, r.ops, r.rate(), r.pct(0.5).Round(10*time.Microsecond), r.pct(0.99).Round(10*time.Microsecond))
}

// measure runs op n times over conc workers and records latencies.
func measure(name string, n, conc int, op func(i int) error) (result, error) {
	var (
		next   atomic.Int64
		mu     sync.Mutex
		lat    = make([]time.Duration, 0, n)
		wg     sync.WaitGroup
		errMu  sync.Mutex
		runErr error
	)
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, n/conc+1)
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					break
				}
				t := time.Now()
				if err := op(i); err != nil {
					errMu.Lock()
					runErr = err
					errMu.Unlock()
					return
				}
				local = append(local, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return result{name: name, ops: n, elapsed: time.Since(start), latencies: lat}, runErr
}

func run(w io.Writer, quick bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "skiff-bench-api-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	e, stop, err := start(ctx, dir)
	if err != nil {
		return err
	}
	defer stop()
	pods := e.client.CoreV1().Pods("bench")

	n := 3000
	listN, watchers, events := 10000, 1000, 10000
	if quick {
		n, listN, watchers, events = 300, 1000, 50, 500
	}
	n, watchers, events = orDefault(sizes.ops, n), orDefault(sizes.watchers, watchers), orDefault(sizes.events, events)
	listN = max(listN, 3*n)
	fmt.Fprintf(w, "skiff API server benchmark (%s)\n\n", time.Now().UTC().Format(time.RFC3339))

	// The value a pod occupies in etcd, for the raw put peer.
	sample, _ := storage.NewProtobufCodec(scheme.Scheme).Encode(benchPod("sample-pod-000000"))
	value := string(sample)
	fmt.Fprintf(w, "pod value size in etcd: %d bytes\n\n", len(value))

	for _, conc := range []int{1, 16, 64} {
		prefix := fmt.Sprintf("c%d-", conc)
		raw, err := measure(fmt.Sprintf("etcd put (raw)       conc=%d", conc), n, conc, func(i int) error {
			_, err := e.etcd.Client().Put(ctx, fmt.Sprintf("/bench/raw/%s%06d", prefix, i), value)
			return err
		})
		if err != nil {
			return err
		}
		create, err := measure(fmt.Sprintf("API create pod       conc=%d", conc), n, conc, func(i int) error {
			_, err := pods.Create(ctx, benchPod(fmt.Sprintf("%s%06d", prefix, i)), metav1.CreateOptions{})
			return err
		})
		if err != nil {
			return err
		}
		get, err := measure(fmt.Sprintf("API get pod          conc=%d", conc), n, conc, func(i int) error {
			_, err := pods.Get(ctx, fmt.Sprintf("%s%06d", prefix, i), metav1.GetOptions{})
			return err
		})
		if err != nil {
			return err
		}
		lists := n / 30
		list, err := measure(fmt.Sprintf("API list 100 pods    conc=%d", conc), lists, conc, func(i int) error {
			_, err := pods.List(ctx, metav1.ListOptions{Limit: 100})
			return err
		})
		if err != nil {
			return err
		}
		for _, r := range []result{raw, create, get, list} {
			fmt.Fprintln(w, r)
		}
		fmt.Fprintf(w, "  ratio API creates/s ÷ raw etcd puts/s at conc=%d: %.2f\n\n", conc, create.rate()/raw.rate())
	}

	// LIST of listN pods from the watch cache.
	lctx := "list-"
	have := 3 * n
	if _, err := measure("fill", listN-have, 32, func(i int) error {
		_, err := pods.Create(ctx, benchPod(fmt.Sprintf("%s%06d", lctx, i)), metav1.CreateOptions{})
		return err
	}); err != nil {
		return err
	}
	for _, ct := range []string{"application/json", "application/vnd.kubernetes.protobuf"} {
		cfg := rest.CopyConfig(e.cfg)
		cfg.ContentType = ct
		cfg.AcceptContentTypes = ct
		c := kubernetes.NewForConfigOrDie(cfg)
		var count int
		r, err := measure(fmt.Sprintf("LIST all pods (cache, %s)", strings.TrimPrefix(ct, "application/")), 10, 1, func(int) error {
			l, err := c.CoreV1().Pods("bench").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			if err == nil {
				count = len(l.Items)
			}
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "LIST of %d pods from the watch cache (%s): p50 %s  p99 %s\n", count, ct, r.pct(0.5).Round(time.Millisecond), r.pct(0.99).Round(time.Millisecond))
	}
	fmt.Fprintln(w)

	// watchers × events.
	if err := fanout(ctx, w, e, watchers, events); err != nil {
		return err
	}
	return nil
}

// fanout opens watchers on one namespace, then creates events objects
// there and measures the time until every watcher has every event.
func fanout(ctx context.Context, w io.Writer, e *env, watchers, events int) error {
	cms := e.client.CoreV1().ConfigMaps("default")
	var (
		wg       sync.WaitGroup
		received atomic.Int64
	)
	cfg := rest.CopyConfig(e.cfg)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	start := make(chan struct{})
	ready := make(chan struct{}, watchers)
	var lastRV string
	for i := range watchers {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := kubernetes.NewForConfigOrDie(cfg)
			rv := ""
			got := 0
			first := true
			for got < events {
				wi, err := c.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{ResourceVersion: rv, LabelSelector: "fanout=yes"})
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				if first {
					ready <- struct{}{}
					first = false
					<-start
				}
				for ev := range wi.ResultChan() {
					if ev.Type == watch.Added {
						got++
						received.Add(1)
						rv = ev.Object.(*corev1.ConfigMap).ResourceVersion
						if got == events {
							break
						}
					}
				}
				wi.Stop()
			}
		}(i)
	}
	for range watchers {
		<-ready
	}
	// Watches opened with rv "" start with the current (empty) state.
	t0 := time.Now()
	close(start)
	var werr error
	for i := range events {
		cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("f-%06d", i), Labels: map[string]string{"fanout": "yes"}}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{})
		if err != nil {
			werr = err
			break
		}
		lastRV = cm.ResourceVersion
	}
	created := time.Since(t0)
	wg.Wait()
	total := time.Since(t0)
	if werr != nil {
		return werr
	}
	fmt.Fprintf(w, "%d watchers × %d events: all delivered in %s (creates took %s; %d deliveries, %.0f deliveries/s; last rv %s)\n",
		watchers, events, total.Round(time.Millisecond), created.Round(time.Millisecond), received.Load(), float64(received.Load())/total.Seconds(), lastRV)
	return nil
}

// tlsServer serves h over HTTPS with HTTP/2 on a loopback port.
type tlsServer struct {
	url string
	srv *http.Server
}

func newTLSServer(h http.Handler) *tlsServer {
	cert, err := selfSigned()
	if err != nil {
		fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	srv := &http.Server{Handler: h, TLSConfig: cfg}
	go srv.Serve(tls.NewListener(ln, cfg))
	return &tlsServer{url: "https://" + ln.Addr().String(), srv: srv}
}

func (s *tlsServer) close() { s.srv.Close() }
