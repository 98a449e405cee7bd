package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
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

// pod returns a running, ready pod labelled app=web on node-1 with a
// container port named http (8080/TCP).
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
func onNode(n string) podOpt          { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func portNamed(name string, n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: name, ContainerPort: n, Protocol: corev1.ProtocolTCP}}
	}
}
func alsoIP(ip string) podOpt {
	return func(p *corev1.Pod) { p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip}) }
}
func hostname(host, sub string) podOpt {
	return func(p *corev1.Pod) { p.Spec.Hostname, p.Spec.Subdomain = host, sub }
}
func sidecarPort(name string, n int32) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Ports = nil
		p.Spec.InitContainers = []corev1.Container{{
			Name: "proxy", Image: "proxy", RestartPolicy: new(corev1.ContainerRestartPolicyAlways),
			Ports: []corev1.ContainerPort{{Name: name, ContainerPort: n, Protocol: corev1.ProtocolTCP}},
		}}
	}
}

type svcOpt func(*corev1.Service)

// service returns a ClusterIP Service "web" selecting app=web, with a
// port "http" (80 → named port http) and a port "metrics" (9090 → 9090).
func service(opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "svc-uid", Labels: map[string]string{"team": "a"}},
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
func traffic(td string) svcOpt {
	return func(s *corev1.Service) { s.Spec.TrafficDistribution = new(td) }
}

func node(name, zone string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if zone != "" {
		n.Labels = map[string]string{corev1.LabelTopologyZone: zone}
	}
	return n
}

type harness struct {
	t        *testing.T
	c        *Controller
	client   *fake.Clientset
	recorder *fakeRecorder
	tr       trace
	seq      atomic.Int64
}

func newHarness(t *testing.T, cfg Config, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewSimpleClientset(objs...)
	rec := &fakeRecorder{}
	cfg.Client, cfg.Informers, cfg.Recorder = client, informers.NewSharedInformerFactory(client, 0), rec
	cfg.Clock = testingclock.NewFakeClock(t0)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, c: c, client: client, recorder: rec}
	h.emulateServer()
	h.refresh()
	return h
}

// emulateServer makes the fake API act as the API server does for
// EndpointSlices: names from generateName, UIDs, and a generation bumped
// whenever ports or endpoints change.
func (h *harness) emulateServer() {
	gvr := discoveryv1.SchemeGroupVersion.WithResource("endpointslices")
	h.client.PrependReactor("create", "endpointslices", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s := a.(k8stesting.CreateAction).GetObject().(*discoveryv1.EndpointSlice)
		n := h.seq.Add(1)
		if s.Name == "" {
			s.Name = fmt.Sprintf("%s%05d", s.GenerateName, n)
		}
		s.UID = types.UID(fmt.Sprintf("slice-uid-%d", n))
		s.Generation = 1
		return false, nil, nil
	})
	h.client.PrependReactor("update", "endpointslices", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s := a.(k8stesting.UpdateAction).GetObject().(*discoveryv1.EndpointSlice)
		obj, err := h.client.Tracker().Get(gvr, s.Namespace, s.Name)
		if err != nil {
			return true, nil, err
		}
		old := obj.(*discoveryv1.EndpointSlice)
		s.Generation = old.Generation
		if !apiequality.Semantic.DeepEqual(old.Endpoints, s.Endpoints) || !apiequality.Semantic.DeepEqual(old.Ports, s.Ports) {
			s.Generation++
		}
		return false, nil, nil
	})
}

// refresh copies the fake API's objects into the informer caches.
func (h *harness) refresh() {
	h.t.Helper()
	ctx := context.Background()
	core := h.c.cfg.Informers.Core().V1()
	replace := func(inf cache.SharedIndexInformer, items []any) {
		if err := inf.GetIndexer().Replace(items, ""); err != nil {
			h.t.Fatal(err)
		}
	}
	svcs, _ := h.client.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	pods, _ := h.client.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	nodes, _ := h.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	sl, _ := h.client.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
	eps, _ := h.client.CoreV1().Endpoints("").List(ctx, metav1.ListOptions{})
	var s, p, n, e, ep []any
	for i := range eps.Items {
		ep = append(ep, &eps.Items[i])
	}
	for i := range svcs.Items {
		s = append(s, &svcs.Items[i])
	}
	for i := range pods.Items {
		p = append(p, &pods.Items[i])
	}
	for i := range nodes.Items {
		n = append(n, &nodes.Items[i])
	}
	for i := range sl.Items {
		e = append(e, &sl.Items[i])
	}
	replace(core.Services().Informer(), s)
	replace(core.Pods().Informer(), p)
	replace(core.Nodes().Informer(), n)
	replace(h.c.cfg.Informers.Discovery().V1().EndpointSlices().Informer(), e)
	replace(core.Endpoints().Informer(), ep)
	h.client.ClearActions()
}

