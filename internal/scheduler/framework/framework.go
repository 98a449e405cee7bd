package framework

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/sets"
)

// Factory builds a plugin. It keeps h (fields may not all be set in
// tests of other plugins) and fails only on a configuration it cannot
// work with.
type Factory func(h *Handle) (Plugin, error)

// Registry maps plugin names to factories. It is a plain map built by the
// caller (internal/scheduler/plugins.NewRegistry for the in-tree ones);
// nothing registers itself.
type Registry map[string]Factory

// PluginRef enables a plugin in a framework.
type PluginRef struct {
	Name string
	// Weight multiplies the plugin's normalized scores when it is a
	// ScorePlugin; 0 means 1.
	Weight int64
}

// Framework runs the enabled plugins at each extension point, in the
// order they were enabled. It is safe for concurrent use: it holds no
// per-cycle state (that lives in the CycleState).
type Framework struct {
	handle     *Handle
	plugins    map[string]Plugin
	order      []string
	preFilter  []PreFilterPlugin
	filter     []FilterPlugin
	postFilter []PostFilterPlugin
	preScore   []PreScorePlugin
	score      []ScorePlugin
	weights    []int64
	reserve    []ReservePlugin
	bind       []BindPlugin
}

// NewFramework builds the plugins named by refs from r and sorts them
// into extension points by the interfaces each implements. It sets
// h.Framework. It fails on an unknown or repeated name, a negative
// weight, or a factory error.
func NewFramework(r Registry, refs []PluginRef, h *Handle) (*Framework, error) {
	if h == nil {
		h = &Handle{}
	}
	f := &Framework{handle: h, plugins: map[string]Plugin{}}
	h.Framework = f
	for _, ref := range refs {
		if _, dup := f.plugins[ref.Name]; dup {
			return nil, fmt.Errorf("plugin %q enabled twice", ref.Name)
		}
		if ref.Weight < 0 {
			return nil, fmt.Errorf("plugin %q: negative weight %d", ref.Name, ref.Weight)
		}
		factory, ok := r[ref.Name]
		if !ok {
			return nil, fmt.Errorf("plugin %q: not in the registry", ref.Name)
		}
		p, err := factory(h)
		if err != nil {
			return nil, fmt.Errorf("plugin %q: %w", ref.Name, err)
		}
		if p.Name() != ref.Name {
			return nil, fmt.Errorf("plugin %q: factory built %q", ref.Name, p.Name())
		}
		f.plugins[ref.Name] = p
		f.order = append(f.order, ref.Name)
		if pl, ok := p.(PreFilterPlugin); ok {
			f.preFilter = append(f.preFilter, pl)
		}
		if pl, ok := p.(FilterPlugin); ok {
			f.filter = append(f.filter, pl)
		}
		if pl, ok := p.(PostFilterPlugin); ok {
			f.postFilter = append(f.postFilter, pl)
		}
		if pl, ok := p.(PreScorePlugin); ok {
			f.preScore = append(f.preScore, pl)
		}
		if pl, ok := p.(ScorePlugin); ok {
			w := ref.Weight
			if w == 0 {
				w = 1
			}
			f.score = append(f.score, pl)
			f.weights = append(f.weights, w)
		}
		if pl, ok := p.(ReservePlugin); ok {
			f.reserve = append(f.reserve, pl)
		}
		if pl, ok := p.(BindPlugin); ok {
			f.bind = append(f.bind, pl)
		}
	}
	if len(f.bind) == 0 {
		return nil, errors.New("no bind plugin enabled")
	}
	return f, nil
}

// Handle returns the handle the plugins were built with.
func (f *Framework) Handle() *Handle { return f.handle }

// Plugin returns an enabled plugin by name, or nil.
func (f *Framework) Plugin(name string) Plugin { return f.plugins[name] }

// EventsToRegister returns, for each enabled plugin that implements
// EnqueueExtensions, the events after which a pod it rejected may fit.
func (f *Framework) EventsToRegister() map[string][]ClusterEvent {
	out := map[string][]ClusterEvent{}
	for _, name := range f.order {
		if ee, ok := f.plugins[name].(EnqueueExtensions); ok {
			out[name] = ee.EventsToRegister()
		}
	}
	return out
}

