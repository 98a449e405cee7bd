package workload

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestDefaults_Golden runs each resource's create hooks on a minimal
// manifest and compares the object stored with testdata/defaults/*.yaml
// (go test -run TestDefaults_Golden -update rewrites them). It also checks
// that defaulting twice changes nothing, as the REST layer defaults again
// after every patch.
func TestDefaults_Golden(t *testing.T) {
	cases := []struct {
		name     string
		resource string
		obj      func() runtime.Object
	}{
		{"pod_minimal", "pods", func() runtime.Object { return basicPod() }},
		{"pod_full", "pods", func() runtime.Object { return fullPod() }},
		{"podtemplate", "podtemplates", func() runtime.Object {
			return &corev1.PodTemplate{ObjectMeta: basicPod().ObjectMeta, Template: basicTemplate()}
		}},
		{"replicationcontroller", "replicationcontrollers", func() runtime.Object {
			t := basicTemplate()
			return &corev1.ReplicationController{ObjectMeta: basicPod().ObjectMeta, Spec: corev1.ReplicationControllerSpec{Template: &t}}
		}},
		{"deployment", "deployments", func() runtime.Object { return basicDeployment() }},
		{"deployment_typical", "deployments", func() runtime.Object { return typicalDeployment() }},
		{"replicaset", "replicasets", func() runtime.Object { return basicReplicaSet() }},
		{"statefulset", "statefulsets", func() runtime.Object { return basicStatefulSet() }},
		{"daemonset", "daemonsets", func() runtime.Object { return basicDaemonSet() }},
		{"job", "jobs", func() runtime.Object { return basicJob() }},
		{"job_indexed", "jobs", func() runtime.Object {
			j := basicJob()
			j.Spec.Completions = ptrTo(int32(5))
			j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion)
			j.Spec.BackoffLimitPerIndex = ptrTo(int32(1))
			return j
		}},
		{"cronjob", "cronjobs", func() runtime.Object { return basicCronJob() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := lookup(t, tc.resource)
			obj := tc.obj()
			if errs := create(t, r, obj); len(errs) != 0 {
				t.Fatalf("the fixture must be valid: %v", errs)
			}
			again := obj.DeepCopyObject()
			r.Default(again)
			if diff := cmp.Diff(obj, again); diff != "" {
				t.Errorf("defaulting is not idempotent (-once +twice):\n%s", diff)
			}
			got, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "defaults", tc.name+".yaml")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s differs (-golden +got):\n%s", golden, diff)
			}
		})
	}
}

// fullPod touches every defaulted corner of a pod spec.
func fullPod() *corev1.Pod {
	p := basicPod()
	p.Spec.HostNetwork = true
	p.Spec.InitContainers = []corev1.Container{{
		Name: "init", Image: "busybox",
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: mustQuantity("1")}},
	}}
	p.Spec.Containers = []corev1.Container{{
		Name:  "app",
		Image: "registry.example/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Ports: []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 53, Protocol: corev1.ProtocolUDP}},
		Env:   []corev1.EnvVar{{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
		Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceCPU: mustQuantity("500m"), corev1.ResourceMemory: mustQuantity("1Gi")},
			Requests: corev1.ResourceList{corev1.ResourceCPU: mustQuantity("0.0001")},
		},
		LivenessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstrName("http")}}},
		StartupProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9000}}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}},
		Lifecycle:      &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Port: intstrName("http")}}},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "scratch", MountPath: "/scratch"}, {Name: "secret", MountPath: "/secret"},
			{Name: "host", MountPath: "/host"}, {Name: "info", MountPath: "/info"},
		},
	}, {
		Name: "sidecar", Image: "busybox:latest",
	}}
	p.Spec.Volumes = []corev1.Volume{
		{Name: "scratch"},
		{Name: "secret", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
		{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/log"}}},
		{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
			{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
		}}}},
	}
	p.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrTo(int64(10))}}
	p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/quota"}}
	return p
}

