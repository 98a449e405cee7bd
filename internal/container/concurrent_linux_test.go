package container

import (
	"fmt"
	"sync"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestRuntime_ConcurrentPods(t *testing.T) {
	h := newHarness(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("pod%d", i)
			pod, err := h.rt.RunPodSandbox(t.Context(), &runtimeapi.PodSandboxConfig{
				Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name},
				Hostname: name, LogDirectory: h.logDir + "/" + name, Linux: &runtimeapi.LinuxPodSandboxConfig{},
			})
			if err != nil {
				errs <- err
				return
			}
			id, err := h.rt.CreateContainer(t.Context(), pod, containerConfig("app", "hostname"))
			if err != nil {
				errs <- err
				return
			}
			if err := h.rt.StartContainer(t.Context(), id); err != nil {
				errs <- err
				return
			}
			if st := h.wait(id); st.ExitCode != 0 {
				errs <- fmt.Errorf("%s exited %d", name, st.ExitCode)
				return
			}
			if lines := h.logLines(id); len(lines) != 1 || lines[0] != "stdout F "+name {
				errs <- fmt.Errorf("%s logged %q", name, lines)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
