package scheduler

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const (
	zone     = v1.LabelTopologyZone
	hostname = v1.LabelHostname
)

// scenario is a cluster and pods scheduled one after the other; bound
// pods stay, preemption victims go.
type scenario struct {
	nodes    []*v1.Node
	existing []*v1.Pod
	pods     []*v1.Pod
}

var scenarios = map[string]scenario{
	"resources": {
		nodes: []*v1.Node{
			schedtest.Node("small").Cap("cpu", "2", "memory", "4Gi").Obj(),
			schedtest.Node("medium").Obj(),
			schedtest.Node("large").Cap("cpu", "8", "memory", "16Gi", "example.com/gpu", "1").Obj(),
		},
		pods: []*v1.Pod{
			schedtest.Pod("web-1").Req("cpu", "1", "memory", "1Gi").Obj(),
			schedtest.Pod("web-2").Req("cpu", "1", "memory", "1Gi").Obj(),
			schedtest.Pod("web-3").Req("cpu", "1", "memory", "1Gi").Obj(),
			schedtest.Pod("gpu-1").Req("cpu", "1", "example.com/gpu", "1").Obj(),
			schedtest.Pod("gpu-2").Req("cpu", "1", "example.com/gpu", "1").Obj(),
			schedtest.Pod("batch").Req("cpu", "6", "memory", "2Gi").Obj(),
			schedtest.Pod("huge").Req("cpu", "16").Obj(),
			schedtest.Pod("init-heavy").Req("cpu", "100m").InitReq("cpu", "7").Obj(),
			schedtest.Pod("best-effort").Obj(),
		},
	},
	"taints-and-affinity": {
		nodes: []*v1.Node{
			schedtest.Node("gpu").Label("accel", "gpu").Taint("dedicated", "gpu", v1.TaintEffectNoSchedule).Obj(),
			schedtest.Node("cordoned").Label("disk", "ssd").Unschedulable().Obj(),
			schedtest.Node("ssd").Label("disk", "ssd").Taint("maintenance", "", v1.TaintEffectPreferNoSchedule).Obj(),
			schedtest.Node("hdd").Label("disk", "hdd").Obj(),
		},
		pods: []*v1.Pod{
			schedtest.Pod("plain").Obj(),
			schedtest.Pod("wants-ssd").NodeSelector("disk", "ssd").Obj(),
			schedtest.Pod("prefers-ssd").PreferredNodeAffinity(50, "disk", "ssd").Obj(),
			schedtest.Pod("gpu-job").Toleration("dedicated", "gpu", v1.TaintEffectNoSchedule).NodeAffinityIn("accel", "gpu").Obj(),
			schedtest.Pod("wants-nvme").NodeSelector("disk", "nvme").Obj(),
			schedtest.Pod("wants-gpu-untolerated").NodeAffinityIn("accel", "gpu").Obj(),
			schedtest.Pod("named").Node("").NodeAffinityIn("kubernetes.io/hostname", "hdd").Obj(),
			schedtest.Pod("port-a").HostPort("", v1.ProtocolTCP, 8080).NodeSelector("disk", "hdd").Obj(),
			schedtest.Pod("port-b").HostPort("", v1.ProtocolTCP, 8080).NodeSelector("disk", "hdd").Obj(),
		},
	},
	"spread-and-affinity": {
		nodes: []*v1.Node{
			schedtest.Node("a1").Label(zone, "a").Obj(),
			schedtest.Node("a2").Label(zone, "a").Obj(),
			schedtest.Node("b1").Label(zone, "b").Obj(),
			schedtest.Node("c1").Label(zone, "c").Obj(),
		},
		pods: []*v1.Pod{
			schedtest.Pod("web-1").Label("app", "web").Spread(1, zone, v1.DoNotSchedule, "app", "web").Obj(),
			schedtest.Pod("web-2").Label("app", "web").Spread(1, zone, v1.DoNotSchedule, "app", "web").Obj(),
			schedtest.Pod("web-3").Label("app", "web").Spread(1, zone, v1.DoNotSchedule, "app", "web").Obj(),
			schedtest.Pod("web-4").Label("app", "web").Spread(1, zone, v1.DoNotSchedule, "app", "web").Obj(),
			schedtest.Pod("cache").Label("app", "cache").PodAffinity(schedtest.Term(zone, "app", "web")).PodAntiAffinity(schedtest.Term(hostname, "app", "web")).Obj(),
			schedtest.Pod("db-1").Label("app", "db").PodAntiAffinity(schedtest.Term(zone, "app", "db")).Obj(),
			schedtest.Pod("db-2").Label("app", "db").PodAntiAffinity(schedtest.Term(zone, "app", "db")).Obj(),
			schedtest.Pod("db-3").Label("app", "db").PodAntiAffinity(schedtest.Term(zone, "app", "db")).Obj(),
			schedtest.Pod("db-4").Label("app", "db").PodAntiAffinity(schedtest.Term(zone, "app", "db")).Obj(),
			schedtest.Pod("near-db").PreferredPodAffinity(100, schedtest.Term(hostname, "app", "db")).Obj(),
			schedtest.Pod("no-such-zone").Label("app", "x").PodAffinity(schedtest.Term(zone, "app", "nothing")).Obj(),
		},
	},
	"preemption": {
		nodes: []*v1.Node{
			schedtest.Node("n1").Obj(),
			schedtest.Node("n2").Obj(),
			schedtest.Node("tainted").Taint("k", "v", v1.TaintEffectNoSchedule).Obj(),
		},
		existing: []*v1.Pod{
			schedtest.Pod("low-1").Node("n1").Priority(1).Req("cpu", "2").Obj(),
			schedtest.Pod("low-2").Node("n1").Priority(1).Req("cpu", "2").Obj(),
			schedtest.Pod("mid-1").Node("n2").Priority(5).Req("cpu", "4").Obj(),
		},
		pods: []*v1.Pod{
			schedtest.Pod("same-prio").Priority(1).Req("cpu", "1").Obj(),
			schedtest.Pod("polite").Priority(100).PreemptNever().Req("cpu", "1").Obj(),
			schedtest.Pod("urgent").Priority(100).Req("cpu", "2").Obj(),
			schedtest.Pod("too-big").Priority(100).Req("cpu", "5").Obj(),
		},
	},
}

