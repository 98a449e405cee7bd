package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	statsv1alpha1 "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// metricsGV is the resource metrics API kubectl top reads. skiff serves
// it itself, from the kubelets' /stats/summary, instead of through an
// aggregated metrics-server.
var metricsGV = metricsv1beta1.SchemeGroupVersion

// metricsAPIResources is what discovery lists for metrics.k8s.io.
func metricsAPIResources() []metav1.APIResource {
	return []metav1.APIResource{
		{Name: "nodes", SingularName: "", Namespaced: false, Kind: "NodeMetrics", Verbs: []string{"get", "list"}},
		{Name: "pods", SingularName: "", Namespaced: true, Kind: "PodMetrics", Verbs: []string{"get", "list"}},
	}
}

// metricsWindow is the window kubelets compute usage rates over.
const metricsWindow = 10 * time.Second

// serveMetricsAPI answers GET on metrics.k8s.io/v1beta1 nodes and pods.
func (s *Server) serveMetricsAPI(w http.ResponseWriter, r *http.Request, info requestInfo) {
	gr := schema.GroupResource{Group: metricsGV.Group, Resource: info.Resource}
	if info.Resource != "nodes" && info.Resource != "pods" || info.Subresource != "" {
		s.writeError(w, r, errNotFoundResource(), gr, "")
		return
	}
	if info.Verb != "get" && info.Verb != "list" {
		s.writeError(w, r, errMethodNotSupported(gr, info.Verb), gr, info.Name)
		return
	}
	if info.Resource == "nodes" && info.Namespace != "" {
		s.writeError(w, r, errNotFoundResource(), gr, "")
		return
	}
	if s.kubelets == nil {
		s.writeError(w, r, apierrors.NewServiceUnavailable("resource metrics need a kubelet client, which this API server does not have"), gr, "")
		return
	}
	sel := labels.Everything()
	if ls := r.URL.Query().Get("labelSelector"); ls != "" {
		var err error
		if sel, err = labels.Parse(ls); err != nil {
			s.writeError(w, r, apierrors.NewBadRequest(err.Error()), gr, "")
			return
		}
	}
	summaries := s.kubeletSummaries(r.Context())
	var out runtime.Object
	switch info.Resource {
	case "nodes":
		list := &metricsv1beta1.NodeMetricsList{TypeMeta: metav1.TypeMeta{APIVersion: metricsGV.String(), Kind: "NodeMetricsList"}}
		for _, obj := range s.LookupAll(corev1.SchemeGroupVersion.WithResource("nodes")) {
			node := obj.(*corev1.Node)
			sum, ok := summaries[node.Name]
			if !ok || (info.Name != "" && node.Name != info.Name) || !sel.Matches(labels.Set(node.Labels)) {
				continue
			}
			if nm, ok := nodeMetrics(node, sum); ok {
				list.Items = append(list.Items, nm)
			}
		}
		out = list
		if info.Name != "" {
			if len(list.Items) == 0 {
				s.writeError(w, r, apierrors.NewNotFound(gr, info.Name), gr, info.Name)
				return
			}
			nm := list.Items[0]
			nm.TypeMeta = metav1.TypeMeta{APIVersion: metricsGV.String(), Kind: "NodeMetrics"}
			out = &nm
		}
	case "pods":
		list := &metricsv1beta1.PodMetricsList{TypeMeta: metav1.TypeMeta{APIVersion: metricsGV.String(), Kind: "PodMetricsList"}}
		for _, sum := range summaries {
			for _, ps := range sum.Pods {
				if info.Namespace != "" && ps.PodRef.Namespace != info.Namespace || info.Name != "" && ps.PodRef.Name != info.Name {
					continue
				}
				obj, ok := s.Lookup(corev1.SchemeGroupVersion.WithResource("pods"), ps.PodRef.Namespace, ps.PodRef.Name)
				if !ok || string(obj.(*corev1.Pod).UID) != ps.PodRef.UID || !sel.Matches(labels.Set(obj.(*corev1.Pod).Labels)) {
					continue
				}
				if pm, ok := podMetrics(obj.(*corev1.Pod), ps); ok {
					list.Items = append(list.Items, pm)
				}
			}
		}
		sort.Slice(list.Items, func(i, j int) bool {
			a, b := list.Items[i], list.Items[j]
			return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
		})
		out = list
		if info.Name != "" {
			if len(list.Items) == 0 {
				s.writeError(w, r, apierrors.NewNotFound(gr, info.Name), gr, info.Name)
				return
			}
			pm := list.Items[0]
			pm.TypeMeta = metav1.TypeMeta{APIVersion: metricsGV.String(), Kind: "PodMetrics"}
			out = &pm
		}
	}
	data, err := json.Marshal(out)
	if err != nil {
		s.writeError(w, r, err, gr, "")
		return
	}
	w.Header().Set("Content-Type", mediaJSON)
	w.WriteHeader(http.StatusOK)
	w.Write(data)
}