func (h *harness) sync() error {
	err := h.c.sync(context.Background(), "default/web")
	h.tr.step("sync default/web")
	h.tr.actions(h.client.Actions())
	h.tr.events(h.recorder)
	if err != nil {
		h.tr.note("error: %v", err)
	}
	h.refresh()
	return err
}

func (h *harness) addPod(p *corev1.Pod) {
	h.tr.note("-- add pod %s", p.Name)
	if _, err := h.client.CoreV1().Pods(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.refresh()
}

func (h *harness) deletePod(name string) {
	h.tr.note("-- delete pod %s", name)
	if err := h.client.CoreV1().Pods("default").Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.refresh()
}

func (h *harness) setService(s *corev1.Service) {
	h.tr.note("-- service now %s", describeService(s))
	if _, err := h.client.CoreV1().Services(s.Namespace).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.refresh()
}

func describeService(s *corev1.Service) string {
	return fmt.Sprintf("type=%s selector=%v families=%v", cmpOr(string(s.Spec.Type), "ClusterIP"), s.Spec.Selector, s.Spec.IPFamilies)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// renderObject prints EndpointSlices compactly: one line of metadata, one
// of ports, one per endpoint. Other objects print as YAML.
func renderObject(obj runtime.Object) string {
	s, ok := obj.(*discoveryv1.EndpointSlice)
	if !ok {
		return indentYAML(obj)
	}
	var b strings.Builder
	var labels []string
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		labels = append(labels, k+"="+s.Labels[k])
	}
	var owners []string
	for _, o := range s.OwnerReferences {
		owners = append(owners, fmt.Sprintf("%s/%s(%s) controller=%v", o.Kind, o.Name, o.UID, deref(o.Controller)))
	}
	fmt.Fprintf(&b, "  %s labels=[%s] owner=%v\n", s.AddressType, strings.Join(labels, ","), owners)
	if len(s.Annotations) > 0 {
		fmt.Fprintf(&b, "  annotations=%v\n", s.Annotations)
	}
	var ports []string
	for _, p := range s.Ports {
		ports = append(ports, fmt.Sprintf("%s:%d/%s", deref(p.Name), deref(p.Port), deref(p.Protocol)))
	}
	fmt.Fprintf(&b, "  ports=%v (nil=%v)\n", ports, s.Ports == nil)
	for _, ep := range s.Endpoints {
		fmt.Fprintf(&b, "  - %v ready=%v serving=%v terminating=%v", ep.Addresses, deref(ep.Conditions.Ready), deref(ep.Conditions.Serving), deref(ep.Conditions.Terminating))
		if ep.TargetRef != nil {
			fmt.Fprintf(&b, " pod=%s/%s", ep.TargetRef.Namespace, ep.TargetRef.Name)
		}
		if ep.NodeName != nil {
			fmt.Fprintf(&b, " node=%s", *ep.NodeName)
		}
		if ep.Zone != nil {
			fmt.Fprintf(&b, " zone=%s", *ep.Zone)
		}
		if ep.Hostname != nil {
			fmt.Fprintf(&b, " hostname=%s", *ep.Hostname)
		}
		if ep.Hints != nil {
			fmt.Fprintf(&b, " hints=zones%v,nodes%v", ep.Hints.ForZones, ep.Hints.ForNodes)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func TestSync(t *testing.T) {
	zones := []runtime.Object{node("node-1", "zone-a"), node("node-2", "zone-b")}
	with := func(objs ...runtime.Object) []runtime.Object { return append(slices.Clone(zones), objs...) }
	tests := []struct {
		name string
		cfg  Config
		objs []runtime.Object
		run  func(h *harness)
	}{
		{
			name: "CreatesSliceFromSelectedPods",
			objs: with(
				service(),
				pod("ready-b", "10.42.0.12"),
				pod("ready-a", "10.42.1.7", onNode("node-2")),
				pod("not-ready", "10.42.0.9", notReady),
				pod("terminating", "10.42.0.22", terminating),
				pod("terminating-not-ready", "10.42.0.23", terminating, notReady),
				pod("no-ip", "", noIP),
				pod("succeeded", "10.42.0.20", phase(corev1.PodSucceeded)),
				pod("failed", "10.42.0.21", phase(corev1.PodFailed)),
				pod("other-app", "10.42.0.30", labelled("app", "db")),
				pod("node-lost", "10.42.2.3", phase(corev1.PodUnknown), notReady, onNode("node-gone")),
			),
			run: func(h *harness) {
				h.sync()
				h.sync() // nothing changed
			},
		},
		{
			name: "PublishNotReadyAddressesMakesEveryEndpointReady",
			objs: with(service(publishNotReady), pod("not-ready", "10.42.0.1", notReady), pod("terminating", "10.42.0.2", terminating)),
			run:  func(h *harness) { h.sync() },
		},
		{
			name: "SplitsPodsByResolvedPorts",
			objs: with(
				service(),
				pod("http", "10.42.0.1"),
				pod("other-name", "10.42.0.2", portNamed("web", 8081)),
				pod("sidecar", "10.42.0.3", sidecarPort("http", 15001)),
			),
			run: func(h *harness) { h.sync() },
		},
		{
			name: "FillsSlicesUpToTheLimitAndTouchesOnlyWhatChanged",
			cfg:  Config{MaxEndpointsPerSlice: 3},
			objs: with(service(),
				pod("p1", "10.42.0.1"), pod("p2", "10.42.0.2"), pod("p3", "10.42.0.3"), pod("p4", "10.42.0.4"),
				pod("p5", "10.42.0.5"), pod("p6", "10.42.0.6"), pod("p7", "10.42.0.7"),
			),
			run: func(h *harness) {
				h.sync()
				h.addPod(pod("p8", "10.42.0.8"))
				h.sync()
				h.deletePod("p1")
				h.deletePod("p2")
				h.sync()
				h.deletePod("p3")
				h.sync()
			},
		},
		{
			name: "KeepsAPlaceholderWithoutEndpoints",
			objs: with(service()),
			run: func(h *harness) {
				h.sync()
				h.sync()
				h.addPod(pod("a", "10.42.0.1"))
				h.sync()
				h.deletePod("a")
				h.sync()
			},
		},
		{
			name: "DualStackGetsASlicePerFamily",
			objs: with(
				service(func(s *corev1.Service) {
					s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
				}),
				pod("dual", "10.42.0.1", alsoIP("fd00:42::1")),
				pod("v4-only", "10.42.0.2"),
			),
			run: func(h *harness) {
				h.sync()
				s, _ := h.client.CoreV1().Services("default").Get(context.Background(), "web", metav1.GetOptions{})
				s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
				h.setService(s)
				h.sync()
			},
		},
		{
			name: "HeadlessWithoutPortsAndHostnames",
			objs: with(service(headless, noPorts), pod("web-0", "10.42.0.1", hostname("web-0", "web")), pod("web-1", "10.42.0.2", hostname("web-1", "other"))),
			run:  func(h *harness) { h.sync() },
		},
		{
			name: "PreferCloseHintsZones",
			objs: with(service(traffic(corev1.ServiceTrafficDistributionPreferClose)),
				pod("a", "10.42.0.1"), pod("b", "10.42.1.1", onNode("node-2")), pod("no-zone", "10.42.2.1", onNode("node-3")), pod("not-ready", "10.42.0.2", notReady)),
			run: func(h *harness) { h.sync() },
		},
		{
			name: "PreferSameNodeHintsNodesAndZones",
			objs: with(service(traffic(corev1.ServiceTrafficDistributionPreferSameNode)), pod("a", "10.42.0.1")),
			run:  func(h *harness) { h.sync() },
		},
		{
			name: "DeletesSlicesWhenTheServiceStopsSelecting",
			objs: with(service(), pod("a", "10.42.0.1")),
			run: func(h *harness) {
				h.sync()
				s, _ := h.client.CoreV1().Services("default").Get(context.Background(), "web", metav1.GetOptions{})
				s.Spec.Selector = nil
				h.setService(s)
				h.sync()
			},
		},
		{
			name: "DeletesSlicesOfADeletedService",
			objs: with(service(), pod("a", "10.42.0.1")),
			run: func(h *harness) {
				h.sync()
				h.tr.note("-- delete service web")
				h.client.CoreV1().Services("default").Delete(context.Background(), "web", metav1.DeleteOptions{})
				h.refresh()
				h.sync()
			},
		},
		{
			name: "ReplacesSlicesOfAnEarlierServiceAndRepairsLabels",
			objs: with(service(), pod("a", "10.42.0.1"),
				&discoveryv1.EndpointSlice{
					ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-old", UID: "old-uid", Labels: map[string]string{
						discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: ManagedBy,
					}, OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: "web", UID: "earlier-svc-uid"}}},
					AddressType: discoveryv1.AddressTypeIPv4,
				},
			),
			run: func(h *harness) {
				h.sync()
				h.tr.note("-- someone relabels the slice")
				list, _ := h.client.DiscoveryV1().EndpointSlices("default").List(context.Background(), metav1.ListOptions{})
				s := list.Items[0]
				s.Labels["team"] = "b"
				h.client.DiscoveryV1().EndpointSlices("default").Update(context.Background(), &s, metav1.UpdateOptions{})
				h.refresh()
				h.sync()
			},
		},
		{
			name: "WaitsForTheCacheToCatchUp",
			objs: with(service(), pod("a", "10.42.0.1")),
			run: func(h *harness) {
				if err := h.c.sync(context.Background(), "default/web"); err != nil {
					h.t.Fatal(err)
				}
				h.client.ClearActions()
				h.tr.note("-- cache not refreshed after the create")
				if err := h.c.sync(context.Background(), "default/web"); !errors.Is(err, errStaleCache) {
					h.t.Errorf("sync on a stale cache: err = %v, want errStaleCache", err)
				}
				h.tr.actions(h.client.Actions())
				h.refresh()
				h.sync()
			},
		},
		{
			name: "ReportsFailedWrites",
			objs: with(service(), pod("a", "10.42.0.1")),
			run: func(h *harness) {
				h.client.PrependReactor("create", "endpointslices", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewInternalError(errors.New("etcd timeout"))
				})
				h.sync()
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg, tt.objs...)
			tt.run(h)
			checkGolden(t, goldenName(t), h.tr.b.String())
		})
	}
}

