// Package defaultbinder holds the DefaultBinder plugin: it binds a pod by
// creating its pods/binding subresource.
package defaultbinder

import (
	"context"
	"errors"
	"fmt"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
)

// Name is the plugin's name in the registry.
const Name = "DefaultBinder"

// DefaultBinder is the plugin.
type DefaultBinder struct{ h *framework.Handle }

var _ framework.BindPlugin = &DefaultBinder{}

// New is the plugin's factory; it needs h.Client.
func New(h *framework.Handle) (framework.Plugin, error) {
	if h == nil || h.Client == nil {
		return nil, errors.New("no API client")
	}
	return &DefaultBinder{h: h}, nil
}

// Name returns Name.
func (pl *DefaultBinder) Name() string { return Name }

// Bind posts a Binding with the pod's UID as a precondition, so that a
// pod deleted and recreated under the same name is not bound by mistake.
// API errors come back as Error statuses wrapping the client's error
// (apierrors.IsConflict tells a pod bound by someone else).
func (pl *DefaultBinder) Bind(ctx context.Context, _ *framework.CycleState, pod *framework.PodInfo, nodeName string) *framework.Status {
	p := pod.Pod
	b := &v1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		Target:     v1.ObjectReference{Kind: "Node", Name: nodeName},
	}
	if err := pl.h.Client.CoreV1().Pods(p.Namespace).Bind(ctx, b, metav1.CreateOptions{}); err != nil {
		return framework.AsStatus(fmt.Errorf("bind pod %s/%s to node %s: %w", p.Namespace, p.Name, nodeName, err))
	}
	return nil
}
