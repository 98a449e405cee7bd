package endpoints

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	testingclock "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type podOpt func(*corev1.Pod)

// pod returns a running, ready pod labelled app=web with a container
// port named http (8080/TCP).
func pod(name, ip string, opts ...podOpt) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID("uid-" + name), Labels: map[string]string{"app": "web"}, ResourceVersion: "1"},
		Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{
			Name: "app", Image: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
		}}},
		Status: corev1.PodStatus{
			Phase:      corev1.PodRunning,
			PodIP:      ip,
			PodIPs:     []corev1.PodIP{{IP: ip}},
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func notReady(p *corev1.Pod) { p.Status.Conditions[0].Status = corev1.ConditionFalse }
func terminating(p *corev1.Pod) {
	ts := metav1.NewTime(t0)
	p.DeletionTimestamp = &ts
}
func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func noIP(p *corev1.Pod)              { p.Status.PodIP, p.Status.PodIPs = "", nil }
func labelled(k, v string) podOpt     { return func(p *corev1.Pod) { p.Labels = map[string]string{k: v} } }
func portNamed(name string, n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: name, ContainerPort: n, Protocol: corev1.ProtocolTCP}}
	}
}
func dualStack(v6 string) podOpt {
	return func(p *corev1.Pod) { p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: v6}) }
}
func hostname(host, sub string) podOpt {
	return func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = host, sub }
}

type svcOpt func(*corev1.Service)

// service returns a ClusterIP Service "web" selecting app=web, with a
// port "http" (80 → named port http) and a port "metrics" (9090 → 9090).
func service(opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Labels: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{
			Selector:   map[string]string{"app": "web"},
			ClusterIP:  "10.96.0.10",
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("http")},
				{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(9090)},
			},
		},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func headless(s *corev1.Service) { s.Spec.ClusterIP = corev1.ClusterIPNone }
func noPorts(s *corev1.Service)  { s.Spec.Ports = nil }
func publishNotReady(s *corev1.Service) {
	s.Spec.PublishNotReadyAddresses = true
}

type harness struct {
	t        *testing.T
	c        *Controller
	client   *fake.Clientset
	recorder *fakeRecorder
	tr       trace
}

func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewSimpleClientset(objs...)
	rec := &fakeRecorder{}
	c, err := New(Config{Client: client, Informers: informers.NewSharedInformerFactory(client, 0), Recorder: rec, Clock: testingclock.NewFakeClock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, c: c, client: client, recorder: rec}
	h.refresh()
	return h
}

// refresh copies the fake API's objects into the informer caches.
func (h *harness) refresh() {
	h.t.Helper()
	ctx := context.Background()
	core := h.c.cfg.Informers.Core().V1()
	svcs, _ := h.client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	pods, _ := h.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	eps, _ := h.client.CoreV1().Endpoints("").List(ctx, metav1.ListOptions{})
	replace := func(inf cache.SharedIndexInformer, items []any) {
		if err := inf.GetIndexer().Replace(items, ""); err != nil {
			h.t.Fatal(err)
		}
	}
	var s, p, e []any
	for i := range svcs.Items {
		s = append(s, &svcs.Items[i])
	}
	for i := range pods.Items {
		p = append(p, &pods.Items[i])
	}
	for i := range eps.Items {
		e = append(e, &eps.Items[i])
	}
	replace(core.Services().Informer(), s)
	replace(core.Pods().Informer(), p)
	replace(core.Endpoints().Informer(), e)
	h.client.ClearActions()
}

func (h *harness) sync(key string) error {
	err := h.c.sync(context.Background(), key)
	h.tr.step("sync %s", key)
	h.tr.actions(h.client.Actions())
	h.tr.events(h.recorder)
	if err != nil {
		h.tr.note("error: %v", err)
	}
	h.refresh()
	return err
}

