package workload

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestDeploymentValidate(t *testing.T) {
	pct := func(s string) *intstr.IntOrString { v := intstr.FromString(s); return &v }
	num := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	cases := []struct {
		name   string
		mutate func(*appsv1.Deployment)
		want   []fieldErr
	}{
		{"Valid", func(*appsv1.Deployment) {}, nil},
		{"ValidTypical", func(d *appsv1.Deployment) { *d = *typicalDeployment() }, nil},
		// As upstream: a nil selector selects nothing, so the template does not match either.
		{"RejectsMissingSelector", func(d *appsv1.Deployment) { d.Spec.Selector = nil }, []fieldErr{required("spec.selector"), invalid("spec.template.metadata.labels")}},
		{"RejectsEmptySelector", func(d *appsv1.Deployment) { d.Spec.Selector = &metav1.LabelSelector{} }, []fieldErr{invalid("spec.selector")}},
		{"RejectsSelectorNotMatchingTemplate", func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchLabels = map[string]string{"app": "api"}
		}, []fieldErr{invalid("spec.template.metadata.labels")}},
		{"RejectsBadSelectorOperator", func(d *appsv1.Deployment) {
			d.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Like"}}
		}, []fieldErr{invalid("spec.selector.matchExpressions[0].operator"), invalid("spec.selector")}},
		{"RejectsNegativeReplicas", func(d *appsv1.Deployment) { d.Spec.Replicas = ptrTo(int32(-1)) }, []fieldErr{invalid("spec.replicas")}},
		{"RejectsRestartPolicyNever", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		}, []fieldErr{notSupported("spec.template.spec.restartPolicy")}},
		{"RejectsActiveDeadline", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.ActiveDeadlineSeconds = ptrTo(int64(10))
		}, []fieldErr{forbidden("spec.template.spec.activeDeadlineSeconds")}},
		{"RejectsBadTemplateContainer", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = ""
		}, []fieldErr{required("spec.template.spec.containers[0].image")}},
		{"AcceptsWhitespaceImageInTemplate", func(d *appsv1.Deployment) {
			d.Spec.Template.Spec.Containers[0].Image = " "
		}, nil},
		{"RejectsBothStrategyZero", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: num(0), MaxSurge: pct("0%")}
		}, []fieldErr{invalid("spec.strategy.rollingUpdate.maxUnavailable")}},
		{"RejectsBadPercent", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: pct("25"), MaxSurge: pct("1%")}
		}, []fieldErr{invalid("spec.strategy.rollingUpdate.maxUnavailable")}},
		{"RejectsMaxUnavailableAbove100Percent", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: pct("110%")}
		}, []fieldErr{invalid("spec.strategy.rollingUpdate.maxUnavailable")}},
		{"RejectsNegativeMaxSurge", func(d *appsv1.Deployment) {
			d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxSurge: num(-1)}
		}, []fieldErr{invalid("spec.strategy.rollingUpdate.maxSurge")}},
		{"RejectsRollingUpdateWithRecreate", func(d *appsv1.Deployment) {
			d.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{}}
		}, []fieldErr{forbidden("spec.strategy.rollingUpdate")}},
		{"RejectsUnknownStrategy", func(d *appsv1.Deployment) { d.Spec.Strategy.Type = "BlueGreen" }, []fieldErr{notSupported("spec.strategy")}},
		{"RejectsNegativeRevisionHistory", func(d *appsv1.Deployment) { d.Spec.RevisionHistoryLimit = ptrTo(int32(-1)) }, []fieldErr{invalid("spec.revisionHistoryLimit")}},
		{"RejectsNegativeMinReadySeconds", func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = -1 }, []fieldErr{invalid("spec.minReadySeconds")}},
		{"RejectsProgressDeadlineNotAboveMinReady", func(d *appsv1.Deployment) {
			d.Spec.MinReadySeconds = 600
		}, []fieldErr{invalid("spec.progressDeadlineSeconds")}},
	}
	r := lookup(t, "deployments")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := basicDeployment()
			tc.mutate(d)
			wantErrs(t, create(t, r, d), tc.want...)
		})
	}
}

