package volume

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/sys/mount"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var epoch = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

// tokenServer answers TokenRequests on a fake clientset with numbered
// tokens and counts them.
type tokenServer struct {
	n       atomic.Int32
	clock   *clocktesting.FakeClock
	last    atomic.Pointer[authenticationv1.TokenRequest]
	failing atomic.Bool
}

func (ts *tokenServer) install(c *fake.Clientset) {
	c.PrependReactor("create", "serviceaccounts", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "token" {
			return false, nil, nil
		}
		if ts.failing.Load() {
			return true, nil, errors.New("token API down")
		}
		req := a.(k8stesting.CreateAction).GetObject().(*authenticationv1.TokenRequest).DeepCopy()
		ts.last.Store(req)
		n := ts.n.Add(1)
		req.Status.Token = fmt.Sprintf("token-%d-for-%s", n, strings.Join(req.Spec.Audiences, ","))
		req.Status.ExpirationTimestamp = metav1.NewTime(ts.clock.Now().Add(time.Duration(*req.Spec.ExpirationSeconds) * time.Second))
		return true, req, nil
	})
}

func newTestManager(t *testing.T, objs ...runtime.Object) (*Manager, *fake.Clientset, *tokenServer) {
	t.Helper()
	client := fake.NewClientset(objs...)
	clk := clocktesting.NewFakeClock(epoch)
	ts := &tokenServer{clock: clk}
	ts.install(client)
	root := t.TempDir()
	t.Cleanup(func() { mount.UnmountAll(root) }) // runs before TempDir's removal
	m, err := New(Config{
		RootDir: root,
		// Without root, secret and projected volumes cannot be tmpfs.
		SecretsOnDisk: os.Geteuid() != 0,
		Client:        client,
		Clock:         clk,
		Allocatable: func() v1.ResourceList {
			return v1.ResourceList{v1.ResourceCPU: resource.MustParse("4"), v1.ResourceMemory: resource.MustParse("8Gi")}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m, client, ts
}

func testPod(vols ...v1.Volume) *v1.Pod {
	return &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "default", UID: "uid-1",
			Labels:      map[string]string{"app": "web", "tier": "front"},
			Annotations: map[string]string{"note": "say \"hi\""},
		},
		Spec: v1.PodSpec{
			ServiceAccountName: "builder",
			Volumes:            vols,
			Containers: []v1.Container{{
				Name: "main",
				Resources: v1.ResourceRequirements{
					Requests: v1.ResourceList{v1.ResourceCPU: resource.MustParse("250m"), v1.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   v1.ResourceList{v1.ResourceMemory: resource.MustParse("128Mi")},
				},
			}},
		},
	}
}

func configMap(name string, data map[string]string) *v1.ConfigMap {
	return &v1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: data}
}

func secret(name string, data map[string]string) *v1.Secret {
	s := &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

// tree describes what a container would see in dir: every user-visible
// path (through the symlinks), its mode and its content.
func tree(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	var walk func(rel string)
	walk = func(rel string) {
		entries, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "..") {
				continue
			}
			p := filepath.Join(rel, e.Name())
			info, err := os.Stat(filepath.Join(dir, p))
			if err != nil {
				t.Fatal(err)
			}
			if info.IsDir() {
				lines = append(lines, fmt.Sprintf("%s/ %v", p, info.Mode().Perm()))
				walk(p)
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprintf("%s %v %q", p, info.Mode().Perm(), data))
		}
	}
	walk(".")
	sort.Strings(lines)
	return strings.Join(lines, "\n") + "\n"
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got):\n%s", path, diff)
	}
}