// RunPreFilterPlugins runs every PreFilter plugin. It returns the merged
// result, or the first rejection (with its plugin recorded) or error.
// Plugins that return Skip are recorded in state, and their Filter is not
// run.
func (f *Framework) RunPreFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) (*PreFilterResult, *Status) {
	var (
		result  *PreFilterResult
		narrows []string
	)
	state.skipFilter = sets.New[string]()
	for _, pl := range f.preFilter {
		r, s := pl.PreFilter(ctx, state, pod, nodes)
		switch {
		case s.IsSkip():
			state.skipFilter.Insert(pl.Name())
			continue
		case s.IsRejected():
			return nil, s.WithPlugin(pl.Name())
		case !s.IsSuccess():
			return nil, AsStatus(fmt.Errorf("running PreFilter plugin %q: %w", pl.Name(), s.Err())).WithPlugin(pl.Name())
		}
		if !r.AllNodes() {
			narrows = append(narrows, pl.Name())
		}
		result = result.Merge(r)
		if !result.AllNodes() && result.NodeNames.Len() == 0 {
			msg := fmt.Sprintf("node(s) didn't satisfy plugin(s) %v simultaneously", narrows)
			if len(narrows) == 1 {
				msg = fmt.Sprintf("node(s) didn't satisfy plugin %v", narrows[0])
			}
			return nil, NewStatus(UnschedulableAndUnresolvable, msg).WithPlugin(pl.Name())
		}
	}
	return result, nil
}

// RunFilterPlugins runs the Filter plugins on one node and returns the
// first status that is not Success, with its plugin recorded. An Error
// is wrapped with the plugin's name.
func (f *Framework) RunFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) *Status {
	for _, pl := range f.filter {
		if state.skipFilter.Has(pl.Name()) {
			continue
		}
		s := pl.Filter(ctx, state, pod, node)
		if s.IsSuccess() {
			continue
		}
		if !s.IsRejected() {
			return AsStatus(fmt.Errorf("running %q filter plugin: %w", pl.Name(), s.Err())).WithPlugin(pl.Name())
		}
		return s.WithPlugin(pl.Name())
	}
	return nil
}

// RunFilterPluginsWithNominatedPods filters a node as RunFilterPlugins
// does, but first as if the pods nominated to it with a priority at least
// the pod's were already there (so that a pod does not take the room
// preemption freed for another), and then, if any were added, without
// them too (so that affinity to a nominated pod that may never arrive is
// not trusted). Both must pass.
func (f *Framework) RunFilterPluginsWithNominatedPods(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) *Status {
	added, s2, n2, s := f.addNominatedPods(ctx, state, pod, node)
	if !s.IsSuccess() {
		return s
	}
	s = f.RunFilterPlugins(ctx, s2, pod, n2)
	if !s.IsSuccess() || !added {
		return s
	}
	return f.RunFilterPlugins(ctx, state, pod, node)
}

func (f *Framework) addNominatedPods(ctx context.Context, state *CycleState, pod *PodInfo, node *NodeInfo) (bool, *CycleState, *NodeInfo, *Status) {
	if f.handle.Nominator == nil || node.Node() == nil {
		return false, state, node, nil
	}
	nominated := f.handle.Nominator.NominatedPodsForNode(node.Node().Name)
	if len(nominated) == 0 {
		return false, state, node, nil
	}
	prio := PodPriority(pod.Pod)
	var (
		added bool
		s2    *CycleState
		n2    *NodeInfo
	)
	for _, np := range nominated {
		if np.Pod.UID == pod.Pod.UID || PodPriority(np.Pod) < prio {
			continue
		}
		if !added {
			s2, n2, added = state.Clone(), node.Clone(), true
		}
		n2.AddPod(np)
		if s := f.RunPreFilterExtensionAddPod(ctx, s2, pod, np, n2); !s.IsSuccess() {
			return false, state, node, s
		}
	}
	if !added {
		return false, state, node, nil
	}
	return true, s2, n2, nil
}

// RunPreFilterExtensionAddPod tells the PreFilter plugins with
// PreFilterExtensions that added now runs on node.
func (f *Framework) RunPreFilterExtensionAddPod(ctx context.Context, state *CycleState, pod, added *PodInfo, node *NodeInfo) *Status {
	for _, pl := range f.preFilter {
		ext, ok := pl.(PreFilterExtensions)
		if !ok || state.skipFilter.Has(pl.Name()) {
			continue
		}
		if s := ext.AddPod(ctx, state, pod, added, node); !s.IsSuccess() {
			return AsStatus(fmt.Errorf("running AddPod on PreFilter plugin %q: %w", pl.Name(), s.Err()))
		}
	}
	return nil
}

