// Package replicaset keeps the number of pods a ReplicaSet asks for: it
// creates pods from the ReplicaSet's template, deletes the surplus, adopts
// orphan pods that match its selector and releases owned pods that no
// longer match, and reports what it sees in the ReplicaSet's status. It
// behaves as upstream's ReplicaSet controller does.
//
// The controller is an API client only. It watches ReplicaSets and pods
// through shared informers and works on a queue of ReplicaSet keys
// (namespace/name):
//
//	ReplicaSet or pod event ──► queue ──► sync(key)
//	                                        │ pods of the namespace (cache)
//	                                        │ claim: adopt matching orphans,
//	                                        │        release non-matching
//	                                        │ if the last creates/deletes were
//	                                        │ all observed (expectations):
//	                                        │   create the missing pods in
//	                                        │   slow-start batches 1, 2, 4, …
//	                                        │   or delete the surplus, worst first
//	                                        ▼ status: replicas, fullyLabeled,
//	                                          ready, available, terminating,
//	                                          observedGeneration, ReplicaFailure
//
// # Expectations
//
// The informer cache lags behind the controller's own writes. After it
// creates or deletes pods, the controller records how many creations and
// which deletions it expects to observe, and does not create or delete
// again for that ReplicaSet until the cache has caught up (or five minutes
// have passed, in case an event was lost). This is what keeps two syncs in
// a row from creating twice the pods.
//
// # Which pods go first
//
// When scaling down, pods are deleted in this order (the first difference
// decides): not yet on a node; Pending before Unknown before Running; not
// ready before ready; lower controller.kubernetes.io/pod-deletion-cost;
// more pods of the same owner on the same node; ready for a shorter time;
// more container restarts; created more recently. Times are compared on a
// logarithmic scale (pods whose ages are within a factor of two are equal
// on that criterion) so that the order does not churn between pods of
// similar age, and ties go to the UID.
package replicaset