func TestWriteAtomic(t *testing.T) {
	type step struct {
		p           payload
		wantChanged bool
		want        string
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "writes files and links them through ..data",
			steps: []step{{
				p:           payload{"a": {Data: []byte("1"), Mode: 0o644}, "d/b": {Data: []byte("2"), Mode: 0o400}},
				wantChanged: true,
				want:        "a -rw-r--r-- \"1\"\nd/ -rwxr-xr-x\nd/b -r-------- \"2\"\n",
			}},
		},
		{
			name: "unchanged content writes nothing",
			steps: []step{
				{p: payload{"a": {Data: []byte("1"), Mode: 0o644}}, wantChanged: true, want: "a -rw-r--r-- \"1\"\n"},
				{p: payload{"a": {Data: []byte("1"), Mode: 0o644}}, wantChanged: false, want: "a -rw-r--r-- \"1\"\n"},
			},
		},
		{
			name: "update replaces content, mode and removes dropped keys",
			steps: []step{
				{p: payload{"a": {Data: []byte("1"), Mode: 0o644}, "gone": {Data: []byte("x"), Mode: 0o644}}, wantChanged: true, want: "a -rw-r--r-- \"1\"\ngone -rw-r--r-- \"x\"\n"},
				{p: payload{"a": {Data: []byte("2"), Mode: 0o600}, "new": {Data: nil, Mode: 0o644}}, wantChanged: true, want: "a -rw------- \"2\"\nnew -rw-r--r-- \"\"\n"},
			},
		},
		{
			name: "empty payload leaves an empty volume",
			steps: []step{
				{p: payload{"a": {Data: []byte("1"), Mode: 0o644}}, wantChanged: true, want: "a -rw-r--r-- \"1\"\n"},
				{p: payload{}, wantChanged: true, want: "\n"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for i, s := range tc.steps {
				changed, err := writeAtomic(dir, s.p, nil, epoch.Add(time.Duration(i)*time.Second))
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if changed != s.wantChanged {
					t.Errorf("step %d: changed = %v, want %v", i, changed, s.wantChanged)
				}
				if diff := cmp.Diff(s.want, tree(t, dir)); diff != "" {
					t.Errorf("step %d: tree (-want +got):\n%s", i, diff)
				}
				// Exactly one timestamped directory is left.
				entries, _ := os.ReadDir(dir)
				var data []string
				for _, e := range entries {
					if isDataDir(e.Name()) {
						data = append(data, e.Name())
					}
				}
				if len(data) != 1 {
					t.Errorf("step %d: data dirs %v, want one", i, data)
				}
			}
		})
	}
}

func TestWriteAtomic_RejectsBadPaths(t *testing.T) {
	for _, name := range []string{"/abs", "../up", "a/../../b", "..data", "a//b", "", "./a"} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			dir := t.TempDir()
			if _, err := writeAtomic(dir, payload{name: {Data: []byte("x"), Mode: 0o644}}, nil, epoch); err == nil {
				t.Fatalf("path %q accepted", name)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("debris left: %v", entries)
			}
		})
	}
	t.Run("a file that is also a directory", func(t *testing.T) {
		if _, err := writeAtomic(t.TempDir(), payload{"a": {}, "a/b": {}}, nil, epoch); err == nil {
			t.Fatal("accepted")
		}
	})
}

func TestSetUp_APIDataVolumes(t *testing.T) {
	objs := []runtime.Object{
		configMap("conf", map[string]string{"app.conf": "port=80", "extra": "e"}),
		secret("creds", map[string]string{"user": "admin", "pass": "s3cret"}),
	}
	tests := []struct {
		name   string
		vol    v1.Volume
		plugin string
	}{
		{"configmap all keys", v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "conf"}}}}, pluginConfigMap},
		{"configmap items and modes", v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
			LocalObjectReference: v1.LocalObjectReference{Name: "conf"}, DefaultMode: ptr[int32](0o440),
			Items: []v1.KeyToPath{{Key: "app.conf", Path: "etc/app.conf"}, {Key: "extra", Path: "x", Mode: ptr[int32](0o600)}},
		}}}, pluginConfigMap},
		{"optional missing configmap is empty", v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}, Optional: ptr(true)}}}, pluginConfigMap},
		{"secret default mode 0400", v1.Volume{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptr[int32](0o400)}}}, pluginSecret},
		{"downward api", v1.Volume{Name: "d", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{
			{Path: "name", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.name"}},
			{Path: "ns", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}},
			{Path: "uid", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.uid"}},
			{Path: "labels", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
			{Path: "annotations", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
			{Path: "app", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}},
			{Path: "cpu_request_milli", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "main", Resource: "requests.cpu", Divisor: resource.MustParse("1m")}},
			{Path: "cpu_limit", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "main", Resource: "limits.cpu"}},
			{Path: "mem_limit_mi", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "main", Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}},
		}}}}, pluginDownward},
		{"projected sources with token", v1.Volume{Name: "p", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{
			DefaultMode: ptr[int32](0o444),
			Sources: []v1.VolumeProjection{
				{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", Audience: "vault", ExpirationSeconds: ptr[int64](7200)}},
				{ConfigMap: &v1.ConfigMapProjection{LocalObjectReference: v1.LocalObjectReference{Name: "conf"}, Items: []v1.KeyToPath{{Key: "app.conf", Path: "ca.crt"}}}},
				{Secret: &v1.SecretProjection{LocalObjectReference: v1.LocalObjectReference{Name: "creds"}, Items: []v1.KeyToPath{{Key: "user", Path: "auth/user"}}}},
				{DownwardAPI: &v1.DownwardAPIProjection{Items: []v1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &v1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
			},
		}}}, pluginProjected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _, ts := newTestManager(t, objs...)
			pod := testPod(tc.vol)
			if err := m.SetUp(context.Background(), pod); err != nil {
				t.Fatal(err)
			}
			got := tree(t, m.volumeDir(pod.UID, tc.plugin, tc.vol.Name))
			golden(t, "TestSetUp_"+strings.ReplaceAll(tc.name, " ", "_"), got)
			if tc.vol.Projected != nil {
				req := ts.last.Load()
				if req == nil {
					t.Fatal("no token request")
				}
				want := authenticationv1.TokenRequestSpec{
					Audiences:         []string{"vault"},
					ExpirationSeconds: ptr[int64](7200),
					BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: "web", UID: "uid-1"},
				}
				if diff := cmp.Diff(want, req.Spec); diff != "" {
					t.Errorf("token request (-want +got):\n%s", diff)
				}
			}
			// A second SetUp changes nothing on disk.
			before := dataDirs(t, m.volumeDir(pod.UID, tc.plugin, tc.vol.Name))
			if err := m.SetUp(context.Background(), pod); err != nil {
				t.Fatal(err)
			}
			if after := dataDirs(t, m.volumeDir(pod.UID, tc.plugin, tc.vol.Name)); !cmp.Equal(before, after) {
				t.Errorf("second SetUp rewrote the volume: %v -> %v", before, after)
			}
		})
	}
}

