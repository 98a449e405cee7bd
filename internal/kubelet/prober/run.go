// Package prober runs the liveness, readiness and startup probes of
// running containers, and the handlers that probes and lifecycle hooks
// share (exec, httpGet, tcpSocket, grpc).
//
// Runner runs one handler once. Manager keeps one worker per probed
// container and kind, on the injected clock:
//
//	container running ──► wait initialDelaySeconds from its start
//	  ──► every periodSeconds: run the handler with timeoutSeconds
//	      └─ successThreshold successes or failureThreshold failures in a
//	         row change the result ──► OnChange(pod UID)
//	liveness and readiness wait for the startup probe to succeed; a
//	failed liveness or startup result holds until the container is
//	replaced; a successful startup probe stops.
//
// Results start as upstream's: readiness Failure, liveness Success,
// startup Unknown.
package prober

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Result is the outcome of a probe.
type Result int

// Results.
const (
	Unknown Result = iota
	Success
	Failure
)

func (r Result) String() string {
	switch r {
	case Success:
		return "success"
	case Failure:
		return "failure"
	}
	return "unknown"
}

// Execer runs a command in a container and waits for it: the CRI's
// ExecSync. A command that ran and exited non-zero is not an error.
type Execer interface {
	ExecSync(ctx context.Context, containerID string, cmd []string, timeout time.Duration) (output []byte, exitCode int32, err error)
}

// ErrTimeout wraps a handler that did not finish within its timeout.
var ErrTimeout = errors.New("timed out")

// Target is what a handler is aimed at.
type Target struct {
	Pod         *corev1.Pod
	Container   *corev1.Container
	ContainerID string
	// PodIP is the default host of httpGet, tcpSocket and grpc handlers.
	PodIP string
}

// Runner runs handlers. The zero value needs Exec set for exec handlers.
type Runner struct {
	Exec Execer
	// UserAgent is sent by httpGet handlers (default "kube-probe/1.37").
	UserAgent string
}

// maxBody is how much of an HTTP response body is read.
const maxBody = 10 << 10

// Probe runs probe's handler once against t and tells whether it passed,
// with its output (or failure message) for events.
func (r *Runner) Probe(ctx context.Context, p *corev1.Probe, t Target) (Result, string) {
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	var err error
	var out string
	switch h := p.ProbeHandler; {
	case h.Exec != nil:
		out, err = r.RunExec(ctx, h.Exec.Command, t, timeout)
	case h.HTTPGet != nil:
		out, err = r.RunHTTPGet(ctx, h.HTTPGet, t, timeout)
	case h.TCPSocket != nil:
		err = r.RunTCP(ctx, h.TCPSocket, t, timeout)
	case h.GRPC != nil:
		out, err = r.RunGRPC(ctx, h.GRPC, t, timeout)
	default:
		return Failure, "probe has no handler"
	}
	if err != nil {
		return Failure, err.Error()
	}
	return Success, out
}

// RunExec runs cmd in the container; a non-zero exit is an error
// carrying the output.
func (r *Runner) RunExec(ctx context.Context, cmd []string, t Target, timeout time.Duration) (string, error) {
	if r.Exec == nil {
		return "", errors.New("exec handlers are not supported")
	}
	out, code, err := r.Exec.ExecSync(ctx, t.ContainerID, cmd, timeout)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
			return "", fmt.Errorf("command %q timed out", strings.Join(cmd, " "))
		}
		return "", err
	}
	if code != 0 {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = fmt.Sprintf("command %q exited with %d", strings.Join(cmd, " "), code)
		}
		return "", errors.New(msg)
	}
	return string(out), nil
}

// resolvePort turns a port number or a container port's name into a
// number.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port %d", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	if c != nil {
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return int(cp.ContainerPort), nil
			}
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil && n > 0 && n <= 65535 {
		return n, nil
	}
	return 0, fmt.Errorf("port %q not found in container", p.StrVal)
}

// RunHTTPGet sends the GET; a status from 200 to 399 passes.
func (r *Runner) RunHTTPGet(ctx context.Context, g *corev1.HTTPGetAction, t Target, timeout time.Duration) (string, error) {
	port, err := resolvePort(g.Port, t.Container)
	if err != nil {
		return "", err
	}
	host := g.Host
	if host == "" {
		host = t.PodIP
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if path == "" {
		path = "/"
	}
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/")
	if err != nil {
		return "", err
	}
	ref, err := url.Parse(path)
	if err != nil {
		return "", err
	}
	u = u.ResolveReference(ref)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	ua := r.UserAgent
	if ua == "" {
		ua = "kube-probe/1.37"
	}
	req.Header.Set("User-Agent", ua)
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			Proxy:             nil,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			if req.URL.Hostname() != via[0].URL.Hostname() {
				// Upstream does not follow a redirect to another host: the
				// redirect itself counts as success.
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("Get %q: context deadline exceeded (Client.Timeout exceeded while awaiting headers)", u.String())
		}
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return string(body), nil
	}
	return "", fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
}

// RunTCP opens and closes a connection.
func (r *Runner) RunTCP(ctx context.Context, s *corev1.TCPSocketAction, t Target, timeout time.Duration) error {
	port, err := resolvePort(s.Port, t.Container)
	if err != nil {
		return err
	}
	host := s.Host
	if host == "" {
		host = t.PodIP
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return conn.Close()
}

// RunGRPC calls the gRPC health service; SERVING passes.
func (r *Runner) RunGRPC(ctx context.Context, g *corev1.GRPCAction, t Target, timeout time.Duration) (string, error) {
	addr := net.JoinHostPort(t.PodIP, strconv.Itoa(int(g.Port)))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent("kube-probe/1.37"))
	if err != nil {
		return "", fmt.Errorf("failed to connect service %q: %w", addr, err)
	}
	defer conn.Close()
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("timeout: health rpc did not complete within %v", timeout)
		}
		return "", fmt.Errorf("error: health rpc probe failed: %w", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return "", fmt.Errorf("service unhealthy (responded with %q)", resp.GetStatus().String())
	}
	return fmt.Sprintf("service healthy"), nil
}

// trimOutput shortens handler output for events.
func trimOutput(s string) string {
	s = string(bytes.TrimSpace([]byte(s)))
	if len(s) > 1024 {
		s = s[:1024] + "..."
	}
	return s
}
