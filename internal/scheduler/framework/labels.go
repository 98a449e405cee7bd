package framework

import (
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// LabelMatcher matches label sets against a selector. Affinity and
// topology spread match every pod of the cluster in some cycles, so
// selectors made only of equalities (matchLabels, or In with one value:
// nearly all of them) are matched by direct lookups, without walking
// requirements; others fall back to the selector. The zero value matches
// nothing.
type LabelMatcher struct {
	sel    labels.Selector
	keys   []string
	values []string
	eqOnly bool
}

// NewLabelMatcher wraps sel; nil matches nothing.
func NewLabelMatcher(sel labels.Selector) LabelMatcher {
	if sel == nil {
		return LabelMatcher{}
	}
	m := LabelMatcher{sel: sel}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return m
	}
	m.eqOnly = true
	for _, r := range reqs {
		vals := r.ValuesUnsorted()
		switch op := r.Operator(); {
		case (op == selection.Equals || op == selection.DoubleEquals || op == selection.In) && len(vals) == 1:
			m.keys = append(m.keys, r.Key())
			m.values = append(m.values, vals[0])
		default:
			m.eqOnly, m.keys, m.values = false, nil, nil
			return m
		}
	}
	return m
}

// Matches reports whether the labels match.
func (m LabelMatcher) Matches(set map[string]string) bool {
	if m.eqOnly {
		for i, k := range m.keys {
			if v, ok := set[k]; !ok || v != m.values[i] {
				return false
			}
		}
		return true
	}
	if m.sel == nil {
		return false
	}
	return m.sel.Matches(labels.Set(set))
}

// Empty reports whether the selector selects everything.
func (m LabelMatcher) Empty() bool { return m.sel != nil && m.sel.Empty() }
