package statefulset

import (
	"errors"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"
)

const ns = "ns"

func ptrTo[T any](v T) *T { return &v }

// newSet returns a StatefulSet as the API server stores it (defaults).
func newSet(name string, n int32, change ...func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID("uid-" + name), Generation: 1, ResourceVersion: "1"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:            ptrTo(n),
			Selector:            &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			ServiceName:         name,
			PodManagementPolicy: appsv1.OrderedReadyPodManagement,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "db:1"}}},
			},
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{
				Type:          appsv1.RollingUpdateStatefulSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptrTo(int32(0))},
			},
			RevisionHistoryLimit: ptrTo(int32(10)),
		},
	}
	for _, f := range change {
		f(set)
	}
	return set
}

func image(img string) func(*appsv1.StatefulSet) {
	return func(set *appsv1.StatefulSet) {
		set.Spec.Template.Spec.Containers[0].Image = img
		set.Generation++
	}
}

func scale(n int32) func(*appsv1.StatefulSet) {
	return func(set *appsv1.StatefulSet) { set.Spec.Replicas = ptrTo(n); set.Generation++ }
}

// runReady is what the scheduler and node agent do for a pod.
func runReady(p *corev1.Pod) {
	p.Spec.NodeName = "node-1"
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}
}

// readyAll runs every pod that is not being deleted, and has the node
// agent finish deleting those that are.
func (h *harness) readyAll() {
	h.t.Helper()
	for _, p := range h.pods(ns) {
		switch {
		case p.DeletionTimestamp != nil:
			if err := h.client.Tracker().Delete(podsGVR, ns, p.Name); err != nil {
				h.t.Fatal(err)
			}
		case !isRunningAndReady(p):
			h.setPod(p, runReady)
		}
	}
	h.Refresh()
}

// step refreshes the caches, syncs, and refreshes again.
func (h *harness) step(title, key string) {
	h.t.Helper()
	h.Refresh()
	h.sync(title, key)
	h.Refresh()
}

