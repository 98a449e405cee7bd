package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	remotecommandserver "k8s.io/cri-streaming/pkg/streaming/remotecommand"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/auth/pki"
)

var epoch = time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)

// fakePods is a node with a fixed set of pods and containers.
type fakePods struct {
	mu         sync.Mutex
	pods       []*corev1.Pod
	containers map[string]Container // "ns/pod/container" or "ns/pod/container/previous"
}

func (f *fakePods) Pod(ns, name string) (*corev1.Pod, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.pods {
		if p.Namespace == ns && p.Name == name {
			return p, true
		}
	}
	return nil, false
}

func (f *fakePods) Pods() []*corev1.Pod {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*corev1.Pod(nil), f.pods...)
}

func (f *fakePods) Container(_ context.Context, ns, pod, name string, previous bool) (Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := ns + "/" + pod + "/" + name
	if previous {
		key += "/previous"
	}
	c, ok := f.containers[key]
	if !ok {
		return Container{}, fmt.Errorf("%w: no container %s", ErrNotFound, key)
	}
	return c, nil
}

// fakeRuntime is a CRI runtime client over a real CRI streaming server
// whose "containers" run in-process: exec runs a tiny command set,
// attach echoes stdin, port-forward echoes bytes with the port prefixed.
type fakeRuntime struct {
	runtimeapi.RuntimeServiceClient // nil: unexpected calls panic
	stream                          streaming.Server
	states                          map[string]runtimeapi.ContainerState
	sandboxes                       []*runtimeapi.PodSandbox
	containers                      []*runtimeapi.Container
	stats                           []*runtimeapi.PodSandboxStats
}

func (f *fakeRuntime) Exec(_ context.Context, req *runtimeapi.ExecRequest, _ ...grpc.CallOption) (*runtimeapi.ExecResponse, error) {
	return f.stream.GetExec(req)
}

func (f *fakeRuntime) Attach(_ context.Context, req *runtimeapi.AttachRequest, _ ...grpc.CallOption) (*runtimeapi.AttachResponse, error) {
	return f.stream.GetAttach(req)
}

func (f *fakeRuntime) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest, _ ...grpc.CallOption) (*runtimeapi.PortForwardResponse, error) {
	return f.stream.GetPortForward(req)
}

func (f *fakeRuntime) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest, _ ...grpc.CallOption) (*runtimeapi.ContainerStatusResponse, error) {
	st, ok := f.states[req.ContainerId]
	if !ok {
		return nil, status.Error(codes.NotFound, "no such container")
	}
	return &runtimeapi.ContainerStatusResponse{Status: &runtimeapi.ContainerStatus{Id: req.ContainerId, State: st}}, nil
}

func (f *fakeRuntime) ListPodSandbox(_ context.Context, req *runtimeapi.ListPodSandboxRequest, _ ...grpc.CallOption) (*runtimeapi.ListPodSandboxResponse, error) {
	var out []*runtimeapi.PodSandbox
	for _, sb := range f.sandboxes {
		if st := req.GetFilter().GetState(); st != nil && st.State != sb.State {
			continue
		}
		match := true
		for k, v := range req.GetFilter().GetLabelSelector() {
			if sb.Labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, sb)
		}
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

func (f *fakeRuntime) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest, _ ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	var out []*runtimeapi.Container
	for _, c := range f.containers {
		if st := req.GetFilter().GetState(); st != nil && st.State != c.State {
			continue
		}
		out = append(out, c)
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

func (f *fakeRuntime) ListPodSandboxStats(context.Context, *runtimeapi.ListPodSandboxStatsRequest, ...grpc.CallOption) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: f.stats}, nil
}

// streamRuntime is what the CRI streaming server runs.
type streamRuntime struct{}

func (streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	switch cmd[0] {
	case "echo":
		fmt.Fprintln(out, strings.Join(cmd[1:], " "))
	case "cat":
		io.Copy(out, in)
	case "fail":
		fmt.Fprintln(errw, "failing in "+id)
		return exitError{3}
	default:
		return fmt.Errorf("unknown command %q", cmd[0])
	}
	return nil
}

func (streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommandserver.TerminalSize) error {
	fmt.Fprintf(out, "attached to %s\n", id)
	io.Copy(out, in)
	return nil
}