func TestSync(t *testing.T) {
	tests := []struct {
		name string
		objs []runtime.Object
		run  func(h *harness)
	}{
		{
			name: "CreatesEndpointsFromSelectedPods",
			objs: []runtime.Object{
				service(),
				pod("ready-b", "10.42.0.12"),
				pod("ready-a", "10.42.1.7"),
				pod("not-ready", "10.42.0.9", notReady),
				pod("no-ip", "", noIP),
				pod("succeeded", "10.42.0.20", phase(corev1.PodSucceeded)),
				pod("failed", "10.42.0.21", phase(corev1.PodFailed)),
				pod("terminating", "10.42.0.22", terminating),
				pod("other-app", "10.42.0.30", labelled("app", "db")),
				pod("node-lost", "10.42.2.3", phase(corev1.PodUnknown), notReady),
			},
			run: func(h *harness) {
				h.sync("default/web")
				h.sync("default/web") // nothing changed
			},
		},
		{
			name: "PublishNotReadyAddressesKeepsEveryPodReady",
			objs: []runtime.Object{
				service(publishNotReady),
				pod("ready", "10.42.0.1"),
				pod("not-ready", "10.42.0.2", notReady),
				pod("terminating", "10.42.0.3", terminating),
				pod("no-ip", "", noIP),
			},
			run: func(h *harness) { h.sync("default/web") },
		},
		{
			name: "PodsWithoutTheNamedPortServeOnlyTheOthers",
			objs: []runtime.Object{
				service(),
				pod("http", "10.42.0.1"),
				pod("web", "10.42.0.2", portNamed("web", 8081)),
			},
			run: func(h *harness) { h.sync("default/web") },
		},
		{
			name: "HeadlessWithoutPortsAndHostnames",
			objs: []runtime.Object{
				service(headless, noPorts),
				pod("web-0", "10.42.0.1", hostname("web-0", "web")),
				pod("web-1", "10.42.0.2", hostname("web-1", "other")),
			},
			run: func(h *harness) { h.sync("default/web") },
		},
		{
			name: "ServiceWithoutPortsAndClusterIPGetsNoAddresses",
			objs: []runtime.Object{service(noPorts), pod("a", "10.42.0.1")},
			run:  func(h *harness) { h.sync("default/web") },
		},
		{
			name: "PicksTheServiceIPFamily",
			objs: []runtime.Object{
				service(func(s *corev1.Service) {
					s.Spec.ClusterIP, s.Spec.IPFamilies = "fd00:96::10", []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
				}),
				pod("dual", "10.42.0.1", dualStack("fd00:42::1")),
				pod("v4-only", "10.42.0.2"),
			},
			run: func(h *harness) { h.sync("default/web") },
		},
		{
			name: "UpdatesOnlyWhenContentChanges",
			objs: []runtime.Object{
				service(),
				pod("a", "10.42.0.1"),
				pod("b", "10.42.0.2"),
				// Stored in another packing and order than ours.
				&corev1.Endpoints{
					ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", Labels: map[string]string{"team": "a"}, ResourceVersion: "5"},
					Subsets: []corev1.EndpointSubset{
						{Addresses: []corev1.EndpointAddress{epAddr("b", "10.42.0.2")}, Ports: []corev1.EndpointPort{{Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP}, {Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}}},
						{Addresses: []corev1.EndpointAddress{epAddr("a", "10.42.0.1")}, Ports: []corev1.EndpointPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}, {Name: "metrics", Port: 9090, Protocol: corev1.ProtocolTCP}}},
					},
				},
			},
			run: func(h *harness) {
				h.sync("default/web")
				h.tr.note("-- pod b turns not ready")
				p, _ := h.client.CoreV1().Pods("default").Get(context.Background(), "b", metav1.GetOptions{})
				notReady(p)
				h.client.CoreV1().Pods("default").UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
				h.refresh()
				h.sync("default/web")
			},
		},
		{
			name: "DeletesEndpointsOfDeletedService",
			objs: []runtime.Object{
				&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "gone"}},
			},
			run: func(h *harness) {
				h.sync("default/gone")
				h.sync("default/gone") // already gone: no request
			},
		},
		{
			name: "LeavesSelectorlessAndExternalNameServicesAlone",
			objs: []runtime.Object{
				service(func(s *corev1.Service) { s.Name, s.Spec.Selector = "manual", nil }),
				service(func(s *corev1.Service) {
					s.Name, s.Spec.Type, s.Spec.ExternalName = "external", corev1.ServiceTypeExternalName, "example.com"
				}),
				pod("a", "10.42.0.1"),
			},
			run: func(h *harness) {
				h.sync("default/manual")
				h.sync("default/external")
			},
		},
		{
			name: "ReportsFailedWrites",
			objs: []runtime.Object{service(), pod("a", "10.42.0.1")},
			run: func(h *harness) {
				h.client.PrependReactor("create", "endpoints", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewInternalError(errors.New("etcd timeout"))
				})
				h.sync("default/web")
			},
		},
		{
			name: "DropsCreateInTerminatingNamespace",
			objs: []runtime.Object{service(), pod("a", "10.42.0.1")},
			run: func(h *harness) {
				h.client.PrependReactor("create", "endpoints", func(k8stesting.Action) (bool, runtime.Object, error) {
					err := apierrors.NewForbidden(corev1.Resource("endpoints"), "web", errors.New("namespace default is being terminated"))
					err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}
					return true, nil, err
				})
				h.sync("default/web")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.objs...)
			tt.run(h)
			checkGolden(t, goldenName(t), h.tr.b.String())
		})
	}
}

