package daemonset

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestNodeHandler_QueuesOnlyDaemonSetsWhosePlacementChanges checks that
// node events wake the DaemonSets they concern and no others.
func TestNodeHandler_QueuesOnlyDaemonSetsWhosePlacementChanges(t *testing.T) {
	gpuOnly := newDS("gpu", func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.NodeSelector = map[string]string{"gpu": "true"}
	})
	everywhere := newDS("everywhere")
	cases := []struct {
		name   string
		event  func(h *harness)
		queued []string
	}{
		{"new_plain_node_wakes_daemonsets_that_fit_it", func(h *harness) {
			h.c.nodeHandler().OnAdd(newNode("n"), false)
		}, []string{"ns/everywhere"}},
		{"label_change_wakes_daemonsets_whose_fit_changes", func(h *harness) {
			old := newNode("n")
			cur := newNode("n", func(n *corev1.Node) { n.Labels["gpu"] = "true" })
			h.c.nodeHandler().OnUpdate(old, cur)
		}, []string{"ns/gpu"}},
		{"untolerated_taint_wakes_daemonsets_on_the_node", func(h *harness) {
			h.c.nodeHandler().OnUpdate(newNode("n"), newNode("n", taint("x", corev1.TaintEffectNoExecute)))
		}, []string{"ns/everywhere"}},
		{"tolerated_taint_wakes_nothing", func(h *harness) {
			h.c.nodeHandler().OnUpdate(newNode("n"), newNode("n", taint(corev1.TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)))
		}, nil},
		{"status_change_wakes_nothing", func(h *harness) {
			h.c.nodeHandler().OnUpdate(newNode("n"), newNode("n", func(n *corev1.Node) { n.Status.Phase = corev1.NodeRunning }))
		}, nil},
		{"deleted_node_wakes_every_daemonset", func(h *harness) {
			h.c.nodeHandler().OnDelete(newNode("n"))
		}, []string{"ns/everywhere", "ns/gpu"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil, gpuOnly.DeepCopy(), everywhere.DeepCopy())
			for h.c.queue.Len() > 0 { // drop the adds of the DaemonSets themselves
				k, _ := h.c.queue.Get()
				h.c.queue.Done(k)
				h.c.queue.Forget(k)
			}
			tc.event(h)
			got := map[string]bool{}
			for h.c.queue.Len() > 0 {
				k, _ := h.c.queue.Get()
				got[k] = true
				h.c.queue.Done(k)
			}
			if len(got) != len(tc.queued) {
				t.Fatalf("queued %v, want %v", got, tc.queued)
			}
			for _, k := range tc.queued {
				if !got[k] {
					t.Errorf("queued %v, want %v", got, tc.queued)
				}
			}
		})
	}
}
