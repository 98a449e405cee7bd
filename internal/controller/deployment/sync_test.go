package deployment

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/util/workqueue"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type deployMod func(*appsv1.Deployment)

func newDeployment(image string, replicas int32, mods ...deployMod) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "web-uid", Generation: 1,
			CreationTimestamp: metav1.NewTime(t0.Add(-24 * time.Hour))},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(image),
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxSurge: ptr.To(intstr.FromString("25%")), MaxUnavailable: ptr.To(intstr.FromString("25%")),
			}},
			RevisionHistoryLimit:    ptr.To[int32](10),
			ProgressDeadlineSeconds: ptr.To[int32](600),
		},
	}
	for _, m := range mods {
		m(d)
	}
	return d
}

func template(image string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
	}
}

func strategy(surge, unavailable intstr.IntOrString) deployMod {
	return func(d *appsv1.Deployment) {
		d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}
	}
}

func recreate() deployMod {
	return func(d *appsv1.Deployment) {
		d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
	}
}

func progressingSince(reason string, ago time.Duration) deployMod {
	return func(d *appsv1.Deployment) {
		at := metav1.NewTime(t0.Add(-ago))
		d.Status.Conditions = append(d.Status.Conditions, appsv1.DeploymentCondition{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: reason, LastUpdateTime: at, LastTransitionTime: at,
		})
	}
}

// observed gives d a status as of its last sync: replicas all updated and
// available.
func observed(replicas int32) deployMod {
	return func(d *appsv1.Deployment) {
		d.Status.ObservedGeneration = d.Generation
		d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = replicas, replicas, replicas, replicas
	}
}

func availableSince(ago time.Duration) deployMod {
	return func(d *appsv1.Deployment) {
		at := metav1.NewTime(t0.Add(-ago))
		d.Status.Conditions = append(d.Status.Conditions, appsv1.DeploymentCondition{
			Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: reasonMinAvailable, Message: msgMinAvailable, LastUpdateTime: at, LastTransitionTime: at,
		})
	}
}

type rsMod func(*appsv1.ReplicaSet)

// revisionOf returns the ReplicaSet of d for image at revision rev, sized
// replicas, all of them available unless a mod says otherwise.
func revisionOf(d *appsv1.Deployment, image string, rev int, replicas int32, mods ...rsMod) *appsv1.ReplicaSet {
	tmpl := template(image)
	hash := templateHash(&tmpl, nil)
	tmpl.Labels = map[string]string{"app": "web", appsv1.DefaultDeploymentUniqueLabelKey: hash}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace, UID: types.UID("rs-" + image),
			Labels:            tmpl.Labels,
			CreationTimestamp: metav1.NewTime(t0.Add(-time.Duration(10-rev) * time.Hour)),
			Generation:        1,
			OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(d, controllerKind)},
			Annotations: map[string]string{
				RevisionAnnotation:        strconv.Itoa(rev),
				DesiredReplicasAnnotation: strconv.Itoa(int(desired(d))),
				MaxReplicasAnnotation:     strconv.Itoa(int(desired(d) + maxSurge(d))),
			},
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels},
			Template: tmpl,
		},
		Status: appsv1.ReplicaSetStatus{Replicas: replicas, ReadyReplicas: replicas, AvailableReplicas: replicas, ObservedGeneration: 1},
	}
	for _, m := range mods {
		m(rs)
	}
	return rs
}

func availableOnly(n int32) rsMod {
	return func(rs *appsv1.ReplicaSet) { rs.Status.ReadyReplicas, rs.Status.AvailableReplicas = n, n }
}

func statusReplicasOnly(n int32) rsMod {
	return func(rs *appsv1.ReplicaSet) { rs.Status.Replicas = n }
}

func annotated(k, v string) rsMod {
	return func(rs *appsv1.ReplicaSet) { rs.Annotations[k] = v }
}

