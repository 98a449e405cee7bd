// Package deployment rolls Deployments out: it keeps one ReplicaSet per
// revision of the pod template, moves pods from the old revisions to the
// new one as the strategy allows (RollingUpdate with maxSurge and
// maxUnavailable, or Recreate), scales all revisions proportionally when
// the Deployment is scaled mid-rollout, keeps revisionHistoryLimit old
// revisions, honours pause, and reports progress in the Deployment's
// status and its Available, Progressing and ReplicaFailure conditions. It
// behaves as upstream's deployment controller does, so kubectl's rollout
// status, history and undo work against it.
//
// The controller is an API client only: it watches Deployments,
// ReplicaSets and pods through shared informers and writes ReplicaSets and
// Deployment status. The ReplicaSet controller turns ReplicaSet sizes into
// pods.
//
//	Deployment / ReplicaSet / pod event ──► queue ──► sync(key)
//	  claim ReplicaSets (adopt matching orphans, release the rest)
//	  deleting?            status only
//	  paused?              Progressing=Unknown DeploymentPaused; scale only
//	  replicas changed?    scale every active revision in proportion
//	  RollingUpdate:       create or find the new ReplicaSet (revision
//	                       max+1), scale it up within replicas+maxSurge,
//	                       scale old ones down keeping replicas-maxUnavailable
//	                       available (unhealthy old pods first)
//	  Recreate:            scale old ReplicaSets to 0, wait until none of
//	                       their pods is left, then create and scale the new
//	  complete?            delete old revisions beyond revisionHistoryLimit
//	  status               replicas, updated, ready, available, unavailable,
//	                       terminating, conditions; requeue at the progress
//	                       deadline
//
// # Revisions
//
// A ReplicaSet belongs to a revision of the template: its name is the
// Deployment's name and the pod-template-hash of the template (an FNV-32a
// hash of the template and status.collisionCount, spelled as upstream
// spells it, so the names match upstream's), that hash is also a label of
// its pods and part of its selector, and its annotation
// deployment.kubernetes.io/revision holds the revision number. When the
// Deployment's template goes back to that of an old ReplicaSet (kubectl
// rollout undo), that ReplicaSet becomes the new one again with the next
// revision number, and its former numbers go to
// deployment.kubernetes.io/revision-history.
//
// # Progress
//
// With spec.progressDeadlineSeconds set (the default is 600), the
// Progressing condition is True with reason NewReplicaSetCreated,
// FoundNewReplicaSet or ReplicaSetUpdated while pods move, True with
// NewReplicaSetAvailable once the rollout is complete, and False with
// ProgressDeadlineExceeded when no progress was seen for the deadline.
// Time comes from the injected clock.
package deployment
