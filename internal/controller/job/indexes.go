package job

import (
	"sort"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// noIndex is the completion index of a pod without a valid one.
const noIndex = -1

// intervals is a sorted list of disjoint, non-adjacent closed intervals of
// completion indexes, the form of status.completedIndexes ("1,3-5,7").
type intervals []interval

type interval struct{ first, last int }

// parseIntervals reads a completedIndexes string, keeping indexes below
// completions and skipping malformed parts (the status is written by the
// controller alone; a hand-edited value must not stop it).
func parseIntervals(s string, completions int) intervals {
	var out intervals
	if s == "" {
		return out
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := strconv.Atoi(lo)
		if err != nil || first < 0 {
			continue
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				continue
			}
		}
		if first >= completions {
			continue
		}
		last = min(last, completions-1)
		out = out.with(interval{first, last})
	}
	return out
}

// with returns v with iv added, merged with its neighbours.
func (v intervals) with(iv interval) intervals {
	var out intervals
	placed := false
	for _, cur := range v {
		switch {
		case cur.last+1 < iv.first:
			out = append(out, cur)
		case iv.last+1 < cur.first:
			if !placed {
				out = append(out, iv)
				placed = true
			}
			out = append(out, cur)
		default:
			iv = interval{min(cur.first, iv.first), max(cur.last, iv.last)}
		}
	}
	if !placed {
		out = append(out, iv)
	}
	return out
}

// withIndexes returns v with every index of ixs added.
func (v intervals) withIndexes(ixs []int) intervals {
	for _, ix := range ixs {
		v = v.with(interval{ix, ix})
	}
	return v
}

func (v intervals) has(ix int) bool {
	i := sort.Search(len(v), func(i int) bool { return v[i].last >= ix })
	return i < len(v) && v[i].first <= ix
}

func (v intervals) total() int {
	n := 0
	for _, iv := range v {
		n += iv.last - iv.first + 1
	}
	return n
}

func (v intervals) String() string {
	var b strings.Builder
	for i, iv := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(iv.first))
		if iv.last > iv.first {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(iv.last))
		}
	}
	return b.String()
}

// completionIndex returns a pod's completion index from its annotation, or
// noIndex.
func completionIndex(p *corev1.Pod) int {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return noIndex
	}
	ix, err := strconv.Atoi(v)
	if err != nil || ix < 0 {
		return noIndex
	}
	return ix
}

// validIndex returns a pod's completion index if it is below completions,
// else noIndex.
func validIndex(p *corev1.Pod, completions int32) int {
	ix := completionIndex(p)
	if ix >= int(completions) {
		return noIndex
	}
	return ix
}

// firstPendingIndexes returns up to n indexes below completions that are
// neither succeeded nor held by one of busy, lowest first.
func firstPendingIndexes(succeeded intervals, busy []*corev1.Pod, n int, completions int32) []int {
	held := map[int]bool{}
	for _, p := range busy {
		if ix := validIndex(p, completions); ix != noIndex {
			held[ix] = true
		}
	}
	var out []int
	for ix := 0; ix < int(completions) && len(out) < n; ix++ {
		if !succeeded.has(ix) && !held[ix] {
			out = append(out, ix)
		}
	}
	return out
}

// duplicateIndexPods splits the active pods of an Indexed Job into those
// that must go (no valid index, or a second pod for an index) and the
// rest. Of several pods with one index, the one furthest along stays.
func duplicateIndexPods(pods []*corev1.Pod, completions int32) (rm, keep []*corev1.Pod) {
	byIndex := map[int][]*corev1.Pod{}
	for _, p := range pods {
		ix := validIndex(p, completions)
		if ix == noIndex {
			rm = append(rm, p)
			continue
		}
		byIndex[ix] = append(byIndex[ix], p)
	}
	ixs := make([]int, 0, len(byIndex))
	for ix := range byIndex {
		ixs = append(ixs, ix)
	}
	sort.Ints(ixs)
	for _, ix := range ixs {
		group := byIndex[ix]
		sortForRemoval(group)
		rm = append(rm, group[:len(group)-1]...)
		keep = append(keep, group[len(group)-1])
	}
	return rm, keep
}