func TestDeploymentUpdate(t *testing.T) {
	r := lookup(t, "deployments")
	old := basicDeployment()
	if errs := create(t, r, old); len(errs) != 0 {
		t.Fatal(errs)
	}
	old.Generation = 4

	t.Run("RejectsSelectorChange", func(t *testing.T) {
		d := old.DeepCopy()
		d.Spec.Selector.MatchLabels["tier"] = "front"
		d.Spec.Template.Labels["tier"] = "front"
		errs := runUpdate(t, r, d, old)
		wantErrs(t, errs, invalid("spec.selector"))
		if len(errs) == 1 && errs[0].Detail != "field is immutable" {
			t.Errorf("detail = %q", errs[0].Detail)
		}
	})
	t.Run("BumpsGenerationOnAnnotationChange", func(t *testing.T) {
		d := old.DeepCopy()
		d.Annotations = map[string]string{"note": "x"}
		wantErrs(t, runUpdate(t, r, d, old))
		if d.Generation != 5 {
			t.Errorf("generation = %d, want 5", d.Generation)
		}
	})
	t.Run("KeepsGenerationOnLabelChange", func(t *testing.T) {
		d := old.DeepCopy()
		d.Labels = map[string]string{"team": "a"}
		wantErrs(t, runUpdate(t, r, d, old))
		if d.Generation != 4 {
			t.Errorf("generation = %d, want 4", d.Generation)
		}
	})
}

func TestReplicaSetValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*appsv1.ReplicaSet)
		want   []fieldErr
	}{
		{"Valid", func(*appsv1.ReplicaSet) {}, nil},
		{"RejectsMissingSelector", func(rs *appsv1.ReplicaSet) { rs.Spec.Selector = nil }, []fieldErr{required("spec.selector"), invalid("spec.template.metadata.labels")}},
		{"RejectsSelectorNotMatchingTemplate", func(rs *appsv1.ReplicaSet) { rs.Spec.Template.Labels = map[string]string{"app": "x"} }, []fieldErr{invalid("spec.template.metadata.labels")}},
		{"RejectsNegativeReplicas", func(rs *appsv1.ReplicaSet) { rs.Spec.Replicas = ptrTo(int32(-3)) }, []fieldErr{invalid("spec.replicas")}},
		{"RejectsRestartPolicyOnFailure", func(rs *appsv1.ReplicaSet) {
			rs.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}, []fieldErr{notSupported("spec.template.spec.restartPolicy")}},
	}
	r := lookup(t, "replicasets")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := basicReplicaSet()
			tc.mutate(rs)
			wantErrs(t, create(t, r, rs), tc.want...)
		})
	}
	t.Run("RejectsSelectorChange", func(t *testing.T) {
		old := basicReplicaSet()
		create(t, r, old)
		rs := old.DeepCopy()
		rs.Spec.Selector.MatchExpressions = []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}
		wantErrs(t, runUpdate(t, r, rs, old), invalid("spec.selector"))
	})
}

func TestReplicaSetStatus(t *testing.T) {
	sub := lookup(t, "replicasets").Status
	cases := []struct {
		name   string
		status appsv1.ReplicaSetStatus
		want   []fieldErr
	}{
		{"Valid", appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 2, AvailableReplicas: 2, FullyLabeledReplicas: 3}, nil},
		{"RejectsNegativeReplicas", appsv1.ReplicaSetStatus{Replicas: -1}, []fieldErr{
			invalid("status.replicas"), invalid("status.fullyLabeledReplicas"), invalid("status.readyReplicas"), invalid("status.availableReplicas"),
		}},
		{"RejectsReadyAboveReplicas", appsv1.ReplicaSetStatus{Replicas: 1, ReadyReplicas: 2}, []fieldErr{invalid("status.readyReplicas")}},
		{"RejectsAvailableAboveReady", appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 1, AvailableReplicas: 2}, []fieldErr{invalid("status.availableReplicas")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := basicReplicaSet()
			rs := old.DeepCopy()
			rs.Status = tc.status
			wantErrs(t, sub.ValidateUpdate(context.Background(), rs, old), tc.want...)
		})
	}
}

