// Package cni connects pod sandboxes to a pod network made by third-party
// CNI plugins, as the kubelet and containerd do, through libcni
// (github.com/containernetworking/cni): the node agent uses it instead of
// the built-in package podnet when it is given a plugin directory and a
// configuration directory.
//
// # Simplest use
//
//	n, err := cni.New(cni.Config{
//		BinDirs:  []string{"/opt/cni/bin"},
//		ConfDir:  "/etc/cni/net.d",
//		CacheDir: "/var/lib/skiff/agent/cni",
//	})
//
//	// after RunPodSandbox, with the sandbox's netns file:
//	res, err := n.Setup(ctx, cni.Pod{Namespace: "default", Name: "web", UID: uid,
//		SandboxID: id, NetNS: netnsPath,
//		Ports: []cni.PortMapping{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}})
//	podIPs := res.IPs
//
//	// before (or after) RemovePodSandbox:
//	err = n.Teardown(ctx, id, netnsPath)
//
//	// on start, with the runtime's live sandbox IDs:
//	collected, err := n.Reconcile(ctx, liveIDs)
//
// # Which network
//
// The network is the first file of ConfDir, by name, ending in
// .conflist, .conf or .json (a .conf or .json file holds a single plugin
// and is made a list of one), as the kubelet and containerd pick it. The
// directory is read again at every Setup, so a network configured after
// the agent started (as a CNI daemonset does) is used from then on; until
// then Setup fails with ErrNoConfig.
//
// # What the plugins get
//
// ADD and DEL run every plugin of the list in order (DEL in reverse) with
// the sandbox ID as CNI_CONTAINERID, the sandbox's netns file as
// CNI_NETNS, eth0 as CNI_IFNAME, and CNI_ARGS
// IgnoreUnknown=1;K8S_POD_NAMESPACE=…;K8S_POD_NAME=…;
// K8S_POD_INFRA_CONTAINER_ID=<sandbox ID>;K8S_POD_UID=…. A plugin that
// declares the portMappings capability (such as portmap) gets the pod's
// hostPorts in runtimeConfig.portMappings. The pod's IPs are the IPs of
// the ADD result on the sandbox's interface (or all its IPs when the
// result names no interfaces), IPv4 first.
//
// libcni keeps each attachment's result, configuration and arguments in
// CacheDir. Setup returns the cached result for a sandbox that was
// already added (a restarted agent asking again), so the plugins see one
// ADD per sandbox; Teardown and Reconcile run DEL with the configuration
// and arguments of the ADD (the port mappings included, which portmap
// needs to find its rules), even if ConfDir changed since.
//
// # Concurrency and errors
//
// A Network's methods may be called from many goroutines; each plugin
// decides how it serializes its own state (host-local takes a file lock).
// Errors wrap ErrInvalid (bad input or configuration) or ErrNoConfig when
// one applies, and the plugins' own errors (a *types.Error from libcni)
// otherwise.
package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// Errors returned (wrapped) by this package; test them with errors.Is.
var (
	// ErrInvalid marks bad input: a Config, Pod or network
	// configuration that cannot be used.
	ErrInvalid = errors.New("invalid CNI input")
	// ErrNoConfig means ConfDir holds no network configuration (yet).
	ErrNoConfig = errors.New("no CNI network configuration")
)

// IfName is the sandbox's interface the plugins are asked to make.
const IfName = "eth0"

// confExtensions are the files ConfDir is searched for, as containerd's.
var confExtensions = []string{".conf", ".conflist", ".json"}

// Config configures a Network.
type Config struct {
	// BinDirs are searched, in order, for the plugins' binaries.
	// Required.
	BinDirs []string
	// ConfDir holds the network configuration. Required.
	ConfDir string
	// CacheDir is where libcni keeps each attachment's result and
	// configuration, so that DEL gets what ADD got. Required (a
	// directory of the agent's, so that nothing is written outside its
	// root by mistake).
	CacheDir string
	// HostNetNS is the network namespace file the plugins run in: the
	// host's side of the pod network is made there. Empty means the
	// namespace of this process. Tests point it at one of their own.
	HostNetNS string
	// Logger receives the network's log lines and the plugins' stderr.
	// nil discards them.
	Logger *slog.Logger
}

