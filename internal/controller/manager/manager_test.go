package manager

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/skiff-sh/skiff/internal/testserver"
)

func TestBuiltins_NamesAreUniqueAndShort(t *testing.T) {
	seen := map[string]bool{}
	valid := regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	for _, c := range builtins() {
		if !valid.MatchString(c.Name) {
			t.Errorf("controller name %q is not short lower case", c.Name)
		}
		if seen[c.Name] {
			t.Errorf("controller %q registered twice", c.Name)
		}
		if c.New == nil {
			t.Errorf("controller %q has no constructor", c.Name)
		}
		seen[c.Name] = true
	}
}

func TestNew_RejectsBadConfig(t *testing.T) {
	rc := &rest.Config{Host: "https://127.0.0.1:1"}
	known := []Controller{{Name: "a", New: nil}}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing REST config", Config{}, "REST config is required"},
		{"unknown disabled controller", Config{REST: rc, Disabled: []string{"nope"}}, `disabled controller "nope": no such controller`},
		{"negative resync", Config{REST: rc, ResyncPeriod: -time.Second}, "resync period -1s is negative"},
		{"lease not longer than renew deadline", Config{REST: rc, LeaderElection: LeaderElection{LeaseDuration: 5 * time.Second, RenewDeadline: 5 * time.Second}}, "lease duration 5s must exceed renew deadline 5s"},
		{"renew deadline too close to retry period", Config{REST: rc, LeaderElection: LeaderElection{RenewDeadline: 2 * time.Second, RetryPeriod: 2 * time.Second}}, "renew deadline 2s must exceed"},
		{"negative retry period", Config{REST: rc, LeaderElection: LeaderElection{RetryPeriod: -time.Second}}, "durations must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := newManager(tc.cfg, known)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("newManager error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestNew_AppliesDefaults(t *testing.T) {
	m, err := newManager(Config{REST: &rest.Config{Host: "https://127.0.0.1:1"}, Disabled: []string{"b"}},
		[]Controller{{Name: "a"}, {Name: "b"}})
	if err != nil {
		t.Fatal(err)
	}
	le := m.cfg.LeaderElection
	got := []any{le.Namespace, le.Name, le.LeaseDuration, le.RenewDeadline, le.RetryPeriod, m.cfg.ResyncPeriod, m.cfg.REST.QPS, m.cfg.REST.Burst, len(m.controllers), m.controllers[0].Name}
	want := []any{"kube-system", "skiff-controller-manager", 15 * time.Second, 10 * time.Second, 2 * time.Second, 12 * time.Hour, float32(100), 200, 1, "a"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if le.Identity == "" {
		t.Error("no identity")
	}
}

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

func recording(name string, j *journal, err error) Controller {
	return Controller{Name: "recorder", New: func(d Deps) (Runner, error) {
		if d.Logger == nil || d.Clock == nil || d.Metadata == nil || d.Discovery == nil || d.MetadataInformers == nil {
			return nil, errors.New("incomplete deps")
		}
		return &recorder{name: name, j: j, synced: d.Informers.Core().V1().Namespaces().Informer().HasSynced, err: err}, nil
	}}
}

func fastElection(identity string) LeaderElection {
	return LeaderElection{Identity: identity, LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 200 * time.Millisecond}
}

func TestManager_OneLeaderAtATimeAndHandOver(t *testing.T) {
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	j := newJournal()

	start := func(name string) (cancel func() error) {
		m, err := newManager(Config{REST: ts.Config, LeaderElection: fastElection(name)}, []Controller{recording(name, j, nil)})
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
		le   LeaderElection
	}{
		{"with leader election", fastElection("solo")},
		{"without leader election", LeaderElection{Disabled: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := newJournal()
			m, err := newManager(Config{REST: ts.Config, LeaderElection: tc.le}, []Controller{recording("x", j, boom)})
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
	m, err := newManager(Config{REST: ts.Config, LeaderElection: LeaderElection{Disabled: true}},
		[]Controller{{Name: "bad", New: func(Deps) (Runner, error) { return nil, bad }}})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Run(context.Background())
	if !errors.Is(err, bad) || !strings.Contains(err.Error(), "controller bad") {
		t.Fatalf("Run = %v, want an error naming controller bad", err)
	}
}