func TestDeploymentStatus_CollisionCountNotDecremented(t *testing.T) {
	sub := lookup(t, "deployments").Status
	old := basicDeployment()
	old.Status.CollisionCount = ptrTo(int32(2))
	d := old.DeepCopy()
	d.Status.CollisionCount = ptrTo(int32(1))
	wantErrs(t, sub.ValidateUpdate(context.Background(), d, old), invalid("status.collisionCount"))
}

func TestStatefulSetValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*appsv1.StatefulSet)
		want   []fieldErr
	}{
		{"Valid", func(*appsv1.StatefulSet) {}, nil},
		{"RejectsEmptySelector", func(s *appsv1.StatefulSet) { s.Spec.Selector = &metav1.LabelSelector{} }, []fieldErr{invalid("spec.selector")}},
		{"RejectsUnknownPodManagementPolicy", func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = "Random" }, []fieldErr{invalid("spec.podManagementPolicy")}},
		{"RejectsUnknownUpdateStrategy", func(s *appsv1.StatefulSet) { s.Spec.UpdateStrategy.Type = "Blue" }, []fieldErr{invalid("spec.updateStrategy")}},
		{"RejectsRollingUpdateWithOnDelete", func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType, RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{}}
		}, []fieldErr{invalid("spec.updateStrategy.rollingUpdate")}},
		{"RejectsNegativePartition", func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptrTo(int32(-1))}
		}, []fieldErr{invalid("spec.updateStrategy.rollingUpdate.partition")}},
		{"RejectsZeroMaxUnavailable", func(s *appsv1.StatefulSet) {
			zero := intstr.FromInt32(0)
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: &zero}
		}, []fieldErr{invalid("spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{"RejectsUnknownRetention", func(s *appsv1.StatefulSet) {
			s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: "Archive"}
		}, []fieldErr{notSupported("spec.persistentVolumeClaimRetentionPolicy.whenDeleted")}},
		{"RejectsNegativeOrdinalStart", func(s *appsv1.StatefulSet) {
			s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: -1}
		}, []fieldErr{invalid("spec.ordinals.start")}},
		{"RejectsRestartPolicyNever", func(s *appsv1.StatefulSet) {
			s.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyNever
		}, []fieldErr{notSupported("spec.template.spec.restartPolicy")}},
		{"RejectsBadClaimTemplateName", func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "Data"}}}
		}, []fieldErr{invalid("spec.volumeClaimTemplates[0].metadata.name")}},
	}
	r := lookup(t, "statefulsets")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := basicStatefulSet()
			tc.mutate(s)
			wantErrs(t, create(t, r, s), tc.want...)
		})
	}
	t.Run("NameMustBeDNSLabel", func(t *testing.T) {
		if msgs := r.NameValidation("db.primary", false); len(msgs) == 0 {
			t.Error("db.primary accepted, want rejected: pods are named after the set and use it as hostname")
		}
		if msgs := r.NameValidation("db", false); len(msgs) != 0 {
			t.Errorf("db rejected: %v", msgs)
		}
	})
}