func dataDirs(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if isDataDir(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestSetUp_Errors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(sock, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		vol  v1.Volume
		want error
	}{
		{"missing configmap", v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}}}}, ErrNotFound},
		{"missing key", v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "conf"}, Items: []v1.KeyToPath{{Key: "nokey", Path: "x"}}}}}, ErrNotFound},
		{"missing secret", v1.Volume{Name: "s", VolumeSource: v1.VolumeSource{Secret: &v1.SecretVolumeSource{SecretName: "nope"}}}, ErrNotFound},
		{"item path escapes", v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "conf"}, Items: []v1.KeyToPath{{Key: "a", Path: "../../etc/passwd"}}}}}, ErrInvalid},
		{"downward field not allowed in volumes", v1.Volume{Name: "d", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{{Path: "n", FieldRef: &v1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}}}}, ErrInvalid},
		{"resource of unknown container", v1.Volume{Name: "d", VolumeSource: v1.VolumeSource{DownwardAPI: &v1.DownwardAPIVolumeSource{Items: []v1.DownwardAPIVolumeFile{{Path: "n", ResourceFieldRef: &v1.ResourceFieldSelector{ContainerName: "nope", Resource: "limits.cpu"}}}}}}, ErrNotFound},
		{"persistent volume claim", v1.Volume{Name: "pvc", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}, ErrUnsupported},
		{"hugepages emptyDir", v1.Volume{Name: "e", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{Medium: v1.StorageMediumHugePages}}}, ErrUnsupported},
		{"hostPath Directory missing", v1.Volume{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/nonexistent/skiff", Type: ptr(v1.HostPathDirectory)}}}, ErrInvalid},
		{"hostPath Socket is a file", v1.Volume{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: sock, Type: ptr(v1.HostPathSocket)}}}, ErrInvalid},
		{"hostPath DirectoryOrCreate on a file", v1.Volume{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: sock, Type: ptr(v1.HostPathDirectoryOrCreate)}}}, ErrInvalid},
		{"hostPath relative", v1.Volume{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "etc"}}}, ErrInvalid},
		{"hostPath unknown type", v1.Volume{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/", Type: ptr(v1.HostPathType("Weird"))}}}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _, _ := newTestManager(t, configMap("conf", map[string]string{"a": "1"}))
			err := m.SetUp(context.Background(), testPod(tc.vol))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), fmt.Sprintf("volume %q", tc.vol.Name)) {
				t.Errorf("error %q does not name the volume", err)
			}
			var se *SetUpError
			if !errors.As(err, &se) || se.VolumeName() != tc.vol.Name {
				t.Errorf("error %v is not a *SetUpError for volume %q", err, tc.vol.Name)
			}
		})
	}
	t.Run("missing sources read as upstream's", func(t *testing.T) {
		m, _, _ := newTestManager(t, configMap("conf", map[string]string{"a": "1"}))
		for vol, want := range map[string]string{
			"cm":     `configmap "nope" not found`,
			"secret": `secret "gone" not found`,
			"key":    `configmap "conf" has no key "nokey"`,
		} {
			src := map[string]v1.VolumeSource{
				"cm":     {ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "nope"}}},
				"secret": {Secret: &v1.SecretVolumeSource{SecretName: "gone"}},
				"key":    {ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "conf"}, Items: []v1.KeyToPath{{Key: "nokey", Path: "x"}}}},
			}[vol]
			err := m.SetUp(context.Background(), testPod(v1.Volume{Name: vol, VolumeSource: src}))
			var se *SetUpError
			if !errors.As(err, &se) || se.Unwrap().Error() != want {
				t.Errorf("volume %s: err = %v, want a *SetUpError whose cause reads %q", vol, err, want)
			}
		}
	})
	t.Run("token API down", func(t *testing.T) {
		m, _, ts := newTestManager(t)
		ts.failing.Store(true)
		err := m.SetUp(context.Background(), testPod(v1.Volume{Name: "p", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token"}}}}}}))
		if err == nil || !strings.Contains(err.Error(), "service account default/builder") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("pod without UID", func(t *testing.T) {
		m, _, _ := newTestManager(t)
		if err := m.SetUp(context.Background(), &v1.Pod{}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestSetUp_HostPathTypes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		path    string
		typ     v1.HostPathType
		created fs.FileMode // the type made, 0 when none is
	}{
		{"unset accepts a missing path", filepath.Join(dir, "missing"), v1.HostPathUnset, 0},
		{"Directory", dir, v1.HostPathDirectory, 0},
		{"File", file, v1.HostPathFile, 0},
		{"DirectoryOrCreate creates", filepath.Join(dir, "new/sub"), v1.HostPathDirectoryOrCreate, fs.ModeDir},
		{"FileOrCreate creates", filepath.Join(dir, "newfile"), v1.HostPathFileOrCreate, 0o644},
		{"CharDevice", "/dev/null", v1.HostPathCharDev, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _, _ := newTestManager(t)
			if err := m.SetUp(context.Background(), testPod(v1.Volume{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: tc.path, Type: &tc.typ}}})); err != nil {
				t.Fatal(err)
			}
			if tc.created != 0 {
				info, err := os.Stat(tc.path)
				if err != nil {
					t.Fatal(err)
				}
				if tc.created == fs.ModeDir && !info.IsDir() || tc.created != fs.ModeDir && info.Mode().Perm() != tc.created {
					t.Errorf("made %v", info.Mode())
				}
			}
		})
	}
}

func TestRun_RewritesOnConfigMapChange(t *testing.T) {
	m, client, _ := newTestManager(t, configMap("conf", map[string]string{"k": "v1"}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	pod := testPod(v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "conf"}}}})
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(m.volumeDir(pod.UID, pluginConfigMap, "c"), "k")
	if _, err := client.CoreV1().ConfigMaps("default").Update(ctx, configMap("conf", map[string]string{"k": "v2"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { b, _ := os.ReadFile(file); return string(b) == "v2" }, "configmap update reaches the volume")

	// After TearDown the watch is gone and nothing is rewritten.
	if err := m.TearDown(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	n := len(m.watches)
	m.mu.Unlock()
	if n != 0 {
		t.Errorf("%d watches left after TearDown", n)
	}
	if _, err := os.Stat(m.PodDir(pod.UID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pod dir left: %v", err)
	}
}

func TestRun_RefreshesTokenAt80Percent(t *testing.T) {
	m, _, _ := newTestManager(t)
	clk := m.clock.(*clocktesting.FakeClock)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)
	pod := testPod(v1.Volume{Name: "p", VolumeSource: v1.VolumeSource{Projected: &v1.ProjectedVolumeSource{Sources: []v1.VolumeProjection{
		{ServiceAccountToken: &v1.ServiceAccountTokenProjection{Path: "token", Audience: "api", ExpirationSeconds: ptr[int64](1000)}},
	}}}})
	user := int64(1000)
	if os.Geteuid() != 0 {
		user = int64(os.Geteuid()) // only root may give files away
	}
	pod.Spec.SecurityContext = &v1.PodSecurityContext{RunAsUser: &user}
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(m.volumeDir(pod.UID, pluginProjected, "p"), "token")
	read := func() string { b, _ := os.ReadFile(file); return string(b) }
	if got := read(); got != "token-1-for-api" {
		t.Fatalf("token = %q", got)
	}
	info, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st := info.Sys().(*syscall.Stat_t); info.Mode().Perm() != 0o600 || int64(st.Uid) != user {
		t.Errorf("token file mode %v uid %d, want 0600 owned by the pod's user %d", info.Mode().Perm(), st.Uid, user)
	}
	waitFor(t, func() bool { return clk.HasWaiters() }, "refresh timer set")
	clk.Step(790 * time.Second)
	if err := m.SetUp(ctx, pod); err != nil { // before 80%: the cached token stays
		t.Fatal(err)
	}
	if got := read(); got != "token-1-for-api" {
		t.Fatalf("token refreshed early: %q", got)
	}
	clk.Step(20 * time.Second)
	waitFor(t, func() bool { return read() == "token-2-for-api" }, "token refreshed at 80% of its lifetime")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMounts(t *testing.T) {
	m, _, _ := newTestManager(t, configMap("conf", map[string]string{"a": "1"}))
	pod := testPod(
		v1.Volume{Name: "cache", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "conf", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "conf"}}}},
		v1.Volume{Name: "host", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: "/etc/../etc"}}},
	)
	pod.Spec.Containers[0].VolumeMounts = []v1.VolumeMount{
		{Name: "cache", MountPath: "/cache"},
		{Name: "conf", MountPath: "/etc/app"},
		{Name: "host", MountPath: "/host", ReadOnly: true, MountPropagation: ptr(v1.MountPropagationHostToContainer), RecursiveReadOnly: ptr(v1.RecursiveReadOnlyEnabled)},
	}
	if err := m.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	got, err := m.Mounts(pod, &pod.Spec.Containers[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []*runtimeapi.Mount{
		{ContainerPath: "/cache", HostPath: m.volumeDir(pod.UID, pluginEmptyDir, "cache")},
		{ContainerPath: "/etc/app", HostPath: m.volumeDir(pod.UID, pluginConfigMap, "conf"), Readonly: true},
		{ContainerPath: "/host", HostPath: "/etc", Readonly: true, RecursiveReadOnly: true, Propagation: runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER},
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b *runtimeapi.Mount) bool { return a.String() == b.String() })); diff != "" {
		t.Errorf("mounts (-want +got):\n%s", diff)
	}

	bad := []struct {
		name string
		vm   v1.VolumeMount
		want error
	}{
		{"unknown volume", v1.VolumeMount{Name: "nope", MountPath: "/x"}, ErrInvalid},
		{"relative mount path", v1.VolumeMount{Name: "cache", MountPath: "x"}, ErrInvalid},
		{"subPath with ..", v1.VolumeMount{Name: "cache", MountPath: "/x", SubPath: "../../etc"}, ErrInvalid},
		{"absolute subPath", v1.VolumeMount{Name: "cache", MountPath: "/x", SubPath: "/etc"}, ErrInvalid},
		{"subPathExpr with unset variable", v1.VolumeMount{Name: "cache", MountPath: "/x", SubPathExpr: "$(NOPE)"}, ErrInvalid},
		{"subPathExpr expanding to ..", v1.VolumeMount{Name: "cache", MountPath: "/x", SubPathExpr: "$(UP)/x"}, ErrInvalid},
		{"missing subPath in a configmap", v1.VolumeMount{Name: "conf", MountPath: "/x", SubPath: "missing"}, ErrNotFound},
		{"recursiveReadOnly without readOnly", v1.VolumeMount{Name: "cache", MountPath: "/x", RecursiveReadOnly: ptr(v1.RecursiveReadOnlyEnabled)}, ErrInvalid},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c := pod.Spec.Containers[0].DeepCopy()
			c.VolumeMounts = []v1.VolumeMount{tc.vm}
			_, err := m.Mounts(pod, c, map[string]string{"UP": ".."})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestExpandSubPath(t *testing.T) {
	env := map[string]string{"POD": "web-0", "NS": "default"}
	tests := []struct{ expr, want string }{
		{"logs/$(POD)", "logs/web-0"},
		{"$(NS)/$(POD)/x", "default/web-0/x"},
		{"a$$(POD)", "a$(POD)"},
		{"plain", "plain"},
		{"open$(", "open$("},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := expandSubPath(tc.expr, env)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTearDown_RejectsBadUIDs(t *testing.T) {
	m, _, _ := newTestManager(t)
	for _, uid := range []string{"", "..", "a/b", "."} {
		if err := m.TearDown(context.Background(), types.UID(uid)); !errors.Is(err, ErrInvalid) {
			t.Errorf("TearDown(%q) = %v", uid, err)
		}
	}
}

func TestNew_Validates(t *testing.T) {
	for _, cfg := range []Config{{}, {RootDir: "relative"}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
