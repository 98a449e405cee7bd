package kubelet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/testutil"
)

func TestBackoff_DoublesToTheCapAndResets(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := testingclock.NewFakeClock(start)
	b := newBackoff(clk, 10*time.Second, 5*time.Minute)
	if hold, _, _ := b.InBackoffSince("c", start); hold {
		t.Fatal("a key never seen is held back")
	}
	var delays []time.Duration
	failedAt := start
	for range 7 {
		b.Next("c", failedAt)
		_, d, end := b.InBackoffSince("c", failedAt)
		delays = append(delays, d)
		clk.SetTime(end)
		failedAt = end.Add(time.Second) // it ran for a second, then failed
		clk.SetTime(failedAt)
		if hold, _, _ := b.InBackoffSince("c", failedAt); !hold {
			t.Fatalf("failure %d not held back", len(delays))
		}
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	if diff := cmp.Diff(want, delays); diff != "" {
		t.Errorf("delays (-want +got):\n%s", diff)
	}
	// A failure 10 minutes after the last retry starts over.
	late := failedAt.Add(11 * time.Minute)
	clk.SetTime(late)
	if hold, _, _ := b.InBackoffSince("c", late); hold {
		t.Error("a failure after 10 quiet minutes is held back")
	}
	b.Next("c", late)
	if _, d, _ := b.InBackoffSince("c", late); d != 10*time.Second {
		t.Errorf("delay after reset = %v, want 10s", d)
	}
	b.ForgetPrefix("c")
	if hold, _, _ := b.InBackoffSince("c", late); hold {
		t.Error("forgotten key held back")
	}
}

func TestExpand(t *testing.T) {
	vars := map[string]string{"A": "1", "B": "two", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)", "1"},
		{"x$(A)y$(B)z", "x1ytwoz"},
		{"$(MISSING)", "$(MISSING)"},
		{"$$(A)", "$(A)"},
		{"$$", "$"},
		{"$", "$"},
		{"a$b", "a$b"},
		{"$(A", "$(A"},
		{"$()", "$()"},
		{"$(EMPTY)x", "x"},
		{"$($(A))", "$($(A))"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := expand(tt.in, lookup); got != tt.want {
				t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// objects is an in-memory objectSource.
type objects struct {
	cms     map[string]*corev1.ConfigMap
	secrets map[string]*corev1.Secret
}

func (o objects) ConfigMap(_ context.Context, ns, name string) (*corev1.ConfigMap, error) {
	if c, ok := o.cms[name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
}

func (o objects) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	if s, ok := o.secrets[name]; ok {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

func TestMakeEnv(t *testing.T) {
	src := objects{
		cms:     map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"mode": "fast", "bad-name!": "x", "LEVEL": "3"}}},
		secrets: map[string]*corev1.Secret{"creds": {Data: map[string][]byte{"password": []byte("s3cret")}}},
	}
	optional := true
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "u1", Labels: map[string]string{"app": "web"}},
		Spec:       corev1.PodSpec{NodeName: "node-1", ServiceAccountName: "sa"},
	}
	services := []*corev1.Service{{
		ObjectMeta: metav1.ObjectMeta{Name: "db-main", Namespace: "shop"},
		Spec:       corev1.ServiceSpec{ClusterIP: "10.43.0.9", Ports: []corev1.ServicePort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}}},
	}}
	tests := []struct {
		name    string
		c       corev1.Container
		want    map[string]string
		wantErr string
	}{
		{
			name: "ServicesEnvFromEnvInOrder",
			c: corev1.Container{Name: "app",
				EnvFrom: []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
				Env: []corev1.EnvVar{
					{Name: "URL", Value: "postgres://$(DB_MAIN_SERVICE_HOST):$(DB_MAIN_SERVICE_PORT_PG)/$(CFG_mode)"},
					{Name: "PASS", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
					{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
					{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
					{Name: "IPS", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIPs"}}},
					{Name: "MODE", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "mode"}}},
				}},
			want: map[string]string{
				"DB_MAIN_SERVICE_HOST": "10.43.0.9", "DB_MAIN_SERVICE_PORT": "5432", "DB_MAIN_SERVICE_PORT_PG": "5432",
				"DB_MAIN_PORT": "tcp://10.43.0.9:5432", "DB_MAIN_PORT_5432_TCP": "tcp://10.43.0.9:5432", "DB_MAIN_PORT_5432_TCP_PROTO": "tcp",
				"DB_MAIN_PORT_5432_TCP_PORT": "5432", "DB_MAIN_PORT_5432_TCP_ADDR": "10.43.0.9",
				"CFG_mode": "fast", "CFG_LEVEL": "3",
				"URL": "postgres://10.43.0.9:5432/fast", "PASS": "s3cret", "NODE": "node-1", "APP": "web", "IPS": "10.42.0.5,fd00::5", "MODE": "fast",
			},
		},
		{
			name: "ResourceFieldRefsRoundUpAndFallBackToAllocatable",
			c: corev1.Container{Name: "app",
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("100Mi")}},
				Env: []corev1.EnvVar{
					{Name: "CPU_REQ", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu"}}},
					{Name: "CPU_REQ_M", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}}},
					{Name: "MEM_LIM_MI", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
				}},
			want: map[string]string{"CPU_REQ": "1", "CPU_REQ_M": "250", "MEM_LIM_MI": "2048"},
		},
		{
			name: "OptionalMissingSourcesAreSkipped",
			c: corev1.Container{Name: "app",
				EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nope"}, Optional: &optional}}},
				Env: []corev1.EnvVar{
					{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "absent", Optional: &optional}}},
				}},
			want: map[string]string{},
		},
		{
			name: "MissingConfigMapFails",
			c: corev1.Container{Name: "app", Env: []corev1.EnvVar{
				{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Key: "k"}}},
			}},
			wantErr: `configmap "gone" not found`,
		},
		{
			name: "MissingSecretKeyFails",
			c: corev1.Container{Name: "app", Env: []corev1.EnvVar{
				{Name: "X", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "user"}}},
			}},
			wantErr: "couldn't find key user in Secret shop/creds",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pod.DeepCopy()
			p.Spec.Containers = []corev1.Container{tt.c}
			svcs := services
			if tt.name != "ServicesEnvFromEnvInOrder" {
				svcs = nil
			}
			env, err := makeEnv(context.Background(), envInput{
				pod: p, container: &p.Spec.Containers[0], services: svcs,
				podIPs: []string{"10.42.0.5", "fd00::5"}, hostIPs: []string{"192.0.2.1"},
				allocatable: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi"), corev1.ResourceCPU: resource.MustParse("4")},
				objects:     src,
			})
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, env.values); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMatchAuths_PicksTheImagesRegistry(t *testing.T) {
	auths := map[string]dockerAuth{
		"https://index.docker.io/v1/": {Username: "hub", Password: "p1"},
		"registry.example.com:5000":   {Auth: "dXNlcjpwYXNz"}, // user:pass
		"*.corp.example":              {Username: "corp", Password: "p3"},
		"quay.io/team":                {Username: "team", Password: "p4"},
	}
	tests := []struct {
		image string
		want  []string
	}{
		{"nginx:1.27", []string{"hub"}},
		{"docker.io/library/nginx", []string{"hub"}},
		{"registry.example.com:5000/app:v1", []string{"user"}},
		{"images.corp.example/x", []string{"corp"}},
		{"quay.io/team/app", []string{"team"}},
		{"quay.io/other/app", nil},
		{"localhost:5000/app", nil},
	}
	for _, tt := range tests {
		t.Run(tt.image, func(t *testing.T) {
			var got []string
			for _, a := range matchAuths(auths, tt.image) {
				got = append(got, a.Username)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("users (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMountBelow_FindsMountPoints(t *testing.T) {
	for name, find := range map[string]func(string) string{"statx": mountBelow, "mount table": mountInTable} {
		if got := find("/proc"); got != "/proc" {
			t.Errorf("%s: /proc = %q", name, got)
		}
		if got := find("/sys"); got != "/sys" {
			t.Errorf("%s: /sys = %q", name, got)
		}
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
		os.WriteFile(filepath.Join(dir, "a", "f"), nil, 0o644)
		if got := find(dir); got != "" {
			t.Errorf("%s: a directory with no mount = %q", name, got)
		}
	}
	t.Run("a mount deep below", func(t *testing.T) {
		testutil.RequireRoot(t)
		dir := t.TempDir()
		deep := filepath.Join(dir, "volumes", "v", "data")
		os.MkdirAll(deep, 0o755)
		if err := unix.Mount("tmpfs", deep, "tmpfs", 0, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Unmount(deep, unix.MNT_DETACH) })
		for name, find := range map[string]func(string) string{"statx": mountBelow, "mount table": mountInTable} {
			if got := find(dir); got != deep {
				t.Errorf("%s: %q, want %s", name, got, deep)
			}
		}
	})
}

// oneVolumeError is how a Volumes implementation reports one volume.
type oneVolumeError struct{ volume, cause string }

func (e *oneVolumeError) Error() string {
	return "pod default/web: volume " + e.volume + ": " + e.cause
}
func (e *oneVolumeError) VolumeName() string { return e.volume }
func (e *oneVolumeError) Unwrap() error      { return errors.New(e.cause) }

func TestFailedMountMessage_ReadsAsUpstream(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&oneVolumeError{"config", `configmap "app" not found`}, `MountVolume.SetUp failed for volume "config" : configmap "app" not found`},
		{fmt.Errorf("sync: %w", &oneVolumeError{"data", "no space"}), `MountVolume.SetUp failed for volume "data" : no space`},
		{errors.New("volume manager stopped"), "Unable to attach or mount volumes: volume manager stopped"},
	}
	for _, tc := range tests {
		if got := failedMountMessage(tc.err); got != tc.want {
			t.Errorf("failedMountMessage(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestOnlyStatusChanged(t *testing.T) {
	base := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: "1", Labels: map[string]string{"a": "1"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "i:1"}}},
	}
	now := metav1.Now()
	grace := int64(30)
	tests := []struct {
		name string
		edit func(*corev1.Pod)
		want bool
	}{
		{"status and resource version", func(p *corev1.Pod) {
			p.ResourceVersion = "2"
			p.Status.Phase = corev1.PodRunning
			p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubelet"}}
		}, true},
		{"image", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "i:2" }, false},
		{"label", func(p *corev1.Pod) { p.Labels["a"] = "2" }, false},
		{"annotation", func(p *corev1.Pod) { p.Annotations = map[string]string{"x": "y"} }, false},
		{"deletion", func(p *corev1.Pod) { p.DeletionTimestamp, p.DeletionGracePeriodSeconds = &now, &grace }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := base.DeepCopy()
			tt.edit(cur)
			if got := onlyStatusChanged(base, cur); got != tt.want {
				t.Errorf("onlyStatusChanged = %v, want %v", got, tt.want)
			}
		})
	}
}