func TestStatefulSetUpdate(t *testing.T) {
	r := lookup(t, "statefulsets")
	old := basicStatefulSet()
	if errs := create(t, r, old); len(errs) != 0 {
		t.Fatal(errs)
	}
	cases := []struct {
		name   string
		mutate func(*appsv1.StatefulSet)
		want   []fieldErr
	}{
		{"AllowsReplicas", func(s *appsv1.StatefulSet) { s.Spec.Replicas = ptrTo(int32(5)) }, nil},
		{"AllowsTemplate", func(s *appsv1.StatefulSet) { s.Spec.Template.Spec.Containers[0].Image = "nginx:2" }, nil},
		{"AllowsRevisionHistoryLimit", func(s *appsv1.StatefulSet) { s.Spec.RevisionHistoryLimit = ptrTo(int32(3)) }, nil},
		{"AllowsMinReadySeconds", func(s *appsv1.StatefulSet) { s.Spec.MinReadySeconds = 5 }, nil},
		{"RejectsServiceName", func(s *appsv1.StatefulSet) { s.Spec.ServiceName = "other" }, []fieldErr{forbidden("spec")}},
		{"RejectsClaimTemplates", func(s *appsv1.StatefulSet) {
			s.Spec.VolumeClaimTemplates = []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"}}}
		}, []fieldErr{forbidden("spec")}},
		{"RejectsPodManagementPolicy", func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }, []fieldErr{forbidden("spec")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := old.DeepCopy()
			tc.mutate(s)
			errs := runUpdate(t, r, s, old)
			wantErrs(t, errs, tc.want...)
			if len(errs) == 1 && !strings.Contains(errs[0].Detail, "'revisionHistoryLimit'") {
				t.Errorf("detail = %q, want upstream's list of updatable fields", errs[0].Detail)
			}
		})
	}
}

func TestDaemonSetValidate(t *testing.T) {
	num := func(n int32) *intstr.IntOrString { v := intstr.FromInt32(n); return &v }
	cases := []struct {
		name   string
		mutate func(*appsv1.DaemonSet)
		want   []fieldErr
	}{
		{"Valid", func(*appsv1.DaemonSet) {}, nil},
		{"RejectsMissingSelector", func(ds *appsv1.DaemonSet) { ds.Spec.Selector = nil }, []fieldErr{required("spec.selector")}},
		{"RejectsSelectorNotMatchingTemplate", func(ds *appsv1.DaemonSet) { ds.Spec.Template.Labels = nil }, []fieldErr{invalid("spec.template.metadata.labels")}},
		{"RejectsSurgeAndUnavailable", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: num(1), MaxSurge: num(1)}
		}, []fieldErr{invalid("spec.updateStrategy.rollingUpdate.maxSurge")}},
		{"RejectsNeitherSurgeNorUnavailable", func(ds *appsv1.DaemonSet) {
			ds.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateDaemonSet{MaxUnavailable: num(0), MaxSurge: num(0)}
		}, []fieldErr{required("spec.updateStrategy.rollingUpdate.maxUnavailable")}},
		{"RejectsUnknownStrategy", func(ds *appsv1.DaemonSet) { ds.Spec.UpdateStrategy.Type = "Canary" }, []fieldErr{notSupported("spec.updateStrategy")}},
		{"RejectsRestartPolicyOnFailure", func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
		}, []fieldErr{notSupported("spec.template.spec.restartPolicy")}},
	}
	r := lookup(t, "daemonsets")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := basicDaemonSet()
			tc.mutate(ds)
			wantErrs(t, create(t, r, ds), tc.want...)
		})
	}
}

func TestDaemonSetTemplateGeneration(t *testing.T) {
	r := lookup(t, "daemonsets")
	old := basicDaemonSet()
	create(t, r, old)
	if got := old.Annotations[daemonSetTemplateGenerationKey]; got != "1" {
		t.Fatalf("template generation after create = %q, want 1", got)
	}
	same := old.DeepCopy()
	same.Labels = map[string]string{"x": "y"}
	wantErrs(t, runUpdate(t, r, same, old))
	if got := same.Annotations[daemonSetTemplateGenerationKey]; got != "1" {
		t.Errorf("after a metadata update = %q, want 1", got)
	}
	changed := old.DeepCopy()
	changed.Spec.Template.Spec.Containers[0].Image = "nginx:2"
	delete(changed.Annotations, daemonSetTemplateGenerationKey)
	wantErrs(t, runUpdate(t, r, changed, old))
	if got := changed.Annotations[daemonSetTemplateGenerationKey]; got != "2" {
		t.Errorf("after a template update = %q, want 2", got)
	}
}

