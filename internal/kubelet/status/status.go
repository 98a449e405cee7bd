// Package status writes the pod statuses a kubelet computes to the API
// server, and deletes pods whose termination the kubelet has finished.
//
// The kubelet calls Set with the latest status it computed for a pod, as
// often as it likes; the Manager keeps only the latest one per pod and
// writes it when it differs from what the API holds, as a strategic merge
// patch of pods/status (so fields other writers own, such as conditions
// set by controllers, survive). Equal statuses are never written twice.
//
//	Set(pod, status) ──► latest[uid] ──► queue ──► worker:
//	    compare with the API's status (informer updates and patch replies)
//	    ├─ equal: nothing
//	    └─ differs: PATCH pods/status ──► on conflict or error: requeue with backoff
//	    then, when the pod is being deleted and SetFinal was called:
//	        DELETE pod with grace 0 and the pod's UID as precondition
//
// A pod's phase never goes back from Succeeded or Failed: Set keeps the
// terminal phase the API already holds.
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Config configures a Manager. Client is required.
type Config struct {
	// Client writes pods/status and deletes pods.
	Client kubernetes.Interface
	// Workers is how many writes run at once (default 4).
	Workers int
	// Clock drives retry backoff (default: the real clock).
	Clock clock.WithTicker
	// Logger gets the manager's logs (default: discarded).
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.Client == nil {
		return fmt.Errorf("pod status: Config.Client is required")
	}
	if c.Workers < 0 {
		return fmt.Errorf("pod status: negative Config.Workers")
	}
	if c.Workers == 0 {
		c.Workers = 4
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Manager writes pod statuses. Its methods are safe for concurrent use.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	queue workqueue.TypedRateLimitingInterface[types.UID]

	// mu guards pods.
	mu   sync.Mutex
	pods map[types.UID]*entry
}

// entry is what the manager knows of one pod.
type entry struct {
	namespace, name string
	// want is the latest status the kubelet computed; wantSet says there
	// is one.
	want    corev1.PodStatus
	wantSet bool
	// api is the status the API holds, as of apiRV.
	api   corev1.PodStatus
	apiRV int64
	// deleting: the pod has a deletionTimestamp; final: the kubelet is
	// done with it and it may be deleted once want is written.
	deleting, final bool
	// deleted: the DELETE was sent.
	deleted bool
}

// New makes a Manager; Run starts its workers.
func New(cfg Config) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	q := workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[types.UID](),
		workqueue.TypedRateLimitingQueueConfig[types.UID]{Name: "pod_status", Clock: cfg.Clock})
	return &Manager{cfg: cfg, log: cfg.Logger, queue: q, pods: map[types.UID]*entry{}}, nil
}

// Run writes statuses until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for range m.cfg.Workers {
		wg.Go(func() {
			for m.process(ctx) {
			}
		})
	}
	<-ctx.Done()
	m.queue.ShutDown()
	wg.Wait()
}

// Observe tells the manager what the API holds for pod (an informer's
// add or update). Older resource versions than one already seen are
// ignored.
func (m *Manager) Observe(pod *corev1.Pod) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.pods[pod.UID]
	if e == nil {
		return
	}
	if m.observeLocked(e, pod) && e.wantSet {
		m.queue.Add(pod.UID)
	}
}

// observeLocked records pod's status if it is newer; it reports whether
// it was.
func (m *Manager) observeLocked(e *entry, pod *corev1.Pod) bool {
	rv, _ := strconv.ParseInt(pod.ResourceVersion, 10, 64)
	if rv != 0 && rv < e.apiRV {
		return false
	}
	e.api, e.apiRV = *pod.Status.DeepCopy(), rv
	e.deleting = pod.DeletionTimestamp != nil
	return true
}

// Set records status as pod's latest and schedules its write. pod is the
// latest API object the caller has.
func (m *Manager) Set(pod *corev1.Pod, status corev1.PodStatus) { m.set(pod, status, false) }

// SetFinal is Set for a pod the kubelet has finished with: every
// container stopped and its resources released. Once the status is
// written, a pod that is being deleted is deleted for good (grace period
// 0).
func (m *Manager) SetFinal(pod *corev1.Pod, status corev1.PodStatus) { m.set(pod, status, true) }

func (m *Manager) set(pod *corev1.Pod, status corev1.PodStatus, final bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.pods[pod.UID]
	if e == nil {
		e = &entry{namespace: pod.Namespace, name: pod.Name}
		m.pods[pod.UID] = e
	}
	m.observeLocked(e, pod)
	e.want, e.wantSet = *status.DeepCopy(), true
	e.final = e.final || final
	m.queue.Add(pod.UID)
}

// Status returns the latest status Set for the pod with this UID.
func (m *Manager) Status(uid types.UID) (corev1.PodStatus, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.pods[uid]; e != nil && e.wantSet {
		return *e.want.DeepCopy(), true
	}
	return corev1.PodStatus{}, false
}

// Forget drops everything about the pod with this UID (it is gone).
func (m *Manager) Forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pods, uid)
	m.queue.Forget(uid)
}

