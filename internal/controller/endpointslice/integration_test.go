package endpointslice_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/controller/endpointslice"
	"github.com/skiff-sh/skiff/internal/testserver"
)

// TestController_AgainstAPIServer runs the controller against the real API
// server: slices follow the pods, a sync of a settled Service writes
// nothing (the stored form round-trips), and slices go with the Service.
func TestController_AgainstAPIServer(t *testing.T) {
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := endpointslice.New(endpointslice.Config{Client: client, Informers: factory, MaxEndpointsPerSlice: 2})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})

	if _, err := client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name: "node-1", Labels: map[string]string{corev1.LabelTopologyZone: "zone-a"},
	}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"team": "a"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	setStatus := func(name, ip string, ready corev1.ConditionStatus) {
		t.Helper()
		p, err := client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodRunning
		p.Status.PodIP, p.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}
		if _, err := client.CoreV1().Pods("default").UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		if _, err := client.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "web"}},
			Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{
				Name: "app", Image: "app", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			}}},
		}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		setStatus(name, fmt.Sprintf("10.42.0.%d", i+1), corev1.ConditionTrue)
	}

	// summary lists "ip:port ready zone" over all slices, sorted, plus the
	// slice count.
	summary := func() (string, []discoveryv1.EndpointSlice) {
		list, err := client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return err.Error(), nil
		}
		var eps []string
		for _, s := range list.Items {
			for _, ep := range s.Endpoints {
				for _, p := range s.Ports {
					zone := ""
					if ep.Zone != nil {
						zone = *ep.Zone
					}
					eps = append(eps, fmt.Sprintf("%s:%d ready=%v zone=%s", ep.Addresses[0], *p.Port, *ep.Conditions.Ready, zone))
				}
			}
		}
		slices.Sort(eps)
		return fmt.Sprintf("%d slices: %s", len(list.Items), strings.Join(eps, ", ")), list.Items
	}
	waitFor := func(want string) []discoveryv1.EndpointSlice {
		t.Helper()
		var last string
		var items []discoveryv1.EndpointSlice
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
			last, items = summary()
			return last == want, nil
		})
		if err != nil {
			t.Fatalf("slices: got %q, want %q", last, want)
		}
		return items
	}

	waitFor("2 slices: 10.42.0.1:8080 ready=true zone=zone-a, 10.42.0.2:8080 ready=true zone=zone-a, 10.42.0.3:8080 ready=true zone=zone-a")
	setStatus("web-1", "10.42.0.2", corev1.ConditionFalse)
	items := waitFor("2 slices: 10.42.0.1:8080 ready=true zone=zone-a, 10.42.0.2:8080 ready=false zone=zone-a, 10.42.0.3:8080 ready=true zone=zone-a")

	// Once the cache holds what the API holds, a sync writes nothing.
	rvs := map[string]string{}
	for _, s := range items {
		rvs[s.Name] = s.ResourceVersion
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		cached, err := endpointslice.CachedSlices(c, "default", "web")
		if err != nil || len(cached) != len(rvs) {
			return false, nil
		}
		for _, s := range cached {
			if rvs[s.Name] != s.ResourceVersion {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("cache never caught up: %v", err)
	}
	if err := endpointslice.SyncNow(ctx, c, "default/web"); err != nil {
		t.Fatalf("sync of a settled service: %v", err)
	}
	_, after := summary()
	for _, s := range after {
		if rvs[s.Name] != s.ResourceVersion {
			t.Errorf("sync of a settled service rewrote slice %s", s.Name)
		}
	}

	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor("0 slices: ")
}

// TestMirror_AgainstAPIServer mirrors hand-written Endpoints of a
// selector-less Service, and leaves the API server's own (skip-mirror)
// kubernetes Endpoints alone.
func TestMirror_AgainstAPIServer(t *testing.T) {
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	factory := informers.NewSharedInformerFactory(client, 0)
	m, err := endpointslice.NewMirror(endpointslice.Config{Client: client, Informers: factory})
	if err != nil {
		t.Fatal(err)
	}
	factory.Start(ctx.Done())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})

	if _, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "pg", Port: 5432}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.CoreV1().Endpoints("default").Create(ctx, &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "db"},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: "192.0.2.10"}},
			Ports:     []corev1.EndpointPort{{Name: "pg", Port: 5432, Protocol: corev1.ProtocolTCP}},
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mirroredFor := func(svc string) string {
		list, err := client.DiscoveryV1().EndpointSlices("default").List(ctx, metav1.ListOptions{
			LabelSelector: discoveryv1.LabelServiceName + "=" + svc + "," + discoveryv1.LabelManagedBy + "=" + endpointslice.MirrorManagedBy,
		})
		if err != nil {
			return err.Error()
		}
		var out []string
		for _, s := range list.Items {
			for _, ep := range s.Endpoints {
				for _, p := range s.Ports {
					out = append(out, fmt.Sprintf("%s:%d ready=%v", ep.Addresses[0], *p.Port, *ep.Conditions.Ready))
				}
			}
		}
		slices.Sort(out)
		return strings.Join(out, ", ")
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		last = mirroredFor("db")
		return last == "192.0.2.10:5432 ready=true", nil
	})
	if err != nil {
		t.Fatalf("mirrored slices of db: %q", last)
	}
	if got := mirroredFor("kubernetes"); got != "" {
		t.Errorf("the skip-mirror kubernetes Endpoints were mirrored: %s", got)
	}
}
