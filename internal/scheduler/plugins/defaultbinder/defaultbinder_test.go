package defaultbinder

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/schedtest"
)

func TestDefaultBinder_Bind(t *testing.T) {
	for _, tc := range []struct {
		name      string
		reply     error
		wantError func(error) bool
	}{
		{"PostsTheBinding", nil, nil},
		{"ConflictIsReported", apierrors.NewConflict(schema.GroupResource{Resource: "pods"}, "web", nil), apierrors.IsConflict},
		{"NotFoundIsReported", apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, "web"), apierrors.IsNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := fake.NewClientset()
			var got *v1.Binding
			client.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "binding" {
					return false, nil, nil
				}
				got = a.(k8stesting.CreateAction).GetObject().(*v1.Binding)
				return true, nil, tc.reply
			})
			pl, err := New(&framework.Handle{Client: client})
			if err != nil {
				t.Fatal(err)
			}
			pod := framework.MustPodInfo(schedtest.Pod("web").UID("u1").Obj())
			s := pl.(*DefaultBinder).Bind(context.Background(), framework.NewCycleState(), pod, "n1")
			want := &v1.Binding{
				ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "u1"},
				Target:     v1.ObjectReference{Kind: "Node", Name: "n1"},
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("binding (-want +got):\n%s", diff)
			}
			if tc.wantError == nil {
				if !s.IsSuccess() {
					t.Errorf("Bind = %v", s)
				}
				return
			}
			if s.Code() != framework.Error || !tc.wantError(s.AsError()) {
				t.Errorf("Bind = %v; want an Error status wrapping the API error", s)
			}
		})
	}
}

func TestDefaultBinder_NeedsAClient(t *testing.T) {
	if _, err := New(&framework.Handle{}); err == nil {
		t.Error("New without a client: no error")
	}
}
