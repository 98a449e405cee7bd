package manager

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/client-go/rest"
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
