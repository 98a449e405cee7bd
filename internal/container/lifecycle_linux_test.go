package container

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRuntime_RunsContainerToCompletion(t *testing.T) {
	h := newHarness(t)
	pod := h.runPod("web")
	lines, st := h.output(pod, containerConfig("echo", "echo", "hello", "world"))
	if diff := cmp.Diff([]string{"hello world"}, lines); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 || st.Reason != "Completed" {
		t.Errorf("status = %v exit %d reason %q, want EXITED 0 Completed", st.State, st.ExitCode, st.Reason)
	}
}
