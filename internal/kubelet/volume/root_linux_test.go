package volume

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiff-sh/skiff/internal/sys/mount"
	"github.com/skiff-sh/skiff/internal/testutil"
)

// cleanupMounts unmounts whatever a test left under dir, even when it
// failed, so that t.TempDir's removal never walks into a mount.
func cleanupMounts(t *testing.T, dir string) {
	t.Cleanup(func() {
		if err := mount.UnmountAll(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

func TestEmptyDir_MemoryIsSizedTmpfs(t *testing.T) {
	testutil.RequireRoot(t)
	m, _, _ := newTestManager(t)
	cleanupMounts(t, m.cfg.RootDir)
	tests := []struct {
		name     string
		src      v1.EmptyDirVolumeSource
		wantSize int64
	}{
		{"sizeLimit", v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory, SizeLimit: ptr(resource.MustParse("8Mi"))}, 8 << 20},
		{"container memory limits", v1.EmptyDirVolumeSource{Medium: v1.StorageMediumMemory}, 128 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pod := testPod(v1.Volume{Name: "mem", VolumeSource: v1.VolumeSource{EmptyDir: &tc.src}})
			pod.UID = types.UID("uid-" + filepath.Base(t.Name()))
			pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: ptr[int64](2000)}
			for range 2 { // idempotent: one mount only
				if err := m.SetUp(context.Background(), pod); err != nil {
					t.Fatal(err)
				}
			}
			dir := m.volumeDir(pod.UID, pluginEmptyDir, "mem")
			var st unix.Statfs_t
			if err := unix.Statfs(dir, &st); err != nil {
				t.Fatal(err)
			}
			if st.Type != unix.TMPFS_MAGIC {
				t.Fatalf("not a tmpfs: %x", st.Type)
			}
			if got := int64(st.Blocks) * st.Bsize; got != tc.wantSize {
				t.Errorf("size %d, want %d", got, tc.wantSize)
			}
			mounts, _ := mount.Self()
			if n := len(mount.Under(mounts, dir)); n != 1 {
				t.Errorf("%d mounts at %s, want 1", n, dir)
			}
			info, err := os.Stat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode()&(fs.ModePerm|fs.ModeSetgid) != 0o777|fs.ModeSetgid || info.Sys().(*syscall.Stat_t).Gid != 2000 {
				t.Errorf("emptyDir mode %v gid %d, want 2777 with group 2000", info.Mode(), info.Sys().(*syscall.Stat_t).Gid)
			}
			if err := m.TearDown(context.Background(), pod.UID); err != nil {
				t.Fatal(err)
			}
			mounts, _ = mount.Self()
			if left := mount.Under(mounts, m.PodDir(pod.UID)); len(left) > 0 {
				t.Errorf("mounts left: %v", left)
			}
			if _, err := os.Stat(m.PodDir(pod.UID)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("pod dir left: %v", err)
			}
		})
	}
}

func TestSubPath(t *testing.T) {
	testutil.RequireRoot(t)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, _, _ := newTestManager(t, configMap("conf", map[string]string{"app.conf": "x=1"}))
	cleanupMounts(t, m.cfg.RootDir)
	pod := testPod(
		v1.Volume{Name: "data", VolumeSource: v1.VolumeSource{EmptyDir: &v1.EmptyDirVolumeSource{}}},
		v1.Volume{Name: "conf", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{LocalObjectReference: v1.LocalObjectReference{Name: "conf"}}}},
	)
	ctx := context.Background()
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	data := m.volumeDir(pod.UID, pluginEmptyDir, "data")
	if err := os.Symlink(outside, filepath.Join(data, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("inner", filepath.Join(data, "alias")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(data, "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "inner", "f"), []byte("in"), 0o644); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		vm       v1.VolumeMount
		env      map[string]string
		wantErr  error
		wantFile string // file read through the bind, relative to it
		wantData string
		wantRO   bool
	}{
		{name: "existing directory", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "inner"}, wantFile: "f", wantData: "in"},
		{name: "symlink inside the volume", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "alias"}, wantFile: "f", wantData: "in"},
		{name: "missing directory is created", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "made/here"}},
		{name: "subPathExpr", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPathExpr: "logs/$(POD)"}, env: map[string]string{"POD": "web"}},
		{name: "configmap file, read-only", vm: v1.VolumeMount{Name: "conf", MountPath: "/etc/app.conf", SubPath: "app.conf"}, wantFile: ".", wantData: "x=1", wantRO: true},
		{name: "read-only mount of a writable volume", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "inner", ReadOnly: true}, wantFile: "f", wantData: "in", wantRO: true},
		{name: "symlink escaping the volume", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "escape"}, wantErr: ErrInvalid},
		{name: "path through an escaping symlink", vm: v1.VolumeMount{Name: "data", MountPath: "/x", SubPath: "escape/secret"}, wantErr: ErrInvalid},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &v1.Container{Name: "c" + string(rune('a'+i)), VolumeMounts: []v1.VolumeMount{tc.vm}}
			mounts, err := m.Mounts(pod, c, tc.env)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			host := mounts[0].HostPath
			if ok, _ := mount.IsMountpoint(host); !ok {
				t.Fatalf("%s is not a mount point", host)
			}
			if mounts[0].Readonly != tc.wantRO {
				t.Errorf("Readonly = %v, want %v", mounts[0].Readonly, tc.wantRO)
			}
			if tc.wantFile != "" {
				b, err := os.ReadFile(filepath.Join(host, tc.wantFile))
				if err != nil {
					t.Fatal(err)
				}
				if string(b) != tc.wantData {
					t.Errorf("read %q, want %q", b, tc.wantData)
				}
			}
			var st unix.Statfs_t
			if err := unix.Statfs(host, &st); err != nil {
				t.Fatal(err)
			}
			if ro := st.Flags&unix.ST_RDONLY != 0; ro != tc.wantRO {
				t.Errorf("bind read-only = %v, want %v", ro, tc.wantRO)
			}
			// A second call (a restarted container) reuses the bind.
			again, err := m.Mounts(pod, c, tc.env)
			if err != nil || again[0].HostPath != host {
				t.Errorf("second Mounts = %v, %v", again, err)
			}
			mnts, _ := mount.Self()
			if n := len(mount.Under(mnts, host)); n != 1 {
				t.Errorf("%d mounts at %s, want 1", n, host)
			}
		})
	}
	if err := m.TearDown(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "secret")); err != nil || string(b) != "host" {
		t.Errorf("file outside the volume changed: %q, %v", b, err)
	}
	if _, err := os.Stat(m.PodDir(pod.UID)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pod dir left: %v", err)
	}
}

