package cache

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

// view summarizes a snapshot: node → pod names, in list order.
func view(s *Snapshot) []string {
	var out []string
	for _, n := range s.List() {
		line := n.Node().Name + ":"
		for _, p := range n.Pods {
			line += " " + p.Pod.Name
		}
		out = append(out, line)
	}
	return out
}

func assume(t *testing.T, c *Cache, pod *v1.Pod) {
	t.Helper()
	if err := c.AssumePod(framework.MustPodInfo(pod)); err != nil {
		t.Fatal(err)
	}
}

func TestCache_AssumeConfirmForget(t *testing.T) {
	c := New(nil)
	c.AddNode(schedtest.Node("n1").Obj())
	c.AddNode(schedtest.Node("n2").Obj())
	s := NewEmptySnapshot()

	a := schedtest.Pod("a").Node("n1").Obj()
	assume(t, c, a)
	if !c.IsAssumedPod(a) {
		t.Error("a is not assumed")
	}
	if err := c.AssumePod(framework.MustPodInfo(a)); !errors.Is(err, ErrPodAssumed) {
		t.Errorf("assume twice: %v", err)
	}
	// The informer confirms a on another node than assumed: it moves.
	if err := c.AddPod(schedtest.Pod("a").Node("n2").Obj()); err != nil {
		t.Fatal(err)
	}
	if c.IsAssumedPod(a) {
		t.Error("a still assumed after confirmation")
	}
	if err := c.ForgetPod(a); !errors.Is(err, ErrPodNotAssumed) {
		t.Errorf("forget a confirmed pod: %v", err)
	}
	b := schedtest.Pod("b").Node("n1").Obj()
	assume(t, c, b)
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"n1: b", "n2: a"}, view(s)); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	if err := c.ForgetPod(b); err != nil {
		t.Fatal(err)
	}
	if err := c.RemovePod(a); err != nil {
		t.Fatal(err)
	}
	if err := c.RemovePod(a); !errors.Is(err, ErrPodUnknown) {
		t.Errorf("remove twice: %v", err)
	}
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"n1:", "n2:"}, view(s)); diff != "" {
		t.Errorf("snapshot (-want +got):\n%s", diff)
	}
	if n, p, as := c.Counts(); n != 2 || p != 0 || as != 0 {
		t.Errorf("counts %d nodes %d pods %d assumed", n, p, as)
	}
}

func TestCache_PodsBeforeTheirNode(t *testing.T) {
	c := New(nil)
	s := NewEmptySnapshot()
	if err := c.AddPod(schedtest.Pod("early").Node("late").Req("cpu", "1").Obj()); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	if s.NumNodes() != 0 {
		t.Errorf("a node without an object is in the snapshot: %v", view(s))
	}
	c.AddNode(schedtest.Node("late").Obj())
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	if got := s.Get("late"); got == nil || got.Requested.MilliCPU != 1000 {
		t.Errorf("node late: %+v, want the early pod counted", got)
	}
	// Deleting the node keeps its pods counted until they go.
	c.RemoveNode(schedtest.Node("late").Obj())
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	if s.NumNodes() != 0 || s.Get("late") != nil {
		t.Errorf("deleted node still in the snapshot: %v", view(s))
	}
	c.AddNode(schedtest.Node("late").Obj())
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	if got := s.Get("late"); got == nil || len(got.Pods) != 1 {
		t.Errorf("re-added node lost its pod: %+v", got)
	}
}

