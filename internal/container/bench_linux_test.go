package container

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-sh/skiff/internal/sys/ns"
	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// These benchmarks compare skiff with crun and runc in one run, as
// ratios, because the machines they run on are noisy. bench/container-bench.sh
// installs the peers and runs them; peers missing from PATH are skipped.

const trueRef = "skiff.test/true:latest"

// benchRuns is how many times each runtime starts a container
// (SKIFF_BENCH_RUNS, default 50).
func benchRuns() int {
	if n, err := strconv.Atoi(os.Getenv("SKIFF_BENCH_RUNS")); err == nil && n > 0 {
		return n
	}
	return 50
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p)
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// trueELF is the smallest program that exits 0: a static ELF whose
// entry point calls exit(0), built here so that every runtime runs the
// same binary and the figures measure the runtimes, not the program.
func trueELF(b *testing.B) []byte {
	var machine uint16
	var code []byte
	switch goruntime.GOARCH {
	case "amd64":
		machine = 0x3e
		code = []byte{0xb8, 0x3c, 0, 0, 0, 0x31, 0xff, 0x0f, 0x05} // mov $60,%eax; xor %edi,%edi; syscall
	case "arm64":
		machine = 0xb7
		code = []byte{0x00, 0x00, 0x80, 0xd2, 0xa8, 0x0b, 0x80, 0xd2, 0x01, 0x00, 0x00, 0xd4} // mov x0,#0; mov x8,#93; svc #0
	default:
		b.Skipf("no tiny /bin/true for %s", goruntime.GOARCH)
	}
	const base, ehsize, phsize = 0x400000, 64, 56
	size := ehsize + phsize + len(code)
	out := make([]byte, size)
	le := binary.LittleEndian
	copy(out, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(out[16:], 2) // ET_EXEC
	le.PutUint16(out[18:], machine)
	le.PutUint32(out[20:], 1)
	le.PutUint64(out[24:], base+ehsize+phsize) // entry
	le.PutUint64(out[32:], ehsize)             // program headers
	le.PutUint16(out[52:], ehsize)
	le.PutUint16(out[54:], phsize)
	le.PutUint16(out[56:], 1)
	ph := out[ehsize:]
	le.PutUint32(ph[0:], 1) // PT_LOAD
	le.PutUint32(ph[4:], 5) // R+X
	le.PutUint64(ph[16:], base)
	le.PutUint64(ph[24:], base)
	le.PutUint64(ph[32:], uint64(size))
	le.PutUint64(ph[40:], uint64(size))
	le.PutUint64(ph[48:], 0x1000)
	copy(out[ehsize+phsize:], code)
	return out
}

// trueImage is the tiny rootfs every runtime runs: /bin/true.
func trueImage(b *testing.B) *testimage.Image {
	return testimage.Build(b, testimage.Spec{
		Layers: []testimage.Layer{{Entries: []testimage.Entry{
			{Path: "bin", Kind: testimage.Dir},
			{Path: "bin/true", Content: trueELF(b), Mode: 0o755},
			{Path: "proc", Kind: testimage.Dir}, {Path: "sys", Kind: testimage.Dir}, {Path: "dev", Kind: testimage.Dir},
			{Path: "etc", Kind: testimage.Dir}, {Path: "tmp", Kind: testimage.Dir, Mode: 0o1777},
		}}},
		Config: v1.Config{Cmd: []string{"/bin/true"}, Env: []string{"PATH=/bin"}},
	})
}

// ociPeer is crun or runc running an OCI bundle.
type ociPeer struct {
	name   string
	bin    string
	global []string // global flags
	bundle string
	mntns  string // mount namespace to run in, if not the host's
}

func newOCIPeer(b *testing.B, name, rootfs string) *ociPeer {
	bin, err := exec.LookPath(name)
	if err != nil {
		b.Logf("%s not found: skipping it", name)
		return nil
	}
	bundle := b.TempDir()
	spec, err := exec.Command(bin, "spec", "--bundle", bundle).CombinedOutput()
	if err != nil {
		b.Fatalf("%s spec: %v %s", name, err, spec)
	}
	var cfg map[string]any
	data, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	json.Unmarshal(data, &cfg)
	proc := cfg["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/true"}
	cfg["root"] = map[string]any{"path": rootfs, "readonly": true}
	data, _ = json.Marshal(cfg)
	os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644)
	p := &ociPeer{name: name, bin: bin, bundle: bundle, global: []string{"--root", b.TempDir()}}
	if err := p.run("probe"); err != nil {
		// crun refuses hybrid cgroup hosts ("cgroups in hybrid mode not
		// supported"). Run it where the host looks like cgroup v1 only: in
		// a mount namespace without the cgroup2 mount.
		mnt, err2 := legacyCgroupMountNS(b)
		if err2 != nil {
			b.Logf("%s cannot run here (%v; %v): skipping it", name, err, err2)
			return nil
		}
		p.mntns = mnt
		p.name = name + " (cgroup v1 view)"
		if err2 := p.run("probe2"); err2 != nil {
			b.Logf("%s cannot run here (%v; %v): skipping it", name, err, err2)
			return nil
		}
	}
	return p
}

// legacyCgroupMountNS returns the mount namespace of a helper process in
// which the unified cgroup2 mount is gone, so that the host looks like a
// pure cgroup v1 host; the helper is killed when the benchmark ends.
func legacyCgroupMountNS(b *testing.B) (string, error) {
	cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		"umount /sys/fs/cgroup/unified && echo ready && exec sleep 3600")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil {
		return "", fmt.Errorf("unshare helper: %w", err)
	}
	return fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid), nil
}