// decider drives the scheduling cycle without informers or an API
// server: bindings are confirmed in the cache at once, preemption's
// deletions remove the victims.
type decider struct {
	in     *instance
	client *fake.Clientset
}

func newDecider(t testing.TB, sc scenario) *decider {
	t.Helper()
	var objs []runtime.Object
	for _, p := range sc.existing {
		objs = append(objs, p)
	}
	client := fake.NewClientset(objs...)
	cfg := Config{
		Client:                   client,
		LeaderElection:           LeaderElection{Disabled: true, Identity: "test"},
		Parallelism:              1,
		PercentageOfNodesToScore: 100,
		Clock:                    clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		Rand:                     rand.New(rand.NewPCG(1, 2)),
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	in, err := newInstance(&cfg, client)
	if err != nil {
		t.Fatal(err)
	}
	in.recorder = record.NewFakeRecorder(1000)
	in.fw.Handle().Events = in.recorder
	for _, n := range sc.nodes {
		in.cache.AddNode(n)
	}
	for _, p := range sc.existing {
		if err := in.cache.AddPod(p); err != nil {
			t.Fatal(err)
		}
	}
	return &decider{in: in, client: client}
}

// decide schedules one pod and describes the outcome.
func (d *decider) decide(t *testing.T, pod *v1.Pod) string {
	t.Helper()
	ctx := context.Background()
	in := d.in
	if err := in.cache.UpdateSnapshot(in.snapshot); err != nil {
		t.Fatal(err)
	}
	pi := framework.MustPodInfo(pod)
	state := framework.NewCycleState()
	dec, err := in.schedulePod(ctx, state, pi)
	var fitErr *framework.FitError
	switch {
	case errors.As(err, &fitErr):
		r, s := in.fw.RunPostFilterPlugins(ctx, state, pi, fitErr.Diagnosis.NodeToStatus)
		fitErr.Diagnosis.PostFilterMsg = s.Message()
		out := fmt.Sprintf("%s: unschedulable: %s", pod.Name, fitErr.Error())
		if r != nil && r.NominatedNodeName != "" {
			out += fmt.Sprintf("\n  nominated to %s; evicted %s", r.NominatedNodeName, d.evicted(t))
		}
		return out
	case err != nil:
		return fmt.Sprintf("%s: error: %v", pod.Name, err)
	}
	bound := pod.DeepCopy()
	bound.Spec.NodeName = dec.Node
	if err := in.cache.AddPod(bound); err != nil {
		t.Fatal(err)
	}
	var scores []string
	for _, s := range dec.Scores {
		scores = append(scores, fmt.Sprintf("%s=%d", s.Name, s.Total))
	}
	out := fmt.Sprintf("%s → %s", pod.Name, dec.Node)
	if len(scores) > 0 {
		out += " (" + strings.Join(scores, " ") + ")"
	}
	return out
}

// evicted lists the pods preemption deleted and removes them from the
// cache, as the informer would.
func (d *decider) evicted(t *testing.T) string {
	var names []string
	for _, a := range d.client.Actions() {
		if a.GetVerb() != "delete" {
			continue
		}
		name := a.(interface{ GetName() string }).GetName()
		names = append(names, name)
		uid := "uid-" + name
		if node, ok := d.in.cache.NodeOf(types.UID(uid)); ok {
			if err := d.in.cache.RemovePod(schedtest.Pod(name).Node(node).Obj()); err != nil {
				t.Fatal(err)
			}
		}
	}
	d.client.ClearActions()
	return strings.Join(names, ", ")
}

func TestScheduler_Decisions(t *testing.T) {
	for name, sc := range scenarios {
		t.Run(name, func(t *testing.T) {
			d := newDecider(t, sc)
			var lines []string
			for _, p := range sc.pods {
				lines = append(lines, d.decide(t, p))
			}
			got := strings.Join(lines, "\n") + "\n"
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("decisions differ from %s (-want +got):\n%s", path, diff)
			}
		})
	}
}
