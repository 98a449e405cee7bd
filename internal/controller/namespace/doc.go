// Package namespace empties namespaces that are being deleted and then
// lets them go, as upstream's namespace controller does.
//
// When a namespace is deleted, the API server sets its deletionTimestamp
// and status.phase=Terminating, and keeps it while spec.finalizers holds
// "kubernetes". This controller, an API client only, does the rest:
//
//	namespace event (deleting) ──► queue ──► sync(name)
//	   discovery: every namespaced resource that can be deleted
//	   for each: deletecollection (or list and delete one by one when the
//	             resource has no deletecollection), background propagation
//	             then list what is left, and which finalizers hold it
//	   status conditions: NamespaceDeletionDiscoveryFailure,
//	             NamespaceDeletionGroupVersionParsingFailure,
//	             NamespaceDeletionContentFailure, NamespaceContentRemaining,
//	             NamespaceFinalizersRemaining (False with the upstream "ok"
//	             reasons when all is well)
//	   something left?  come back after an estimate (pods: their grace
//	                    period; otherwise a few seconds)
//	   empty?           PUT /api/v1/namespaces/<name>/finalize without
//	                    "kubernetes"; the API server then deletes it
//
// Pods that are still terminating (a node's kubelet has not confirmed
// them gone) and objects held by finalizers of other controllers keep the
// namespace, as upstream: the conditions say which.
package namespace
