package server

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// Host reads the node's own usage for /stats/summary and
// /metrics/resource. ProcHost reads /proc.
type Host interface {
	Usage() (HostUsage, error)
}

// HostUsage is the node's usage at one moment.
type HostUsage struct {
	// CPU is the CPU time all CPUs spent busy since boot.
	CPU time.Duration
	// MemoryTotal and MemoryAvailable are /proc/meminfo's MemTotal and
	// MemAvailable in bytes; the working set is their difference.
	MemoryTotal, MemoryAvailable uint64
	// Boot is when the host booted (the node's stats start time).
	Boot time.Time
}

// FsUsage reports a filesystem's size; statfs implements it on Linux.
type FsUsage func(path string) (*statsapi.FsStats, error)

// sample is a cumulative CPU reading, for rates between two readings.
type sample struct {
	at    time.Time
	usage uint64 // nanoseconds
	seen  bool   // read by the last summary, kept for the next
}

// statsCache keeps the last CPU reading of the node, each pod and each
// container, to turn cumulative usage into usageNanoCores.
type statsCache struct {
	mu      sync.Mutex // guards samples
	samples map[string]*sample
}

func newStatsCache() *statsCache { return &statsCache{samples: map[string]*sample{}} }

// rate records usage for key and returns the rate since the previous
// reading, or nil when there is none yet (or the counter went back).
func (c *statsCache) rate(key string, at time.Time, usage uint64) *uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := c.samples[key]
	c.samples[key] = &sample{at: at, usage: usage, seen: true}
	if prev == nil || !at.After(prev.at) || usage < prev.usage {
		if prev != nil && !at.After(prev.at) {
			c.samples[key] = prev // same instant: keep the older reading
			prev.seen = true
		}
		return nil
	}
	v := uint64(float64(usage-prev.usage) / float64(at.Sub(prev.at).Nanoseconds()) * 1e9)
	return &v
}

// prune drops readings the last summary did not see (gone pods and
// containers) and clears the marks for the next one.
func (c *statsCache) prune() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.samples {
		if !s.seen {
			delete(c.samples, k)
			continue
		}
		s.seen = false
	}
}

