package agent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/network/cni/cnitest"
	"github.com/skiff-sh/skiff/internal/sys/ns"
)

// echo connects from inside the network namespace at path to addr, sends
// a line and expects it back (the toolbox's serve-tcp), retrying until
// the deadline: rules and routes come up right after the pod is Running.
func echo(path, addr string, within time.Duration) error {
	var last error
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		last = ns.Do(map[ns.Type]string{ns.Net: path}, func() error {
			conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := conn.Write([]byte("hello\n")); err != nil {
				return err
			}
			buf := make([]byte, 6)
			if _, err := io.ReadFull(conn, buf); err != nil {
				return err
			}
			if string(buf) != "hello\n" {
				return fmt.Errorf("echo %q", buf)
			}
			return nil
		})
		if last == nil {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return last
}

func serverPod(name, node, image string, hostPort int32) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{
			Name: "c", Image: image, Command: []string{"serve-tcp", "8080"},
			Ports: []corev1.ContainerPort{{ContainerPort: 8080, HostPort: hostPort}},
		}}},
	}
}

func deletePod(t *testing.T, n *node, name string) {
	t.Helper()
	ctx := context.Background()
	grace := int64(0)
	if err := n.client.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := n.client.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{}); err != nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("pod %s was not deleted", name)
}

// TestAgent_HostPortReachesThePod runs a pod with a hostPort on a node
// whose pod network lives in a namespace joined to a second one, "another
// machine", by a LAN: the other machine reaches the pod at the node's
// address and the hostPort, until the pod is deleted.
func TestAgent_HostPortReachesThePod(t *testing.T) {
	c := startCluster(t)
	nodeNS, otherNS := pinNetNS(t), pinNetNS(t)
	nodeIP, _ := connectHosts(t, nodeNS, otherNS)
	n := c.startNode(t, nodeNS, "10.42.12.0/24", nodeIP)
	ctx := context.Background()
	if _, err := c.client.CoreV1().Pods("default").Create(ctx, serverPod("web", n.agent.NodeName(), c.image, 18080), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	n.waitRunning(t, "default", "web")
	target := net.JoinHostPort(nodeIP.String(), "18080")
	if err := echo(otherNS, target, 60*time.Second); err != nil {
		t.Fatalf("another machine to %s: %v", target, err)
	}
	if err := echo(nodeNS, net.JoinHostPort("127.0.0.1", "18080"), 10*time.Second); err != nil {
		t.Errorf("the node to 127.0.0.1:18080: %v", err)
	}
	deletePod(t, n, "web")
	// The kubelet tears the sandbox's network down soon after.
	deadline := time.Now().Add(30 * time.Second)
	for echo(otherNS, target, time.Second) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the hostPort still reaches the pod 30s after it was deleted")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAgent_CNIPlugins runs a node whose pod network is made by the
// reference CNI plugins (bridge and host-local, and portmap when the host
// has the nft or iptables command it needs), running in the node's
// namespace: a pod gets its IP from the plugins' subnet, the node reaches
// it, and deleting it frees the address.
func TestAgent_CNIPlugins(t *testing.T) {
	c := startCluster(t)
	bin := cnitest.Plugins(t)
	_, nftErr := exec.LookPath("nft")
	_, iptErr := exec.LookPath("iptables")
	portmap := nftErr == nil || iptErr == nil
	confDir, ipamDir := t.TempDir(), t.TempDir()
	plugins := `{"type": "bridge", "bridge": "cni0", "isGateway": true,
	  "ipam": {"type": "host-local", "dataDir": "` + ipamDir + `", "ranges": [[{"subnet": "10.89.0.0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}}`
	if portmap {
		plugins += `, {"type": "portmap", "capabilities": {"portMappings": true}}`
	} else {
		t.Log("the host has neither nft nor iptables: portmap is left out")
	}
	conf := `{"cniVersion": "1.0.0", "name": "skiff-cni-test", "plugins": [` + plugins + `]}`
	if err := os.WriteFile(filepath.Join(confDir, "10-test.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	nodeNS, otherNS := pinNetNS(t), pinNetNS(t)
	nodeIP, _ := connectHosts(t, nodeNS, otherNS)
	n := c.startNode(t, nodeNS, "10.42.13.0/24", nodeIP, func(cfg *agent.Config) {
		cfg.CNIConfDir, cfg.CNIBinDirs = confDir, []string{bin}
	})
	ctx := context.Background()
	if _, err := c.client.CoreV1().Pods("default").Create(ctx, serverPod("web", n.agent.NodeName(), c.image, 18081), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	running := n.waitRunning(t, "default", "web")
	ip := running.Status.PodIP
	if !strings.HasPrefix(ip, "10.89.0.") {
		t.Fatalf("pod IP %q, want one from the plugins' 10.89.0.0/24", ip)
	}
	if err := echo(nodeNS, net.JoinHostPort(ip, "8080"), 30*time.Second); err != nil {
		t.Errorf("the node to the pod: %v", err)
	}
	if portmap {
		if err := echo(otherNS, net.JoinHostPort(nodeIP.String(), "18081"), 30*time.Second); err != nil {
			t.Errorf("another machine to the pod's hostPort: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(ipamDir, "skiff-cni-test", ip)); err != nil {
		t.Errorf("host-local has no record of %s: %v", ip, err)
	}
	deletePod(t, n, "web")
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := os.Stat(filepath.Join(ipamDir, "skiff-cni-test", ip))
		if os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("host-local still holds %s after the pod was deleted: %v", ip, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