func TestCache_SnapshotCopiesOnlyChangedNodes(t *testing.T) {
	c := New(nil)
	for _, n := range []string{"n1", "n2", "n3"} {
		c.AddNode(schedtest.Node(n).Obj())
	}
	s := NewEmptySnapshot()
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	before := map[string]*framework.NodeInfo{}
	gens := map[string]int64{}
	for _, n := range s.List() {
		before[n.Node().Name] = n
		gens[n.Node().Name] = n.Generation
	}
	assume(t, c, schedtest.Pod("p").Node("n2").Obj())
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	for _, n := range s.List() {
		name := n.Node().Name
		if before[name] != n {
			t.Errorf("%s: the snapshot replaced the NodeInfo instead of updating it in place", name)
		}
		changed := n.Generation != gens[name]
		if changed != (name == "n2") {
			t.Errorf("%s: generation changed = %v", name, changed)
		}
	}
	if len(s.Get("n2").Pods) != 1 {
		t.Error("n2 does not hold the assumed pod")
	}
}

func TestCache_AffinityLists(t *testing.T) {
	c := New(nil)
	c.AddNode(schedtest.Node("n1").Obj())
	c.AddNode(schedtest.Node("n2").Obj())
	s := NewEmptySnapshot()
	anti := schedtest.Pod("anti").Node("n2").PodAntiAffinity(schedtest.Term("kubernetes.io/hostname", "a", "b")).Obj()
	if err := c.AddPod(anti); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	names := func(ns []*framework.NodeInfo) []string {
		var out []string
		for _, n := range ns {
			out = append(out, n.Node().Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"n2"}, names(s.HavePodsWithRequiredAntiAffinityList())); diff != "" {
		t.Errorf("anti-affinity list (-want +got):\n%s", diff)
	}
	if err := c.RemovePod(anti); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	if got := s.HavePodsWithAffinityList(); len(got) != 0 {
		t.Errorf("affinity list after removal: %v", names(got))
	}
}

func TestCache_ZonesAreInterleaved(t *testing.T) {
	c := New(nil)
	for _, n := range []struct{ name, zone string }{{"a1", "a"}, {"a2", "a"}, {"a3", "a"}, {"b1", "b"}, {"c1", "c"}, {"b2", "b"}} {
		c.AddNode(schedtest.Node(n.name).Label(v1.LabelTopologyZone, n.zone).Obj())
	}
	s := NewEmptySnapshot()
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range s.List() {
		got = append(got, n.Node().Name)
	}
	if diff := cmp.Diff([]string{"a1", "b1", "c1", "a2", "b2", "a3"}, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	// A heartbeat (same zone) keeps the order; a zone change moves it.
	c.UpdateNode(nil, schedtest.Node("a1").Label(v1.LabelTopologyZone, "a").Obj())
	c.UpdateNode(nil, schedtest.Node("c1").Label(v1.LabelTopologyZone, "b").Obj())
	c.RemoveNode(schedtest.Node("a2").Label(v1.LabelTopologyZone, "a").Obj())
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, n := range s.List() {
		got = append(got, n.Node().Name)
	}
	if diff := cmp.Diff([]string{"a1", "b1", "a3", "b2", "c1"}, got); diff != "" {
		t.Errorf("order after changes (-want +got):\n%s", diff)
	}
}

func TestCache_ImageStates(t *testing.T) {
	c := New(nil)
	c.AddNode(schedtest.Node("n1").Image(100, "img:1", "img@sha256:aa").Obj())
	c.AddNode(schedtest.Node("n2").Image(100, "img:1").Obj())
	s := NewEmptySnapshot()
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	got := s.Get("n2").ImageStates["img:1"]
	if got == nil || got.NumNodes != 2 || got.Size != 100 {
		t.Errorf("n2 img:1 = %+v, want 2 nodes of size 100", got)
	}
	c.RemoveNode(schedtest.Node("n2").Image(100, "img:1").Obj())
	c.UpdateNode(nil, schedtest.Node("n1").Image(100, "img:1", "img@sha256:aa").Obj())
	if err := c.UpdateSnapshot(s); err != nil {
		t.Fatal(err)
	}
	if got := s.Get("n1").ImageStates["img:1"]; got == nil || got.NumNodes != 1 {
		t.Errorf("after n2 left: %+v, want 1 node", got)
	}
}
