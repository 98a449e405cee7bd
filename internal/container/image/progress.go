package image

import (
	"fmt"
	"sync"
)

// LayerState is where one layer of a pull or import stands.
//
//	Waiting ──► Downloading ──► Complete
//	   │              (download, verify and unpack run as one stream)
//	   ├──► Extracting ──► Complete   (blob already stored, unpack only)
//	   └──► Exists                    (layer already unpacked, nothing to do)
type LayerState string

// Layer states.
const (
	LayerWaiting     LayerState = "Waiting"
	LayerDownloading LayerState = "Downloading"
	LayerExtracting  LayerState = "Extracting"
	LayerComplete    LayerState = "Complete"
	LayerExists      LayerState = "Exists"
)

// LayerProgress is the progress of one layer.
type LayerProgress struct {
	Digest string
	State  LayerState
	// Done and Total are bytes of the layer blob.
	Done, Total int64
}

// Progress is a snapshot of a pull or import, for a progress display. The
// callback owns the value it is given.
type Progress struct {
	Ref    string
	Layers []LayerProgress
	// Done and Total are bytes over all layers; layers that already
	// exist count as done.
	Done, Total int64
}

// ProgressFunc receives progress. Calls are serial (never concurrent), at
// every state change and about every MiB per layer; it must return quickly.
type ProgressFunc func(Progress)

// reportEvery is how many bytes a layer moves between two reports.
const reportEvery = 1 << 20

// tracker keeps the progress of one operation.
type tracker struct {
	fn ProgressFunc
	// kick, when set, is called on every change (the stall watchdog).
	kick func()

	// mu guards p and last, and serializes calls of fn.
	mu   sync.Mutex
	p    Progress
	last []int64
}

func newTracker(ref string, fn ProgressFunc) *tracker {
	return &tracker{fn: fn, p: Progress{Ref: ref}}
}

// setLayers starts tracking layers (digest and size each).
func (t *tracker) setLayers(digests []string, sizes []int64) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.p.Layers = make([]LayerProgress, len(digests))
	t.last = make([]int64, len(digests))
	t.p.Total = 0
	for i := range digests {
		t.p.Layers[i] = LayerProgress{Digest: digests[i], State: LayerWaiting, Total: sizes[i]}
		t.p.Total += sizes[i]
	}
	t.reportLocked()
}

func (t *tracker) state(i int, st LayerState) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := &t.p.Layers[i]
	l.State = st
	if st == LayerComplete || st == LayerExists {
		t.p.Done += l.Total - l.Done
		l.Done = l.Total
	}
	t.reportLocked()
}

func (t *tracker) add(i int, n int64) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := &t.p.Layers[i]
	if l.Done+n > l.Total {
		n = l.Total - l.Done // a lying registry cannot push past 100%
	}
	l.Done += n
	t.p.Done += n
	if t.kick != nil {
		t.kick()
	}
	if l.Done-t.last[i] >= reportEvery {
		t.last[i] = l.Done
		t.reportLocked()
	}
}

func (t *tracker) reportLocked() {
	if t.kick != nil {
		t.kick()
	}
	if t.fn == nil {
		return
	}
	snap := t.p
	snap.Layers = append([]LayerProgress(nil), t.p.Layers...)
	t.fn(snap)
}

// String renders p on one line for a terminal, e.g.
// "docker.io/library/busybox:latest: 2/3 layers, 1.4/2.1 MB".
func (p Progress) String() string {
	done := 0
	for _, l := range p.Layers {
		if l.State == LayerComplete || l.State == LayerExists {
			done++
		}
	}
	return fmt.Sprintf("%s: %d/%d layers, %.1f/%.1f MB", p.Ref, done, len(p.Layers),
		float64(p.Done)/1e6, float64(p.Total)/1e6)
}

// touch tells the stall watchdog that work goes on without new bytes
// (unpacking a blob that is already stored).
func (t *tracker) touch() {
	if t != nil && t.kick != nil {
		t.kick()
	}
}
