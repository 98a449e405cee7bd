package nodeipam_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/controller/nodeipam"
	"github.com/skiff-sh/skiff/internal/testserver"
)

// TestController_SurvivesRestart runs the controller against the real API
// server, stops it, and starts a new one: no subnet is ever handed out
// twice, nodes that had one keep it, and a deleted node's subnet is freed.
func TestController_SurvivesRestart(t *testing.T) {
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	ctx := context.Background()
	cluster := netip.MustParsePrefix("10.42.0.0/22") // four /24s

	start := func() (stop func()) {
		t.Helper()
		runCtx, cancel := context.WithCancel(ctx)
		factory := informers.NewSharedInformerFactory(client, 0)
		c, err := nodeipam.New(nodeipam.Config{Client: client, Informers: factory, ClusterCIDRs: []netip.Prefix{cluster}})
		if err != nil {
			t.Fatal(err)
		}
		factory.Start(runCtx.Done())
		done := make(chan error, 1)
		go func() { done <- c.Run(runCtx) }()
		stopped := false
		stop = func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			factory.Shutdown()
		}
		t.Cleanup(stop)
		return stop
	}
	createNode := func(name, cidr string) {
		t.Helper()
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if cidr != "" {
			n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
		}
		if _, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitCIDR := func(name string) string {
		t.Helper()
		var cidr string
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil || len(n.Spec.PodCIDRs) == 0 {
				return false, nil
			}
			if n.Spec.PodCIDR != n.Spec.PodCIDRs[0] {
				t.Errorf("node %s: podCIDR %s, podCIDRs %v", name, n.Spec.PodCIDR, n.Spec.PodCIDRs)
			}
			cidr = n.Spec.PodCIDR
			return true, nil
		})
		if err != nil {
			t.Fatalf("node %s got no pod CIDR: %v", name, err)
		}
		return cidr
	}
	seen := map[string]string{}
	claim := func(node, cidr string) {
		t.Helper()
		p, err := netip.ParsePrefix(cidr)
		if err != nil || p.Bits() != 24 || !cluster.Contains(p.Addr()) {
			t.Fatalf("node %s: pod CIDR %q is not a /24 of %s", node, cidr, cluster)
		}
		if other, ok := seen[cidr]; ok && other != node {
			t.Fatalf("pod CIDR %s given to both %s and %s", cidr, other, node)
		}
		seen[cidr] = node
	}

	createNode("old", "10.42.1.0/24")
	createNode("a", "")
	stop := start()
	claim("a", waitCIDR("a"))
	claim("old", waitCIDR("old"))
	if seen["10.42.1.0/24"] != "old" {
		t.Fatalf("existing node lost its CIDR: %v", seen)
	}
	createNode("b", "")
	claim("b", waitCIDR("b"))

	// A new leader, with a new cache, after a restart.
	stop()
	start()
	createNode("c", "")
	claim("c", waitCIDR("c"))

	// The range is full now; deleting a node frees its subnet for the
	// waiting one.
	createNode("d", "")
	if err := client.CoreV1().Nodes().Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for cidr, n := range seen {
		if n == "a" {
			delete(seen, cidr)
		}
	}
	claim("d", waitCIDR("d"))
}