func TestControllerRevision(t *testing.T) {
	r := lookup(t, "controllerrevisions")
	rev := &appsv1.ControllerRevision{
		ObjectMeta: metav1.ObjectMeta{Name: "web-6d4cf56db6", Namespace: "default"},
		Data:       runtime.RawExtension{Raw: []byte(`{"spec":{}}`)},
		Revision:   2,
	}
	t.Run("Valid", func(t *testing.T) { wantErrs(t, create(t, r, rev.DeepCopy())) })
	t.Run("RejectsMissingData", func(t *testing.T) {
		bad := rev.DeepCopy()
		bad.Data = runtime.RawExtension{}
		wantErrs(t, create(t, r, bad), required("data"))
	})
	t.Run("RejectsNegativeRevision", func(t *testing.T) {
		bad := rev.DeepCopy()
		bad.Revision = -1
		wantErrs(t, create(t, r, bad), invalid("revision"))
	})
	t.Run("RejectsDataChange", func(t *testing.T) {
		changed := rev.DeepCopy()
		changed.Data.Raw = []byte(`{"spec":{"x":1}}`)
		wantErrs(t, runUpdate(t, r, changed, rev), invalid("data"))
	})
	t.Run("AllowsRevisionChange", func(t *testing.T) {
		changed := rev.DeepCopy()
		changed.Revision = 5
		wantErrs(t, runUpdate(t, r, changed, rev))
	})
}

func TestScale_RoundTrip(t *testing.T) {
	cases := []struct {
		resource string
		obj      func() runtime.Object
		selector string
	}{
		{"deployments", func() runtime.Object { return basicDeployment() }, "app=web"},
		{"replicasets", func() runtime.Object { return basicReplicaSet() }, "app=web"},
		{"statefulsets", func() runtime.Object { return basicStatefulSet() }, "app=web"},
		{"replicationcontrollers", func() runtime.Object {
			t := basicTemplate()
			return &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "rc", Namespace: "default"}, Spec: corev1.ReplicationControllerSpec{Template: &t}}
		}, "app=web"},
	}
	for _, tc := range cases {
		t.Run(tc.resource, func(t *testing.T) {
			r := lookup(t, tc.resource)
			obj := tc.obj()
			if errs := create(t, r, obj); len(errs) != 0 {
				t.Fatal(errs)
			}
			m := obj.(metav1.Object)
			m.SetResourceVersion("42")
			s := r.Scale.Get(obj)
			want := &autoscalingv1.Scale{
				TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"},
				ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(), ResourceVersion: "42"},
				Spec:       autoscalingv1.ScaleSpec{Replicas: 1},
				Status:     autoscalingv1.ScaleStatus{Selector: tc.selector},
			}
			if diff := cmp.Diff(want, s); diff != "" {
				t.Errorf("Get (-want +got):\n%s", diff)
			}
			s.Spec.Replicas = 7
			r.Scale.Set(obj, s)
			if got := r.Scale.Get(obj).Spec.Replicas; got != 7 {
				t.Errorf("replicas after Set = %d, want 7", got)
			}
			if r.Scale.ReplicasPath != ".spec.replicas" {
				t.Errorf("ReplicasPath = %q", r.Scale.ReplicasPath)
			}
			old := obj.DeepCopyObject()
			s.Spec.Replicas = -1
			r.Scale.Set(obj, s)
			wantErrs(t, r.ValidateUpdate(context.Background(), obj, old), invalid("spec.replicas"))
		})
	}
}

func TestSelectableFields_ReplicaCounts(t *testing.T) {
	rs := basicReplicaSet()
	rs.Status.Replicas = 3
	got := lookup(t, "replicasets").SelectableFields(rs)
	if got["status.replicas"] != "3" {
		t.Errorf("fields = %v", got)
	}
}