func (cfg Config) validate() error {
	if len(cfg.BinDirs) == 0 {
		return fmt.Errorf("no plugin directory: %w", ErrInvalid)
	}
	for _, d := range append(slices.Clone(cfg.BinDirs), cfg.ConfDir, cfg.CacheDir) {
		if d == "" || !filepath.IsAbs(d) {
			return fmt.Errorf("directory %q: must be an absolute path: %w", d, ErrInvalid)
		}
	}
	return nil
}

// PortMapping is one hostPort of a pod, as CNI's portMappings capability
// carries it.
type PortMapping struct {
	HostPort      int32 `json:"hostPort"`
	ContainerPort int32 `json:"containerPort"`
	// Protocol is "tcp", "udp" or "sctp".
	Protocol string `json:"protocol"`
	// HostIP limits the mapping to one address of the node; empty
	// means every address.
	HostIP string `json:"hostIP,omitempty"`
}

// Pod is a sandbox to connect.
type Pod struct {
	Namespace, Name, UID string
	// SandboxID is the CRI pod sandbox ID: the plugins' container ID.
	// Required.
	SandboxID string
	// NetNS is the sandbox's network namespace file. Required by Setup.
	NetNS string
	// Ports are the pod's hostPorts.
	Ports []PortMapping
}

// Result is the network a sandbox got from Setup.
type Result struct {
	// IPs are the sandbox's addresses with their prefix lengths, IPv4
	// first.
	IPs []netip.Prefix
	// Network is the name of the network configuration used.
	Network string
}

// Network runs CNI plugins for a node's sandboxes.
type Network struct {
	cfg  Config
	log  *slog.Logger
	cni  *libcni.CNIConfig
	exec *pluginExec
}

// New returns a Network for cfg. It makes CacheDir if needed; a ConfDir
// that is missing or empty is not an error (Setup waits for a file), but
// is logged.
func New(cfg Config) (*Network, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("cni config: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.WithGroup("cni")
	if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
		return nil, fmt.Errorf("cni cache: %w", err)
	}
	ex := &pluginExec{
		raw:   &invoke.RawExec{Stderr: logWriter{log}},
		netns: cfg.HostNetNS,
	}
	n := &Network{cfg: cfg, log: log, exec: ex, cni: libcni.NewCNIConfigWithCacheDir(cfg.BinDirs, cfg.CacheDir, ex)}
	if list, file, err := n.load(); err != nil {
		log.Warn("no usable network configuration yet; pods wait for one", "dir", cfg.ConfDir, "err", err)
	} else {
		log.Info("network configuration", "file", file, "network", list.Name, "plugins", pluginTypes(list))
	}
	return n, nil
}

// load reads the network configuration: the first file of ConfDir by
// name.
func (n *Network) load() (*libcni.NetworkConfigList, string, error) {
	files, err := libcni.ConfFiles(n.cfg.ConfDir, confExtensions)
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", n.cfg.ConfDir, err)
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("%s has no .conflist, .conf or .json file: %w", n.cfg.ConfDir, ErrNoConfig)
	}
	slices.Sort(files)
	file := files[0]
	var list *libcni.NetworkConfigList
	if strings.HasSuffix(file, ".conflist") {
		list, err = libcni.NetworkConfFromFile(file)
	} else {
		list, err = singlePluginList(file)
	}
	if err != nil {
		return nil, "", fmt.Errorf("network configuration %s: %w: %w", file, ErrInvalid, err)
	}
	return list, file, nil
}

// singlePluginList reads a file holding one plugin's configuration and
// makes it a list of one, as libcni's deprecated ConfListFromConf does.
func singlePluginList(file string) (*libcni.NetworkConfigList, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var plugin map[string]any
	if err := json.Unmarshal(b, &plugin); err != nil {
		return nil, err
	}
	if _, isList := plugin["plugins"]; isList {
		return nil, errors.New("a list of plugins belongs in a .conflist file")
	}
	if t, _ := plugin["type"].(string); t == "" {
		return nil, errors.New(`no plugin "type"`)
	}
	list, err := json.Marshal(map[string]any{"cniVersion": plugin["cniVersion"], "name": plugin["name"], "plugins": []any{plugin}})
	if err != nil {
		return nil, err
	}
	return libcni.NetworkConfFromBytes(list)
}

func pluginTypes(list *libcni.NetworkConfigList) []string {
	out := make([]string, 0, len(list.Plugins))
	for _, p := range list.Plugins {
		out = append(out, p.Network.Type)
	}
	return out
}

