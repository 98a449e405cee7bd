package framework

import (
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
)

// PodInfo is a pod with what the scheduler derives from it once instead
// of on every node: its requests and its parsed affinity terms. A PodInfo
// is immutable once made; NodeInfos share them.
type PodInfo struct {
	Pod *v1.Pod
	// Requests are the pod's effective requests (see NewPodInfo).
	Requests Resource
	// NonZeroRequests are cpu and memory requests with the scoring
	// defaults filled in for containers that set none.
	NonZeroRequests Resource

	RequiredAffinityTerms      []AffinityTerm
	RequiredAntiAffinityTerms  []AffinityTerm
	PreferredAffinityTerms     []WeightedAffinityTerm
	PreferredAntiAffinityTerms []WeightedAffinityTerm
}

// AffinityTerm is a parsed v1.PodAffinityTerm.
type AffinityTerm struct {
	// Namespaces are the namespaces named by the term (the pod's own when
	// the term names none and has no namespace selector).
	Namespaces sets.Set[string]
	// NamespaceSelector selects more namespaces by their labels; nil when
	// the term has none.
	NamespaceSelector labels.Selector
	// Selector selects pods by their labels; labels.Nothing() when the
	// term has none.
	Selector    labels.Selector
	TopologyKey string

	// match is Selector's fast matcher; namespace is the only namespace
	// when there is one. Set by NewAffinityTerm and WithNamespaces.
	match     LabelMatcher
	namespace string
}

// WeightedAffinityTerm is a parsed v1.WeightedPodAffinityTerm.
type WeightedAffinityTerm struct {
	AffinityTerm
	Weight int32
}

// NewPodInfo parses pod. Its requests count init containers and sidecars
// and the pod overhead (k8s.io/component-helpers/resource.PodRequests).
// It fails only on an affinity term whose selector does not parse, which
// API validation rejects.
func NewPodInfo(pod *v1.Pod) (*PodInfo, error) {
	pi := &PodInfo{
		Pod:             pod,
		Requests:        PodRequests(pod),
		NonZeroRequests: podNonZeroRequests(pod),
	}
	a := pod.Spec.Affinity
	if a == nil {
		return pi, nil
	}
	var err error
	if a.PodAffinity != nil {
		if pi.RequiredAffinityTerms, err = newAffinityTerms(pod, a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution); err != nil {
			return nil, err
		}
		if pi.PreferredAffinityTerms, err = newWeightedAffinityTerms(pod, a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution); err != nil {
			return nil, err
		}
	}
	if a.PodAntiAffinity != nil {
		if pi.RequiredAntiAffinityTerms, err = newAffinityTerms(pod, a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution); err != nil {
			return nil, err
		}
		if pi.PreferredAntiAffinityTerms, err = newWeightedAffinityTerms(pod, a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution); err != nil {
			return nil, err
		}
	}
	return pi, nil
}

// MustPodInfo is NewPodInfo for pods known to parse (tests, fixtures); it
// panics otherwise.
func MustPodInfo(pod *v1.Pod) *PodInfo {
	pi, err := NewPodInfo(pod)
	if err != nil {
		panic(err)
	}
	return pi
}

func newAffinityTerms(pod *v1.Pod, terms []v1.PodAffinityTerm) ([]AffinityTerm, error) {
	if len(terms) == 0 {
		return nil, nil
	}
	out := make([]AffinityTerm, 0, len(terms))
	for i := range terms {
		t, err := NewAffinityTerm(pod, &terms[i])
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

func newWeightedAffinityTerms(pod *v1.Pod, terms []v1.WeightedPodAffinityTerm) ([]WeightedAffinityTerm, error) {
	if len(terms) == 0 {
		return nil, nil
	}
	out := make([]WeightedAffinityTerm, 0, len(terms))
	for i := range terms {
		t, err := NewAffinityTerm(pod, &terms[i].PodAffinityTerm)
		if err != nil {
			return nil, err
		}
		out = append(out, WeightedAffinityTerm{AffinityTerm: t, Weight: terms[i].Weight})
	}
	return out, nil
}

// NewAffinityTerm parses one term of pod.
func NewAffinityTerm(pod *v1.Pod, term *v1.PodAffinityTerm) (AffinityTerm, error) {
	sel, err := selectorOrNothing(term.LabelSelector)
	if err != nil {
		return AffinityTerm{}, fmt.Errorf("pod %s/%s: affinity term label selector: %w", pod.Namespace, pod.Name, err)
	}
	var nsSel labels.Selector
	if term.NamespaceSelector != nil {
		if nsSel, err = metav1.LabelSelectorAsSelector(term.NamespaceSelector); err != nil {
			return AffinityTerm{}, fmt.Errorf("pod %s/%s: affinity term namespace selector: %w", pod.Namespace, pod.Name, err)
		}
	}
	ns := sets.New(term.Namespaces...)
	if len(term.Namespaces) == 0 && term.NamespaceSelector == nil {
		ns.Insert(pod.Namespace)
	}
	t := AffinityTerm{NamespaceSelector: nsSel, Selector: sel, TopologyKey: term.TopologyKey, match: NewLabelMatcher(sel)}
	return t.WithNamespaces(ns, nsSel), nil
}

// WithNamespaces returns a copy of t selecting pods in ns and in the
// namespaces nsSel selects (nil: none).
func (t AffinityTerm) WithNamespaces(ns sets.Set[string], nsSel labels.Selector) AffinityTerm {
	t.Namespaces, t.NamespaceSelector, t.namespace = ns, nsSel, ""
	if len(ns) == 1 {
		for n := range ns {
			t.namespace = n
		}
	}
	if t.match.sel == nil {
		t.match = NewLabelMatcher(t.Selector)
	}
	return t
}

func selectorOrNothing(ls *metav1.LabelSelector) (labels.Selector, error) {
	if ls == nil {
		return labels.Nothing(), nil
	}
	return metav1.LabelSelectorAsSelector(ls)
}

// Matches reports whether the term selects pod, whose namespace carries
// nsLabels. It runs for every pod of the cluster in some cycles, so the
// common case of one namespace avoids the set lookup.
func (t *AffinityTerm) Matches(pod *v1.Pod, nsLabels labels.Set) bool {
	var inNamespace bool
	if t.namespace != "" {
		inNamespace = t.namespace == pod.Namespace
	} else {
		inNamespace = t.Namespaces.Has(pod.Namespace)
	}
	if !inNamespace && (t.NamespaceSelector == nil || !t.NamespaceSelector.Matches(nsLabels)) {
		return false
	}
	if t.match.sel == nil {
		// Built as a literal rather than by NewAffinityTerm.
		return t.Selector != nil && t.Selector.Matches(labels.Set(pod.Labels))
	}
	return t.match.Matches(pod.Labels)
}

// HasAffinity reports whether the pod has any pod affinity or
// anti-affinity term.
func (pi *PodInfo) HasAffinity() bool {
	return len(pi.RequiredAffinityTerms)+len(pi.RequiredAntiAffinityTerms)+len(pi.PreferredAffinityTerms)+len(pi.PreferredAntiAffinityTerms) > 0
}

// PodPriority returns spec.priority, or 0 when unset (a pod created when
// no default priority class existed).
func PodPriority(pod *v1.Pod) int32 {
	if pod.Spec.Priority != nil {
		return *pod.Spec.Priority
	}
	return 0
}