func epAddr(name, ip string) corev1.EndpointAddress {
	return corev1.EndpointAddress{IP: ip, NodeName: new("node-1"), TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: name, UID: types.UID("uid-" + name)}}
}

// TestSync_WaitsForItsOwnWrite: after an update, a cache that still shows
// the old object makes the sync fail (and retry) rather than write again.
func TestSync_WaitsForItsOwnWrite(t *testing.T) {
	h := newHarness(t, service(), pod("a", "10.42.0.1"),
		&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", ResourceVersion: "5"}})
	h.client.PrependReactor("update", "endpoints", func(a k8stesting.Action) (bool, runtime.Object, error) {
		ep := a.(k8stesting.UpdateAction).GetObject().(*corev1.Endpoints).DeepCopy()
		ep.ResourceVersion = "6"
		return true, ep, nil
	})
	ctx := context.Background()
	if err := h.c.sync(ctx, "default/web"); err != nil {
		t.Fatal(err)
	}
	// The cache still holds version 5.
	if err := h.c.sync(ctx, "default/web"); !errors.Is(err, errStaleCache) {
		t.Fatalf("second sync: err = %v, want errStaleCache", err)
	}
}

func TestSync_TruncatesAtCapacity(t *testing.T) {
	tests := []struct {
		name                string
		ready, notReady     int
		wantReady, wantNotR int
		wantAnnotation      bool
	}{
		{name: "AtCapacity", ready: 600, notReady: 400, wantReady: 600, wantNotR: 400},
		{name: "NotReadyCutFirst", ready: 600, notReady: 500, wantReady: 600, wantNotR: 400, wantAnnotation: true},
		{name: "ReadyBeyondCapacity", ready: 1100, notReady: 10, wantReady: 1000, wantNotR: 0, wantAnnotation: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []runtime.Object{service()}
			for i := range tt.ready + tt.notReady {
				var opts []podOpt
				if i >= tt.ready {
					opts = append(opts, notReady)
				}
				if i%2 == 0 {
					opts = append(opts, portNamed("other", 1)) // a second subset
				}
				objs = append(objs, pod(fmt.Sprintf("p%04d", i), fmt.Sprintf("10.42.%d.%d", i/250, i%250+1), opts...))
			}
			h := newHarness(t, objs...)
			if err := h.c.sync(context.Background(), "default/web"); err != nil {
				t.Fatal(err)
			}
			ep, err := h.client.CoreV1().Endpoints("default").Get(context.Background(), "web", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			gotReady, gotNotReady := 0, 0
			for _, ss := range ep.Subsets {
				gotReady += len(ss.Addresses)
				gotNotReady += len(ss.NotReadyAddresses)
			}
			if gotReady != tt.wantReady || gotNotReady != tt.wantNotR {
				t.Errorf("ready %d, not ready %d; want %d, %d", gotReady, gotNotReady, tt.wantReady, tt.wantNotR)
			}
			_, got := ep.Annotations[corev1.EndpointsOverCapacity]
			if got != tt.wantAnnotation {
				t.Errorf("over-capacity annotation present = %v, want %v", got, tt.wantAnnotation)
			}
			// A second sync finds nothing to change.
			h.refresh()
			if err := h.c.sync(context.Background(), "default/web"); err != nil {
				t.Fatal(err)
			}
			for _, a := range h.client.Actions() {
				t.Errorf("second sync wrote: %s", formatAction(a))
			}
		})
	}
}

func TestHandlers_QueueSelectingServices(t *testing.T) {
	web := service()
	db := service(func(s *corev1.Service) { s.Name, s.Spec.Selector = "db", map[string]string{"app": "db"} })
	all := service(func(s *corev1.Service) { s.Name, s.Spec.Selector = "manual", nil })
	other := service(func(s *corev1.Service) { s.Namespace = "other" })
	tests := []struct {
		name  string
		event func(c *Controller)
		want  []string
	}{
		{name: "PodAdded", event: func(c *Controller) { c.podChanged(nil, pod("a", "10.42.0.1")) }, want: []string{"default/web"}},
		{name: "PodRelabelled", event: func(c *Controller) {
			old := pod("a", "10.42.0.1")
			cur := pod("a", "10.42.0.1", labelled("app", "db"))
			cur.ResourceVersion = "2"
			c.podChanged(old, cur)
		}, want: []string{"default/db", "default/web"}},
		{name: "PodResyncIgnored", event: func(c *Controller) { c.podChanged(pod("a", "10.42.0.1"), pod("a", "10.42.0.1")) }},
		{name: "IrrelevantChangeIgnored", event: func(c *Controller) {
			cur := pod("a", "10.42.0.1")
			cur.ResourceVersion, cur.Annotations = "2", map[string]string{"x": "y"}
			c.podChanged(pod("a", "10.42.0.1"), cur)
		}},
		{name: "PodDeletedTombstone", event: func(c *Controller) {
			c.podChanged(cache.DeletedFinalStateUnknown{Key: "default/a", Obj: pod("a", "10.42.0.1")}, nil)
		}, want: []string{"default/web"}},
		{name: "ServiceChanged", event: func(c *Controller) { c.enqueueKey(db) }, want: []string{"default/db"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, web, db, all, other)
			tt.event(h.c)
			var got []string
			for h.c.queue.Len() > 0 {
				k, _ := h.c.queue.Get()
				got = append(got, k)
				h.c.queue.Done(k)
			}
			slices.Sort(got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("queued (-want +got):\n%s", diff)
			}
		})
	}
}

func TestQueueLeftovers_SkipsLeaderLocks(t *testing.T) {
	h := newHarness(t,
		&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "orphan"}},
		&corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "lock", Annotations: map[string]string{leaderAnnotation: "{}"}}},
	)
	h.c.queueLeftovers()
	if n := h.c.queue.Len(); n != 1 {
		t.Fatalf("queued %d keys, want 1", n)
	}
	if k, _ := h.c.queue.Get(); k != "default/orphan" {
		t.Errorf("queued %q, want default/orphan", k)
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	client := fake.NewSimpleClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "NoClient", cfg: Config{Informers: factory}, want: "client is required"},
		{name: "NoInformers", cfg: Config{Client: client}, want: "informer factory is required"},
		{name: "NegativeWorkers", cfg: Config{Client: client, Informers: factory, Workers: -3}, want: "workers -3 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
