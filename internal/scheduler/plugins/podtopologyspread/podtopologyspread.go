// Package podtopologyspread holds the PodTopologySpread plugin: pods
// spread evenly across topology domains (zones, nodes) as their
// topologySpreadConstraints ask. DoNotSchedule constraints filter: a
// node is rejected when placing the pod there would make its domain hold
// more than maxSkew matching pods above the emptiest eligible domain.
// ScheduleAnyway constraints score: domains with fewer matching pods
// score higher.
package podtopologyspread

import (
	"context"
	"fmt"
	"math"
	"sync"

	"github.com/go-logr/logr"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// Name is the plugin's name in the registry.
const Name = "PodTopologySpread"

// Reasons a node is rejected.
const (
	ErrReasonConstraintsNotMatch = "node(s) didn't match pod topology spread constraints"
	ErrReasonNodeLabelNotMatch   = ErrReasonConstraintsNotMatch + " (missing required label)"
)

const (
	preFilterKey framework.StateKey = "PreFilter" + Name
	preScoreKey  framework.StateKey = "PreScore" + Name
)

// PodTopologySpread is the plugin.
type PodTopologySpread struct{ h *framework.Handle }

var (
	_ framework.PreFilterPlugin     = &PodTopologySpread{}
	_ framework.PreFilterExtensions = &PodTopologySpread{}
	_ framework.FilterPlugin        = &PodTopologySpread{}
	_ framework.PreScorePlugin      = &PodTopologySpread{}
	_ framework.ScorePlugin         = &PodTopologySpread{}
	_ framework.NormalizeScorer     = &PodTopologySpread{}
	_ framework.EnqueueExtensions   = &PodTopologySpread{}
)

// New is the plugin's factory; scoring needs h.Snapshot.
func New(h *framework.Handle) (framework.Plugin, error) { return &PodTopologySpread{h: h}, nil }

// Name returns Name.
func (pl *PodTopologySpread) Name() string { return Name }

// constraint is a parsed v1.TopologySpreadConstraint.
type constraint struct {
	maxSkew       int32
	topologyKey   string
	selector      framework.LabelMatcher
	minDomains    int32
	honorAffinity bool // nodeAffinityPolicy Honor (the default)
	honorTaints   bool // nodeTaintsPolicy Honor (default Ignore)
}

func parseConstraints(pod *v1.Pod, when v1.UnsatisfiableConstraintAction) ([]constraint, error) {
	var out []constraint
	for _, c := range pod.Spec.TopologySpreadConstraints {
		if c.WhenUnsatisfiable != when {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: topology spread constraint selector: %w", pod.Namespace, pod.Name, err)
		}
		// matchLabelKeys narrow the selector to pods sharing the pod's
		// values of those labels (a rollout's own revision).
		for _, key := range c.MatchLabelKeys {
			if v, ok := pod.Labels[key]; ok {
				r, err := labels.NewRequirement(key, selection.In, []string{v})
				if err != nil {
					return nil, fmt.Errorf("pod %s/%s: topology spread matchLabelKeys: %w", pod.Namespace, pod.Name, err)
				}
				sel = sel.Add(*r)
			}
		}
		pc := constraint{
			maxSkew: c.MaxSkew, topologyKey: c.TopologyKey, selector: framework.NewLabelMatcher(sel), minDomains: 1,
			honorAffinity: c.NodeAffinityPolicy == nil || *c.NodeAffinityPolicy == v1.NodeInclusionPolicyHonor,
			honorTaints:   c.NodeTaintsPolicy != nil && *c.NodeTaintsPolicy == v1.NodeInclusionPolicyHonor,
		}
		if c.MinDomains != nil {
			pc.minDomains = *c.MinDomains
		}
		out = append(out, pc)
	}
	return out, nil
}

// includes reports whether node counts for c: it matches the pod's
// required node affinity and tolerates its taints, as the policies say.
func (c *constraint) includes(pod *v1.Pod, node *v1.Node, affinity nodeaffinity.RequiredNodeAffinity) bool {
	if c.honorAffinity {
		if ok, err := affinity.Match(node); err != nil || !ok {
			return false
		}
	}
	if c.honorTaints {
		for i := range node.Spec.Taints {
			t := &node.Spec.Taints[i]
			if t.Effect != v1.TaintEffectNoSchedule && t.Effect != v1.TaintEffectNoExecute {
				continue
			}
			tolerated := false
			for j := range pod.Spec.Tolerations {
				if pod.Spec.Tolerations[j].ToleratesTaint(logr.Discard(), t, false) {
					tolerated = true
					break
				}
			}
			if !tolerated {
				return false
			}
		}
	}
	return true
}

func hasAllKeys(node *v1.Node, cs []constraint) bool {
	for i := range cs {
		if _, ok := node.Labels[cs[i].topologyKey]; !ok {
			return false
		}
	}
	return true
}

// countMatching counts pods in namespace ns matching sel, leaving out
// terminating pods. An empty selector matches nothing here, as upstream.
func countMatching(pods []*framework.PodInfo, sel framework.LabelMatcher, ns string) int {
	if sel.Empty() {
		return 0
	}
	n := 0
	for _, p := range pods {
		if p.Pod.DeletionTimestamp != nil || p.Pod.Namespace != ns {
			continue
		}
		if sel.Matches(p.Pod.Labels) {
			n++
		}
	}
	return n
}

type preFilterState struct {
	constraints []constraint
	// counts[i] maps constraint i's domains (topology values) to their
	// matching pods; every eligible domain is present, empty or not.
	counts []map[string]int
	// min[i] is the smallest count among constraint i's domains.
	min []int
	// affinity is the pod's required node affinity, for includes.
	affinity nodeaffinity.RequiredNodeAffinity
}

func (s *preFilterState) Clone() framework.StateData {
	c := &preFilterState{constraints: s.constraints, counts: make([]map[string]int, len(s.counts)), min: append([]int(nil), s.min...), affinity: s.affinity}
	for i, m := range s.counts {
		c.counts[i] = make(map[string]int, len(m))
		for k, v := range m {
			c.counts[i][k] = v
		}
	}
	return c
}

func (s *preFilterState) recomputeMin(i int) {
	lo := math.MaxInt32
	for _, n := range s.counts[i] {
		lo = min(lo, n)
	}
	s.min[i] = lo
}

// minMatch is the global minimum the skew is measured from; with fewer
// eligible domains than minDomains it is 0.
func (s *preFilterState) minMatch(i int) int {
	if int32(len(s.counts[i])) < s.constraints[i].minDomains {
		return 0
	}
	return s.min[i]
}

// PreFilter counts matching pods per domain over every node that has all
// the constraints' keys and that each constraint includes. It skips the
// filter for pods without DoNotSchedule constraints.
func (pl *PodTopologySpread) PreFilter(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, nodes []*framework.NodeInfo) (*framework.PreFilterResult, *framework.Status) {
	cs, err := parseConstraints(pod.Pod, v1.DoNotSchedule)
	if err != nil {
		return nil, framework.AsStatus(err)
	}
	if len(cs) == 0 {
		return nil, framework.NewStatus(framework.Skip)
	}
	s := &preFilterState{constraints: cs, counts: make([]map[string]int, len(cs)), min: make([]int, len(cs)), affinity: nodeaffinity.GetRequiredNodeAffinity(pod.Pod)}
	for i := range s.counts {
		s.counts[i] = map[string]int{}
	}
	// perNode[n*len(cs)+i] is node n's count for constraint i, or -1 when
	// the node is not eligible: filled in parallel, summed after.
	perNode := make([]int, len(nodes)*len(cs))
	pl.parallelizer().Until(ctx, len(nodes), func(n int) {
		row := perNode[n*len(cs) : (n+1)*len(cs)]
		node := nodes[n].Node()
		eligible := node != nil && hasAllKeys(node, cs)
		for i := range cs {
			row[i] = -1
			if eligible && cs[i].includes(pod.Pod, node, s.affinity) {
				row[i] = countMatching(nodes[n].Pods, cs[i].selector, pod.Pod.Namespace)
			}
		}
	})
	for n := range nodes {
		for i := range cs {
			if cnt := perNode[n*len(cs)+i]; cnt >= 0 {
				s.counts[i][nodes[n].Node().Labels[cs[i].topologyKey]] += cnt
			}
		}
	}
	for i := range cs {
		s.recomputeMin(i)
	}
	state.Write(preFilterKey, s)
	return nil, nil
}

func (pl *PodTopologySpread) parallelizer() framework.Parallelizer {
	if pl.h == nil {
		return framework.Parallelizer{}
	}
	return pl.h.Parallelizer
}

func (s *preFilterState) update(pod *v1.Pod, other *framework.PodInfo, node *v1.Node, delta int) {
	if node == nil || other.Pod.Namespace != pod.Namespace || other.Pod.DeletionTimestamp != nil || !hasAllKeys(node, s.constraints) {
		return
	}
	for i := range s.constraints {
		c := &s.constraints[i]
		if !c.includes(pod, node, s.affinity) || !c.selector.Matches(other.Pod.Labels) {
			continue
		}
		s.counts[i][node.Labels[c.topologyKey]] += delta
		s.recomputeMin(i)
	}
}

// AddPod counts added as if it ran on node.
func (pl *PodTopologySpread) AddPod(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, added *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, err := framework.ReadState[*preFilterState](state, preFilterKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	s.update(pod.Pod, added, node.Node(), 1)
	return nil
}

// RemovePod stops counting removed.
func (pl *PodTopologySpread) RemovePod(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, removed *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, err := framework.ReadState[*preFilterState](state, preFilterKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	s.update(pod.Pod, removed, node.Node(), -1)
	return nil
}

// Filter rejects a node without a constraint's key
// (UnschedulableAndUnresolvable), or where matching + self − minimum
// would exceed maxSkew (Unschedulable: evicting pods may even it out).
func (pl *PodTopologySpread) Filter(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) *framework.Status {
	s, err := framework.ReadState[*preFilterState](state, preFilterKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	n := node.Node()
	podLabels := pod.Pod.Labels
	for i := range s.constraints {
		c := &s.constraints[i]
		v, ok := n.Labels[c.topologyKey]
		if !ok {
			return framework.NewStatus(framework.UnschedulableAndUnresolvable, ErrReasonNodeLabelNotMatch)
		}
		self := 0
		if c.selector.Matches(podLabels) {
			self = 1
		}
		if skew := s.counts[i][v] + self - s.minMatch(i); skew > int(c.maxSkew) {
			return framework.NewStatus(framework.Unschedulable, ErrReasonConstraintsNotMatch)
		}
	}
	return nil
}

type preScoreState struct {
	constraints []constraint
	// ignored are feasible nodes without every constraint's key.
	ignored sets.Set[string]
	// pairCounts maps "key\x00value" to matching pods, for constraints
	// not on the hostname key (those count the node's own pods).
	pairCounts map[string]int64
	// weights[i] is log(domains of constraint i + 2): spreading over
	// more domains weighs each pod less.
	weights []float64
}

func (s *preScoreState) Clone() framework.StateData { return s }

func pairKey(k, v string) string { return k + "\x00" + v }

// PreScore counts matching pods per domain of the feasible nodes, over
// every node of the cluster. It skips pods without ScheduleAnyway
// constraints.
func (pl *PodTopologySpread) PreScore(ctx context.Context, state *framework.CycleState, pod *framework.PodInfo, feasible []*framework.NodeInfo) *framework.Status {
	cs, err := parseConstraints(pod.Pod, v1.ScheduleAnyway)
	if err != nil {
		return framework.AsStatus(err)
	}
	if len(cs) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	if pl.h == nil || pl.h.Snapshot == nil {
		return framework.AsStatus(fmt.Errorf("%s: no snapshot", Name))
	}
	s := &preScoreState{constraints: cs, ignored: sets.New[string](), pairCounts: map[string]int64{}, weights: make([]float64, len(cs))}
	domains := make([]sets.Set[string], len(cs))
	for i := range domains {
		domains[i] = sets.New[string]()
	}
	for _, n := range feasible {
		node := n.Node()
		if !hasAllKeys(node, cs) {
			s.ignored.Insert(node.Name)
			continue
		}
		for i := range cs {
			v := node.Labels[cs[i].topologyKey]
			domains[i].Insert(v)
			if cs[i].topologyKey != v1.LabelHostname {
				s.pairCounts[pairKey(cs[i].topologyKey, v)] = 0
			}
		}
	}
	for i := range cs {
		s.weights[i] = math.Log(float64(domains[i].Len() + 2))
	}
	affinity := nodeaffinity.GetRequiredNodeAffinity(pod.Pod)
	all := pl.h.Snapshot.List()
	var mu sync.Mutex
	pl.h.Parallelizer.Until(ctx, len(all), func(n int) {
		node := all[n].Node()
		if node == nil || !hasAllKeys(node, cs) {
			return
		}
		for i := range cs {
			c := &cs[i]
			if c.topologyKey == v1.LabelHostname || !c.includes(pod.Pod, node, affinity) {
				continue
			}
			k := pairKey(c.topologyKey, node.Labels[c.topologyKey])
			mu.Lock()
			_, ok := s.pairCounts[k]
			mu.Unlock()
			if !ok {
				continue
			}
			cnt := int64(countMatching(all[n].Pods, c.selector, pod.Pod.Namespace))
			mu.Lock()
			s.pairCounts[k] += cnt
			mu.Unlock()
		}
	})
	state.Write(preScoreKey, s)
	return nil
}

// Score sums, over the constraints, the matching pods in the node's
// domain times the constraint's weight (more is worse; NormalizeScore
// reverses).
func (pl *PodTopologySpread) Score(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, err := framework.ReadState[*preScoreState](state, preScoreKey)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	n := node.Node()
	if s.ignored.Has(n.Name) {
		return 0, nil
	}
	var score float64
	for i := range s.constraints {
		c := &s.constraints[i]
		v, ok := n.Labels[c.topologyKey]
		if !ok {
			continue
		}
		var cnt int64
		if c.topologyKey == v1.LabelHostname {
			cnt = int64(countMatching(node.Pods, c.selector, pod.Pod.Namespace))
		} else {
			cnt = s.pairCounts[pairKey(c.topologyKey, v)]
		}
		score += float64(cnt)*s.weights[i] + float64(c.maxSkew-1)
	}
	return int64(math.Round(score)), nil
}

// NormalizeScore maps fewer matching pods to higher scores:
// MaxNodeScore × (max + min − score) / max; ignored nodes get 0.
func (pl *PodTopologySpread) NormalizeScore(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, scores []framework.NodeScore) *framework.Status {
	s, err := framework.ReadState[*preScoreState](state, preScoreKey)
	if err != nil {
		return framework.AsStatus(err)
	}
	lo, hi := int64(math.MaxInt64), int64(0)
	for _, sc := range scores {
		if s.ignored.Has(sc.Name) {
			continue
		}
		lo, hi = min(lo, sc.Score), max(hi, sc.Score)
	}
	for i := range scores {
		switch {
		case s.ignored.Has(scores[i].Name):
			scores[i].Score = 0
		case hi == 0:
			scores[i].Score = framework.MaxNodeScore
		default:
			scores[i].Score = framework.MaxNodeScore * (hi + lo - scores[i].Score) / hi
		}
	}
	return nil
}

// EventsToRegister: pods come, go or change labels; nodes come, go,
// change labels or taints.
func (pl *PodTopologySpread) EventsToRegister() []framework.ClusterEvent {
	return []framework.ClusterEvent{
		{Resource: framework.AssignedPod, ActionType: framework.Add | framework.Delete | framework.UpdatePodLabel},
		{Resource: framework.Node, ActionType: framework.Add | framework.Delete | framework.UpdateNodeLabel | framework.UpdateNodeTaint},
	}
}