func TestDefaultPullPolicy(t *testing.T) {
	cases := []struct {
		image string
		want  corev1.PullPolicy
	}{
		{"nginx", corev1.PullAlways},
		{"nginx:latest", corev1.PullAlways},
		{"nginx:1.27", corev1.PullIfNotPresent},
		{"registry.example:5000/team/app", corev1.PullAlways},
		{"registry.example:5000/team/app:v2", corev1.PullIfNotPresent},
		{"nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullIfNotPresent},
		{"nginx:latest@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", corev1.PullAlways},
		{"Not A Reference", corev1.PullIfNotPresent},
		{"", corev1.PullIfNotPresent},
	}
	for _, tc := range cases {
		t.Run(tc.image, func(t *testing.T) {
			if got := defaultPullPolicy(tc.image); got != tc.want {
				t.Errorf("defaultPullPolicy(%q) = %s, want %s", tc.image, got, tc.want)
			}
		})
	}
}

// TestDefaults_PodOnlyDefaultsStayOutOfTemplates checks the split upstream
// keeps: requests from limits and enableServiceLinks are set on pods, not
// on the templates of workloads (they would show in every manifest diff).
func TestDefaults_PodOnlyDefaultsStayOutOfTemplates(t *testing.T) {
	d := typicalDeployment()
	DefaultDeployment(d)
	spec := d.Spec.Template.Spec
	if spec.EnableServiceLinks != nil {
		t.Errorf("template enableServiceLinks = %v, want unset", *spec.EnableServiceLinks)
	}
	if _, ok := spec.Containers[0].Resources.Requests[corev1.ResourceMemory]; !ok {
		t.Fatal("the fixture requests memory")
	}
	if n := len(spec.Containers[0].Resources.Requests); n != 2 {
		t.Errorf("template requests = %v, want the two the manifest set", spec.Containers[0].Resources.Requests)
	}

	pod := &corev1.Pod{Spec: *spec.DeepCopy()}
	pod.Spec.Containers[0].Resources.Requests = nil
	DefaultPod(pod)
	want := corev1.ResourceList{corev1.ResourceMemory: mustQuantity("256Mi")}
	if diff := cmp.Diff(want, pod.Spec.Containers[0].Resources.Requests); diff != "" {
		t.Errorf("pod requests from limits (-want +got):\n%s", diff)
	}
	if pod.Spec.EnableServiceLinks == nil || !*pod.Spec.EnableServiceLinks {
		t.Errorf("pod enableServiceLinks = %v, want true", pod.Spec.EnableServiceLinks)
	}
}

func TestDefaults_WorkloadStrategies(t *testing.T) {
	t.Run("DeploymentRecreateGetsNoRollingUpdate", func(t *testing.T) {
		d := basicDeployment()
		d.Spec.Strategy.Type = appsv1.RecreateDeploymentStrategyType
		DefaultDeployment(d)
		if d.Spec.Strategy.RollingUpdate != nil {
			t.Errorf("rollingUpdate = %+v, want nil", d.Spec.Strategy.RollingUpdate)
		}
	})
	t.Run("StatefulSetOnDeleteGetsNoPartition", func(t *testing.T) {
		s := basicStatefulSet()
		s.Spec.UpdateStrategy.Type = appsv1.OnDeleteStatefulSetStrategyType
		DefaultStatefulSet(s)
		if s.Spec.UpdateStrategy.RollingUpdate != nil {
			t.Errorf("rollingUpdate = %+v, want nil", s.Spec.UpdateStrategy.RollingUpdate)
		}
	})
	t.Run("JobParallelismOnlyKeepsCompletionsUnset", func(t *testing.T) {
		j := basicJob()
		j.Spec.Parallelism = ptrTo(int32(4))
		DefaultJob(j)
		if j.Spec.Completions != nil {
			t.Errorf("completions = %d, want unset (a work queue job)", *j.Spec.Completions)
		}
	})
	t.Run("JobPodFailurePolicyReplacesFailedOnly", func(t *testing.T) {
		j := basicJob()
		j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{{
			Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}},
		}}}
		DefaultJob(j)
		if got := *j.Spec.PodReplacementPolicy; got != batchv1.Failed {
			t.Errorf("podReplacementPolicy = %s, want Failed", got)
		}
		if got := j.Spec.PodFailurePolicy.Rules[0].OnPodConditions[0].Status; got != corev1.ConditionTrue {
			t.Errorf("onPodConditions status = %q, want True", got)
		}
	})
	t.Run("JobBackoffLimitPerIndexLiftsBackoffLimit", func(t *testing.T) {
		j := basicJob()
		j.Spec.BackoffLimitPerIndex = ptrTo(int32(2))
		DefaultJob(j)
		if got := *j.Spec.BackoffLimit; got != 1<<31-1 {
			t.Errorf("backoffLimit = %d, want MaxInt32", got)
		}
	})
}
