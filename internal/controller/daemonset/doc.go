// Package daemonset is the DaemonSet controller: it runs one pod of an
// apps/v1 DaemonSet on every eligible node and rolls them to new
// templates, as upstream's DaemonSet controller (kube-controller-manager
// v1.37) does. It is an API client only: informers for DaemonSets, pods,
// nodes and ControllerRevisions, a typed client for writes.
//
//	c, err := daemonset.New(daemonset.Config{Client: client, Informers: factory, Logger: logger})
//	factory.Start(ctx.Done())
//	err = c.Run(ctx) // until ctx is done
//
// # Placement
//
// A node is eligible when it matches the template's nodeName (if any),
// nodeSelector and required node affinity, and the pod, with the
// DaemonSet tolerations added, tolerates the node's NoSchedule and
// NoExecute taints. A pod on a node it no longer fits stays while it
// tolerates the node's NoExecute taints. The controller does not bind
// pods: as upstream since v1.12, each pod's required node affinity is
// replaced with one term, metadata.name In [node], and the scheduler
// places it. The tolerations added to every pod are those of upstream:
//
//	node.kubernetes.io/not-ready:NoExecute        node.kubernetes.io/unreachable:NoExecute
//	node.kubernetes.io/disk-pressure:NoSchedule   node.kubernetes.io/memory-pressure:NoSchedule
//	node.kubernetes.io/pid-pressure:NoSchedule    node.kubernetes.io/unschedulable:NoSchedule
//	node.kubernetes.io/network-unavailable:NoSchedule (hostNetwork pods only)
//
// # History and updates
//
// Each distinct pod template is a ControllerRevision named
// <daemonset>-<hash>, whose data is the patch kubectl applies to roll
// back ({"spec":{"template":{..., "$patch":"replace"}}}) and whose
// revision number grows with each change (a rollback renumbers the old
// revision as the newest), so `kubectl rollout history` and `kubectl
// rollout undo` work. Pods carry the revision's hash in the
// controller-revision-hash label and the template generation in
// pod-template-generation. Old revisions beyond revisionHistoryLimit that
// no pod uses are deleted.
//
// With updateStrategy RollingUpdate, pods of old revisions are replaced
// node by node: without maxSurge, an old pod is deleted (and recreated at
// the new revision) while fewer than maxUnavailable nodes are
// unavailable; with maxSurge, a new pod starts beside the old one, which
// is deleted once the new one is available. OnDelete replaces pods only
// when someone deletes them.
//
// # The main loop
//
//	informer events (DaemonSets; pods, revisions to their owner; nodes
//	to the DaemonSets whose placement they change) ─► queue
//	     │
//	     ▼
//	sync(key): DaemonSet, nodes and claimed pods from the cache
//	     ├─ revisions: find or create the current one (its hash)
//	     ├─ creations or deletions outstanding (expectations): status only
//	     ├─ manage: per node, create the missing pod, delete failed or
//	     │  excess pods (failed pods with backoff) and pods of nodes it
//	     │  no longer fits
//	     ├─ rolling update (when nothing is outstanding)
//	     ├─ delete revisions past the history limit
//	     └─ write status (desired, current, ready, available, updated…)
package daemonset