// runtimeConf is what the plugins get for pod.
func runtimeConf(pod Pod) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: pod.SandboxID,
		NetNS:       pod.NetNS,
		IfName:      IfName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", pod.Namespace},
			{"K8S_POD_NAME", pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", pod.SandboxID},
			{"K8S_POD_UID", pod.UID},
		},
	}
	if len(pod.Ports) > 0 {
		rt.CapabilityArgs = map[string]any{"portMappings": pod.Ports}
	}
	return rt
}

// Setup connects the sandbox to the network: CNI ADD of the network
// configuration, with pod's arguments and port mappings. It returns the
// sandbox's IPs.
//
// Setup is idempotent for one SandboxID: once a sandbox was added, later
// calls return the cached result without running the plugins (the
// configuration's own CHECK is not run). On a failed ADD, Setup runs DEL,
// so that plugins that got as far as making something undo it; the error
// is the ADD's.
//
// Errors: ErrInvalid for a Pod without SandboxID or NetNS, or an unusable
// configuration file; ErrNoConfig when ConfDir has none; the plugins'
// errors.
func (n *Network) Setup(ctx context.Context, pod Pod) (Result, error) {
	if pod.SandboxID == "" || pod.NetNS == "" {
		return Result{}, fmt.Errorf("cni add: sandbox ID and netns are required: %w", ErrInvalid)
	}
	if res, ok, err := n.cached(pod.SandboxID); err != nil {
		return Result{}, fmt.Errorf("cni add %s: %w", pod.SandboxID, err)
	} else if ok {
		return res, nil
	}
	list, _, err := n.load()
	if err != nil {
		return Result{}, fmt.Errorf("cni add %s: %w", pod.SandboxID, err)
	}
	rt := runtimeConf(pod)
	raw, err := n.cni.AddNetworkList(ctx, list, rt)
	if err != nil {
		if derr := n.cni.DelNetworkList(context.WithoutCancel(ctx), list, rt); derr != nil {
			n.log.Warn("undo a failed ADD", "sandbox", pod.SandboxID, "err", derr)
		}
		return Result{}, fmt.Errorf("cni add %s to network %s: %w", pod.SandboxID, list.Name, err)
	}
	res, err := resultOf(list.Name, raw)
	if err != nil {
		return Result{}, fmt.Errorf("cni add %s to network %s: %w", pod.SandboxID, list.Name, err)
	}
	n.log.Debug("sandbox added", "sandbox", pod.SandboxID, "pod", pod.Namespace+"/"+pod.Name, "network", list.Name, "ips", fmt.Sprint(res.IPs))
	return res, nil
}

// cached returns the result of an earlier ADD of the sandbox.
func (n *Network) cached(sandboxID string) (Result, bool, error) {
	atts, err := n.cni.GetCachedAttachments(sandboxID)
	if err != nil {
		return Result{}, false, err
	}
	for _, att := range atts {
		if att.IfName != IfName {
			continue
		}
		list, err := libcni.NetworkConfFromBytes(att.Config)
		if err != nil {
			continue
		}
		raw, err := n.cni.GetNetworkListCachedResult(list, &libcni.RuntimeConf{ContainerID: sandboxID, IfName: IfName})
		if err != nil || raw == nil {
			continue
		}
		res, err := resultOf(list.Name, raw)
		if err != nil {
			continue
		}
		return res, true, nil
	}
	return Result{}, false, nil
}

// resultOf takes the sandbox's IPs from an ADD result.
func resultOf(network string, raw types.Result) (Result, error) {
	r, err := current.NewResultFromResult(raw)
	if err != nil {
		return Result{}, fmt.Errorf("result: %w", err)
	}
	res := Result{Network: network}
	for _, ip := range r.IPs {
		if ip.Interface != nil {
			i := *ip.Interface
			if i >= 0 && i < len(r.Interfaces) && (r.Interfaces[i].Sandbox == "" || r.Interfaces[i].Name != IfName) {
				continue // the host's side, or another interface
			}
		}
		p, ok := prefixOf(ip.Address)
		if !ok {
			continue
		}
		res.IPs = append(res.IPs, p)
	}
	if len(res.IPs) == 0 {
		return Result{}, fmt.Errorf("no IP for %s in the result %s: %w", IfName, r, ErrInvalid)
	}
	// IPv4 first, as the API wants podIPs[0] to be the primary family.
	slices.SortStableFunc(res.IPs, func(a, b netip.Prefix) int {
		switch a4, b4 := a.Addr().Is4(), b.Addr().Is4(); {
		case a4 == b4:
			return 0
		case a4:
			return -1
		}
		return 1
	})
	return res, nil
}