func TestHandlers(t *testing.T) {
	managed := func(uid string, gen int64) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
			Namespace: "default", Name: "web-" + uid, UID: types.UID(uid), Generation: gen,
			Labels: map[string]string{discoveryv1.LabelServiceName: "web", discoveryv1.LabelManagedBy: ManagedBy},
		}}
	}
	foreign := managed("x", 1)
	foreign.Labels[discoveryv1.LabelManagedBy] = "someone-else"
	tests := []struct {
		name  string
		event func(c *Controller)
		want  []string
	}{
		{name: "OwnSliceWriteIsAnEcho", event: func(c *Controller) {
			c.tracker.wrote("default/web", managed("a", 2))
			sliceEvents{ManagedBy, c.queue, c.tracker}.changed(managed("a", 1), managed("a", 2))
		}},
		{name: "ForeignEditOfManagedSlice", event: func(c *Controller) {
			c.tracker.wrote("default/web", managed("a", 2))
			sliceEvents{ManagedBy, c.queue, c.tracker}.changed(managed("a", 2), managed("a", 3))
		}, want: []string{"default/web"}},
		{name: "SliceTakenOverBySomeoneElse", event: func(c *Controller) {
			s := managed("x", 1)
			c.tracker.wrote("default/web", s)
			sliceEvents{ManagedBy, c.queue, c.tracker}.changed(s, foreign)
		}, want: []string{"default/web"}},
		{name: "UnmanagedSliceIgnored", event: func(c *Controller) { sliceEvents{ManagedBy, c.queue, c.tracker}.changed(nil, foreign) }},
		{name: "OwnDeleteIsAnEcho", event: func(c *Controller) {
			c.tracker.deletedSlice("default/web", "a")
			sliceEvents{ManagedBy, c.queue, c.tracker}.deleted(managed("a", 1))
		}},
		{name: "ForeignDelete", event: func(c *Controller) {
			sliceEvents{ManagedBy, c.queue, c.tracker}.deleted(cache.DeletedFinalStateUnknown{Key: "default/web-a", Obj: managed("a", 1)})
		}, want: []string{"default/web"}},
		{name: "PodBecomesReady", event: func(c *Controller) {
			old, cur := pod("a", "10.42.0.1", notReady), pod("a", "10.42.0.1")
			cur.ResourceVersion = "2"
			c.podChanged(old, cur)
		}, want: []string{"default/web"}},
		{name: "PodResyncIgnored", event: func(c *Controller) { c.podChanged(pod("a", "10.42.0.1"), pod("a", "10.42.0.1")) }},
		{name: "ServiceDeleted", event: func(c *Controller) {
			c.serviceChanged(cache.DeletedFinalStateUnknown{Key: "default/web", Obj: service()})
		}, want: []string{"default/web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{}, service())
			tt.event(h.c)
			var got []string
			for h.c.queue.Len() > 0 {
				k, _ := h.c.queue.Get()
				got = append(got, k)
				h.c.queue.Done(k)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("queued (-want +got):\n%s", diff)
			}
		})
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
		{name: "SliceTooBig", cfg: Config{Client: client, Informers: factory, MaxEndpointsPerSlice: 1001}, want: "max endpoints per slice 1001 is not in [1, 1000]"},
		{name: "SliceNegative", cfg: Config{Client: client, Informers: factory, MaxEndpointsPerSlice: -1}, want: "max endpoints per slice -1"},
		{name: "NegativeWorkers", cfg: Config{Client: client, Informers: factory, Workers: -1}, want: "workers -1 is negative"},
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