func (m *Manager) process(ctx context.Context) bool {
	uid, quit := m.queue.Get()
	if quit {
		return false
	}
	defer m.queue.Done(uid)
	if err := m.sync(ctx, uid); err != nil {
		if ctx.Err() == nil {
			m.log.Debug("pod status write failed; retrying", "uid", uid, "err", err)
		}
		m.queue.AddRateLimited(uid)
		return true
	}
	m.queue.Forget(uid)
	return true
}

// sync writes one pod's status if needed, then deletes it if final.
func (m *Manager) sync(ctx context.Context, uid types.UID) error {
	m.mu.Lock()
	e := m.pods[uid]
	if e == nil || !e.wantSet {
		m.mu.Unlock()
		return nil
	}
	ns, name := e.namespace, e.name
	api, want := *e.api.DeepCopy(), *e.want.DeepCopy()
	m.mu.Unlock()

	want = Merge(api, want)
	if !Equal(api, want) {
		patch, err := statusPatch(uid, api, want)
		if err != nil {
			return fmt.Errorf("pod %s/%s: status patch: %w", ns, name, err)
		}
		pod, err := m.cfg.Client.CoreV1().Pods(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("pod %s/%s: patch status: %w", ns, name, err)
		}
		if pod.UID != uid {
			return nil // a new pod of the same name: not ours
		}
		m.mu.Lock()
		if e := m.pods[uid]; e != nil {
			m.observeLocked(e, pod)
		}
		m.mu.Unlock()
	}

	m.mu.Lock()
	e = m.pods[uid]
	del := e != nil && e.final && e.deleting && !e.deleted
	m.mu.Unlock()
	if !del {
		return nil
	}
	err := m.cfg.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{
		GracePeriodSeconds: new(int64(0)),
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("pod %s/%s: delete: %w", ns, name, err)
	}
	m.mu.Lock()
	if e := m.pods[uid]; e != nil {
		e.deleted = true
	}
	m.mu.Unlock()
	m.log.Debug("pod deleted", "pod", ns+"/"+name)
	return nil
}

// Merge completes the kubelet's status want with what it does not own
// from the API's status api: conditions others set, and a terminal phase
// that must not be undone.
func Merge(api, want corev1.PodStatus) corev1.PodStatus {
	if terminal(api.Phase) && !terminal(want.Phase) {
		want.Phase = api.Phase
		if want.Reason == "" {
			want.Reason, want.Message = api.Reason, api.Message
		}
	}
	owned := map[corev1.PodConditionType]bool{}
	for _, c := range want.Conditions {
		owned[c.Type] = true
	}
	var others []corev1.PodCondition
	for _, c := range api.Conditions {
		if !owned[c.Type] {
			others = append(others, c)
		}
	}
	if len(others) > 0 {
		want.Conditions = append(others, want.Conditions...)
	}
	if want.StartTime == nil {
		want.StartTime = api.StartTime
	}
	if want.NominatedNodeName == "" {
		want.NominatedNodeName = api.NominatedNodeName
	}
	return want
}

func terminal(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }

// Equal reports whether two statuses say the same, ignoring condition
// probe times and the precision timestamps lose on the wire.
func Equal(a, b corev1.PodStatus) bool {
	return apiequality.Semantic.DeepEqual(normalize(a), normalize(b))
}

func normalize(s corev1.PodStatus) corev1.PodStatus {
	s = *s.DeepCopy()
	trunc := func(t *metav1.Time) {
		if t != nil && !t.IsZero() {
			*t = metav1.NewTime(t.Rfc3339Copy().Time)
		}
	}
	trunc(s.StartTime)
	for i := range s.Conditions {
		s.Conditions[i].LastProbeTime = metav1.Time{}
		trunc(&s.Conditions[i].LastTransitionTime)
	}
	for _, l := range [][]corev1.ContainerStatus{s.InitContainerStatuses, s.ContainerStatuses, s.EphemeralContainerStatuses} {
		for i := range l {
			for _, st := range []*corev1.ContainerState{&l[i].State, &l[i].LastTerminationState} {
				if st.Running != nil {
					trunc(&st.Running.StartedAt)
				}
				if st.Terminated != nil {
					trunc(&st.Terminated.StartedAt)
					trunc(&st.Terminated.FinishedAt)
				}
			}
		}
	}
	return s
}

// statusPatch is the strategic merge patch from old to new status.
func statusPatch(uid types.UID, old, new corev1.PodStatus) ([]byte, error) {
	oldData, err := json.Marshal(corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: old})
	if err != nil {
		return nil, err
	}
	newData, err := json.Marshal(corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: new})
	if err != nil {
		return nil, err
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, corev1.Pod{})
	if err != nil {
		return nil, err
	}
	// The UID makes the patch apply only to this pod, as upstream does.
	var p map[string]any
	if err := json.Unmarshal(patch, &p); err != nil {
		return nil, err
	}
	p["metadata"] = map[string]any{"uid": uid}
	return json.Marshal(p)
}