func nodeMetrics(node *corev1.Node, sum *statsv1alpha1.Summary) (metricsv1beta1.NodeMetrics, bool) {
	cpu, mem := sum.Node.CPU, sum.Node.Memory
	if cpu == nil || mem == nil || cpu.UsageNanoCores == nil || mem.WorkingSetBytes == nil {
		return metricsv1beta1.NodeMetrics{}, false
	}
	return metricsv1beta1.NodeMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, Labels: node.Labels, CreationTimestamp: metav1.NewTime(time.Now().Truncate(time.Second))},
		Timestamp:  cpu.Time,
		Window:     metav1.Duration{Duration: metricsWindow},
		Usage:      usage(*cpu.UsageNanoCores, *mem.WorkingSetBytes),
	}, true
}

func podMetrics(pod *corev1.Pod, ps statsv1alpha1.PodStats) (metricsv1beta1.PodMetrics, bool) {
	pm := metricsv1beta1.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, Labels: pod.Labels, CreationTimestamp: metav1.NewTime(time.Now().Truncate(time.Second))},
		Window:     metav1.Duration{Duration: metricsWindow},
	}
	for _, c := range ps.Containers {
		if c.CPU == nil || c.Memory == nil || c.CPU.UsageNanoCores == nil || c.Memory.WorkingSetBytes == nil {
			continue
		}
		pm.Timestamp = c.CPU.Time
		pm.Containers = append(pm.Containers, metricsv1beta1.ContainerMetrics{Name: c.Name, Usage: usage(*c.CPU.UsageNanoCores, *c.Memory.WorkingSetBytes)})
	}
	return pm, len(pm.Containers) > 0
}

func usage(nanoCores, workingSet uint64) corev1.ResourceList {
	return corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewScaledQuantity(int64(nanoCores), resource.Nano),
		corev1.ResourceMemory: *resource.NewQuantity(int64(workingSet), resource.BinarySI),
	}
}

// kubeletSummaries fetches /stats/summary from every node's kubelet in
// parallel; nodes that do not answer within 5 s are left out, as
// metrics-server leaves them out.
func (s *Server) kubeletSummaries(ctx context.Context) map[string]*statsv1alpha1.Summary {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		out = map[string]*statsv1alpha1.Summary{}
		wg  sync.WaitGroup
	)
	for _, obj := range s.LookupAll(corev1.SchemeGroupVersion.WithResource("nodes")) {
		node := obj.(*corev1.Node)
		addr, err := s.kubelets.nodeAddress(node)
		if err != nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sum, err := s.fetchSummary(ctx, addr)
			if err != nil {
				s.log.Debug("kubelet summary", "node", node.Name, "err", err)
				return
			}
			mu.Lock()
			out[node.Name] = sum
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (s *Server) fetchSummary(ctx context.Context, addr string) (*statsv1alpha1.Summary, error) {
	u := url.URL{Scheme: "https", Host: addr, Path: "/stats/summary", RawQuery: "only_cpu_and_memory=true"}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.kubelets.transport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u.String(), resp.Status)
	}
	var sum statsv1alpha1.Summary
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&sum); err != nil {
		return nil, fmt.Errorf("decode summary from %s: %w", addr, err)
	}
	return &sum, nil
}
