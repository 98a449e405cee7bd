package endpoints_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/controller/endpoints"
	"github.com/skiff-sh/skiff/internal/testserver"
)

// TestController_FollowsPods runs the controller against the real API
// server: Endpoints appear for a Service, follow its pods' readiness and
// deletion, and go with the Service.
func TestController_FollowsPods(t *testing.T) {
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := endpoints.New(endpoints.Config{Client: client, Informers: factory})
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

	if _, err := client.CoreV1().Services("default").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
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
	for i, name := range []string{"web-a", "web-b"} {
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

	// summary renders an Endpoints object as "ready=[...] notReady=[...] ports=[...]".
	summary := func(ep *corev1.Endpoints) string {
		var ready, notReady []string
		var ports []string
		for _, ss := range ep.Subsets {
			for _, a := range ss.Addresses {
				ready = append(ready, a.IP)
			}
			for _, a := range ss.NotReadyAddresses {
				notReady = append(notReady, a.IP)
			}
			for _, p := range ss.Ports {
				ports = append(ports, fmt.Sprintf("%s:%d", p.Name, p.Port))
			}
		}
		return fmt.Sprintf("ready=%v notReady=%v ports=%v", ready, notReady, ports)
	}
	waitFor := func(want string) {
		t.Helper()
		var last string
		err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			ep, err := client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			last = summary(ep)
			return last == want, nil
		})
		if err != nil {
			t.Fatalf("endpoints: got %s, want %s", last, want)
		}
	}

	waitFor("ready=[10.42.0.1 10.42.0.2] notReady=[] ports=[http:8080]")
	setStatus("web-b", "10.42.0.2", corev1.ConditionFalse)
	waitFor("ready=[10.42.0.1] notReady=[10.42.0.2] ports=[http:8080]")
	if err := client.CoreV1().Pods("default").Delete(ctx, "web-a", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	waitFor("ready=[] notReady=[10.42.0.2] ports=[http:8080]")

	if err := client.CoreV1().Services("default").Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().Endpoints("default").Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	if err != nil {
		t.Fatalf("endpoints of the deleted service remain: %v", err)
	}
}