// summary gathers the node's and its running pods' stats.
func (s *Server) summary(ctx context.Context) (*statsapi.Summary, error) {
	now := s.clock.Now()
	defer s.stats.prune()
	node := statsapi.NodeStats{NodeName: s.cfg.NodeName}
	host := s.cfg.Host
	if host == nil {
		host = ProcHost{}
	}
	hu, err := host.Usage()
	if err != nil {
		return nil, fmt.Errorf("node usage: %w", err)
	}
	node.StartTime = metav1.NewTime(hu.Boot)
	t := metav1.NewTime(now)
	cpu := uint64(hu.CPU.Nanoseconds())
	node.CPU = &statsapi.CPUStats{Time: t, UsageCoreNanoSeconds: &cpu, UsageNanoCores: s.stats.rate("node", now, cpu)}
	ws := hu.MemoryTotal - min(hu.MemoryAvailable, hu.MemoryTotal)
	avail := hu.MemoryAvailable
	node.Memory = &statsapi.MemoryStats{Time: t, AvailableBytes: &avail, UsageBytes: &ws, WorkingSetBytes: &ws}
	if s.cfg.FsUsage != nil {
		if fs, err := s.cfg.FsUsage(s.cfg.RootDir); err == nil {
			node.Fs = fs
		}
	}
	if s.cfg.Images != nil {
		if resp, err := s.cfg.Images.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{}); err == nil && len(resp.GetImageFilesystems()) > 0 {
			node.Runtime = &statsapi.RuntimeStats{ImageFs: fsFromCRI(resp.GetImageFilesystems()[0])}
		}
	}

	sandboxes, err := s.cfg.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY},
	}})
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	ready := map[string]*runtimeapi.PodSandbox{}
	for _, sb := range sandboxes.GetItems() {
		ready[sb.GetId()] = sb
	}
	ctrs, err := s.cfg.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING},
	}})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	running := map[string]*runtimeapi.Container{}
	for _, c := range ctrs.GetContainers() {
		running[c.GetId()] = c
	}
	stats, err := s.cfg.Runtime.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
	if err != nil {
		return nil, fmt.Errorf("list sandbox stats: %w", err)
	}
	pods := map[string]*corev1.Pod{}
	for _, p := range s.cfg.Pods.Pods() {
		pods[string(p.UID)] = p
	}
	out := &statsapi.Summary{Node: node, Pods: []statsapi.PodStats{}}
	for _, ps := range stats.GetStats() {
		attrs := ps.GetAttributes()
		sb := ready[attrs.GetId()]
		if sb == nil {
			continue
		}
		md := sb.GetMetadata()
		pod := statsapi.PodStats{
			PodRef:     statsapi.PodReference{Name: md.GetName(), Namespace: md.GetNamespace(), UID: md.GetUid()},
			StartTime:  metav1.NewTime(time.Unix(0, sb.GetCreatedAt())),
			Containers: []statsapi.ContainerStats{},
		}
		if p := pods[md.GetUid()]; p != nil && p.Status.StartTime != nil {
			pod.StartTime = *p.Status.StartTime
		}
		linux := ps.GetLinux()
		pod.CPU = s.cpuStats("pod/"+attrs.GetId(), linux.GetCpu())
		pod.Memory = memoryStats(linux.GetMemory())
		if pc := linux.GetProcess().GetProcessCount(); pc != nil {
			v := pc.GetValue()
			pod.ProcessStats = &statsapi.ProcessStats{ProcessCount: &v}
		}
		if n := linux.GetNetwork(); n != nil && n.GetDefaultInterface() != nil {
			pod.Network = networkStats(n)
		}
		for _, cs := range linux.GetContainers() {
			c := running[cs.GetAttributes().GetId()]
			if c == nil {
				continue
			}
			st := statsapi.ContainerStats{
				Name:      cs.GetAttributes().GetMetadata().GetName(),
				StartTime: metav1.NewTime(time.Unix(0, c.GetCreatedAt())),
				CPU:       s.cpuStats("container/"+c.GetId(), cs.GetCpu()),
				Memory:    memoryStats(cs.GetMemory()),
			}
			if wl := cs.GetWritableLayer(); wl != nil {
				st.Rootfs = fsFromCRI(wl)
			}
			pod.Containers = append(pod.Containers, st)
		}
		sort.Slice(pod.Containers, func(i, j int) bool { return pod.Containers[i].Name < pod.Containers[j].Name })
		out.Pods = append(out.Pods, pod)
	}
	sort.Slice(out.Pods, func(i, j int) bool {
		a, b := out.Pods[i].PodRef, out.Pods[j].PodRef
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	return out, nil
}

func (s *Server) cpuStats(key string, c *runtimeapi.CpuUsage) *statsapi.CPUStats {
	if c == nil || c.GetUsageCoreNanoSeconds() == nil {
		return nil
	}
	at := time.Unix(0, c.GetTimestamp())
	usage := c.GetUsageCoreNanoSeconds().GetValue()
	out := &statsapi.CPUStats{Time: metav1.NewTime(at), UsageCoreNanoSeconds: &usage}
	if c.GetUsageNanoCores() != nil {
		v := c.GetUsageNanoCores().GetValue()
		out.UsageNanoCores = &v
		s.stats.rate(key, at, usage)
	} else {
		out.UsageNanoCores = s.stats.rate(key, at, usage)
	}
	return out
}

func memoryStats(m *runtimeapi.MemoryUsage) *statsapi.MemoryStats {
	if m == nil || m.GetWorkingSetBytes() == nil {
		return nil
	}
	out := &statsapi.MemoryStats{Time: metav1.NewTime(time.Unix(0, m.GetTimestamp()))}
	val := func(v *runtimeapi.UInt64Value) *uint64 {
		if v == nil {
			return nil
		}
		x := v.GetValue()
		return &x
	}
	out.WorkingSetBytes = val(m.GetWorkingSetBytes())
	out.UsageBytes = val(m.GetUsageBytes())
	out.AvailableBytes = val(m.GetAvailableBytes())
	out.RSSBytes = val(m.GetRssBytes())
	out.PageFaults = val(m.GetPageFaults())
	out.MajorPageFaults = val(m.GetMajorPageFaults())
	return out
}

func networkStats(n *runtimeapi.NetworkUsage) *statsapi.NetworkStats {
	conv := func(i *runtimeapi.NetworkInterfaceUsage) statsapi.InterfaceStats {
		out := statsapi.InterfaceStats{Name: i.GetName()}
		for _, p := range []struct {
			dst **uint64
			v   *runtimeapi.UInt64Value
		}{{&out.RxBytes, i.GetRxBytes()}, {&out.RxErrors, i.GetRxErrors()}, {&out.TxBytes, i.GetTxBytes()}, {&out.TxErrors, i.GetTxErrors()}} {
			if p.v != nil {
				x := p.v.GetValue()
				*p.dst = &x
			}
		}
		return out
	}
	out := &statsapi.NetworkStats{Time: metav1.NewTime(time.Unix(0, n.GetTimestamp())), InterfaceStats: conv(n.GetDefaultInterface())}
	for _, i := range n.GetInterfaces() {
		out.Interfaces = append(out.Interfaces, conv(i))
	}
	return out
}

func fsFromCRI(f *runtimeapi.FilesystemUsage) *statsapi.FsStats {
	out := &statsapi.FsStats{Time: metav1.NewTime(time.Unix(0, f.GetTimestamp()))}
	if v := f.GetUsedBytes(); v != nil {
		x := v.GetValue()
		out.UsedBytes = &x
	}
	if v := f.GetInodesUsed(); v != nil {
		x := v.GetValue()
		out.InodesUsed = &x
	}
	return out
}

func (s *Server) serveSummary(w http.ResponseWriter, r *http.Request) {
	sum, err := s.summary(r.Context())
	if err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	if r.URL.Query().Get("only_cpu_and_memory") == "true" {
		sum.Node.Fs, sum.Node.Runtime, sum.Node.Network = nil, nil, nil
		for i := range sum.Pods {
			sum.Pods[i].Network, sum.Pods[i].ProcessStats = nil, nil
			for j := range sum.Pods[i].Containers {
				sum.Pods[i].Containers[j].Rootfs = nil
			}
		}
	}
	writeJSON(w, http.StatusOK, sum)
}

// Descriptions of /metrics/resource, as the kubelet publishes them.
var (
	descNodeCPU     = prometheus.NewDesc("node_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the node in core-seconds", nil, nil)
	descNodeMemory  = prometheus.NewDesc("node_memory_working_set_bytes", "[STABLE] Current working set of the node in bytes", nil, nil)
	descPodCPU      = prometheus.NewDesc("pod_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds", []string{"namespace", "pod"}, nil)
	descPodMemory   = prometheus.NewDesc("pod_memory_working_set_bytes", "[STABLE] Current working set of the pod in bytes", []string{"namespace", "pod"}, nil)
	descCtrCPU      = prometheus.NewDesc("container_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the container in core-seconds", []string{"container", "namespace", "pod"}, nil)
	descCtrMemory   = prometheus.NewDesc("container_memory_working_set_bytes", "[STABLE] Current working set of the container in bytes", []string{"container", "namespace", "pod"}, nil)
	descCtrStart    = prometheus.NewDesc("container_start_time_seconds", "[STABLE] Start time of the container since unix epoch in seconds", []string{"container", "namespace", "pod"}, nil)
	descScrapeError = prometheus.NewDesc("resource_scrape_error", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise", nil, nil)
)

// resourceCollector turns one summary into the resource metrics.
type resourceCollector struct {
	sum *statsapi.Summary
}

func (c resourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeCPU, descNodeMemory, descPodCPU, descPodMemory, descCtrCPU, descCtrMemory, descCtrStart, descScrapeError} {
		ch <- d
	}
}

func (c resourceCollector) Collect(ch chan<- prometheus.Metric) {
	if c.sum == nil {
		ch <- prometheus.MustNewConstMetric(descScrapeError, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(descScrapeError, prometheus.GaugeValue, 0)
	cpu := func(d *prometheus.Desc, st *statsapi.CPUStats, labels ...string) {
		if st != nil && st.UsageCoreNanoSeconds != nil {
			ch <- prometheus.NewMetricWithTimestamp(st.Time.Time, prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(*st.UsageCoreNanoSeconds)/1e9, labels...))
		}
	}
	mem := func(d *prometheus.Desc, st *statsapi.MemoryStats, labels ...string) {
		if st != nil && st.WorkingSetBytes != nil {
			ch <- prometheus.NewMetricWithTimestamp(st.Time.Time, prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(*st.WorkingSetBytes), labels...))
		}
	}
	cpu(descNodeCPU, c.sum.Node.CPU)
	mem(descNodeMemory, c.sum.Node.Memory)
	for _, p := range c.sum.Pods {
		cpu(descPodCPU, p.CPU, p.PodRef.Namespace, p.PodRef.Name)
		mem(descPodMemory, p.Memory, p.PodRef.Namespace, p.PodRef.Name)
		for _, ct := range p.Containers {
			cpu(descCtrCPU, ct.CPU, ct.Name, p.PodRef.Namespace, p.PodRef.Name)
			mem(descCtrMemory, ct.Memory, ct.Name, p.PodRef.Namespace, p.PodRef.Name)
			if ct.CPU != nil {
				ch <- prometheus.NewMetricWithTimestamp(ct.CPU.Time.Time, prometheus.MustNewConstMetric(descCtrStart, prometheus.GaugeValue,
					float64(ct.StartTime.UnixNano())/1e9, ct.Name, p.PodRef.Namespace, p.PodRef.Name))
			}
		}
	}
}

func (s *Server) serveResourceMetrics(w http.ResponseWriter, r *http.Request) {
	sum, err := s.summary(r.Context())
	if err != nil {
		s.log.Info("resource metrics", "err", err)
		sum = nil
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(resourceCollector{sum: sum}); err != nil {
		writeStatus(w, http.StatusInternalServerError, metav1.StatusReasonInternalError, err.Error())
		return
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}
