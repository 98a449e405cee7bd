// Package nodelifecycle watches the health of Nodes and acts on the
// unhealthy ones and their pods, as upstream's node-lifecycle-controller
// and taint-eviction-controller do together.
//
// # Node health
//
// A node shows it is alive by renewing its Lease in kube-node-lease (the
// node agent does so every few seconds) or by posting a new Ready
// heartbeat in its status. Every Config.MonitorPeriod the controller
// notes, by its own clock, when it last saw either. A node silent for
// longer than Config.GracePeriod (40s; Config.StartupGracePeriod for a
// node that never posted a Ready condition) gets its Ready,
// MemoryPressure, DiskPressure and PIDPressure conditions set to Unknown
// (reason NodeStatusUnknown, or NodeStatusNeverUpdated):
//
//	        node agent posts Ready=True           controller: silent > grace
//	Ready ◄────────────────────────── Unknown ◄────────────────────────── Ready
//	True  ──────────────────────────► False                               True
//	        node agent posts Ready=False
//
// # Taints
//
// A node whose Ready condition is False gets the NoExecute taint
// node.kubernetes.io/not-ready; Unknown gets node.kubernetes.io/unreachable
// (with timeAdded); a Ready node loses both. New NoExecute taints are
// rate-limited per zone (topology.kubernetes.io/region and zone labels):
// Config.EvictionRate nodes per second; in a zone where at least
// Config.UnhealthyZoneThreshold of three or more nodes are unhealthy, the
// secondary rate (zones above Config.LargeClusterThreshold nodes) or none;
// and when no node of any zone is Ready — which looks like the control
// plane lost its network, not like every node died — no taints at all,
// and the existing ones are removed. A one-node cluster is such a case:
// its pods are marked (below) but never evicted.
//
// NoSchedule taints follow the node's conditions and spec (upstream's
// TaintNodesByCondition): not-ready, unreachable, memory-pressure,
// disk-pressure, pid-pressure, network-unavailable and unschedulable.
//
// # Pods of an unhealthy node
//
// Pods are handled one at a time, level-triggered, whenever they or
// their node change:
//
//	node Ready=Unknown   pod phase → Unknown, reason NodeLost, message
//	                     "Node N which was running pod P is unresponsive",
//	                     Ready condition → False; the phase and Ready
//	                     status before are kept in the annotation
//	                     node-lifecycle.skiff.sh/status-before-node-lost
//	node Ready=False     Ready condition → False (upstream's
//	                     MarkPodsNotReady), unless the node agent reported
//	                     the pod Ready after the node went NotReady
//	node reports again   a pod still marked NodeLost gets its saved phase
//	                     and Ready status back; one the node agent has
//	                     rewritten only loses the annotation
//
// Finished pods (Succeeded, Failed) are never marked.
//
// Why phase Unknown: upstream stopped setting it (the node controller
// only sets Ready=False, and the kubelet puts the status right when it
// comes back), but the Kubernetes pod lifecycle defines Unknown as "the
// state of the pod could not be obtained, typically because of an error
// communicating with its node", which is exactly the case, and skiff
// follows that definition: `kubectl get pods -o wide` then shows STATUS
// NodeLost (the reason wins over the phase in kubectl's column, as for
// Evicted), `kubectl describe` shows Status: Unknown with Reason: NodeLost,
// and once the pod is evicted and stays Terminating for want of a node to
// confirm it, kubectl shows Unknown — upstream's own printing of NodeLost.
// Because the node agent might come back without rewriting a status it
// believes unchanged, the controller saves what it overwrote and puts it
// back itself. Readers that only look at the Ready condition (endpoints,
// upstream tools) see exactly what upstream shows.
//
// # Eviction
//
// A pod on a node with NoExecute taints is deleted (gracefully, after a
// DisruptionTarget condition with reason DeletionByTaintManager) when a
// taint it does not tolerate appears, or tolerationSeconds after the
// taint's timeAdded for one it tolerates for a while. The API server adds
// tolerations of 300s for not-ready and unreachable to every pod, so pods
// of a dead node go after five minutes; DaemonSet pods tolerate them
// forever. Deadlines come from timeAdded, so a new leader keeps them.
//
// # Main loops
//
//	every MonitorPeriod   monitorNodeHealth: conditions → Unknown, taint
//	                      queues, zone states, pods of changed nodes queued
//	every 100ms           doNoExecuteTaintingPass: rate-limited taints
//	node workers          syncNoScheduleTaints, per changed node
//	pod workers           syncPod: mark, restore, evict or requeue for the
//	                      time the next toleration runs out
package nodelifecycle
