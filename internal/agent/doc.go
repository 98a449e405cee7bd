// Package agent assembles a node: the container runtime (the built-in
// one, or a CRI endpoint such as containerd's), the pod network, the
// volume manager, the kubelet and the kubelet's HTTPS API, and runs them
// together. `skiff agent` runs one against a remote API server; `skiff
// server` runs one for its own host through Local.
//
//	a, err := agent.New(agent.Config{Client: restConfig, PodCIDR: "10.42.1.0/24"})
//	go a.Run(ctx)
//	<-a.Ready()
//
// # What Run wires
//
//	built-in runtime (container.Runtime + cri.Server on RootDir/cri.sock)
//	   │ CRI over gRPC (the same path crictl or containerd would use)
//	   ▼
//	kubelet ──Volumes──► volume.Manager (RootDir/pods/<uid>/volumes)
//	   │    ──Network──► podnet, made when the node's pod CIDR is known
//	   │                 (or package cni, with CNIConfDir and CNIBinDirs)
//	   │    ──Cgroups──► cgroups.Manager under CgroupParent (shared with the runtime)
//	   ▼
//	kubelet API (server.Server on :10250) reads pods from the kubelet,
//	streams and stats from the CRI
//
// A route syncer watches Nodes and keeps a route to every other node's
// pod CIDR through its InternalIP (podnet.SyncRoutes).
//
// The kubelet gives the Network each sandbox's hostPort mappings; podnet
// forwards them with nftables, CNI plugins through the portMappings
// capability (the portmap plugin).
//
// With CNIConfDir and CNIBinDirs, third-party CNI plugins make the pod
// network instead of podnet (and there is no route syncer: routes between
// nodes are the plugins' business); they run in PodNetworkNetNS when it
// is set, and libcni keeps its cache in RootDir/cni. With RuntimeEndpoint
// set, the external runtime owns the pod network (CNI) and cgroups, so
// the kubelet gets neither a Network nor Cgroups.
//
// # Certificates
//
// The agent reaches the API server with Config.Client. The kubelet API
// serves Config.ServingCertificate; without one it makes a self-signed
// certificate at every start (the API server must then not verify
// kubelet certificates, as kube-apiserver does not by default). It
// accepts client certificates from the CA that Config.Client trusts (the
// cluster CA), for the users in KubeletAPIUsers and system:masters.
//
// Local builds the Config of the agent that `skiff server` runs: the
// server's CA issues the node's client certificate (CN
// system:node:<name>, O system:nodes) and a kubelet serving certificate
// for the node name, localhost, 127.0.0.1 and the node IP.
package agent