type harness struct {
	client *fake.Clientset
	ctrl   *Controller
	clock  *clocktesting.FakeClock
	events *eventLog
	queue  *delays
}

// delays records AddAfter calls instead of running timers.
type delays struct {
	workqueue.TypedRateLimitingInterface[string]
	after map[string]time.Duration
}

func (q *delays) AddAfter(key string, d time.Duration) { q.after[key] = d }

// newHarness builds a controller on a fake client holding objs, with its
// caches filled with objs and no informer running.
func newHarness(t *testing.T, objs ...runtime.Object) *harness {
	t.Helper()
	client := fake.NewClientset(objs...)
	nameGenerator(client)
	factory := informers.NewSharedInformerFactory(client, 0)
	clk := clocktesting.NewFakeClock(t0)
	events := &eventLog{}
	ctrl, err := New(Config{Client: client, Informers: factory, Clock: clk, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctrl.queue.ShutDown)
	q := &delays{TypedRateLimitingInterface: ctrl.queue, after: map[string]time.Duration{}}
	ctrl.queue = q
	for _, o := range objs {
		var err error
		switch o := o.(type) {
		case *appsv1.Deployment:
			err = factory.Apps().V1().Deployments().Informer().GetIndexer().Add(o)
		case *appsv1.ReplicaSet:
			err = factory.Apps().V1().ReplicaSets().Informer().GetIndexer().Add(o)
		case *corev1.Pod:
			err = factory.Core().V1().Pods().Informer().GetIndexer().Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	client.ClearActions()
	return &harness{client: client, ctrl: ctrl, clock: clk, events: events, queue: q}
}

func TestSync(t *testing.T) {
	d1 := newDeployment("app:1", 4)
	// v2 is a Deployment of app:1, complete, whose image was just changed.
	v2 := newDeployment("app:2", 4, observed(4), availableSince(time.Hour), progressingSince(reasonNewRSAvailable, time.Hour), func(d *appsv1.Deployment) {
		d.Generation = 2
		d.Annotations = map[string]string{RevisionAnnotation: "1"}
	})
	// midRollout is v2 after its first step: revision 2 exists with one
	// replica.
	midRollout := func(mods ...deployMod) *appsv1.Deployment {
		return newDeployment("app:2", 4, append([]deployMod{availableSince(time.Hour), func(d *appsv1.Deployment) {
			d.Generation = 2
			d.Annotations = map[string]string{RevisionAnnotation: "2"}
			d.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 5, UpdatedReplicas: 1, ReadyReplicas: 4, AvailableReplicas: 4, UnavailableReplicas: 1,
				Conditions: d.Status.Conditions}
			at, since := metav1.NewTime(t0.Add(-time.Minute)), metav1.NewTime(t0.Add(-time.Hour))
			d.Status.Conditions = append(d.Status.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue,
				Reason: reasonNewRSCreated, Message: `Created new replica set "web-868466746b"`, LastUpdateTime: at, LastTransitionTime: since})
		}}, mods...)...)
	}
	// An orphan ReplicaSet that the Deployment's selector matches.
	orphan := revisionOf(d1, "app:1", 1, 2)
	orphan.OwnerReferences = nil

	for _, tc := range []struct {
		name string
		objs []runtime.Object
	}{
		{
			name: "creates the first revision at full size",
			objs: []runtime.Object{newDeployment("app:1", 4)},
		},
		{
			name: "surges a new revision for a new template",
			objs: []runtime.Object{v2, revisionOf(v2, "app:1", 1, 4)},
		},
		{
			name: "scales the old revision down within maxUnavailable",
			objs: []runtime.Object{midRollout(), revisionOf(v2, "app:1", 1, 4), revisionOf(v2, "app:2", 2, 1, availableOnly(0))},
		},
		{
			name: "does not go below the availability floor",
			objs: []runtime.Object{midRollout(strategy(intstr.FromInt32(1), intstr.FromInt32(0))),
				revisionOf(v2, "app:1", 1, 4), revisionOf(v2, "app:2", 2, 1, availableOnly(0))},
		},
		{
			name: "scales unhealthy old pods down first",
			objs: []runtime.Object{newDeployment("app:3", 4, strategy(intstr.FromInt32(0), intstr.FromInt32(1)), observed(4)),
				revisionOf(v2, "app:1", 1, 2),
				revisionOf(v2, "app:2", 2, 2, availableOnly(0)),
				revisionOf(v2, "app:3", 3, 0)},
		},
		{
			name: "scales the new revision up as old pods go",
			objs: []runtime.Object{midRollout(), revisionOf(v2, "app:1", 1, 1), revisionOf(v2, "app:2", 2, 3)},
		},
		{
			// The old revision was scaled from 2 to 1 but has yet to
			// delete its pod: 2+3 pods is already replicas+maxSurge.
			name: "does not surge beside pods an old revision has yet to delete",
			objs: []runtime.Object{midRollout(strategy(intstr.FromInt32(1), intstr.FromInt32(0))),
				revisionOf(v2, "app:1", 1, 1, statusReplicasOnly(2)), revisionOf(v2, "app:2", 2, 3)},
		},
		{
			name: "completes the rollout and keeps the history limit",
			objs: []runtime.Object{newDeployment("app:4", 4, observed(4), progressingSince(reasonRSUpdated, time.Minute), func(d *appsv1.Deployment) {
				d.Spec.RevisionHistoryLimit = ptr.To[int32](1)
			}),
				revisionOf(v2, "app:1", 1, 0), revisionOf(v2, "app:2", 2, 0), revisionOf(v2, "app:3", 3, 0), revisionOf(v2, "app:4", 4, 4)},
		},
		{
			name: "keeps an old revision that still has pods",
			objs: []runtime.Object{newDeployment("app:3", 4, observed(4), progressingSince(reasonNewRSAvailable, time.Minute), func(d *appsv1.Deployment) {
				d.Spec.RevisionHistoryLimit = ptr.To[int32](0)
			}),
				revisionOf(v2, "app:1", 1, 0, statusReplicasOnly(1)), revisionOf(v2, "app:2", 2, 0), revisionOf(v2, "app:3", 3, 4)},
		},
		{
			name: "rolls back by making an old revision new again",
			objs: []runtime.Object{newDeployment("app:1", 4, observed(4), progressingSince(reasonNewRSAvailable, time.Hour)),
				revisionOf(v2, "app:1", 1, 0, annotated(RevisionHistoryAnnotation, "0")), revisionOf(v2, "app:2", 2, 4)},
		},
		{
			name: "recreate scales every old revision to zero first",
			objs: []runtime.Object{newDeployment("app:2", 3, recreate(), observed(3)), revisionOf(newDeployment("app:1", 3, recreate()), "app:1", 1, 3)},
		},
		{
			name: "recreate waits for old pods to go",
			objs: []runtime.Object{newDeployment("app:2", 3, recreate(), observed(3)),
				revisionOf(newDeployment("app:1", 3, recreate()), "app:1", 1, 0, statusReplicasOnly(1))},
		},
		{
			name: "recreate starts the new revision once old pods are gone",
			objs: []runtime.Object{newDeployment("app:2", 3, recreate(), observed(3)),
				revisionOf(newDeployment("app:1", 3, recreate()), "app:1", 1, 0, statusReplicasOnly(0))},
		},
		{
			name: "scales revisions in proportion when resized mid-rollout",
			objs: []runtime.Object{newDeployment("app:2", 15, func(d *appsv1.Deployment) { d.Generation = 3 }),
				revisionOf(newDeployment("app:2", 10), "app:1", 1, 8),
				revisionOf(newDeployment("app:2", 10), "app:2", 2, 5, availableOnly(0))},
		},
		{
			name: "a paused Deployment is only scaled and reported paused",
			objs: []runtime.Object{newDeployment("app:2", 6, observed(4), progressingSince(reasonNewRSAvailable, time.Hour), func(d *appsv1.Deployment) { d.Spec.Paused = true }),
				revisionOf(newDeployment("app:1", 4), "app:1", 1, 4)},
		},
		{
			name: "a resumed Deployment is reported resumed",
			objs: []runtime.Object{newDeployment("app:1", 4, observed(4), func(d *appsv1.Deployment) {
				d.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionUnknown, Reason: reasonPaused}}
			}), revisionOf(d1, "app:1", 1, 4)},
		},
		{
			name: "reports the progress deadline exceeded",
			objs: []runtime.Object{newDeployment("app:2", 4, observed(4), func(d *appsv1.Deployment) {
				d.Annotations = map[string]string{RevisionAnnotation: "2"}
				d.Status.UpdatedReplicas = 1
				d.Status.AvailableReplicas = 3
				d.Status.ReadyReplicas = 3
				d.Status.Replicas = 4
			}, progressingSince(reasonRSUpdated, 11*time.Minute)),
				revisionOf(v2, "app:1", 1, 3), revisionOf(v2, "app:2", 2, 2, availableOnly(0), statusReplicasOnly(1))},
		},
		{
			name: "adopts an orphan revision",
			objs: []runtime.Object{newDeployment("app:1", 2), orphan},
		},
		{
			name: "refuses an empty selector",
			objs: []runtime.Object{newDeployment("app:1", 2, func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} })},
		},
		{
			name: "reports a replica failure of the new revision",
			objs: []runtime.Object{newDeployment("app:1", 2, observed(0), progressingSince(reasonNewRSCreated, time.Minute)),
				revisionOf(d1, "app:1", 1, 2, availableOnly(0), statusReplicasOnly(0), func(rs *appsv1.ReplicaSet) {
					rs.Annotations[DesiredReplicasAnnotation], rs.Annotations[MaxReplicasAnnotation] = "2", "3"
					rs.Status.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue,
						Reason: "FailedCreate", Message: "pods is forbidden: exceeded quota", LastTransitionTime: metav1.NewTime(t0.Add(-time.Minute))}}
				})},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.objs...)
			if err := h.ctrl.sync(context.Background(), "default/web"); err != nil {
				t.Fatalf("sync: %v", err)
			}
			golden(t, t.Name(), h.trace(t))
		})
	}
}

