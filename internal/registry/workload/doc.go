// Package workload holds the rules of the resources that run containers:
// core/v1 pods, podtemplates and replicationcontrollers, apps/v1
// deployments, replicasets, statefulsets, daemonsets and
// controllerrevisions, and batch/v1 jobs and cronjobs. Resources returns
// them as registry.Resource values for the generic REST layer
// (internal/apiserver); nothing here touches storage or the network.
//
// Every rule follows upstream Kubernetes v1.37 for the v1 external types
// of k8s.io/api, with upstream's field paths, error types and messages, so
// that kubectl and client-go see the same answers:
//
//	create:  PrepareForCreate ─► Default ─► Validate ─► BeforeCreate ─► store
//	update:  PrepareForUpdate ─► Default ─► ValidateUpdate ─► store
//	status:  Status.PrepareForUpdate ─► Status.ValidateUpdate ─► store
//
// Defaults (DefaultPod, DefaultPodSpec, DefaultDeployment, DefaultJob, ...)
// are idempotent: the REST layer runs them after every patch. Because
// skiff runs PrepareForCreate before Default while upstream defaults first
// (at decoding), the hooks that depend on defaulted fields (the pod's QoS
// class, a Job's labels and generated selector) default the object
// themselves first.
//
// What upstream does in admission plugins rather than strategies, and what
// a cluster needs for pods to behave, is folded into the pods resource:
// DefaultTolerationSeconds (not-ready and unreachable NoExecute
// tolerations for 300s) in PrepareForCreate and PrepareForUpdate, and
// Priority (spec.priority and spec.preemptionPolicy from the
// PriorityClass) in BeforeCreate. The ServiceAccount plugin (the default
// service account and its token volume) is not here.
//
// Other packages reuse the pod helpers: DefaultPodSpec and
// ValidatePodTemplateSpec for objects that embed a pod template,
// PodQOSClass for the QoS class, and ParseSchedule for CronJob schedules.
package workload