func prefixOf(n net.IPNet) (netip.Prefix, bool) {
	addr, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(addr.Unmap(), ones), true
}

// Teardown disconnects the sandbox: CNI DEL, with the configuration and
// arguments its ADD had, then the cache entry goes. netnsPath (which may
// be gone, or empty) replaces the cached one when given. A sandbox that
// has no cache entry (never added, or already torn down) gets a DEL of
// the current configuration, so that a half-made ADD is undone; without a
// configuration there is nothing to undo. Teardown is idempotent.
func (n *Network) Teardown(ctx context.Context, sandboxID, netnsPath string) error {
	if sandboxID == "" {
		return fmt.Errorf("cni del: sandbox ID is required: %w", ErrInvalid)
	}
	atts, err := n.cni.GetCachedAttachments(sandboxID)
	if err != nil {
		return fmt.Errorf("cni del %s: %w", sandboxID, err)
	}
	if len(atts) == 0 {
		list, _, err := n.load()
		if err != nil {
			n.log.Debug("no cached attachment and no configuration: nothing to delete", "sandbox", sandboxID, "err", err)
			return nil
		}
		if err := n.cni.DelNetworkList(ctx, list, runtimeConf(Pod{SandboxID: sandboxID, NetNS: netnsPath})); err != nil {
			return fmt.Errorf("cni del %s from network %s: %w", sandboxID, list.Name, err)
		}
		return nil
	}
	var errs []error
	for _, att := range atts {
		if err := n.del(ctx, att, netnsPath); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// del runs DEL for a cached attachment.
func (n *Network) del(ctx context.Context, att *libcni.NetworkAttachment, netnsPath string) error {
	list, err := libcni.NetworkConfFromBytes(att.Config)
	if err != nil {
		return fmt.Errorf("cni del %s: cached configuration: %w", att.ContainerID, err)
	}
	rt := &libcni.RuntimeConf{
		ContainerID: att.ContainerID, NetNS: att.NetNS, IfName: att.IfName,
		Args: att.CniArgs, CapabilityArgs: att.CapabilityArgs,
	}
	if netnsPath != "" {
		rt.NetNS = netnsPath
	}
	if err := n.cni.DelNetworkList(ctx, list, rt); err != nil {
		return fmt.Errorf("cni del %s from network %s: %w", att.ContainerID, list.Name, err)
	}
	return nil
}

// Reconcile deletes (CNI DEL) the attachments of sandboxes that are not in
// live: sandboxes that went away while the agent was down. The agent
// calls it on start, once it knows the runtime's sandboxes. It returns
// the sandbox IDs it collected.
func (n *Network) Reconcile(ctx context.Context, live []string) ([]string, error) {
	atts, err := n.cni.GetCachedAttachments("")
	if err != nil {
		return nil, fmt.Errorf("cni reconcile: %w", err)
	}
	var collected []string
	var errs []error
	for _, att := range atts {
		if slices.Contains(live, att.ContainerID) {
			continue
		}
		if err := n.del(ctx, att, ""); err != nil {
			errs = append(errs, err)
			continue
		}
		n.log.Info("deleted the network of a gone sandbox", "sandbox", att.ContainerID, "network", att.Network)
		collected = append(collected, att.ContainerID)
	}
	if err := errors.Join(errs...); err != nil {
		return collected, fmt.Errorf("cni reconcile: %w", err)
	}
	return collected, nil
}

// pluginExec runs plugins, in HostNetNS when one is set.
type pluginExec struct {
	raw   *invoke.RawExec
	netns string
	version.PluginDecoder
}

var _ invoke.Exec = (*pluginExec)(nil)

func (e *pluginExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	if e.netns == "" {
		return e.raw.ExecPlugin(ctx, path, stdin, environ)
	}
	return execIn(e.netns, func() ([]byte, error) { return e.raw.ExecPlugin(ctx, path, stdin, environ) })
}

func (e *pluginExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

// logWriter logs what plugins write to stderr.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info("plugin stderr", "text", strings.TrimSpace(string(p)))
	return len(p), nil
}

var _ io.Writer = logWriter{}