func (h *harness) trace(t *testing.T) string {
	t.Helper()
	return formatTrace(t, h.client.Actions(), h.events.events)
}

func TestSync_CountsAHashCollision(t *testing.T) {
	d := newDeployment("app:1", 2)
	// A ReplicaSet of another template holds the name the controller
	// wants; the cache does not show it yet.
	squatter := revisionOf(d, "app:1", 1, 1)
	squatter.OwnerReferences = nil
	squatter.Spec.Template = template("other")
	client := fake.NewClientset(d, squatter)
	factory := informers.NewSharedInformerFactory(client, 0)
	ctrl, err := New(Config{Client: client, Informers: factory, Clock: clocktesting.NewFakeClock(t0), Events: &eventLog{}})
	if err != nil {
		t.Fatal(err)
	}
	defer ctrl.queue.ShutDown()
	if err := factory.Apps().V1().Deployments().Informer().GetIndexer().Add(d); err != nil {
		t.Fatal(err)
	}
	if err := ctrl.sync(context.Background(), "default/web"); err == nil {
		t.Fatal("sync succeeded despite the collision")
	}
	got, err := client.AppsV1().Deployments("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.CollisionCount == nil || *got.Status.CollisionCount != 1 {
		t.Fatalf("collisionCount = %v, want 1", got.Status.CollisionCount)
	}
	tmpl := template("app:1")
	if a, b := templateHash(&tmpl, nil), templateHash(&tmpl, got.Status.CollisionCount); a == b {
		t.Errorf("the collision count does not change the hash (%s)", a)
	}
}

