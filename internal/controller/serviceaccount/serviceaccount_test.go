package serviceaccount

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	testingclock "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func namespace(name string, phase corev1.NamespacePhase) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NamespaceStatus{Phase: phase}}
}

func serviceAccount(ns, name string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

// newTestController builds a controller on a fake client holding objs,
// with the informer caches filled by hand (no informer runs).
func newTestController(t *testing.T, cfg Config, objs ...runtime.Object) (*Controller, *fake.Clientset) {
	t.Helper()
	client := fake.NewSimpleClientset(objs...)
	factory := informers.NewSharedInformerFactory(client, 0)
	cfg.Client, cfg.Informers, cfg.Clock = client, factory, testingclock.NewFakeClock(t0)
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range objs {
		var inf cache.SharedIndexInformer
		switch obj.(type) {
		case *corev1.Namespace:
			inf = factory.Core().V1().Namespaces().Informer()
		case *corev1.ServiceAccount:
			inf = factory.Core().V1().ServiceAccounts().Informer()
		}
		if err := inf.GetIndexer().Add(obj); err != nil {
			t.Fatal(err)
		}
	}
	return c, client
}

func TestSync(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		objs    []runtime.Object
		ns      string
		reactor k8stesting.ReactionFunc
		wantErr bool
	}{
		{name: "CreatesDefaultInNewNamespace", ns: "team-a", objs: []runtime.Object{namespace("team-a", corev1.NamespaceActive)}},
		{name: "LeavesExistingDefault", ns: "team-a", objs: []runtime.Object{namespace("team-a", corev1.NamespaceActive), serviceAccount("team-a", "default")}},
		{name: "SkipsTerminatingNamespace", ns: "team-a", objs: []runtime.Object{namespace("team-a", corev1.NamespaceTerminating)}},
		{name: "SkipsMissingNamespace", ns: "gone"},
		{
			name: "CreatesEveryConfiguredName", ns: "team-a",
			cfg:  Config{Names: []string{"default", "builder"}},
			objs: []runtime.Object{namespace("team-a", corev1.NamespaceActive), serviceAccount("team-a", "builder")},
		},
		{
			name: "AcceptsAlreadyExists", ns: "team-a",
			objs: []runtime.Object{namespace("team-a", corev1.NamespaceActive)},
			reactor: func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewAlreadyExists(schema.GroupResource{Resource: "serviceaccounts"}, "default")
			},
		},
		{
			name: "AcceptsNamespaceTerminatingRefusal", ns: "team-a",
			objs: []runtime.Object{namespace("team-a", corev1.NamespaceActive)},
			reactor: func(k8stesting.Action) (bool, runtime.Object, error) {
				err := apierrors.NewForbidden(schema.GroupResource{Resource: "serviceaccounts"}, "default", errors.New("namespace team-a is being terminated"))
				err.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause}}
				return true, nil, err
			},
		},
		{
			name: "RetriesServerError", ns: "team-a", wantErr: true,
			objs: []runtime.Object{namespace("team-a", corev1.NamespaceActive)},
			reactor: func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, apierrors.NewInternalError(errors.New("etcd timeout"))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, client := newTestController(t, tt.cfg, tt.objs...)
			if tt.reactor != nil {
				client.PrependReactor("create", "serviceaccounts", tt.reactor)
			}
			var tr trace
			tr.step("sync namespace %s", tt.ns)
			err := c.sync(context.Background(), tt.ns)
			if (err != nil) != tt.wantErr {
				t.Fatalf("sync: err = %v, want error %v", err, tt.wantErr)
			}
			tr.actions(client.Actions())
			if err != nil {
				tr.note("error: %v", err)
			}
			checkGolden(t, goldenName(t), tr.b.String())
		})
	}
}

func TestHandlers_QueueNamespaces(t *testing.T) {
	tests := []struct {
		name  string
		event func(c *Controller)
		want  []string
	}{
		{name: "NamespaceAdded", event: func(c *Controller) { c.namespaceChanged(namespace("a", corev1.NamespaceActive)) }, want: []string{"a"}},
		{name: "DefaultDeleted", event: func(c *Controller) { c.serviceAccountDeleted(serviceAccount("b", "default")) }, want: []string{"b"}},
		{name: "DefaultDeletedTombstone", event: func(c *Controller) {
			c.serviceAccountDeleted(cache.DeletedFinalStateUnknown{Key: "c/default", Obj: serviceAccount("c", "default")})
		}, want: []string{"c"}},
		{name: "OtherAccountDeleted", event: func(c *Controller) { c.serviceAccountDeleted(serviceAccount("b", "ci")) }},
		{name: "GarbageIgnored", event: func(c *Controller) { c.serviceAccountDeleted("not an object") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := newTestController(t, Config{})
			tt.event(c)
			var got []string
			for c.queue.Len() > 0 {
				k, _ := c.queue.Get()
				got = append(got, k)
				c.queue.Done(k)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("queued %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	client := fake.NewSimpleClientset()
	factory := informers.NewSharedInformerFactory(client, 0)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "NoClient", cfg: Config{Informers: factory}, want: "client is required"},
		{name: "NoInformers", cfg: Config{Client: client}, want: "informer factory is required"},
		{name: "EmptyNames", cfg: Config{Client: client, Informers: factory, Names: []string{}}, want: "no ServiceAccount names"},
		{name: "InvalidName", cfg: Config{Client: client, Informers: factory, Names: []string{"Bad_Name"}}, want: `ServiceAccount name "Bad_Name"`},
		{name: "NegativeWorkers", cfg: Config{Client: client, Informers: factory, Workers: -1}, want: "workers -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}
