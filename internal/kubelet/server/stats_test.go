package server

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-want +got):\n%s", path, diff)
	}
}

func u64(v uint64) *runtimeapi.UInt64Value { return &runtimeapi.UInt64Value{Value: v} }

// statsFixture gives the fake runtime one ready pod with a running and an
// exited container, and a stopped pod.
func statsFixture(ts *testServer, cpuPod, cpuMain uint64, at time.Time) {
	now := at.UnixNano()
	ts.rt.sandboxes = append(ts.rt.sandboxes, &runtimeapi.PodSandbox{Id: "sb-gone", State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "gone", Namespace: "default", Uid: "uid-gone"}})
	ts.rt.sandboxes[0].CreatedAt = epoch.Add(-10 * time.Minute).UnixNano()
	ts.rt.containers = []*runtimeapi.Container{
		{Id: "ctr-main", PodSandboxId: "sb-web", State: runtimeapi.ContainerState_CONTAINER_RUNNING, CreatedAt: epoch.Add(-9 * time.Minute).UnixNano(), Metadata: &runtimeapi.ContainerMetadata{Name: "main"}},
		{Id: "ctr-done", PodSandboxId: "sb-web", State: runtimeapi.ContainerState_CONTAINER_EXITED, Metadata: &runtimeapi.ContainerMetadata{Name: "done"}},
	}
	ctr := func(id, name string, cpu uint64) *runtimeapi.ContainerStats {
		return &runtimeapi.ContainerStats{
			Attributes:    &runtimeapi.ContainerAttributes{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: name}},
			Cpu:           &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: u64(cpu)},
			Memory:        &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: u64(10 << 20), UsageBytes: u64(12 << 20), RssBytes: u64(8 << 20)},
			WritableLayer: &runtimeapi.FilesystemUsage{Timestamp: now, UsedBytes: u64(4096), InodesUsed: u64(3)},
		}
	}
	ts.rt.stats = []*runtimeapi.PodSandboxStats{
		{
			Attributes: &runtimeapi.PodSandboxAttributes{Id: "sb-web"},
			Linux: &runtimeapi.LinuxPodSandboxStats{
				Cpu:        &runtimeapi.CpuUsage{Timestamp: now, UsageCoreNanoSeconds: u64(cpuPod)},
				Memory:     &runtimeapi.MemoryUsage{Timestamp: now, WorkingSetBytes: u64(11 << 20)},
				Process:    &runtimeapi.ProcessUsage{Timestamp: now, ProcessCount: u64(2)},
				Containers: []*runtimeapi.ContainerStats{ctr("ctr-main", "main", cpuMain), ctr("ctr-done", "done", 5)},
			},
		},
		{Attributes: &runtimeapi.PodSandboxAttributes{Id: "sb-gone"}, Linux: &runtimeapi.LinuxPodSandboxStats{}},
	}
}

func TestServer_StatsSummary(t *testing.T) {
	ts := newFixture(t)
	statsFixture(ts, 2e9, 1e9, epoch)
	if _, body := ts.get(t, "/stats/summary"); body == "" {
		t.Fatal("empty summary")
	}
	// Ten seconds later the pod used half a core, its container a
	// quarter: the second summary has rates.
	ts.clk.Step(10 * time.Second)
	statsFixture(ts, 7e9, 3.5e9, epoch.Add(10*time.Second))
	code, body := ts.get(t, "/stats/summary")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	var sum statsapi.Summary
	if err := json.Unmarshal([]byte(body), &sum); err != nil {
		t.Fatal(err)
	}
	if len(sum.Pods) != 1 || len(sum.Pods[0].Containers) != 1 {
		t.Fatalf("want one ready pod with one running container: %s", body)
	}
	if got := *sum.Pods[0].CPU.UsageNanoCores; got != 5e8 {
		t.Errorf("pod usageNanoCores %d, want 5e8", got)
	}
	if got := *sum.Pods[0].Containers[0].CPU.UsageNanoCores; got != 2.5e8 {
		t.Errorf("container usageNanoCores %d, want 2.5e8", got)
	}
	pretty, _ := json.MarshalIndent(sum, "", "  ")
	golden(t, "summary.json", string(pretty)+"\n")

	code, body = ts.get(t, "/metrics/resource")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	golden(t, "metrics-resource.txt", body)
}

func TestParseProcFiles(t *testing.T) {
	busy, boot, err := parseProcStat([]byte("cpu  100 20 30 1000 50 5 5 10 7 0\ncpu0 1 2 3 4\nbtime 1700000000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := 1700 * time.Millisecond; busy != want { // (100+20+30+5+5+10) ticks of 10ms
		t.Errorf("busy %v, want %v", busy, want)
	}
	if boot.Unix() != 1700000000 {
		t.Errorf("boot %v", boot)
	}
	if _, _, err := parseProcStat([]byte("intr 1 2\n")); err == nil {
		t.Error("accepted /proc/stat without a cpu line")
	}
	total, avail, err := parseMeminfo([]byte("MemTotal:       16384 kB\nMemFree: 1 kB\nMemAvailable:    8192 kB\n"))
	if err != nil || total != 16384*1024 || avail != 8192*1024 {
		t.Errorf("meminfo = %d %d %v", total, avail, err)
	}
	if _, _, err := parseMeminfo([]byte("MemTotal: 1 kB\n")); err == nil {
		t.Error("accepted meminfo without MemAvailable")
	}
	if _, err := (ProcHost{}).Usage(); err != nil {
		t.Errorf("reading this host: %v", err)
	}
}