func TestSync_RequeuesAtTheProgressDeadline(t *testing.T) {
	d := newDeployment("app:2", 4, observed(4), func(d *appsv1.Deployment) {
		d.Annotations = map[string]string{RevisionAnnotation: "2"}
		d.Status.UpdatedReplicas, d.Status.Replicas = 1, 4
		d.Status.AvailableReplicas, d.Status.ReadyReplicas = 3, 3
	}, progressingSince(reasonRSUpdated, 4*time.Minute))
	d.Status.Conditions = append(d.Status.Conditions, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue,
		Reason: reasonMinAvailable, Message: msgMinAvailable, LastUpdateTime: metav1.NewTime(t0), LastTransitionTime: metav1.NewTime(t0)})
	d.Status.UnavailableReplicas = 2
	h := newHarness(t, d, revisionOf(d, "app:1", 1, 3), revisionOf(d, "app:2", 2, 2, availableOnly(0), statusReplicasOnly(1)))
	if err := h.ctrl.sync(context.Background(), "default/web"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]time.Duration{"default/web": 6 * time.Minute}, h.queue.after); diff != "" {
		t.Errorf("requeues (-want +got):\n%s\n%s", diff, h.trace(t))
	}
}

func TestTemplateHash_IsStableAndNameSafe(t *testing.T) {
	tmpl := template("app:1")
	got := templateHash(&tmpl, nil)
	// Upstream's hashes are a uint32 in decimal, re-spelled: up to 10
	// characters from the alphabet of generated names.
	if len(got) == 0 || len(got) > 10 || strings.Trim(got, "bcdfghjklmnpqrstvwxz2456789") != "" {
		t.Errorf("hash %q is not a pod-template-hash", got)
	}
	if again := templateHash(tmpl.DeepCopy(), nil); again != got {
		t.Errorf("hash is not stable: %s then %s", got, again)
	}
	other := template("app:2")
	if templateHash(&other, nil) == got {
		t.Errorf("two templates hash alike")
	}
}

