package queue

import "k8s.io/apimachinery/pkg/types"

// podHeap is a binary heap of queued pods, indexed by UID so that pods
// can be updated and removed in O(log n). It is not safe for concurrent
// use; the Queue's lock guards it.
type podHeap struct {
	items []*QueuedPodInfo
	index map[types.UID]int
	less  func(a, b *QueuedPodInfo) bool
}

func newPodHeap(less func(a, b *QueuedPodInfo) bool) *podHeap {
	return &podHeap{index: map[types.UID]int{}, less: less}
}

func (h *podHeap) Len() int { return len(h.items) }

func (h *podHeap) get(uid types.UID) (*QueuedPodInfo, bool) {
	i, ok := h.index[uid]
	if !ok {
		return nil, false
	}
	return h.items[i], true
}

// push adds p, or replaces the pod with the same UID and restores order.
func (h *podHeap) push(p *QueuedPodInfo) {
	uid := p.Pod.UID
	if i, ok := h.index[uid]; ok {
		h.items[i] = p
		h.fix(i)
		return
	}
	h.items = append(h.items, p)
	h.index[uid] = len(h.items) - 1
	h.up(len(h.items) - 1)
}

func (h *podHeap) peek() *QueuedPodInfo {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

func (h *podHeap) pop() *QueuedPodInfo {
	if len(h.items) == 0 {
		return nil
	}
	return h.removeAt(0)
}

func (h *podHeap) remove(uid types.UID) (*QueuedPodInfo, bool) {
	i, ok := h.index[uid]
	if !ok {
		return nil, false
	}
	return h.removeAt(i), true
}

func (h *podHeap) removeAt(i int) *QueuedPodInfo {
	p := h.items[i]
	last := len(h.items) - 1
	h.swap(i, last)
	h.items[last] = nil
	h.items = h.items[:last]
	delete(h.index, p.Pod.UID)
	if i < last {
		h.fix(i)
	}
	return p
}

func (h *podHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *podHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.index[h.items[i].Pod.UID] = i
	h.index[h.items[j].Pod.UID] = j
}

func (h *podHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.less(h.items[j], h.items[i]) {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h *podHeap) down(i0 int) bool {
	i, n := i0, len(h.items)
	for {
		j := 2*i + 1
		if j >= n {
			break
		}
		if r := j + 1; r < n && h.less(h.items[r], h.items[j]) {
			j = r
		}
		if !h.less(h.items[j], h.items[i]) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
