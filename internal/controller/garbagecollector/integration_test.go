package garbagecollector_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/controller/garbagecollector"
	"github.com/skiff-sh/skiff/internal/testserver"
)

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { recover() }() // goroutines may log after the test
	w.t.Log(string(p))
	return len(p), nil
}

// eventually polls cond until it holds; the long timeout only keeps a
// broken test from hanging.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 60*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func startCollector(t *testing.T) kubernetes.Interface {
	t.Helper()
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	disco := memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(ts.Config))
	gc, err := garbagecollector.New(garbagecollector.Config{
		Metadata:  metadata.NewForConfigOrDie(ts.Config),
		Discovery: disco,
		Client:    client,
		Logger:    slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return client
}

func ownerRef(cm *corev1.ConfigMap, block bool) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: cm.Name, UID: cm.UID, BlockOwnerDeletion: ptr.To(block)}
}

type fixture struct {
	t      *testing.T
	client kubernetes.Interface
	ns     string
}

func (f fixture) configMap(name string, owners ...metav1.OwnerReference) *corev1.ConfigMap {
	f.t.Helper()
	cm, err := f.client.CoreV1().ConfigMaps(f.ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners},
	}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return cm
}

func (f fixture) secret(name string, owners ...metav1.OwnerReference) *corev1.Secret {
	f.t.Helper()
	s, err := f.client.CoreV1().Secrets(f.ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners},
	}, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func (f fixture) deleteConfigMap(name string, policy metav1.DeletionPropagation) {
	f.t.Helper()
	if err := f.client.CoreV1().ConfigMaps(f.ns).Delete(context.Background(), name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		f.t.Fatal(err)
	}
}