func (p *ociPeer) run(id string) error {
	args := append(slices.Clone(p.global), "run", "--bundle", p.bundle, id)
	cmd := exec.Command(p.bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	var err error
	if p.mntns != "" {
		err = ns.Do(map[ns.Type]string{ns.Mount: p.mntns}, cmd.Start)
	} else {
		err = cmd.Start()
	}
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		return fmt.Errorf("%s run: %v: %s", p.name, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// BenchmarkContainerStart times create → process exited for /bin/true in
// the same rootfs: skiff (a pod sandbox and a container through the
// runtime, then removal, untimed), crun and runc (run --bundle),
// interleaved, benchRuns times each. It reports medians and the ratio
// skiff/crun.
func BenchmarkContainerStart(b *testing.B) {
	h := newHarness(b)
	archive := filepath.Join(b.TempDir(), "true.tar")
	trueImage(b).WriteOCIArchive(b, archive, trueRef)
	imgs, err := h.images.ImportPath(b.Context(), archive, nil)
	if err != nil {
		b.Fatal(err)
	}
	img, err := h.images.Get(imgs[0].ID)
	if err != nil {
		b.Fatal(err)
	}
	// The peers run the same files: the unpacked layer.
	rootfs := img.LayerDirs()[0]
	var peers []*ociPeer
	for _, name := range []string{"crun", "runc"} {
		if p := newOCIPeer(b, name, rootfs); p != nil {
			peers = append(peers, p)
		}
	}
	ctx := context.Background()
	skiff := func(i int) (sandbox, total time.Duration) {
		start := time.Now()
		pod := h.runPod(fmt.Sprintf("bench-%d", i))
		sandbox = time.Since(start)
		c := containerConfig("true")
		c.Image.Image = trueRef
		c.LogPath = ""
		id, err := h.rt.CreateContainer(ctx, pod, c)
		if err != nil {
			b.Fatal(err)
		}
		if err := h.rt.StartContainer(ctx, id); err != nil {
			b.Fatal(err)
		}
		ct, _ := h.rt.lookupContainer(id)
		<-ct.exited
		total = time.Since(start)
		if err := h.rt.RemovePodSandbox(ctx, pod); err != nil {
			b.Fatal(err)
		}
		return sandbox, total
	}
	skiff(-1) // warm up caches
	runs := benchRuns()
	times := map[string][]time.Duration{}
	for i := 0; i < runs; i++ {
		sb, total := skiff(i)
		times["skiff"] = append(times["skiff"], total)
		times["skiff sandbox"] = append(times["skiff sandbox"], sb)
		times["skiff container"] = append(times["skiff container"], total-sb)
		for _, p := range peers {
			start := time.Now()
			if err := p.run(fmt.Sprintf("b%d", i)); err != nil {
				b.Fatal(err)
			}
			times[p.name] = append(times[p.name], time.Since(start))
		}
	}
	b.Logf("container start, create -> exited, /bin/true, %d runs each, interleaved:", runs)
	names := []string{"skiff", "skiff sandbox", "skiff container"}
	for _, p := range peers {
		names = append(names, p.name)
	}
	for _, n := range names {
		b.Logf("  %-22s median %7.2f ms   p99 %7.2f ms", n, ms(median(times[n])), ms(percentile(times[n], 0.99)))
	}
	b.ReportMetric(ms(median(times["skiff"])), "skiff-ms")
	for _, p := range peers {
		ratio := float64(median(times["skiff"])) / float64(median(times[p.name]))
		b.Logf("  ratio skiff/%s = %.2f", p.name, ratio)
		b.ReportMetric(ratio, "skiff/"+strings.Fields(p.name)[0])
	}
}

// BenchmarkMonitorMemory starts containers that sleep and reports what
// they cost in helper processes: the growth of the monitor's memory per
// container (RSS, PSS and private memory from /proc/<pid>/smaps_rollup),
// and the fixed cost of the monitor.
func BenchmarkMonitorMemory(b *testing.B) {
	h := newHarness(b)
	pod := h.runPod("mem")
	rec := h.monitor()
	time.Sleep(300 * time.Millisecond)
	before := smaps(b, rec.Pid)
	const n = 20
	for i := 0; i < n; i++ {
		h.run(pod, containerConfig(fmt.Sprintf("sleep%d", i), "sleep", "3600"))
	}
	time.Sleep(500 * time.Millisecond)
	after := smaps(b, rec.Pid)
	per := func(k string) float64 { return (after[k] - before[k]) / n / 1024 }
	b.Logf("monitor growth per running container (%d containers): RSS %.3f MB, PSS %.3f MB, private %.3f MB", n, per("Rss"), per("Pss"), per("Private"))
	b.Logf("monitor itself: RSS %.2f MB, PSS %.2f MB, private %.2f MB", after["Rss"]/1024, after["Pss"]/1024, after["Private"]/1024)
	b.ReportMetric(per("Rss"), "RSS-MB/container")
	b.ReportMetric(per("Pss"), "PSS-MB/container")
	b.ReportMetric(after["Rss"]/1024, "monitor-RSS-MB")
}

// smaps returns the KB figures of /proc/<pid>/smaps_rollup, plus
// "Private" (clean and dirty).
func smaps(b *testing.B, pid int) map[string]float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		b.Logf("read memory of %d: %v", pid, err)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && strings.HasSuffix(f[0], ":") {
			v, _ := strconv.ParseFloat(f[1], 64)
			out[strings.TrimSuffix(f[0], ":")] = v
		}
	}
	out["Private"] = out["Private_Clean"] + out["Private_Dirty"]
	return out
}

var _ = runtimeapi.ContainerState_CONTAINER_RUNNING
