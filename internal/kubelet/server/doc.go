// Package server is the kubelet's HTTPS API, the one the API server
// proxies pods/log, pods/exec, pods/attach, pods/portforward and
// nodes/proxy to, and metrics pipelines scrape.
//
//	srv, err := server.New(server.Config{
//		Pods: pods, Runtime: criRuntime, Images: criImages, NodeName: "node-1",
//		Address: ":10250", Certificate: &servingCert, ClientCAs: clusterCA,
//	})
//	go srv.Run(ctx)
//
// # Endpoints
//
//	GET  /healthz                                          "ok" (no credentials needed)
//	GET  /pods                                             v1 PodList of the pods bound here
//	GET  /containerLogs/<ns>/<pod>/<container>             the container's log, see below
//	GET|POST /exec/<ns>/<pod>[/<uid>]/<container>          ?command=..&command=..&input=1&output=1&error=1&tty=1
//	GET|POST /attach/<ns>/<pod>[/<uid>]/<container>        ?input=1&output=1&error=1&tty=1
//	GET|POST /portForward/<ns>/<pod>[/<uid>]               ports travel in the stream headers
//	GET  /stats/summary                                    stats/v1alpha1 Summary (?only_cpu_and_memory=true)
//	GET  /metrics/resource                                 Prometheus text: node_, pod_, container_ cpu and memory
//
// Errors are Kubernetes Status bodies: 400 for bad parameters or a
// container that is not running, 404 for an unknown pod or container,
// 401 without valid credentials, 403 for a user who may not.
//
// # Logs
//
// /containerLogs reads the CRI log file of the container (its current
// instance, or with previous=true the one before) and writes the
// messages: full ("F") entries end with a newline, partial ("P") ones are
// joined to the next. Query parameters are the kubelet's: follow,
// previous, tailLines, sinceSeconds or sinceTime (RFC 3339), timestamps
// (each line starts with its RFC 3339 time), limitBytes, and stream
// (All, Stdout, Stderr). Corrupt lines are skipped. A followed log is
// polled every 100ms; when the file is replaced (rotation) the reader
// finishes the old file and goes on in the new one, and it stops once
// the container no longer runs and everything it wrote was sent.
//
// # Exec, attach, port-forward
//
// The server asks the runtime for a streaming URL (CRI Exec, Attach,
// PortForward) and proxies the client's upgraded connection to it
// untouched, so every protocol the runtime's streaming server speaks
// works end to end: SPDY/3.1 with channel.k8s.io v1 to v4 and
// portforward.k8s.io, and WebSocket channel.k8s.io up to v4. A client
// that offers only WebSocket v5.channel.k8s.io (kubectl 1.30+) gets a
// failed upgrade and falls back to SPDY, as it does against a kubelet;
// translating v5 to SPDY is the API server's job, as upstream.
//
// # Authentication and authorisation
//
// TLS client certificates signed by Config.ClientCAs (the cluster CA)
// identify the caller: CN is the user, O the groups. Requests are
// verified per request (not in the handshake), so a bad certificate gets
// a 401 Status. Users named in Config.AllowedUsers (default
// kube-apiserver-kubelet-client, the API server's kubelet client
// identity) and members of system:masters may use every endpoint; any
// other authenticated user gets 403; no or invalid credentials 401.
// /healthz alone is open. Bearer tokens are not accepted.
//
// # Stats
//
// Pod and container CPU and memory come from CRI ListPodSandboxStats
// (READY sandboxes, RUNNING containers); node CPU and memory from /proc
// (Host), node filesystem from statfs of Config.RootDir, the image
// filesystem from CRI ImageFsInfo. usageNanoCores is the rate between two
// readings; Run reads stats every 10 seconds so that rates are ready
// when a client asks.
package server
