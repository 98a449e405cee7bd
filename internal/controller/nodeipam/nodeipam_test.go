package nodeipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	testingclock "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func node(name string, cidrs ...string) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)}}
	if len(cidrs) > 0 {
		n.Spec.PodCIDR, n.Spec.PodCIDRs = cidrs[0], cidrs
	}
	return n
}

type harness struct {
	t        *testing.T
	c        *Controller
	client   *fake.Clientset
	recorder *fakeRecorder
	tr       trace
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
	h.refresh()
	return h
}

// refresh copies the fake API's nodes into the informer cache.
func (h *harness) refresh() {
	h.t.Helper()
	list, err := h.client.CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		h.t.Fatal(err)
	}
	var items []any
	for i := range list.Items {
		items = append(items, &list.Items[i])
	}
	if err := h.c.cfg.Informers.Core().V1().Nodes().Informer().GetIndexer().Replace(items, ""); err != nil {
		h.t.Fatal(err)
	}
	h.client.ClearActions()
}

func (h *harness) record(format string, args ...any) {
	h.tr.step(format, args...)
	h.tr.actions(h.client.Actions())
	h.tr.events(h.recorder)
	h.client.ClearActions()
}

func (h *harness) start() {
	if err := h.c.occupyExisting(); err != nil {
		h.t.Fatal(err)
	}
	h.record("start")
	h.state()
}

func (h *harness) sync(name string) {
	err := h.c.sync(context.Background(), name)
	h.record("sync %s", name)
	if err != nil {
		h.tr.note("error: %v", err)
	}
	h.refresh()
}

func (h *harness) state() {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	h.tr.note("-- free subnets %v", h.c.freeLocked())
}

func (h *harness) queued() {
	var keys []string
	for h.c.queue.Len() > 0 {
		k, _ := h.c.queue.Get()
		keys = append(keys, k)
		h.c.queue.Done(k)
	}
	h.tr.note("-- queued %v", keys)
}