// TearDown must never delete through a mount it could not remove: here a
// hostPath-like directory is bind mounted under the pod and made busy
// with a second mount on top that TearDown unmounts first; the files of
// the bound directory must survive.
func TestTearDown_KeepsFilesBehindBindMounts(t *testing.T) {
	testutil.RequireRoot(t)
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "precious"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, _, _ := newTestManager(t)
	cleanupMounts(t, m.cfg.RootDir)
	pod := testPod(v1.Volume{Name: "h", VolumeSource: v1.VolumeSource{HostPath: &v1.HostPathVolumeSource{Path: host}}})
	if err := m.SetUp(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(host, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "precious"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &v1.Container{Name: "c", VolumeMounts: []v1.VolumeMount{{Name: "h", MountPath: "/x", SubPath: "sub"}}}
	if _, err := m.Mounts(pod, c, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.TearDown(context.Background(), pod.UID); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(host, "precious"), filepath.Join(sub, "precious")} {
		if b, err := os.ReadFile(f); err != nil || string(b) != "keep" {
			t.Errorf("%s: %q, %v", f, b, err)
		}
	}
}

func TestSetUp_FSGroupOwnsAPIDataVolumes(t *testing.T) {
	testutil.RequireRoot(t)
	m, _, _ := newTestManager(t, configMap("conf", map[string]string{"a": "1", "dir/b": "2"}))
	pod := testPod(v1.Volume{Name: "c", VolumeSource: v1.VolumeSource{ConfigMap: &v1.ConfigMapVolumeSource{
		LocalObjectReference: v1.LocalObjectReference{Name: "conf"},
		Items:                []v1.KeyToPath{{Key: "a", Path: "a"}, {Key: "dir/b", Path: "dir/b", Mode: ptr[int32](0o600)}},
	}}})
	pod.Spec.SecurityContext = &v1.PodSecurityContext{FSGroup: ptr[int64](3000)}
	ctx := context.Background()
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	dir := m.volumeDir(pod.UID, pluginConfigMap, "c")
	for _, tc := range []struct {
		path string
		mode fs.FileMode
	}{
		{"a", 0o644},
		{"dir/b", 0o640},
		{"dir", 0o755 | fs.ModeSetgid | fs.ModeDir},
	} {
		info, err := os.Stat(filepath.Join(dir, tc.path))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode() != tc.mode || info.Sys().(*syscall.Stat_t).Gid != 3000 {
			t.Errorf("%s: mode %v gid %d, want %v gid 3000", tc.path, info.Mode(), info.Sys().(*syscall.Stat_t).Gid, tc.mode)
		}
	}
	before := dataDirs(t, dir)
	if err := m.SetUp(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if after := dataDirs(t, dir); before[0] != after[0] {
		t.Errorf("a second SetUp with the same fsGroup rewrote the volume")
	}
	if err := m.TearDown(ctx, pod.UID); err != nil {
		t.Fatal(err)
	}
}
