package cni_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/network/cni"
	"github.com/skiff-sh/skiff/internal/network/cni/cnitest"
	"github.com/skiff-sh/skiff/internal/sys/ns"
	"github.com/skiff-sh/skiff/internal/testutil"
)

// recordPlugin builds the record plugin (testdata/record) into a
// temporary directory of t and returns the directory.
func recordPlugin(t *testing.T) string {
	t.Helper()
	return buildRecord(t, t.TempDir())
}

func buildRecord(t *testing.T, dir string) string {
	t.Helper()
	if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "record"), "./testdata/record").CombinedOutput(); err != nil {
		t.Fatalf("build the record plugin: %v\n%s", err, out)
	}
	return dir
}

// referencePluginDir returns a directory holding the reference bridge,
// host-local and portmap, and the record plugin.
func referencePluginDir(t *testing.T) string {
	t.Helper()
	return buildRecord(t, cnitest.Plugins(t))
}

// newNetNS makes a network namespace with loopback up, removed when the
// test ends (with every link inside).
func newNetNS(t *testing.T) string {
	t.Helper()
	paths, err := ns.Pin(t.TempDir(), []ns.Type{ns.Net}, ns.LoopbackUp)
	if err != nil {
		t.Fatalf("make network namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := ns.Unpin(paths[ns.Net]); err != nil {
			t.Errorf("remove network namespace: %v", err)
		}
	})
	return paths[ns.Net]
}

