// Package interpodaffinity holds the InterPodAffinity plugin: required
// pod affinity and anti-affinity filter nodes (the pod's own terms, and
// the anti-affinity terms of pods already running), preferred terms score
// them.
//
// Terms are counted per topology domain: a term with topologyKey
// topology.kubernetes.io/zone that matches a pod on a node labelled
// zone=a counts one for the pair (zone, a). PreFilter counts once per
// cycle over the snapshot; Filter then only looks up the node's pairs.
package interpodaffinity

import (
	"context"
	"fmt"
	"math"
	"sync"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// Name is the plugin's name in the registry.
const Name = "InterPodAffinity"

// Reasons a node is rejected.
const (
	ErrReasonAffinityRulesNotMatch             = "node(s) didn't match pod affinity rules"
	ErrReasonAntiAffinityRulesNotMatch         = "node(s) didn't match pod anti-affinity rules"
	ErrReasonExistingAntiAffinityRulesNotMatch = "node(s) didn't satisfy existing pods anti-affinity rules"
)

// hardPodAffinityWeight is the score weight of an existing pod's
// required affinity term that the incoming pod matches (upstream's
// default).
const hardPodAffinityWeight = 1

const (
	preFilterKey framework.StateKey = "PreFilter" + Name
	preScoreKey  framework.StateKey = "PreScore" + Name
)

// InterPodAffinity is the plugin.
type InterPodAffinity struct{ h *framework.Handle }

var (
	_ framework.PreFilterPlugin     = &InterPodAffinity{}
	_ framework.PreFilterExtensions = &InterPodAffinity{}
	_ framework.FilterPlugin        = &InterPodAffinity{}
	_ framework.PreScorePlugin      = &InterPodAffinity{}
	_ framework.ScorePlugin         = &InterPodAffinity{}
	_ framework.NormalizeScorer     = &InterPodAffinity{}
	_ framework.EnqueueExtensions   = &InterPodAffinity{}
)

// New is the plugin's factory; it needs h.Snapshot, and h.Namespaces for
// namespace selectors (without it they select nothing).
func New(h *framework.Handle) (framework.Plugin, error) { return &InterPodAffinity{h: h}, nil }

// Name returns Name.
func (pl *InterPodAffinity) Name() string { return Name }

type topologyPair struct{ key, value string }

// counts maps a topology pair to the number of matching terms in it.
type counts map[topologyPair]int64

func (c counts) add(key string, node *v1.Node, n int64) {
	v, ok := node.Labels[key]
	if !ok {
		return
	}
	p := topologyPair{key, v}
	c[p] += n
	if c[p] == 0 {
		delete(c, p)
	}
}

func (c counts) merge(o counts) {
	for k, v := range o {
		c[k] += v
		if c[k] == 0 {
			delete(c, k)
		}
	}
}

func (c counts) clone() counts {
	n := make(counts, len(c))
	for k, v := range c {
		n[k] = v
	}
	return n
}

type preFilterState struct {
	// existingAnti counts existing pods' required anti-affinity terms
	// that match the incoming pod.
	existingAnti counts
	// affinity counts existing pods matching all of the incoming pod's
	// required affinity terms, per term's pair.
	affinity counts
	// anti counts existing pods matching each of the incoming pod's
	// required anti-affinity terms.
	anti counts
	// pod is the incoming pod, its terms' namespace selectors resolved.
	pod *framework.PodInfo
	// nsLabels are the labels of the incoming pod's namespace.
	nsLabels labels.Set
}

func (s *preFilterState) Clone() framework.StateData {
	return &preFilterState{existingAnti: s.existingAnti.clone(), affinity: s.affinity.clone(), anti: s.anti.clone(), pod: s.pod, nsLabels: s.nsLabels}
}

func (pl *InterPodAffinity) namespaceLabels(ns string) labels.Set {
	if pl.h == nil || pl.h.Namespaces == nil {
		return nil
	}
	n, err := pl.h.Namespaces.Get(ns)
	if err != nil {
		return nil
	}
	return n.Labels
}

// resolveTerms returns terms with namespace selectors turned into
// namespace names, so matching a pod needs no namespace lookup. The
// input is shared and not modified.
func (pl *InterPodAffinity) resolveTerms(terms []framework.AffinityTerm) []framework.AffinityTerm {
	need := false
	for i := range terms {
		if terms[i].NamespaceSelector != nil {
			need = true
			break
		}
	}
	if !need {
		return terms
	}
	out := make([]framework.AffinityTerm, len(terms))
	for i, t := range terms {
		out[i] = t
		if t.NamespaceSelector == nil {
			continue
		}
		ns := t.Namespaces.Clone()
		if pl.h != nil && pl.h.Namespaces != nil {
			if list, err := pl.h.Namespaces.List(t.NamespaceSelector); err == nil {
				for _, n := range list {
					ns.Insert(n.Name)
				}
			}
		}
		out[i] = t.WithNamespaces(ns, nil)
	}
	return out
}

func (pl *InterPodAffinity) resolveWeighted(terms []framework.WeightedAffinityTerm) []framework.WeightedAffinityTerm {
	plain := make([]framework.AffinityTerm, len(terms))
	for i := range terms {
		plain[i] = terms[i].AffinityTerm
	}
	resolved := pl.resolveTerms(plain)
	out := make([]framework.WeightedAffinityTerm, len(terms))
	for i := range terms {
		out[i] = framework.WeightedAffinityTerm{AffinityTerm: resolved[i], Weight: terms[i].Weight}
	}
	return out
}

func matchesAll(terms []framework.AffinityTerm, pod *v1.Pod) bool {
	if len(terms) == 0 {
		return false
	}
	for i := range terms {
		if !terms[i].Matches(pod, nil) {
			return false
		}
	}
	return true
}

// PreFilter counts, over the snapshot, the pods matching the incoming
// pod's required terms and the existing anti-affinity terms matching the
// incoming pod. It skips the filter when there is nothing to check.
func (pl *InterPodAffinity) PreFilter(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, nodes []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	var withAnti []*framework.NodeInfo
	if pl.h != nil && pl.h.Snapshot != nil {
		withAnti = pl.h.Snapshot.HavePodsWithRequiredAntiAffinityList()
	} else {
		for _, n := range nodes {
			if len(n.PodsWithRequiredAntiAffinity) > 0 {
				withAnti = append(withAnti, n)
			}
		}
	}
	if len(pod.RequiredAffinityTerms) == 0 && len(pod.RequiredAntiAffinityTerms) == 0 && len(withAnti) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	resolved := *pod
	resolved.RequiredAffinityTerms = pl.resolveTerms(pod.RequiredAffinityTerms)
	resolved.RequiredAntiAffinityTerms = pl.resolveTerms(pod.RequiredAntiAffinityTerms)
	s := &preFilterState{existingAnti: counts{}, affinity: counts{}, anti: counts{}, pod: &resolved, nsLabels: pl.namespaceLabels(pod.Pod.Namespace)}

	for _, n := range withAnti {
		node := n.Node()
		if node == nil {
			continue
		}
		for _, existing := range n.PodsWithRequiredAntiAffinity {
			for i := range existing.RequiredAntiAffinityTerms {
				t := &existing.RequiredAntiAffinityTerms[i]
				if t.Matches(pod.Pod, s.nsLabels) {
					s.existingAnti.add(t.TopologyKey, node, 1)
				}
			}
		}
	}

	if len(resolved.RequiredAffinityTerms) > 0 || len(resolved.RequiredAntiAffinityTerms) > 0 {
		var mu sync.Mutex
		pl.parallelizer().Until(ctx, len(nodes), func(i int) {
			node := nodes[i].Node()
			if node == nil {
				return
			}
			var aff, anti counts
			for _, existing := range nodes[i].Pods {
				if matchesAll(resolved.RequiredAffinityTerms, existing.Pod) {
					if aff == nil {
						aff = counts{}
					}
					for _, t := range resolved.RequiredAffinityTerms {
						aff.add(t.TopologyKey, node, 1)
					}
				}
				for _, t := range resolved.RequiredAntiAffinityTerms {
					if t.Matches(existing.Pod, nil) {
						if anti == nil {
							anti = counts{}
						}
						anti.add(t.TopologyKey, node, 1)
					}
				}
			}
			if aff == nil && anti == nil {
				return
			}
			mu.Lock()
			s.affinity.merge(aff)
			s.anti.merge(anti)
			mu.Unlock()
		})
	}
	state.Write(preFilterKey, s)
	return nil, nil
}

func (pl *InterPodAffinity) parallelizer() framework.Parallelizer {
	if pl.h == nil {
		return framework.Parallelizer{}
	}
	return pl.h.Parallelizer
}

// update changes the counts as if other were added (n=1) or removed
// (n=-1) on node.
func (s *preFilterState) update(other *framework.PodInfo, node *v1.Node, n int64) {
	if node == nil {
		return
	}
	for i := range other.RequiredAntiAffinityTerms {
		t := &other.RequiredAntiAffinityTerms[i]
		if t.Matches(s.pod.Pod, s.nsLabels) {
			s.existingAnti.add(t.TopologyKey, node, n)
		}
	}
	if matchesAll(s.pod.RequiredAffinityTerms, other.Pod) {
		for _, t := range s.pod.RequiredAffinityTerms {
			s.affinity.add(t.TopologyKey, node, n)
		}
	}
	for _, t := range s.pod.RequiredAntiAffinityTerms {
		if t.Matches(other.Pod, nil) {
			s.anti.add(t.TopologyKey, node, n)
		}
	}
}

// AddPod counts added as if it ran on node.
func (pl *InterPodAffinity) AddPod(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, added *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, err := framework.ReadState[*preFilterState](state, preFilterKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	s.update(added, node.Node(), 1)
	return nil
}

// RemovePod stops counting removed.
func (pl *InterPodAffinity) RemovePod(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, removed *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, err := framework.ReadState[*preFilterState](state, preFilterKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	s.update(removed, node.Node(), -1)
	return nil
}

// Filter checks, in order, the pod's affinity (UnschedulableAndUnresolvable:
// evicting pods cannot create matching ones), its anti-affinity, and the
// anti-affinity of pods already running.
func (pl *InterPodAffinity) Filter(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, err := framework.ReadState[*preFilterState](state, preFilterKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	n := node.Node()
	if !s.satisfiesAffinity(n) {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonAffinityRulesNotMatch)
	}
	if len(s.anti) > 0 {
		for _, t := range s.pod.RequiredAntiAffinityTerms {
			if v, ok := n.Labels[t.TopologyKey]; ok && s.anti[topologyPair{t.TopologyKey, v}] > 0 {
				return framework.NewStatus(framework.Unschedulable, ErrReasonAntiAffinityRulesNotMatch)
			}
		}
	}
	if len(s.existingAnti) > 0 {
		for k, v := range n.Labels {
			if s.existingAnti[topologyPair{k, v}] > 0 {
				return framework.NewStatus(framework.Unschedulable, ErrReasonExistingAntiAffinityRulesNotMatch)
			}
		}
	}
	return nil
}

// satisfiesAffinity: the node has every term's topology key, and each
// term's domain holds a matching pod — or no pod in the cluster matches
// and the pod matches its own terms (the first of a group that wants to
// be together).
func (s *preFilterState) satisfiesAffinity(n *v1.Node) bool {
	exist := true
	for _, t := range s.pod.RequiredAffinityTerms {
		v, ok := n.Labels[t.TopologyKey]
		if !ok {
			return false
		}
		if s.affinity[topologyPair{t.TopologyKey, v}] <= 0 {
			exist = false
		}
	}
	if exist {
		return true
	}
	return len(s.affinity) == 0 && matchesAll(s.pod.RequiredAffinityTerms, s.pod.Pod)
}

type preScoreState struct {
	// scores maps topology key → value → summed weight.
	scores map[string]map[string]int64
}

func (s *preScoreState) Clone() framework.StateData { return s }

func (s *preScoreState) add(key, value string, w int64) {
	m := s.scores[key]
	if m == nil {
		m = map[string]int64{}
		s.scores[key] = m
	}
	m[value] += w
}

// PreScore sums, per topology domain, the weights of the preferred terms
// between the incoming pod and the pods in that domain (both
// directions), and of existing pods' required affinity terms the pod
// matches. It skips scoring when neither side has terms.
func (pl *InterPodAffinity) PreScore(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, _ []*framework.NodeInfo) *framework.Status {
	if pl.h == nil || pl.h.Snapshot == nil {
		return framework.AsStatus(fmt.Errorf("%s: no snapshot", Name))
	}
	own := len(pod.PreferredAffinityTerms) > 0 || len(pod.PreferredAntiAffinityTerms) > 0
	nodes := pl.h.Snapshot.HavePodsWithAffinityList()
	if own {
		nodes = pl.h.Snapshot.List()
	}
	if !own && len(nodes) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	affTerms := pl.resolveWeighted(pod.PreferredAffinityTerms)
	antiTerms := pl.resolveWeighted(pod.PreferredAntiAffinityTerms)
	nsLabels := pl.namespaceLabels(pod.Pod.Namespace)

	partial := make([]*preScoreState, len(nodes))
	pl.h.Parallelizer.Until(ctx, len(nodes), func(i int) {
		node := nodes[i].Node()
		if node == nil || len(node.Labels) == 0 {
			return
		}
		// Allocated on the first match only: most nodes have none.
		var s *preScoreState
		add := func(t *framework.AffinityTerm, w int64) {
			v, ok := node.Labels[t.TopologyKey]
			if !ok {
				return
			}
			if s == nil {
				s = &preScoreState{scores: map[string]map[string]int64{}}
			}
			s.add(t.TopologyKey, v, w)
		}
		existingPods := nodes[i].PodsWithAffinity
		if own {
			existingPods = nodes[i].Pods
		}
		for _, existing := range existingPods {
			for j := range affTerms {
				if t := &affTerms[j]; t.Matches(existing.Pod, nil) {
					add(&t.AffinityTerm, int64(t.Weight))
				}
			}
			for j := range antiTerms {
				if t := &antiTerms[j]; t.Matches(existing.Pod, nil) {
					add(&t.AffinityTerm, -int64(t.Weight))
				}
			}
			for j := range existing.RequiredAffinityTerms {
				if t := &existing.RequiredAffinityTerms[j]; t.Matches(pod.Pod, nsLabels) {
					add(t, hardPodAffinityWeight)
				}
			}
			for j := range existing.PreferredAffinityTerms {
				if t := &existing.PreferredAffinityTerms[j]; t.Matches(pod.Pod, nsLabels) {
					add(&t.AffinityTerm, int64(t.Weight))
				}
			}
			for j := range existing.PreferredAntiAffinityTerms {
				if t := &existing.PreferredAntiAffinityTerms[j]; t.Matches(pod.Pod, nsLabels) {
					add(&t.AffinityTerm, -int64(t.Weight))
				}
			}
		}
		partial[i] = s
	})
	total := &preScoreState{scores: map[string]map[string]int64{}}
	for _, s := range partial {
		if s == nil {
			continue
		}
		for k, vs := range s.scores {
			for v, w := range vs {
				total.add(k, v, w)
			}
		}
	}
	if len(total.scores) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(preScoreKey, total)
	return nil
}

// Score sums the weights of the node's domains.
func (pl *InterPodAffinity) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, err := framework.ReadState[*preScoreState](state, preScoreKey)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	var sum int64
	labels := node.Node().Labels
	for k, vs := range s.scores {
		if v, ok := labels[k]; ok {
			sum += vs[v]
		}
	}
	return sum, nil
}

// NormalizeScore maps the lowest score to 0 and the highest to
// MaxNodeScore (scores may be negative before).
func (pl *InterPodAffinity) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.PodInfo, scores []framework.NodeScore) *framework.Status {
	if len(scores) == 0 {
		return nil
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range scores {
		lo, hi = min(lo, s.Score), max(hi, s.Score)
	}
	for i := range scores {
		if hi > lo {
			scores[i].Score = int64(float64(framework.MaxNodeScore) * float64(scores[i].Score-lo) / float64(hi-lo))
		} else {
			scores[i].Score = 0
		}
	}
	return nil
}

// EventsToRegister: any change to a bound pod, a new node or new node
// labels.
func (pl *InterPodAffinity) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.AssignedPod, ActionType: framework.All},
		{Resource: framework.Node, ActionType: framework.Add | framework.UpdateNodeLabel},
	}
}