func (h *harness) create(n *corev1.Node) {
	if _, err := h.client.CoreV1().Nodes().Create(context.Background(), n, metav1.CreateOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.refresh()
}

func (h *harness) remove(name string) {
	if err := h.client.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.refresh()
}

func TestController(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		objs []runtime.Object
		run  func(h *harness)
	}{
		{
			name: "AssignsSubnetsToNewNodes",
			objs: []runtime.Object{node("n1"), node("n2")},
			run: func(h *harness) {
				h.start()
				h.sync("n1")
				h.sync("n2")
				h.sync("n1") // already assigned: nothing to do
				h.state()
			},
		},
		{
			name: "RestartKeepsExistingSubnets",
			objs: []runtime.Object{node("n1", "10.42.0.0/24"), node("n3", "10.42.2.0/24"), node("n2")},
			run: func(h *harness) {
				h.start()
				h.sync("n2")
				h.create(node("n4"))
				h.sync("n4")
				h.state()
			},
		},
		{
			name: "FullRangeWaitsForRelease",
			cfg:  Config{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/23")}},
			objs: []runtime.Object{node("n1"), node("n2"), node("n3")},
			run: func(h *harness) {
				h.start()
				h.sync("n1")
				h.sync("n2")
				h.sync("n3")
				h.queued()
				h.remove("n1")
				h.sync("n1")
				h.queued()
				h.sync("n3")
				h.state()
			},
		},
		{
			name: "DualStack",
			cfg:  Config{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.42.0.0/16"), netip.MustParsePrefix("fd00:42::/56")}},
			objs: []runtime.Object{node("n1", "10.42.0.0/24", "fd00:42::/64"), node("n2")},
			run: func(h *harness) {
				h.start()
				h.sync("n2")
				h.state()
			},
		},
		{
			name: "CustomNodeMaskSize",
			cfg:  Config{ClusterCIDRs: []netip.Prefix{netip.MustParsePrefix("10.10.0.0/16")}, NodeMaskSizeIPv4: 26},
			objs: []runtime.Object{node("n1"), node("n2")},
			run: func(h *harness) {
				h.start()
				h.sync("n1")
				h.sync("n2")
			},
		},
		{
			name: "FailedPatchReleasesAndRetries",
			objs: []runtime.Object{node("n1")},
			run: func(h *harness) {
				h.start()
				h.client.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewInternalError(errors.New("etcd timeout"))
				})
				h.sync("n1")
				h.state()
				h.client.ReactionChain = h.client.ReactionChain[1:]
				h.sync("n1")
				h.state()
			},
		},
		{
			name: "ReportsOutOfRangeAndConflictingNodes",
			objs: []runtime.Object{node("n1", "10.99.0.0/24"), node("n2", "10.42.0.0/24"), node("n3", "10.42.0.0/24"), node("n4")},
			run: func(h *harness) {
				h.start()
				h.sync("n4")
				h.remove("n2")
				h.sync("n2")
				h.state() // n3 still holds 10.42.0.0/24
			},
		},
		{
			name: "NodeRecreatedUnderSameName",
			objs: []runtime.Object{node("n1", "10.42.0.0/24")},
			run: func(h *harness) {
				h.start()
				h.remove("n1")
				fresh := node("n1")
				fresh.UID = "uid-n1-again"
				h.create(fresh)
				h.sync("n1")
				h.state()
			},
		},
		{
			name: "DeletedBeforeAssignment",
			objs: []runtime.Object{node("n1")},
			run: func(h *harness) {
				h.start()
				h.client.PrependReactor("patch", "nodes", func(k8stesting.Action) (bool, runtime.Object, error) {
					return true, nil, apierrors.NewNotFound(corev1.Resource("nodes"), "n1")
				})
				h.sync("n1")
				h.remove("n1")
				h.sync("n1")
				h.state()
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

func TestHandlers_QueueNodes(t *testing.T) {
	h := newHarness(t, Config{})
	h.c.enqueue(node("a"))
	h.c.enqueue(cache.DeletedFinalStateUnknown{Key: "b", Obj: node("b")})
	h.c.enqueue("garbage")
	var got []string
	for h.c.queue.Len() > 0 {
		k, _ := h.c.queue.Get()
		got = append(got, k)
		h.c.queue.Done(k)
	}
	if fmt.Sprint(got) != "[a b]" {
		t.Errorf("queued %v, want [a b]", got)
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	client := fake.NewSimpleClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	base := Config{Client: client, Informers: factory}
	with := func(f func(*Config)) Config { c := base; f(&c); return c }
	p := netip.MustParsePrefix
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "NoClient", cfg: Config{Informers: factory}, want: "client is required"},
		{name: "NoInformers", cfg: Config{Client: client}, want: "informer factory is required"},
		{name: "EmptyCIDRList", cfg: with(func(c *Config) { c.ClusterCIDRs = []netip.Prefix{} }), want: "no cluster CIDR"},
		{name: "ThreeCIDRs", cfg: with(func(c *Config) { c.ClusterCIDRs = []netip.Prefix{p("10.0.0.0/16"), p("10.1.0.0/16"), p("fd00::/56")} }), want: "at most one per IP family"},
		{name: "TwoIPv4", cfg: with(func(c *Config) { c.ClusterCIDRs = []netip.Prefix{p("10.0.0.0/16"), p("10.1.0.0/16")} }), want: "one of each IP family"},
		{name: "MappedIPv4", cfg: with(func(c *Config) { c.ClusterCIDRs = []netip.Prefix{p("::ffff:10.0.0.0/112")} }), want: "IPv4-mapped"},
		{name: "Unmasked", cfg: with(func(c *Config) { c.ClusterCIDRs = []netip.Prefix{p("10.42.1.0/16")} }), want: "did you mean 10.42.0.0/16"},
		{name: "MaskTooShort", cfg: with(func(c *Config) { c.NodeMaskSizeIPv4 = 8 }), want: "shorter than cluster CIDR"},
		{name: "IPv6TooManySubnets", cfg: with(func(c *Config) { c.ClusterCIDRs = []netip.Prefix{p("fd00::/32")} }), want: "more than 2^16 subnets"},
		{name: "NegativeWorkers", cfg: with(func(c *Config) { c.Workers = -1 }), want: "workers -1 is negative"},
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
