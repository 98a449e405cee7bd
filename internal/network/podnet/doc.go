// Package podnet is skiff's pod network: it gives each pod an IP from its
// node's pod CIDR on a Linux bridge, routes between nodes' pod CIDRs,
// masquerades pod traffic that leaves the cluster network, and forwards
// pods' hostPorts. It is the built-in equivalent of the CNI bridge +
// host-local + portmap plugins with a host-gw route per node, driven
// directly by the node agent (no CNI binaries, no configuration files).
//
// # Simplest use
//
//	pn, err := podnet.New(podnet.Config{
//		PodCIDR:  netip.MustParsePrefix("10.42.0.0/24"), // Node spec.podCIDR
//		StateDir: "/var/lib/skiff/podnet",
//		Logger:   log,
//	})
//	defer pn.Close()
//
//	// after RunPodSandbox, with the sandbox's netns file and the pod's
//	// hostPorts (none for most pods):
//	res, err := pn.Setup(ctx, podnet.PodRef{Namespace: "default", Name: "web",
//		UID: uid, SandboxID: id,
//		Ports: []podnet.PortMapping{{Protocol: podnet.TCP, HostPort: 8080, ContainerPort: 80}},
//	}, netnsPath)
//	podIP := res.IPs[0].Addr() // status.podIP
//
//	// before (or after) RemovePodSandbox:
//	err = pn.Teardown(ctx, id, netnsPath)
//
//	// on start, with the runtime's live sandbox IDs:
//	collected, err := pn.Reconcile(ctx, liveIDs)
//
//	// from a Node informer, with every node's spec.podCIDR and InternalIP:
//	err = pn.SyncRoutes(ctx, []podnet.Peer{{Node: "b", CIDR: cidrB, NodeIP: ipB}})
//
// # A pod CIDR that comes later
//
// A node agent often starts before the control plane has given its Node a
// pod CIDR. New with a zero PodCIDR then touches nothing on the host;
// Setup fails with ErrNoPodCIDR, while Teardown, Reconcile and
// SyncRoutes already work (routes are kept and applied once the CIDR is
// known). SetPodCIDRs(ctx, node.Spec.PodCIDRs) sets the node up, and
// moves it when the CIDR changes. Its signature is the kubelet's
// optional PodCIDRSetter, so an adapter that embeds *Network gets it for
// free; the adapter only maps the kubelet's Sandbox to PodRef and the
// netns path, and Result.IPs to the pod's IPs.
//
// # What it makes
//
//	host network namespace                     pod network namespace
//	┌────────────────────────────────────┐    ┌──────────────────────────┐
//	│ skiff0 (bridge) 10.42.0.1/24       │    │ eth0 10.42.0.5/24        │
//	│   └─ skv<hash> (veth, hairpin) ────┼────┤   default via 10.42.0.1  │
//	│ ip_forward=1                       │    │ lo up                    │
//	│ route 10.42.1.0/24 via <node B IP> │    └──────────────────────────┘
//	│   proto 115 (one per peer)         │
//	│ skiff0 route_localnet=1            │
//	│ nft table inet skiff-podnet:       │
//	│   prerouting, output: fib daddr type local jump hostports          │
//	│   hostports: tcp dport 8080 dnat ip to 10.42.0.5:80 (one per       │
//	│     mapping; ip daddr <hostIP> first when the mapping has one)     │
//	│   postrouting: ip saddr 10.42.0.0/24                               │
//	│     ip daddr != 10.42.0.0/16 ip daddr != 224.0.0.0/4 masquerade    │
//	│     ip saddr 10.42.0.0/24 oifname skiff0 ct status dnat masquerade │
//	│     ip saddr 127.0.0.0/8 oifname skiff0 ct status dnat masquerade  │
//	│   input: iifname skiff0 ip daddr 127.0.0.0/8                       │
//	│     ct status & dnat == 0 drop                                     │
//	└────────────────────────────────────┘
//
// New makes the node's part and is idempotent, so the agent calls it on
// every start: the bridge (created when missing, with a fixed MAC derived
// from the gateway address so it does not change as ports come and go,
// and the gateway as its only IPv4 address), IP forwarding, and the
// nftables table, replaced whole in one transaction.
//
// Setup makes a pod's part: the IP comes from the host-local allocator,
// the veth pair is made in one netlink message with its pod end created
// directly inside the pod's namespace as eth0 (MAC 0a:58:<IP>, like CNI's
// bridge plugin, so a reused IP keeps its MAC), the host end on the
// bridge with hairpin on (a pod reaching itself through a service
// address). The host end is named "skv" plus 12 hex digits of a hash of
// the sandbox ID, so Teardown and Reconcile find it from the ID alone.
// The MTU is Config.MTU or the MTU of the host's default-route interface.
//
// # Host ports
//
// PodRef.Ports are the pod's hostPorts (the kubelet passes the CRI
// sandbox's PortMappings). New connections to HostPort on any of the
// node's addresses (or on HostIP alone) are sent to the pod's IP at
// ContainerPort, as CNI's portmap plugin does: DNAT in the prerouting
// chain for connections from elsewhere, and in the output chain for the
// node's own connections to itself. Two masquerades make the answers
// come back the way the question went: a pod reaching a hostPort of this
// node (its own, or another pod's) would otherwise be answered straight
// across the bridge, skipping the conntrack entry that undoes the DNAT;
// and the node reaching 127.0.0.1:<hostPort> would send a loopback source
// onto the bridge (which takes route_localnet on the bridge; the input
// chain keeps pods from using it to reach the node's loopback services).
// Connections from other machines keep their source address.
//
// The mappings are kept with the allocation, and the whole table is
// written again, in one transaction, whenever they change (a Setup with
// mappings, the Teardown of a sandbox that had some, a Reconcile that
// collects one) and on every New: a restarted agent, or a table deleted
// behind its back, gets the same rules. Two pods cannot hold one port of
// the node (ErrPortInUse); a new sandbox of the same pod takes the port
// from the one it replaces. New UDP mappings also clear conntrack entries
// for their port, so a client that was already sending reaches the pod.
//
// # IP allocations
//
// Each allocation is a small JSON file named by the IP under StateDir
// (one that a crash left unreadable keeps its IP until the next
// Reconcile). Addresses go round-robin
// (network, gateway and broadcast addresses excluded), so a freed address
// is not handed out again at once. A restarted agent reads them back;
// Reconcile frees the ones whose sandbox is gone and deletes veths no
// allocation accounts for.
//
// # Routes between nodes
//
// Nodes are on one L2 network (host-gw): the route to another node's pod
// CIDR goes straight to that node's InternalIP. The routes carry protocol
// 115, which is how SyncRoutes finds its own and leaves everyone else's
// alone. Peers whose CIDR is this node's, or whose address is one of this
// host's, are this node and get no route. Pod-to-pod traffic keeps the pods' addresses; only traffic to
// addresses outside the cluster CIDR is masqueraded.
//
// # Concurrency and errors
//
// A Network's methods may be called from many goroutines and run one at
// a time. Errors wrap ErrInvalid, ErrExhausted, ErrNoPodCIDR,
// ErrPortInUse or ErrUnsupported when one applies, and the operating system's errors otherwise (a missing netns
// file gives fs.ErrNotExist). A failed Setup leaves no link and no
// allocation behind.
//
// # What it does not do (yet)
//
// IPv6 and dual-stack pod CIDRs; overlay networks for nodes that do not
// share an L2 segment; network policy. A host whose firewall drops
// forwarded traffic (an iptables FORWARD policy of DROP, as Docker sets)
// must accept traffic from and to the bridge: an accept in this table
// cannot override another table's drop.
package podnet