func TestSurgeAndUnavailable(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		replicas                 int32
		surge, unavailable       intstr.IntOrString
		wantSurge, wantUnavailbl int32
	}{
		{"percentages round surge up and unavailable down", 10, intstr.FromString("25%"), intstr.FromString("25%"), 3, 2},
		{"both zero leaves one unavailable", 3, intstr.FromInt32(0), intstr.FromInt32(0), 0, 1},
		{"unavailable is capped at replicas", 2, intstr.FromInt32(0), intstr.FromInt32(5), 0, 2},
		{"absolute values", 4, intstr.FromInt32(2), intstr.FromInt32(1), 2, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDeployment("x", tc.replicas, strategy(tc.surge, tc.unavailable))
			if s, u := maxSurge(d), maxUnavailable(d); s != tc.wantSurge || u != tc.wantUnavailbl {
				t.Errorf("surge, unavailable = %d, %d; want %d, %d", s, u, tc.wantSurge, tc.wantUnavailbl)
			}
		})
	}
}

func TestAppendHistory_StaysBounded(t *testing.T) {
	h := ""
	for i := range 1000 {
		h = appendHistory(h, strconv.Itoa(i))
	}
	if len(h) > maxRevisionHistoryChars {
		t.Fatalf("history grew to %d chars", len(h))
	}
	if want := ",999"; h[len(h)-len(want):] != want {
		t.Errorf("history ends %q, want the newest revision last", h[len(h)-10:])
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	client := fake.NewClientset()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no client", Config{Informers: informers.NewSharedInformerFactory(client, 0)}},
		{"no informers", Config{Client: client}},
		{"negative workers", Config{Client: client, Informers: informers.NewSharedInformerFactory(client, 0), Workers: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}