func (f fixture) configMapGone(name string) {
	f.t.Helper()
	eventually(f.t, "configmap "+name+" to be deleted", func(ctx context.Context) (bool, error) {
		_, err := f.client.CoreV1().ConfigMaps(f.ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

func (f fixture) secretGone(name string) {
	f.t.Helper()
	eventually(f.t, "secret "+name+" to be deleted", func(ctx context.Context) (bool, error) {
		_, err := f.client.CoreV1().Secrets(f.ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

func TestCollector_AgainstAPIServer(t *testing.T) {
	client := startCollector(t)
	ctx := context.Background()
	n := 0
	newFixture := func(t *testing.T) fixture {
		n++
		ns := fmt.Sprintf("gc-%d", n)
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		return fixture{t: t, client: client, ns: ns}
	}

	t.Run("background deletion removes dependents of every kind", func(t *testing.T) {
		f := newFixture(t)
		owner := f.configMap("owner")
		f.configMap("dep-cm", ownerRef(owner, false))
		f.secret("dep-secret", ownerRef(owner, true))
		f.deleteConfigMap("owner", metav1.DeletePropagationBackground)
		f.configMapGone("owner")
		f.configMapGone("dep-cm")
		f.secretGone("dep-secret")
	})

	t.Run("a dependent of an owner that never existed is deleted", func(t *testing.T) {
		f := newFixture(t)
		f.secret("dangling", metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "ghost", UID: types.UID("no-such-uid")})
		f.secretGone("dangling")
	})

	t.Run("a dependent with another live owner only loses the reference", func(t *testing.T) {
		f := newFixture(t)
		a, b := f.configMap("owner-a"), f.configMap("owner-b")
		f.secret("shared", ownerRef(a, false), ownerRef(b, false))
		f.deleteConfigMap("owner-a", metav1.DeletePropagationBackground)
		eventually(t, "the reference to owner-a removed", func(ctx context.Context) (bool, error) {
			s, err := client.CoreV1().Secrets(f.ns).Get(ctx, "shared", metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return len(s.OwnerReferences) == 1 && s.OwnerReferences[0].UID == b.UID, nil
		})
	})

	t.Run("orphan deletion keeps dependents and drops their references", func(t *testing.T) {
		f := newFixture(t)
		owner := f.configMap("owner")
		f.configMap("dep-cm", ownerRef(owner, true))
		f.secret("dep-secret", ownerRef(owner, false))
		f.deleteConfigMap("owner", metav1.DeletePropagationOrphan)
		f.configMapGone("owner")
		cm, err := client.CoreV1().ConfigMaps(f.ns).Get(ctx, "dep-cm", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("orphaned dependent: %v", err)
		}
		s, err := client.CoreV1().Secrets(f.ns).Get(ctx, "dep-secret", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("orphaned dependent: %v", err)
		}
		if len(cm.OwnerReferences)+len(s.OwnerReferences) != 0 {
			t.Errorf("orphans still name an owner: %v %v", cm.OwnerReferences, s.OwnerReferences)
		}
	})

	t.Run("foreground deletion waits for blocking dependents", func(t *testing.T) {
		f := newFixture(t)
		owner := f.configMap("owner")
		// The blocking dependent lingers on a finalizer of the test's.
		blocking := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "blocking", Finalizers: []string{"test.skiff.sh/hold"},
			OwnerReferences: []metav1.OwnerReference{ownerRef(owner, true)}}}
		if _, err := client.CoreV1().ConfigMaps(f.ns).Create(ctx, blocking, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		f.secret("non-blocking", ownerRef(owner, false))
		f.deleteConfigMap("owner", metav1.DeletePropagationForeground)
		f.secretGone("non-blocking")
		eventually(t, "the blocking dependent to be deleting", func(ctx context.Context) (bool, error) {
			cm, err := client.CoreV1().ConfigMaps(f.ns).Get(ctx, "blocking", metav1.GetOptions{})
			return err == nil && cm.DeletionTimestamp != nil, err
		})
		got, err := client.CoreV1().ConfigMaps(f.ns).Get(ctx, "owner", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("owner deleted while a blocking dependent exists: %v", err)
		}
		if got.DeletionTimestamp == nil || len(got.Finalizers) != 1 || got.Finalizers[0] != metav1.FinalizerDeleteDependents {
			t.Errorf("owner = deletionTimestamp %v, finalizers %v; want deleting with foregroundDeletion", got.DeletionTimestamp, got.Finalizers)
		}
		if _, err := client.CoreV1().ConfigMaps(f.ns).Patch(ctx, "blocking", types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		f.configMapGone("blocking")
		f.configMapGone("owner")
	})

	t.Run("foreground deletion goes down a chain of owners", func(t *testing.T) {
		f := newFixture(t)
		top := f.configMap("top")
		mid := f.configMap("mid", ownerRef(top, true))
		f.secret("leaf", ownerRef(mid, true))
		f.deleteConfigMap("top", metav1.DeletePropagationForeground)
		f.secretGone("leaf")
		f.configMapGone("mid")
		f.configMapGone("top")
	})

	t.Run("a cluster-scoped object owned by a namespaced kind is kept and reported", func(t *testing.T) {
		f := newFixture(t)
		owner := f.configMap("owner")
		role, err := client.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{
			Name: "gc-invalid-owner", OwnerReferences: []metav1.OwnerReference{ownerRef(owner, false)},
		}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = client.RbacV1().ClusterRoles().Delete(context.Background(), role.Name, metav1.DeleteOptions{})
		})
		eventually(t, "an OwnerRefInvalidNamespace event", func(ctx context.Context) (bool, error) {
			evs, err := client.CoreV1().Events("").List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, err
			}
			for _, e := range evs.Items {
				if e.Reason == "OwnerRefInvalidNamespace" && e.InvolvedObject.Name == role.Name {
					return true, nil
				}
			}
			return false, nil
		})
		if _, err := client.RbacV1().ClusterRoles().Get(ctx, role.Name, metav1.GetOptions{}); err != nil {
			t.Errorf("the cluster role was collected: %v", err)
		}
	})
}