// RunPreFilterExtensionRemovePod tells the PreFilter plugins with
// PreFilterExtensions that removed no longer runs on node.
func (f *Framework) RunPreFilterExtensionRemovePod(ctx context.Context, state *CycleState, pod, removed *PodInfo, node *NodeInfo) *Status {
	for _, pl := range f.preFilter {
		ext, ok := pl.(PreFilterExtensions)
		if !ok || state.skipFilter.Has(pl.Name()) {
			continue
		}
		if s := ext.RemovePod(ctx, state, pod, removed, node); !s.IsSuccess() {
			return AsStatus(fmt.Errorf("running RemovePod on PreFilter plugin %q: %w", pl.Name(), s.Err()))
		}
	}
	return nil
}

// RunPostFilterPlugins runs the PostFilter plugins until one succeeds
// or one says nothing can help (UnschedulableAndUnresolvable). The
// returned status's message explains the outcome.
func (f *Framework) RunPostFilterPlugins(ctx context.Context, state *CycleState, pod *PodInfo, statuses *NodeToStatus) (*PostFilterResult, *Status) {
	var (
		reasons []string
		result  *PostFilterResult
		last    string
	)
	for _, pl := range f.postFilter {
		r, s := pl.PostFilter(ctx, state, pod, statuses)
		switch {
		case s.IsSuccess():
			return r, s
		case s.Code() == UnschedulableAndUnresolvable:
			return r, s.WithPlugin(pl.Name())
		case !s.IsRejected():
			return nil, AsStatus(fmt.Errorf("running PostFilter plugin %q: %w", pl.Name(), s.Err())).WithPlugin(pl.Name())
		}
		if r != nil {
			result = r
		}
		reasons = append(reasons, s.Reasons()...)
		last = pl.Name()
	}
	return result, NewStatus(Unschedulable, reasons...).WithPlugin(last)
}

// RunPreScorePlugins runs every PreScore plugin with the feasible nodes.
// Plugins that return Skip are recorded, and their Score is not run.
func (f *Framework) RunPreScorePlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) *Status {
	state.skipScore = sets.New[string]()
	for _, pl := range f.preScore {
		s := pl.PreScore(ctx, state, pod, nodes)
		if s.IsSkip() {
			state.skipScore.Insert(pl.Name())
			continue
		}
		if !s.IsSuccess() {
			return AsStatus(fmt.Errorf("running PreScore plugin %q: %w", pl.Name(), s.Err())).WithPlugin(pl.Name())
		}
	}
	return nil
}

// PluginScore is one plugin's weighted, normalized score of a node.
type PluginScore struct {
	Name  string
	Score int64
}

// NodePluginScores is a node's scores by plugin and their total.
type NodePluginScores struct {
	Name   string
	Scores []PluginScore
	Total  int64
}

