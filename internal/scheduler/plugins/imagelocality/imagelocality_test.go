package imagelocality

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/cache"
	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

func TestImageLocality_Score(t *testing.T) {
	const mib = 1024 * 1024
	nodes := []*v1.Node{
		schedtest.Node("empty").Obj(),
		schedtest.Node("small").Image(500*mib, "registry.local/app:1").Obj(),
		schedtest.Node("big").Image(500*mib, "registry.local/app:1").Image(300*mib, "registry.local/db:latest").Obj(),
		schedtest.Node("db").Image(300*mib, "registry.local/db:latest").Obj(),
	}
	snap := cache.NewSnapshot(nil, nodes)
	pl := &ImageLocality{h: &framework.Handle{Snapshot: snap}}
	for _, tc := range []struct {
		name string
		pod  *v1.Pod
		want map[string]int64
	}{
		// app: 500 MiB on 2 of 4 nodes counts 250 MiB: 100 × (250 − 23)
		// / (1000 − 23) = 23.
		{"OneContainer", schedtest.Pod("p").Image("registry.local/app:1").Obj(),
			map[string]int64{"empty": 0, "small": 23, "big": 23, "db": 0}},
		// db:latest matches "registry.local/db" once normalized: 150 MiB.
		{"UntaggedImageMeansLatest", schedtest.Pod("p").Image("registry.local/db").Obj(),
			map[string]int64{"empty": 0, "small": 0, "big": 12, "db": 12}},
		// Two containers: the ceiling is 2000 MiB.
		{"TwoContainers", schedtest.Pod("p").Image("registry.local/app:1").Container("registry.local/db").Obj(),
			map[string]int64{"empty": 0, "small": 11, "big": 19, "db": 6}},
		{"ImageNowhereScoresZero", schedtest.Pod("p").Image("other").Obj(),
			map[string]int64{"empty": 0, "small": 0, "big": 0, "db": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := framework.MustPodInfo(tc.pod)
			state := framework.NewCycleState()
			if s := pl.PreScore(context.Background(), state, pod, snap.List()); !s.IsSuccess() {
				t.Fatal(s)
			}
			got := map[string]int64{}
			for _, n := range snap.List() {
				sc, s := pl.Score(context.Background(), state, pod, n)
				if !s.IsSuccess() {
					t.Fatal(s)
				}
				got[n.Node().Name] = sc
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("scores (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNormalizedImageName(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":                         "nginx:latest",
		"nginx:1.27":                    "nginx:1.27",
		"registry.local:5000/app":       "registry.local:5000/app:latest",
		"registry.local:5000/app:2":     "registry.local:5000/app:2",
		"app@sha256:0123456789abcdef00": "app@sha256:0123456789abcdef00",
	} {
		if got := NormalizedImageName(in); got != want {
			t.Errorf("NormalizedImageName(%q) = %q, want %q", in, got, want)
		}
	}
}
