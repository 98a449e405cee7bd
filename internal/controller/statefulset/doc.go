// Package statefulset is the StatefulSet controller: it runs an apps/v1
// StatefulSet's pods with stable names and identities, creates and
// deletes them in order, and rolls them to new templates from the highest
// ordinal down, as upstream's StatefulSet controller
// (kube-controller-manager v1.37) does. It is an API client only:
// informers for StatefulSets, pods and ControllerRevisions, a typed
// client for writes.
//
//	c, err := statefulset.New(statefulset.Config{Client: client, Informers: factory, Logger: logger})
//	factory.Start(ctx.Done())
//	err = c.Run(ctx) // until ctx is done
//
// # Identity
//
// The pod of ordinal i (from spec.ordinals.start, 0 by default) is named
// <set>-<i>, has hostname <set>-<i> and subdomain spec.serviceName, and
// the labels statefulset.kubernetes.io/pod-name and
// apps.kubernetes.io/pod-index. Its controller-revision-hash label names
// the ControllerRevision it was made from. A pod whose identity labels or
// claim volumes drifted is updated back.
//
// # Ordering
//
// With podManagementPolicy OrderedReady (the default), pods are created
// one at a time in increasing ordinal, each once its predecessors are
// Running and Ready (and available for minReadySeconds), and removed on
// scale-down one at a time from the highest ordinal, once every other
// pod is healthy; a pod being deleted blocks everything until it is gone.
// With Parallel, pods are created and deleted without waiting. Failed and
// Succeeded pods are deleted and recreated (events RecreatingFailedPod,
// RecreatingTerminatedPod).
//
// # Updates and history
//
// Each distinct pod template is a ControllerRevision named <set>-<hash>
// whose data is the patch kubectl applies to roll back
// ({"spec":{"template":{..., "$patch":"replace"}}}); kubectl rollout
// history and undo work on StatefulSets. status.currentRevision is the
// revision all pods ran when the last update finished, updateRevision the
// one of the current template.
//
// With updateStrategy RollingUpdate, pods of other revisions with an
// ordinal at or above rollingUpdate.partition are deleted from the highest
// ordinal down (and recreated at the update revision), at most
// maxUnavailable (default 1) unavailable at a time; pods below the
// partition keep, and are recreated at, the current revision. With
// OnDelete, pods change only when someone deletes them. Revisions beyond
// revisionHistoryLimit that no pod uses are deleted.
//
// # Volumes
//
// For each of spec.volumeClaimTemplates the controller creates the claim
// <template>-<set>-<ordinal> before the pod and puts it in the pod's
// volumes, as upstream. skiff does not serve PersistentVolumeClaims yet:
// until it does, a StatefulSet with volumeClaimTemplates creates no pods
// and reports FailedCreate events. persistentVolumeClaimRetentionPolicy is
// not acted on (claims are always retained, the default policy).
//
// # The main loop
//
//	informer events (StatefulSets; pods and revisions, to their owner) ─► queue
//	     │
//	     ▼
//	sync(key): StatefulSet, claimed pods and revisions from the cache
//	     ├─ revisions: the current one (status.currentRevision) and the
//	     │  update one (created, or an old one renumbered on rollback)
//	     ├─ replicas: ordinals in range; condemned: the rest, highest first
//	     ├─ each replica: recreate failed, create missing (with claims),
//	     │  fix identity; OrderedReady stops at the first unhealthy pod
//	     ├─ each condemned pod: delete (OrderedReady: one, all healthy)
//	     ├─ RollingUpdate: delete pods of other revisions down to the
//	     │  partition, within maxUnavailable
//	     ├─ write status (counts, revisions; currentRevision = updateRevision
//	     │  once every pod is updated and ready)
//	     └─ delete revisions past the history limit
package statefulset
