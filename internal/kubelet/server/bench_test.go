package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/utils/clock"
)

// BenchmarkLogRead reads a 16 MB CRI log (lines of 100 bytes) through the
// log reader, against io.Copy of the same file as the peer: the ratio is
// the cost of parsing the CRI format.
func BenchmarkLogRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "0.log")
	var buf bytes.Buffer
	line := bytes.Repeat([]byte("x"), 64)
	for buf.Len() < 16<<20 {
		fmt.Fprintf(&buf, "2026-01-02T15:04:05.123456789Z stdout F %s\n", line)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(buf.Len()))
	var reader, peer []time.Duration
	for b.Loop() {
		f, _ := os.Open(path)
		start := time.Now()
		lr := &logReader{path: path, opts: logOptions{tail: -1}, clock: clock.RealClock{}}
		if err := lr.copy(context.Background(), f, io.Discard); err != nil {
			b.Fatal(err)
		}
		reader = append(reader, time.Since(start))
		f.Seek(0, io.SeekStart)
		start = time.Now()
		io.Copy(io.Discard, f)
		peer = append(peer, time.Since(start))
		f.Close()
	}
	report(b, "reader", reader, "io.Copy", peer)
}

// BenchmarkExec runs "echo" through the kubelet API (SPDY, TLS, client
// certificate, proxy to the runtime's streaming server) against the same
// exec sent straight to the streaming server as the peer: the ratio is
// the cost of the kubelet hop.
func BenchmarkExec(b *testing.B) {
	ts := newFixture(b)
	cfg := ts.restConfig(b, DefaultAPIServerUser)
	viaKubelet, _ := url.Parse(ts.url + "/exec/default/web/main?command=echo&command=hi&stdout=1")
	run := func(cfg *rest.Config, u *url.URL) time.Duration {
		start := time.Now()
		ex, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		if err := ex.StreamWithContext(context.Background(), remotecommand.StreamOptions{Stdout: &out}); err != nil || out.String() != "hi\n" {
			b.Fatalf("exec: %q, %v", out.String(), err)
		}
		return time.Since(start)
	}
	var kubelet, direct []time.Duration
	for b.Loop() {
		kubelet = append(kubelet, run(cfg, viaKubelet))
		resp, err := ts.rt.stream.GetExec(&runtimeapi.ExecRequest{ContainerId: "ctr-main", Cmd: []string{"echo", "hi"}, Stdout: true})
		if err != nil {
			b.Fatal(err)
		}
		u, _ := url.Parse(resp.Url)
		direct = append(direct, run(&rest.Config{Host: u.Scheme + "://" + u.Host}, u))
	}
	report(b, "kubelet", kubelet, "direct", direct)
}

// report prints the medians of a measurement and its peer and their
// ratio, and records them as benchmark metrics.
func report(b *testing.B, name string, got []time.Duration, peerName string, peer []time.Duration) {
	med := func(d []time.Duration) time.Duration {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	m, p := med(got), med(peer)
	b.ReportMetric(float64(m.Nanoseconds()), name+"-median-ns")
	b.ReportMetric(float64(p.Nanoseconds()), peerName+"-median-ns")
	b.ReportMetric(float64(m)/float64(p), "ratio")
}
