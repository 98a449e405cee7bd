package workload

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

// resource returns the named resource of a zero Config.
func lookup(t testing.TB, name string) *registry.Resource {
	t.Helper()
	for _, r := range Resources(Config{}) {
		if r.Resource == name {
			return r
		}
	}
	t.Fatalf("no resource %q", name)
	return nil
}

// create runs the create hooks the REST layer runs before storing:
// PrepareForCreate, Default, Validate.
func create(t testing.TB, r *registry.Resource, obj runtime.Object) field.ErrorList {
	t.Helper()
	ctx := context.Background()
	if r.PrepareForCreate != nil {
		r.PrepareForCreate(ctx, obj)
	}
	if r.Default != nil {
		r.Default(obj)
	}
	return r.Validate(ctx, obj)
}

// update runs the update hooks: PrepareForUpdate, Default, ValidateUpdate.
func runUpdate(t testing.TB, r *registry.Resource, obj, old runtime.Object) field.ErrorList {
	t.Helper()
	ctx := context.Background()
	if r.PrepareForUpdate != nil {
		r.PrepareForUpdate(ctx, obj, old)
	}
	if r.Default != nil {
		r.Default(obj)
	}
	return r.ValidateUpdate(ctx, obj, old)
}

// fieldErr is the part of a field.Error the tests compare.
type fieldErr struct {
	Type  field.ErrorType
	Field string
}

func summarize(errs field.ErrorList) []fieldErr {
	var out []fieldErr
	for _, e := range errs {
		out = append(out, fieldErr{e.Type, e.Field})
	}
	return out
}

// wantErrs fails t unless errs are exactly want (in any order).
func wantErrs(t *testing.T, errs field.ErrorList, want ...fieldErr) {
	t.Helper()
	got := summarize(errs)
	less := func(a, b fieldErr) bool { return a.Field+string(a.Type) < b.Field+string(b.Type) }
	if diff := cmp.Diff(want, got, cmpopts.SortSlices(less), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("errors (-want +got):\n%s\nall: %v", diff, errs)
	}
}

func invalid(f string) fieldErr      { return fieldErr{field.ErrorTypeInvalid, f} }
func required(f string) fieldErr     { return fieldErr{field.ErrorTypeRequired, f} }
func notSupported(f string) fieldErr { return fieldErr{field.ErrorTypeNotSupported, f} }
func duplicate(f string) fieldErr    { return fieldErr{field.ErrorTypeDuplicate, f} }
func forbidden(f string) fieldErr    { return fieldErr{field.ErrorTypeForbidden, f} }
func notFound(f string) fieldErr     { return fieldErr{field.ErrorTypeNotFound, f} }
func tooMany(f string) fieldErr      { return fieldErr{field.ErrorTypeTooMany, f} }

func basicPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "pod-uid", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
	}
}

func basicTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "nginx:1.27"}},
		},
	}
}

func basicDeployment() *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "deploy-uid"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: basicTemplate(),
		},
	}
}

// typicalDeployment is what a real manifest carries: ports, env,
// resources, probes, a config volume.
func typicalDeployment() *appsv1.Deployment {
	d := basicDeployment()
	d.Spec.Replicas = ptrTo(int32(3))
	d.Spec.Template.Spec.Containers[0] = corev1.Container{
		Name:  "app",
		Image: "registry.example/web:2.4.1",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}, {Name: "metrics", ContainerPort: 9090}},
		Env: []corev1.EnvVar{
			{Name: "LOG_LEVEL", Value: "info"},
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: mustQuantity("100m"), corev1.ResourceMemory: mustQuantity("128Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: mustQuantity("256Mi")},
		},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstrName("http")}}},
		LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstrName("http")}}},
		VolumeMounts:   []corev1.VolumeMount{{Name: "config", MountPath: "/etc/web"}},
	}
	d.Spec.Template.Spec.Volumes = []corev1.Volume{{
		Name:         "config",
		VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web-config"}}},
	}}
	return d
}

func basicReplicaSet() *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", UID: "rs-uid"},
		Spec: appsv1.ReplicaSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: basicTemplate(),
		},
	}
}

func basicStatefulSet() *appsv1.StatefulSet {
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default", UID: "sts-uid"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template:    basicTemplate(),
		},
	}
}

func basicDaemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "kube-system", UID: "ds-uid"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: basicTemplate(),
		},
	}
}

func basicJob() *batchv1.Job {
	t := basicTemplate()
	t.Spec.RestartPolicy = corev1.RestartPolicyNever
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "pi", Namespace: "default", UID: "job-uid"},
		Spec:       batchv1.JobSpec{Template: t},
	}
}

func basicCronJob() *batchv1.CronJob {
	t := basicTemplate()
	t.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "default", UID: "cj-uid"},
		Spec: batchv1.CronJobSpec{
			Schedule:    "0 3 * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: t}},
		},
	}
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }

func intstrName(s string) intstr.IntOrString { return intstr.FromString(s) }