// TestSync drives the controller through StatefulSet lifecycles, one sync
// at a time, and compares the calls it makes with golden traces.
func TestSync(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"ordered_ready_creates_pods_one_at_a_time", func(t *testing.T) {
			h := newHarness(t, nil, newSet("web", 3))
			h.step("revision 1; web-0", "ns/web")
			h.step("web-0 pending: wait", "ns/web")
			h.readyAll()
			h.step("web-0 ready: web-1", "ns/web")
			h.readyAll()
			h.step("web-1 ready: web-2", "ns/web")
			h.readyAll()
			h.step("all ready: status", "ns/web")
			h.Golden()
		}},
		{"parallel_creates_and_deletes_without_waiting", func(t *testing.T) {
			h := newHarness(t, nil, newSet("web", 3, func(set *appsv1.StatefulSet) { set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }))
			h.step("all three at once", "ns/web")
			h.setSet(h.set(ns, "web"), scale(1))
			h.step("scale to 1: web-1 and web-2 at once, ready or not", "ns/web")
			h.Golden()
		}},
		{"ordered_scale_down_from_the_highest_ordinal", func(t *testing.T) {
			h := newHarness(t, nil, newSet("web", 3))
			for range 3 {
				h.step("create", "ns/web")
				h.readyAll()
			}
			h.setSet(h.set(ns, "web"), scale(1))
			h.step("scale to 1: web-2 goes first", "ns/web")
			h.step("web-2 terminating: wait", "ns/web")
			h.readyAll()
			h.step("web-2 gone: web-1", "ns/web")
			h.Golden()
		}},
		{"recreates_failed_and_completed_pods", func(t *testing.T) {
			h := newHarness(t, nil, newSet("web", 2, func(set *appsv1.StatefulSet) { set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }))
			h.step("create", "ns/web")
			h.readyAll()
			h.setPod(h.pod(ns, "web-0"), func(p *corev1.Pod) { p.Spec.NodeName = ""; p.Status.Phase = corev1.PodFailed })
			h.setPod(h.pod(ns, "web-1"), func(p *corev1.Pod) { p.Spec.NodeName = ""; p.Status.Phase = corev1.PodSucceeded })
			h.step("both ended: deleted and created anew", "ns/web")
			h.Golden()
		}},
		{"rolling_update_goes_from_the_highest_ordinal_down", func(t *testing.T) {
			h := newHarness(t, nil, newSet("web", 3))
			for range 3 {
				h.step("create", "ns/web")
				h.readyAll()
			}
			h.step("settled at revision 1", "ns/web")
			h.setSet(h.set(ns, "web"), image("db:2"))
			h.step("new template: revision 2, web-2 deleted", "ns/web")
			h.readyAll()
			h.step("web-2 recreated at revision 2", "ns/web")
			h.step("web-2 not ready: wait", "ns/web")
			h.readyAll()
			h.step("web-2 ready: web-1 deleted", "ns/web")
			h.readyAll()
			h.step("web-1 recreated", "ns/web")
			h.readyAll()
			h.step("web-0 deleted", "ns/web")
			h.readyAll()
			h.step("web-0 recreated", "ns/web")
			h.readyAll()
			h.step("all updated and ready: currentRevision moves", "ns/web")
			h.Golden()
		}},
		{"partition_keeps_lower_ordinals", func(t *testing.T) {
			h := newHarness(t, nil, newSet("web", 3, func(set *appsv1.StatefulSet) {
				set.Spec.UpdateStrategy.RollingUpdate.Partition = ptrTo(int32(2))
			}))
			for range 3 {
				h.step("create", "ns/web")
				h.readyAll()
			}
			h.step("settled", "ns/web")
			h.setSet(h.set(ns, "web"), image("db:2"))
			h.step("partition 2: only web-2 goes", "ns/web")
			h.readyAll()
			h.step("web-2 recreated at revision 2", "ns/web")
			h.readyAll()
			h.step("web-2 ready: web-0 and web-1 stay, currentRevision stays", "ns/web")
			h.Golden()
		}},
		{"on_delete_updates_only_deleted_pods", func(t *testing.T) {
			h := newHarness(t, nil, newSet("web", 2, func(set *appsv1.StatefulSet) {
				set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
			}))
			for range 2 {
				h.step("create", "ns/web")
				h.readyAll()
			}
			h.setSet(h.set(ns, "web"), image("db:2"))
			h.step("new template: nothing deleted", "ns/web")
			if err := h.client.Tracker().Delete(podsGVR, ns, "web-1"); err != nil {
				t.Fatal(err)
			}
			h.step("web-1 deleted by hand: recreated at revision 2", "ns/web")
			h.Golden()
		}},
		{"rollback_renumbers_the_old_revision", func(t *testing.T) {
			h := newHarness(t, nil, newSet("web", 1))
			h.step("revision 1", "ns/web")
			h.readyAll()
			h.setSet(h.set(ns, "web"), image("db:2"))
			h.step("revision 2", "ns/web")
			h.setSet(h.set(ns, "web"), image("db:1"))
			h.step("back to db:1: its revision becomes 3", "ns/web")
			h.Golden()
		}},
		{"volume_claim_templates_get_a_claim_per_pod", func(t *testing.T) {
			h := newHarness(t, nil, newSet("db", 1, func(set *appsv1.StatefulSet) {
				set.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
				set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{
					ObjectMeta: metav1.ObjectMeta{Name: "data"},
					Spec: corev1.PersistentVolumeClaimSpec{
						AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
						Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
					},
				}}
			}))
			h.step("claim data-db-0, then db-0 using it in place of the template's volume", "ns/db")
			h.Golden()
		}},
		{"stalls_when_claims_cannot_be_created", func(t *testing.T) {
			h := newHarness(t, nil, newSet("db", 1, func(set *appsv1.StatefulSet) {
				set.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}
			}))
			notServed := func(a clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewNotFound(corev1.Resource("persistentvolumeclaims"), "")
			}
			h.client.PrependReactor("create", "persistentvolumeclaims", notServed)
			h.step("no claims: no pod, FailedCreate", "ns/db")
			h.Golden()
		}},
		{"fixes_identity_and_adopts_orphans", func(t *testing.T) {
			set := newSet("web", 2, func(set *appsv1.StatefulSet) {
				set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
			})
			drifted := newPod(set, 0, "web-x")
			delete(drifted.Labels, appsv1.PodIndexLabel)
			runReady(drifted)
			orphan := newPod(set, 1, "web-x")
			orphan.OwnerReferences = nil
			runReady(orphan)
			stranger := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other-0", Namespace: ns, Labels: map[string]string{"app": "web"}}}
			h := newHarness(t, nil, set, drifted, orphan, stranger)
			h.step("web-1 adopted, web-0's labels fixed, other-0 (not named for the set) left alone", "ns/web")
			h.Golden()
		}},
		{"start_ordinal_and_bad_input", func(t *testing.T) {
			h := newHarness(t, nil,
				newSet("web", 1, func(set *appsv1.StatefulSet) { set.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 5} }),
				newSet("all", 1, func(set *appsv1.StatefulSet) { set.Spec.Selector = &metav1.LabelSelector{} }),
			)
			h.step("ordinals start at 5: web-5", "ns/web")
			h.step("empty selector: refused", "ns/all")
			h.step("no such statefulset", "ns/missing")
			h.step("malformed key", "a/b/c")
			h.Golden()
		}},
		{"reports_create_errors", func(t *testing.T) {
			h := newHarness(t, nil, newSet("web", 2))
			h.client.PrependReactor("create", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewForbidden(podsGVR.GroupResource(), "web-0", errors.New("exceeded quota"))
			})
			h.step("create refused: FailedCreate, error, status still written", "ns/web")
			h.Golden()
		}},
		{"truncates_history", func(t *testing.T) {
			h := newHarness(t, nil, newSet("web", 1, func(set *appsv1.StatefulSet) {
				set.Spec.RevisionHistoryLimit = ptrTo(int32(1))
				set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
			}))
			h.step("revision 1", "ns/web")
			for _, img := range []string{"db:2", "db:3", "db:4"} {
				h.setSet(h.set(ns, "web"), image(img))
				h.step("template "+img+" (web-0 keeps revision 1 alive)", "ns/web")
			}
			h.clock.Step(time.Second)
			h.Golden()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}
