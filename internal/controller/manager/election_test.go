package manager_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/internal/controller/manager"
	"github.com/skiff-sh/skiff/internal/testserver"
)

// journal records what the test controllers do, in order.
type journal struct {
	mu      sync.Mutex
	entries []string
	changed chan struct{}
}

func newJournal() *journal { return &journal{changed: make(chan struct{}, 100)} }

func (j *journal) add(s string) {
	j.mu.Lock()
	j.entries = append(j.entries, s)
	j.mu.Unlock()
	j.changed <- struct{}{}
}

func (j *journal) snapshot() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

// waitFor waits until the journal holds want; the timeout only keeps a
// broken test from hanging.
func (j *journal) waitFor(t *testing.T, want ...string) {
	t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		if got := j.snapshot(); cmp.Equal(got, want) {
			return
		} else if len(got) >= len(want) {
			t.Fatalf("journal = %q, want %q", got, want)
		}
		select {
		case <-j.changed:
		case <-timeout:
			t.Fatalf("journal = %q, still waiting for %q", j.snapshot(), want)
		}
	}
}

// recorder is a controller that watches namespaces and notes when it runs.
type recorder struct {
	name   string
	j      *journal
	synced cache.InformerSynced
	err    error
}

func (r *recorder) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), r.synced) {
		return errors.New("caches did not sync")
	}
	r.j.add(r.name + " started")
	if r.err != nil {
		return r.err
	}
	<-ctx.Done()
	r.j.add(r.name + " stopped")
	return nil
}

func recording(name string, j *journal, err error) manager.Controller {
	return manager.Controller{Name: "recorder", New: func(d manager.Deps) (manager.Runner, error) {
		if d.Logger == nil || d.Clock == nil || d.Metadata == nil || d.Discovery == nil || d.MetadataInformers == nil {
			return nil, errors.New("incomplete deps")
		}
		return &recorder{name: name, j: j, synced: d.Informers.Core().V1().Namespaces().Informer().HasSynced, err: err}, nil
	}}
}

func fastElection(identity string) manager.LeaderElection {
	return manager.LeaderElection{Identity: identity, LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond}
}

func TestManager_OneLeaderAtATimeAndHandOver(t *testing.T) {
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	j := newJournal()

	start := func(name string) (cancel func() error) {
		m, err := manager.NewWithControllers(manager.Config{REST: ts.Config, LeaderElection: fastElection(name)}, []manager.Controller{recording(name, j, nil)})
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		var once sync.Once
		var err2 error
		cancel = func() error {
			once.Do(func() {
				stop()
				err2 = <-done
			})
			return err2
		}
		t.Cleanup(func() { cancel() })
		return cancel
	}

	stopA := start("a")
	j.waitFor(t, "a started")
	stopB := start("b")
	lease, err := client.CoordinationV1().Leases("kube-system").Get(context.Background(), "skiff-controller-manager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := *lease.Spec.HolderIdentity; got != "a" {
		t.Errorf("lease holder = %q, want a", got)
	}
	if err := stopA(); err != nil {
		t.Fatalf("Run of a: %v", err)
	}
	// a's controller stops before a releases the Lease, so b starts after.
	j.waitFor(t, "a started", "a stopped", "b started")
	if err := stopB(); err != nil {
		t.Fatalf("Run of b: %v", err)
	}
	j.waitFor(t, "a started", "a stopped", "b started", "b stopped")
	lease, err = client.CoordinationV1().Leases("kube-system").Get(context.Background(), "skiff-controller-manager", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
		t.Errorf("lease still held by %q after every manager stopped", *h)
	}
}

func TestManager_ControllerFailureEndsRun(t *testing.T) {
	ts := testserver.Start(t)
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		le   manager.LeaderElection
	}{
		{"with leader election", fastElection("solo")},
		{"without leader election", manager.LeaderElection{Disabled: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJournal()
			m, err := manager.NewWithControllers(manager.Config{REST: ts.Config, LeaderElection: tc.le}, []manager.Controller{recording("x", j, boom)})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err = m.Run(ctx)
			if !errors.Is(err, boom) {
				t.Fatalf("Run = %v, want boom", err)
			}
			if m.IsLeader() {
				t.Error("still leader after Run returned")
			}
		})
	}
}

func TestManager_ConstructorFailureEndsRun(t *testing.T) {
	ts := testserver.Start(t)
	bad := errors.New("bad config")
	m, err := manager.NewWithControllers(manager.Config{REST: ts.Config, LeaderElection: manager.LeaderElection{Disabled: true}},
		[]manager.Controller{{Name: "bad", New: func(manager.Deps) (manager.Runner, error) { return nil, bad }}})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Run(context.Background())
	if !errors.Is(err, bad) || !strings.Contains(err.Error(), "controller bad") {
		t.Fatalf("Run = %v, want an error naming controller bad", err)
	}
}