// RunScorePlugins scores the feasible nodes with every Score plugin not
// skipped, in parallel across nodes, then normalizes each plugin's
// scores, checks their range and applies the weights. The result is in
// the order of nodes.
func (f *Framework) RunScorePlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodes []*NodeInfo) ([]NodePluginScores, *Status) {
	var plugins []int
	for i, pl := range f.score {
		if !state.skipScore.Has(pl.Name()) {
			plugins = append(plugins, i)
		}
	}
	// byPlugin[j][i] is plugin j's score of node i: normalization works
	// on one plugin's scores of all nodes. One backing array each for
	// the raw and the per-node scores keeps a cycle to a few
	// allocations.
	raw := make([]NodeScore, len(plugins)*len(nodes))
	byPlugin := make([][]NodeScore, len(plugins))
	for j := range byPlugin {
		byPlugin[j] = raw[j*len(nodes) : (j+1)*len(nodes)]
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var firstErr errOnce
	f.handle.Parallelizer.Until(ctx, len(nodes), func(i int) {
		name := nodes[i].Node().Name
		for j, pi := range plugins {
			pl := f.score[pi]
			sc, s := pl.Score(ctx, state, pod, nodes[i])
			if !s.IsSuccess() {
				firstErr.set(fmt.Errorf("running Score plugin %q on node %s: %w", pl.Name(), name, s.AsError()))
				cancel()
				return
			}
			byPlugin[j][i] = NodeScore{Name: name, Score: sc}
		}
	})
	if err := firstErr.get(); err != nil {
		return nil, AsStatus(err)
	}
	for j, pi := range plugins {
		pl := f.score[pi]
		if ns, ok := pl.(NormalizeScorer); ok {
			if s := ns.NormalizeScore(ctx, state, pod, byPlugin[j]); !s.IsSuccess() {
				return nil, AsStatus(fmt.Errorf("running NormalizeScore of plugin %q: %w", pl.Name(), s.AsError()))
			}
		}
		w := f.weights[pi]
		for i := range byPlugin[j] {
			sc := byPlugin[j][i].Score
			if sc < MinNodeScore || sc > MaxNodeScore {
				return nil, AsStatus(fmt.Errorf("plugin %q returned score %d for node %s, outside [%d, %d]", pl.Name(), sc, byPlugin[j][i].Name, MinNodeScore, MaxNodeScore))
			}
			byPlugin[j][i].Score = sc * w
		}
	}
	out := make([]NodePluginScores, len(nodes))
	perNode := make([]PluginScore, len(nodes)*len(plugins))
	for i := range nodes {
		out[i] = NodePluginScores{Name: nodes[i].Node().Name, Scores: perNode[i*len(plugins) : (i+1)*len(plugins) : (i+1)*len(plugins)]}
		for j, pi := range plugins {
			sc := byPlugin[j][i].Score
			out[i].Scores[j] = PluginScore{Name: f.score[pi].Name(), Score: sc}
			out[i].Total += sc
		}
	}
	return out, nil
}

// HasScorePlugins reports whether any Score plugin would run this cycle.
func (f *Framework) HasScorePlugins(state *CycleState) bool {
	return slices.ContainsFunc(f.score, func(pl ScorePlugin) bool { return !state.skipScore.Has(pl.Name()) })
}

// RunReservePluginsReserve runs Reserve on each plugin and stops at the
// first failure; the caller then runs RunReservePluginsUnreserve.
func (f *Framework) RunReservePluginsReserve(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) *Status {
	for _, pl := range f.reserve {
		if s := pl.Reserve(ctx, state, pod, nodeName); !s.IsSuccess() {
			if s.IsRejected() {
				return s.WithPlugin(pl.Name())
			}
			return AsStatus(fmt.Errorf("running Reserve plugin %q: %w", pl.Name(), s.Err())).WithPlugin(pl.Name())
		}
	}
	return nil
}

// RunReservePluginsUnreserve runs Unreserve on every Reserve plugin, in
// reverse order.
func (f *Framework) RunReservePluginsUnreserve(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) {
	for i := len(f.reserve) - 1; i >= 0; i-- {
		f.reserve[i].Unreserve(ctx, state, pod, nodeName)
	}
}

// RunBindPlugins runs the Bind plugins until one does not Skip.
func (f *Framework) RunBindPlugins(ctx context.Context, state *CycleState, pod *PodInfo, nodeName string) *Status {
	for _, pl := range f.bind {
		s := pl.Bind(ctx, state, pod, nodeName)
		if s.IsSkip() {
			continue
		}
		if !s.IsSuccess() {
			if s.IsRejected() {
				return s.WithPlugin(pl.Name())
			}
			return AsStatus(fmt.Errorf("running Bind plugin %q: %w", pl.Name(), s.Err())).WithPlugin(pl.Name())
		}
		return nil
	}
	return NewStatus(Error, "no bind plugin bound the pod")
}

// DefaultNormalizeScore scales scores so that the highest becomes
// maxScore (all stay 0 when all are 0); reverse then flips them
// (maxScore - score), for plugins where less is better.
func DefaultNormalizeScore(maxScore int64, reverse bool, scores []NodeScore) *Status {
	var highest int64
	for i := range scores {
		highest = max(highest, scores[i].Score)
	}
	if highest == 0 {
		if reverse {
			for i := range scores {
				scores[i].Score = maxScore
			}
		}
		return nil
	}
	for i := range scores {
		s := maxScore * scores[i].Score / highest
		if reverse {
			s = maxScore - s
		}
		scores[i].Score = s
	}
	return nil
}