func handleIn(t *testing.T, path string) *netlink.Handle {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, err := netlink.NewHandleAt(netns.NsHandle(f.Fd()), unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// env is a test node: a "host" namespace the plugins run in, a
// configuration directory, and the files the plugins write.
type env struct {
	host     string
	confDir  string
	ipamDir  string
	calls    string
	net      *cni.Network
	binDir   string
	cacheDir string
}

func newEnv(t *testing.T, binDir string) *env {
	t.Helper()
	testutil.RequireRoot(t)
	tmp := t.TempDir()
	e := &env{host: newNetNS(t), confDir: filepath.Join(tmp, "net.d"), ipamDir: filepath.Join(tmp, "ipam"),
		calls: filepath.Join(tmp, "calls"), binDir: binDir, cacheDir: filepath.Join(tmp, "cache")}
	if err := os.MkdirAll(e.confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.start(t)
	return e
}

// start makes the Network (again).
func (e *env) start(t *testing.T) {
	t.Helper()
	n, err := cni.New(cni.Config{BinDirs: []string{e.binDir}, ConfDir: e.confDir, CacheDir: e.cacheDir, HostNetNS: e.host, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.net = n
}

func (e *env) writeConf(t *testing.T, name, text string) {
	t.Helper()
	text = strings.NewReplacer("IPAMDIR", e.ipamDir, "CALLS", e.calls).Replace(text)
	if err := os.WriteFile(filepath.Join(e.confDir, name), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// recordedCall is a line the record plugin wrote.
type recordedCall struct {
	Command       string          `json:"command"`
	ContainerID   string          `json:"containerID"`
	NetNS         string          `json:"netns"`
	IfName        string          `json:"ifName"`
	Args          string          `json:"args"`
	RuntimeConfig json.RawMessage `json:"runtimeConfig"`
}

func (e *env) recorded(t *testing.T) []recordedCall {
	t.Helper()
	f, err := os.Open(e.calls)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []recordedCall
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c recordedCall
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

const bridgeConf = `{
  "cniVersion": "1.0.0",
  "name": "skiff-test",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true,
     "ipam": {"type": "host-local", "dataDir": "IPAMDIR", "ranges": [[{"subnet": "10.88.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "record", "file": "CALLS", "capabilities": {"portMappings": true}}
  ]
}`

func pod(name string, ports ...cni.PortMapping) cni.Pod {
	return cni.Pod{Namespace: "default", Name: name, UID: "uid-" + name, SandboxID: "sandbox-" + name, Ports: ports}
}

func TestNetwork_BridgeAndHostLocal(t *testing.T) {
	e := newEnv(t, referencePluginDir(t))
	e.writeConf(t, "10-skiff.conflist", bridgeConf)
	// Later by name: never used.
	e.writeConf(t, "20-other.conflist", `{"cniVersion": "1.0.0", "name": "other", "plugins": [{"type": "no-such-plugin"}]}`)
	e.writeConf(t, "notes.txt", "not a configuration")
	ctx := context.Background()
	ports := []cni.PortMapping{{HostPort: 18080, ContainerPort: 8080, Protocol: "tcp"}, {HostPort: 5353, ContainerPort: 53, Protocol: "udp", HostIP: "192.0.2.1"}}
	a := pod("a", ports...)
	a.NetNS = newNetNS(t)
	b := pod("b")
	b.NetNS = newNetNS(t)

	resA, err := e.net.Setup(ctx, a)
	if err != nil {
		t.Fatalf("Setup a: %v", err)
	}
	resB, err := e.net.Setup(ctx, b)
	if err != nil {
		t.Fatalf("Setup b: %v", err)
	}
	want := cni.Result{IPs: []netip.Prefix{netip.MustParsePrefix("10.88.0.2/24")}, Network: "skiff-test"}
	if diff := cmp.Diff(want, resA, cmp.Comparer(func(x, y netip.Prefix) bool { return x == y })); diff != "" {
		t.Errorf("Setup a (-want +got):\n%s", diff)
	}
	ipA, ipB := resA.IPs[0].Addr(), resB.IPs[0].Addr()

	t.Run("the plugins made the interfaces", func(t *testing.T) {
		eth, err := handleIn(t, a.NetNS).LinkByName(cni.IfName)
		if err != nil {
			t.Fatalf("pod a has no %s: %v", cni.IfName, err)
		}
		addrs, _ := handleIn(t, a.NetNS).AddrList(eth, netlink.FAMILY_V4)
		if len(addrs) != 1 || addrs[0].IPNet.String() != "10.88.0.2/24" {
			t.Errorf("pod a's addresses = %v", addrs)
		}
		if _, err := handleIn(t, e.host).LinkByName("cni0"); err != nil {
			t.Errorf("no bridge in the host namespace: %v", err)
		}
	})
	t.Run("pods reach each other and the host", func(t *testing.T) {
		serve(t, b.NetNS, ipB.String()+":8080")
		if seen, err := dial(a.NetNS, ipB.String()+":8080"); err != nil || seen != ipA {
			t.Errorf("pod a to pod b: saw %s, %v", seen, err)
		}
		serve(t, e.host, "10.88.0.1:8081")
		if _, err := dial(b.NetNS, "10.88.0.1:8081"); err != nil {
			t.Errorf("pod b to the host: %v", err)
		}
	})
	t.Run("the plugins got the pod's arguments and ports", func(t *testing.T) {
		calls := e.recorded(t)
		if len(calls) != 2 {
			t.Fatalf("calls = %+v, want two ADDs", calls)
		}
		c := calls[0]
		if c.Command != "ADD" || c.ContainerID != "sandbox-a" || c.NetNS != a.NetNS || c.IfName != "eth0" {
			t.Errorf("ADD of pod a: %+v", c)
		}
		if want := "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=a;K8S_POD_INFRA_CONTAINER_ID=sandbox-a;K8S_POD_UID=uid-a"; c.Args != want {
			t.Errorf("CNI_ARGS = %q, want %q", c.Args, want)
		}
		if got := portMappingsOf(t, c); !cmp.Equal(got, ports) {
			t.Errorf("portMappings = %+v, want %+v", got, ports)
		}
		if got := portMappingsOf(t, calls[1]); len(got) != 0 {
			t.Errorf("pod b without hostPorts got portMappings %+v", got)
		}
	})
	t.Run("Setup again returns the cached result without a second ADD", func(t *testing.T) {
		e.start(t) // as a restarted agent
		again, err := e.net.Setup(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if again.IPs[0] != resA.IPs[0] {
			t.Errorf("second Setup = %v, want %v", again.IPs, resA.IPs)
		}
		if n := len(e.recorded(t)); n != 2 {
			t.Errorf("%d plugin calls, want still 2", n)
		}
	})
	t.Run("Teardown deletes with the ADD's ports and frees the address", func(t *testing.T) {
		if err := e.net.Teardown(ctx, a.SandboxID, a.NetNS); err != nil {
			t.Fatal(err)
		}
		calls := e.recorded(t)
		del := calls[len(calls)-1]
		if del.Command != "DEL" || del.ContainerID != "sandbox-a" || del.NetNS != a.NetNS {
			t.Errorf("last call = %+v, want pod a's DEL", del)
		}
		if got := portMappingsOf(t, del); !cmp.Equal(got, ports) {
			t.Errorf("DEL portMappings = %+v, want the ADD's %+v", got, ports)
		}
		if _, err := handleIn(t, a.NetNS).LinkByName(cni.IfName); err == nil {
			t.Error("pod a still has eth0")
		}
		if _, err := os.Stat(filepath.Join(e.ipamDir, "skiff-test", ipA.String())); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("host-local still holds %s: %v", ipA, err)
		}
		if err := e.net.Teardown(ctx, a.SandboxID, a.NetNS); err != nil {
			t.Errorf("second Teardown: %v", err)
		}
	})
	t.Run("Reconcile deletes gone sandboxes and keeps live ones", func(t *testing.T) {
		c := pod("c")
		c.NetNS = newNetNS(t)
		if _, err := e.net.Setup(ctx, c); err != nil {
			t.Fatal(err)
		}
		collected, err := e.net.Reconcile(ctx, []string{b.SandboxID})
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(collected, []string{c.SandboxID}) {
			t.Errorf("collected %v, want pod c's sandbox", collected)
		}
		if _, err := handleIn(t, c.NetNS).LinkByName(cni.IfName); err == nil {
			t.Error("pod c still has eth0")
		}
		if _, err := dial(a.NetNS, ipB.String()+":8080"); err == nil {
			t.Error("pod a, torn down, still reaches pod b")
		}
		if _, err := handleIn(t, b.NetNS).LinkByName(cni.IfName); err != nil {
			t.Errorf("live pod b lost eth0: %v", err)
		}
	})
}

func portMappingsOf(t *testing.T, c recordedCall) []cni.PortMapping {
	t.Helper()
	if len(c.RuntimeConfig) == 0 {
		return nil
	}
	var rc struct {
		PortMappings []cni.PortMapping `json:"portMappings"`
	}
	if err := json.Unmarshal(c.RuntimeConfig, &rc); err != nil {
		t.Fatal(err)
	}
	return rc.PortMappings
}

func TestNetwork_Portmap(t *testing.T) {
	dir := referencePluginDir(t)
	// portmap writes its rules with the nft or iptables command.
	if _, err := exec.LookPath("nft"); err != nil {
		if _, err := exec.LookPath("iptables"); err != nil {
			testutil.SkipUnlessRequired(t, "the portmap plugin needs the nft or iptables command, and this host has neither")
		}
	}
	e := newEnv(t, dir)
	e.writeConf(t, "10-skiff.conflist", `{
  "cniVersion": "1.0.0",
  "name": "skiff-test",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true,
     "ipam": {"type": "host-local", "dataDir": "IPAMDIR", "ranges": [[{"subnet": "10.88.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}`)
	ctx := context.Background()
	a := pod("a", cni.PortMapping{HostPort: 18080, ContainerPort: 8080, Protocol: "tcp"})
	a.NetNS = newNetNS(t)
	if _, err := e.net.Setup(ctx, a); err != nil {
		t.Fatal(err)
	}
	serve(t, a.NetNS, ":8080")
	if _, err := dial(e.host, "10.88.0.1:18080"); err != nil {
		t.Errorf("the host to its own address at the hostPort: %v", err)
	}
	if err := e.net.Teardown(ctx, a.SandboxID, a.NetNS); err != nil {
		t.Fatal(err)
	}
	if _, err := dial(e.host, "10.88.0.1:18080"); err == nil {
		t.Error("the hostPort still reaches the pod after Teardown")
	}
}

func TestNetwork_ConfigurationFiles(t *testing.T) {
	dir := recordPlugin(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		files   map[string]string
		wantErr error
		wantIP  string
	}{
		{name: "no file", wantErr: cni.ErrNoConfig},
		{name: "a single plugin .conf", files: map[string]string{
			"50-one.conf": `{"cniVersion": "1.0.0", "name": "one", "type": "record", "file": "CALLS", "ip": "10.99.0.5/16"}`,
		}, wantIP: "10.99.0.5/16"},
		{name: "a .json file, and the first name wins", files: map[string]string{
			"10-first.json":   `{"cniVersion": "0.4.0", "name": "first", "type": "record", "file": "CALLS", "ip": "10.99.0.6/16"}`,
			"20-second.conf":  `{"cniVersion": "1.0.0", "name": "second", "type": "record", "file": "CALLS", "ip": "10.99.0.7/16"}`,
			"00-ignored.yaml": `not json`,
		}, wantIP: "10.99.0.6/16"},
		{name: "not JSON", files: map[string]string{"10-bad.conflist": `{`}, wantErr: cni.ErrInvalid},
		{name: "a list in a .conf", files: map[string]string{
			"10-list.conf": `{"cniVersion": "1.0.0", "name": "l", "plugins": [{"type": "record"}]}`,
		}, wantErr: cni.ErrInvalid},
		{name: "a plugin that is not there", files: map[string]string{
			"10-missing.conflist": `{"cniVersion": "1.0.0", "name": "m", "plugins": [{"type": "no-such-plugin"}]}`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dir)
			for name, text := range tt.files {
				e.writeConf(t, name, text)
			}
			p := pod("p")
			p.NetNS = newNetNS(t)
			res, err := e.net.Setup(ctx, p)
			if tt.wantIP != "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := res.IPs[0].String(); got != tt.wantIP {
					t.Errorf("IP = %s, want %s", got, tt.wantIP)
				}
				return
			}
			if err == nil {
				t.Fatal("Setup succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestNetwork_FailedAddIsUndone(t *testing.T) {
	e := newEnv(t, recordPlugin(t))
	e.writeConf(t, "10-fail.conflist", `{"cniVersion": "1.0.0", "name": "fail", "plugins": [
		{"type": "record", "file": "CALLS", "ip": "10.99.0.5/16"},
		{"type": "record", "file": "CALLS", "failAdd": true}]}`)
	p := pod("p")
	p.NetNS = newNetNS(t)
	if _, err := e.net.Setup(context.Background(), p); err == nil || !strings.Contains(err.Error(), "told to fail") {
		t.Fatalf("Setup error = %v, want the plugin's", err)
	}
	var got []string
	for _, c := range e.recorded(t) {
		got = append(got, c.Command)
	}
	if want := []string{"ADD", "ADD", "DEL", "DEL"}; !cmp.Equal(got, want) {
		t.Errorf("calls = %v, want %v", got, want)
	}
	if entries, _ := os.ReadDir(filepath.Join(e.cacheDir, "results")); len(entries) != 0 {
		t.Errorf("cache entries left: %v", entries)
	}
}

func TestNew_BadConfig(t *testing.T) {
	for _, cfg := range []cni.Config{
		{ConfDir: "/etc/cni/net.d", CacheDir: "/tmp/x"},
		{BinDirs: []string{"bin"}, ConfDir: "/etc/cni/net.d", CacheDir: "/tmp/x"},
		{BinDirs: []string{"/opt/cni/bin"}, CacheDir: "/tmp/x"},
		{BinDirs: []string{"/opt/cni/bin"}, ConfDir: "/etc/cni/net.d"},
	} {
		if _, err := cni.New(cfg); !errors.Is(err, cni.ErrInvalid) {
			t.Errorf("New(%+v) = %v, want ErrInvalid", cfg, err)
		}
	}
}

// serve answers each TCP connection at addr inside the namespace at path
// with the client's address.
func serve(t *testing.T, path, addr string) {
	t.Helper()
	var l net.Listener
	if err := ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "%s\n", c.RemoteAddr().(*net.TCPAddr).IP)
			c.Close()
		}
	}()
}

// dial connects from inside the namespace at path and returns the client
// address the server saw.
func dial(path, addr string) (netip.Addr, error) {
	var seen netip.Addr
	err := ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
		c, err := net.DialTimeout("tcp4", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return err
		}
		seen, err = netip.ParseAddr(strings.TrimSpace(line))
		return err
	})
	return seen, err
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
