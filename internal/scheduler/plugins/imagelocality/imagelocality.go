// Package imagelocality holds the ImageLocality score: nodes that already
// have the pod's images score higher, weighted by image size and by how
// widely the image is spread (an image on every node says little).
package imagelocality

import (
	"context"
	"strings"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// Name is the plugin's name in the registry.
const Name = "ImageLocality"

// Thresholds of the summed image sizes, as upstream: below 23 MB scores
// 0, and 1000 MB per container scores MaxNodeScore.
const (
	mb                    int64 = 1024 * 1024
	minThreshold                = 23 * mb
	maxContainerThreshold       = 1000 * mb
)

const preScoreKey framework.StateKey = "PreScore" + Name

// ImageLocality is the plugin.
type ImageLocality struct{ h *framework.Handle }

var (
	_ framework.PreScorePlugin = &ImageLocality{}
	_ framework.ScorePlugin    = &ImageLocality{}
)

// New is the plugin's factory.
func New(h *framework.Handle) (framework.Plugin, error) { return &ImageLocality{h: h}, nil }

// Name returns Name.
func (pl *ImageLocality) Name() string { return Name }

type preScoreState struct {
	images     []string
	totalNodes int
}

func (s *preScoreState) Clone() framework.StateData { return s }

// PreScore normalizes the pod's image names and counts all nodes of the
// snapshot (not only the feasible ones: spread is cluster-wide).
func (pl *ImageLocality) PreScore(_ context.Context, state *framework.CycleState, pod *framework.PodInfo, nodes []*framework.NodeInfo) *framework.Status {
	s := &preScoreState{totalNodes: len(nodes)}
	if pl.h != nil && pl.h.Snapshot != nil {
		s.totalNodes = len(pl.h.Snapshot.List())
	}
	for _, c := range pod.Pod.Spec.InitContainers {
		s.images = append(s.images, NormalizedImageName(c.Image))
	}
	for _, c := range pod.Pod.Spec.Containers {
		s.images = append(s.images, NormalizedImageName(c.Image))
	}
	state.Write(preScoreKey, s)
	return nil
}

// Score sums size × spread of the pod's images present on the node and
// maps the sum between the thresholds onto [0, MaxNodeScore].
func (pl *ImageLocality) Score(_ context.Context, state *framework.CycleState, _ *framework.PodInfo, node *framework.NodeInfo) (int64, *framework.Status) {
	s, err := framework.ReadState[*preScoreState](state, preScoreKey)
	if err != nil {
		return 0, framework.AsStatus(err)
	}
	if len(node.ImageStates) == 0 || s.totalNodes == 0 {
		return 0, nil
	}
	var sum int64
	for _, img := range s.images {
		if st, ok := node.ImageStates[img]; ok {
			spread := float64(st.NumNodes) / float64(s.totalNodes)
			sum += int64(float64(st.Size) * spread)
		}
	}
	maxThreshold := maxContainerThreshold * int64(len(s.images))
	sum = min(max(sum, minThreshold), maxThreshold)
	if maxThreshold <= minThreshold {
		return 0, nil
	}
	return framework.MaxNodeScore * (sum - minThreshold) / (maxThreshold - minThreshold), nil
}

// NormalizedImageName adds the ":latest" tag to a name without a tag or
// digest, the way nodes report images.
func NormalizedImageName(name string) string {
	if strings.LastIndex(name, ":") <= strings.LastIndex(name, "/") {
		name += ":latest"
	}
	return name
}
