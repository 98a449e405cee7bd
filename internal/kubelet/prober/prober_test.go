package prober

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	testingclock "k8s.io/utils/clock/testing"
)

// execer answers ExecSync from a function.
type execer func(cmd []string) ([]byte, int32, error)

func (e execer) ExecSync(_ context.Context, _ string, cmd []string, _ time.Duration) ([]byte, int32, error) {
	return e(cmd)
}

func target(port int) Target {
	c := &corev1.Container{Name: "app", Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u1"}, Spec: corev1.PodSpec{Containers: []corev1.Container{*c}}}
	return Target{Pod: pod, Container: &pod.Spec.Containers[0], ContainerID: "c1", PodIP: "127.0.0.1"}
}

func TestRunner_HTTPGet(t *testing.T) {
	var gotUA, gotHost string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUA, gotHost = r.UserAgent(), r.Host
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("fine"))
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/elsewhere":
			http.Redirect(w, r, "http://192.0.2.1/", http.StatusFound)
		case "/slow":
			time.Sleep(3 * time.Second)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name    string
		get     corev1.HTTPGetAction
		want    Result
		wantMsg string
	}{
		{"200Passes", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(int32(port))}, Success, "fine"},
		{"NamedPort", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("web")}, Success, "fine"},
		{"RedirectFollowed", corev1.HTTPGetAction{Path: "/redirect", Port: intstr.FromInt32(int32(port))}, Success, "fine"},
		{"RedirectToAnotherHostPasses", corev1.HTTPGetAction{Path: "/elsewhere", Port: intstr.FromInt32(int32(port))}, Success, ""},
		{"500Fails", corev1.HTTPGetAction{Path: "/bad", Port: intstr.FromInt32(int32(port))}, Failure, "HTTP probe failed with statuscode: 500"},
		{"TimeoutFails", corev1.HTTPGetAction{Path: "/slow", Port: intstr.FromInt32(int32(port))}, Failure, "context deadline exceeded"},
		{"UnknownNamedPortFails", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromString("nope")}, Failure, `port "nope" not found`},
		{"HostHeader", corev1.HTTPGetAction{Path: "/ok", Port: intstr.FromInt32(int32(port)), HTTPHeaders: []corev1.HTTPHeader{{Name: "Host", Value: "example.test"}}}, Success, "fine"},
	}
	r := &Runner{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			get := tt.get
			p := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &get}, TimeoutSeconds: 1}
			got, msg := r.Probe(context.Background(), p, target(port))
			if got != tt.want || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("Probe = %s %q, want %s containing %q", got, msg, tt.want, tt.wantMsg)
			}
		})
	}
	if !strings.HasPrefix(gotUA, "kube-probe/") {
		t.Errorf("User-Agent = %q", gotUA)
	}
	if gotHost != "example.test" && gotHost != "127.0.0.1:"+strconv.Itoa(port) {
		t.Errorf("Host = %q", gotHost)
	}
}

func TestRunner_TCPExecGRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	open := ln.Addr().(*net.TCPAddr).Port
	gs := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("down", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(ln)
	defer gs.Stop()
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()

	r := &Runner{Exec: execer(func(cmd []string) ([]byte, int32, error) {
		switch cmd[0] {
		case "ok":
			return []byte("yes"), 0, nil
		case "fail":
			return []byte("nope\n"), 1, nil
		case "silent":
			return nil, 2, nil
		}
		return nil, 0, ErrTimeout
	})}
	down := "down"
	tests := []struct {
		name    string
		h       corev1.ProbeHandler
		want    Result
		wantMsg string
	}{
		{"TCPOpen", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(open))}}, Success, ""},
		{"TCPClosed", corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(closedPort))}}, Failure, "connection refused"},
		{"ExecZero", corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"ok"}}}, Success, "yes"},
		{"ExecNonZeroGivesOutput", corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"fail"}}}, Failure, "nope"},
		{"ExecNonZeroWithoutOutput", corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"silent"}}}, Failure, `command "silent" exited with 2`},
		{"ExecTimeout", corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"hang"}}}, Failure, "timed out"},
		{"GRPCServing", corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(open)}}, Success, ""},
		{"GRPCNotServing", corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: int32(open), Service: &down}}, Failure, "NOT_SERVING"},
		{"NoHandler", corev1.ProbeHandler{}, Failure, "no handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := r.Probe(context.Background(), &corev1.Probe{ProbeHandler: tt.h, TimeoutSeconds: 2}, target(open))
			if got != tt.want || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("Probe = %s %q, want %s containing %q", got, msg, tt.want, tt.wantMsg)
			}
		})
	}
}

// switchExec passes or fails as told.
type switchExec struct {
	mu   sync.Mutex
	pass bool
	runs int
}

func (s *switchExec) ExecSync(context.Context, string, []string, time.Duration) ([]byte, int32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs++
	if s.pass {
		return nil, 0, nil
	}
	return []byte("not yet"), 1, nil
}

func (s *switchExec) set(pass bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pass = pass
}

func (s *switchExec) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs
}

func TestManager_ThresholdsOnTheInjectedClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := testingclock.NewFakeClock(start)
	ex := &switchExec{}
	changes := make(chan types.UID, 16)
	var failures int
	var fmu sync.Mutex
	m, err := NewManager(Config{
		Runner:   &Runner{Exec: ex},
		Clock:    clk,
		OnChange: func(uid types.UID) { changes <- uid },
		OnFailure: func(*corev1.Pod, string, Kind, string) {
			fmu.Lock()
			failures++
			fmu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Stop()
	pod := target(0).Pod
	pod.Spec.Containers[0].ReadinessProbe = &corev1.Probe{
		ProbeHandler:        corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"check"}}},
		InitialDelaySeconds: 5, PeriodSeconds: 2, SuccessThreshold: 2, FailureThreshold: 1,
	}
	m.Sync(pod, []Running{{Name: "app", ID: "c1", StartedAt: start}}, "10.0.0.1")
	if r, ok := m.Result("c1", Readiness); !ok || r != Failure {
		t.Fatalf("initial readiness = %s %v, want failure", r, ok)
	}
	// Nothing runs during the initial delay.
	waitFor(t, func() bool { return clk.HasWaiters() })
	if n := ex.count(); n != 0 {
		t.Fatalf("%d probes before the initial delay", n)
	}
	ex.set(true)
	clk.Step(5 * time.Second) // first probe: one success of two
	waitFor(t, func() bool { return ex.count() == 1 })
	if r, _ := m.Result("c1", Readiness); r != Failure {
		t.Fatalf("ready after one success of the two needed")
	}
	waitFor(t, func() bool { return clk.HasWaiters() })
	clk.Step(2 * time.Second)
	if uid := <-changes; uid != "u1" {
		t.Fatalf("change for %s", uid)
	}
	if r, _ := m.Result("c1", Readiness); r != Success {
		t.Fatalf("not ready after two successes")
	}
	ex.set(false)
	waitFor(t, func() bool { return clk.HasWaiters() })
	clk.Step(2 * time.Second)
	<-changes
	if r, _ := m.Result("c1", Readiness); r != Failure {
		t.Fatalf("still ready after a failure (threshold 1)")
	}
	fmu.Lock()
	if failures != 1 {
		t.Errorf("%d failure reports, want 1", failures)
	}
	fmu.Unlock()
	// The container went away: its results go too.
	m.Sync(pod, nil, "")
	if _, ok := m.Result("c1", Readiness); ok {
		t.Error("result kept for a container that no longer runs")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never met")
		}
		time.Sleep(time.Millisecond)
	}
}