func (streamRuntime) PortForward(ctx context.Context, sandbox string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	fmt.Fprintf(stream, "%s:%d:", sandbox, port)
	buf := make([]byte, 5)
	if _, err := io.ReadFull(stream, buf); err != nil {
		return err
	}
	_, err := stream.Write(buf)
	return err
}

// exitError is how a runtime reports a non-zero exit code to the
// streaming server.
type exitError struct{ code int }

func (e exitError) Error() string   { return fmt.Sprintf("exit status %d", e.code) }
func (e exitError) String() string  { return e.Error() }
func (e exitError) Exited() bool    { return true }
func (e exitError) ExitStatus() int { return e.code }

// newStreamServer runs a CRI streaming server on loopback.
func newStreamServer(t testing.TB) streaming.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = ln.Addr().String()
	srv, err := streaming.NewServer(cfg, streamRuntime{})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return srv
}

// pkiFixture is a cluster CA with client certificates, and a stranger CA.
type pkiFixture struct {
	ca, other *pki.Bundle
}

func newPKI(t testing.TB) *pkiFixture {
	t.Helper()
	ca, err := pki.Ensure(pki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.Ensure(pki.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	return &pkiFixture{ca: ca, other: other}
}

func (p *pkiFixture) client(t testing.TB, ca *pki.Bundle, cn string, groups ...string) *pki.KeyPair {
	t.Helper()
	kp, err := ca.CA.IssueClient(cn, groups)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// testServer is a Server on a real TLS listener.
type testServer struct {
	*Server
	url  string
	pki  *pkiFixture
	pods *fakePods
	rt   *fakeRuntime
	clk  *clocktesting.FakeClock
}

func startServer(t testing.TB, pods *fakePods, rt *fakeRuntime) *testServer {
	t.Helper()
	p := newPKI(t)
	serving, err := p.ca.CA.IssueServing([]string{"localhost"}, []net.IP{net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cert := serving.TLSCertificate()
	clk := clocktesting.NewFakeClock(epoch)
	s, err := New(Config{
		Pods: pods, Runtime: rt, NodeName: "node-1", Address: "127.0.0.1:0",
		Certificate: &cert, ClientCAs: p.ca.CA.Pool(),
		Host: fixedHost{}, Clock: clk,
		FsUsage: func(string) (*statsapi.FsStats, error) { return nil, errors.New("no fs in tests") },
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.TLS = s.TLSConfig()
	hs.StartTLS()
	t.Cleanup(hs.Close)
	return &testServer{Server: s, url: hs.URL, pki: p, pods: pods, rt: rt, clk: clk}
}

// restConfig is a client config for the server with a certificate for
// cn in groups, issued by the cluster CA.
func (ts *testServer) restConfig(t testing.TB, cn string, groups ...string) *rest.Config {
	kp := ts.pki.client(t, ts.pki.ca, cn, groups...)
	return &rest.Config{
		Host: ts.url,
		TLSClientConfig: rest.TLSClientConfig{
			CAData: ts.pki.ca.CA.CertPEM(), CertData: kp.CertPEM, KeyData: kp.KeyPEM,
		},
	}
}

func (ts *testServer) httpClient(t *testing.T, cert *pki.KeyPair) *http.Client {
	tc := &tls.Config{RootCAs: ts.pki.ca.CA.Pool()}
	if cert != nil {
		// Always presented: Go's client would leave out a certificate
		// whose issuer the server does not list, and another CA's is
		// listed only when both CAs were made in the same second (their
		// names hold the time).
		c := cert.TLSCertificate()
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 30 * time.Second}
}

func (ts *testServer) get(t *testing.T, path string) (int, string) {
	t.Helper()
	c := ts.httpClient(t, ts.pki.client(t, ts.pki.ca, DefaultAPIServerUser))
	resp, err := c.Get(ts.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type fixedHost struct{}

func (fixedHost) Usage() (HostUsage, error) {
	return HostUsage{CPU: 100 * time.Second, MemoryTotal: 8 << 30, MemoryAvailable: 6 << 30, Boot: epoch.Add(-time.Hour)}, nil
}

func testPod(name string, uid string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID(uid)}}
}
