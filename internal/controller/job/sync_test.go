package job

import (
	"errors"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"
)

const ns = "ns"

// newJob returns a Job as the API server stores it (defaults, generated
// selector and labels).
func newJob(name string, change ...func(*batchv1.Job)) *batchv1.Job {
	uid := "uid-" + name
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, UID: types.UID(uid), Generation: 1, ResourceVersion: "1"},
		Spec: batchv1.JobSpec{
			Parallelism:          ptrTo(int32(1)),
			Completions:          ptrTo(int32(1)),
			BackoffLimit:         ptrTo(int32(6)),
			CompletionMode:       ptrTo(batchv1.NonIndexedCompletion),
			Suspend:              ptrTo(false),
			ManualSelector:       ptrTo(false),
			PodReplacementPolicy: ptrTo(batchv1.TerminatingOrFailed),
			Selector:             &metav1.LabelSelector{MatchLabels: map[string]string{batchv1.ControllerUidLabel: uid}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
					batchv1.ControllerUidLabel: uid, batchv1.JobNameLabel: name,
					"controller-uid": uid, "job-name": name,
				}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
				},
			},
		},
	}
	for _, f := range change {
		f(j)
	}
	return j
}

func succeed(p *corev1.Pod) {
	p.Status.Phase = corev1.PodSucceeded
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, FinishedAt: metav1.NewTime(t0)}}}}
}

func failWith(code int32, at time.Time) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodFailed
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: code, FinishedAt: metav1.NewTime(at)}}}}
	}
}

func runReady(p *corev1.Pod) {
	p.Spec.NodeName = "node-1"
	p.Status.Phase = corev1.PodRunning
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}
}

// TestSync drives the controller through the life of Jobs, one sync at a
// time, and compares the calls it makes with golden traces.
func TestSync(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"creates_pods_up_to_parallelism", func(t *testing.T) {
			h := newHarness(t, nil, newJob("pi", func(j *batchv1.Job) {
				j.Spec.Completions, j.Spec.Parallelism = ptrTo(int32(3)), ptrTo(int32(2))
			}))
			h.sync("first sync creates two pods", "ns/pi")
			h.sync("a second sync before the informer saw them creates nothing", "ns/pi")
			h.Refresh()
			h.sync("pods seen: nothing to do", "ns/pi")
			h.Golden()
		}},
		{"counts_succeeded_pods_and_completes", func(t *testing.T) {
			h := newHarness(t, nil, newJob("pi", func(j *batchv1.Job) {
				j.Spec.Completions, j.Spec.Parallelism = ptrTo(int32(2)), ptrTo(int32(2))
			}))
			h.sync("create", "ns/pi")
			h.Refresh()
			for _, p := range h.pods(ns) {
				h.setPod(p, succeed)
			}
			h.Refresh()
			h.sync("both pods succeeded: uncounted, finalizers removed, counted, SuccessCriteriaMet then Complete", "ns/pi")
			h.Refresh()
			h.sync("finished: nothing more", "ns/pi")
			h.Golden()
		}},
		{"replaces_a_failed_pod_after_backoff", func(t *testing.T) {
			h := newHarness(t, nil, newJob("pi"))
			h.sync("create", "ns/pi")
			h.Refresh()
			h.setPod(h.pods(ns)[0], failWith(1, t0))
			h.clock.Step(2 * time.Second)
			h.Refresh()
			h.sync("failure counted; replacement waits out the 10s backoff", "ns/pi")
			h.Refresh()
			h.clock.Step(8 * time.Second)
			h.sync("backoff over: replacement created", "ns/pi")
			h.Golden()
		}},
		{"fails_after_backoff_limit", func(t *testing.T) {
			h := newHarness(t, nil, newJob("pi", func(j *batchv1.Job) {
				j.Spec.BackoffLimit = ptrTo(int32(1))
				j.Spec.Parallelism, j.Spec.Completions = ptrTo(int32(2)), ptrTo(int32(4))
			}))
			h.sync("create", "ns/pi")
			h.Refresh()
			pods := h.pods(ns)
			h.setPod(pods[0], failWith(1, t0))
			h.Refresh()
			h.sync("one failure of one allowed", "ns/pi")
			h.Refresh()
			h.clock.Step(10 * time.Second)
			h.sync("replacement", "ns/pi")
			h.Refresh()
			h.setPod(h.pods(ns)[1], failWith(2, h.clock.Now()))
			h.Refresh()
			h.sync("second failure: FailureTarget, the running pod is deleted", "ns/pi")
			h.Refresh()
			h.sync("deleted pod gone: Failed", "ns/pi")
			h.Golden()
		}},
		{"fails_past_active_deadline", func(t *testing.T) {
			h := newHarness(t, nil, newJob("pi", func(j *batchv1.Job) { j.Spec.ActiveDeadlineSeconds = ptrTo(int64(60)) }))
			h.sync("create; come back at the deadline", "ns/pi")
			h.Refresh()
			h.setPod(h.pods(ns)[0], runReady)
			h.Refresh()
			h.clock.Step(time.Minute)
			h.sync("deadline: FailureTarget, pod deleted", "ns/pi")
			h.Refresh()
			h.Note("the node agent confirms the pod's end")
			h.setPod(h.pods(ns)[0], failWith(137, h.clock.Now()))
			h.Refresh()
			h.sync("pod failed: counted, Failed", "ns/pi")
			h.Golden()
		}},
		{"indexed_job_creates_one_pod_per_index", func(t *testing.T) {
			h := newHarness(t, nil, newJob("idx", func(j *batchv1.Job) {
				j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion)
				j.Spec.Completions, j.Spec.Parallelism = ptrTo(int32(3)), ptrTo(int32(2))
			}))
			h.sync("indexes 0 and 1", "ns/idx")
			h.Refresh()
			for _, p := range h.pods(ns) {
				if completionIndex(p) == 1 {
					h.setPod(p, succeed)
				}
			}
			h.Refresh()
			h.sync("index 1 succeeded: completedIndexes, index 2 created", "ns/idx")
			h.Golden()
		}},
		{"indexed_job_removes_duplicate_index", func(t *testing.T) {
			j := newJob("idx", func(j *batchv1.Job) {
				j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion)
				j.Spec.Completions, j.Spec.Parallelism = ptrTo(int32(2)), ptrTo(int32(2))
			})
			mk := func(name, ix string, created time.Time) *corev1.Pod {
				return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
					Name: name, Namespace: ns, UID: types.UID("uid-" + name),
					CreationTimestamp: metav1.NewTime(created),
					Labels:            j.Spec.Template.Labels,
					Annotations:       map[string]string{batchv1.JobCompletionIndexAnnotation: ix},
					Finalizers:        []string{batchv1.JobTrackingFinalizer},
					OwnerReferences:   []metav1.OwnerReference{*metav1.NewControllerRef(j, jobKind)},
				}}
			}
			h := newHarness(t, nil, j,
				mk("idx-0-a", "0", t0.Add(-time.Minute)), mk("idx-0-b", "0", t0), mk("idx-9", "9", t0))
			h.sync("the newer pod of index 0 and the out-of-range pod go", "ns/idx")
			h.Golden()
		}},
		{"pod_failure_policy_fails_job", func(t *testing.T) {
			h := newHarness(t, nil, newJob("pfp", func(j *batchv1.Job) {
				j.Spec.PodReplacementPolicy = ptrTo(batchv1.Failed)
				j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
					{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
					{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
				}}
				j.Spec.Parallelism, j.Spec.Completions = ptrTo(int32(2)), ptrTo(int32(2))
			}))
			h.sync("create", "ns/pfp")
			h.Refresh()
			pods := h.pods(ns)
			h.setPod(pods[0], func(p *corev1.Pod) {
				failWith(137, t0)(p)
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}
			})
			h.Refresh()
			h.sync("disruption ignored: not counted, replaced after backoff", "ns/pfp")
			h.Refresh()
			h.setPod(pods[1], failWith(42, t0))
			h.Refresh()
			h.sync("exit code 42: FailureTarget PodFailurePolicy", "ns/pfp")
			h.Golden()
		}},
		{"suspend_deletes_pods_and_resume_restarts_the_clock", func(t *testing.T) {
			h := newHarness(t, nil, newJob("s", func(j *batchv1.Job) { j.Spec.Parallelism = ptrTo(int32(1)) }))
			h.sync("create", "ns/s")
			h.Refresh()
			h.setJob(h.job(ns, "s"), func(j *batchv1.Job) { j.Spec.Suspend = ptrTo(true); j.Generation++ })
			h.Refresh()
			h.sync("suspended: finalizer removed, pod deleted, Suspended condition", "ns/s")
			h.Refresh()
			h.clock.Step(time.Hour)
			h.setJob(h.job(ns, "s"), func(j *batchv1.Job) { j.Spec.Suspend = ptrTo(false); j.Generation++ })
			h.Refresh()
			h.sync("resumed: condition False, startTime reset, pod created", "ns/s")
			h.Golden()
		}},
		{"deletes_finished_job_after_ttl", func(t *testing.T) {
			h := newHarness(t, nil, newJob("ttl", func(j *batchv1.Job) {
				j.Spec.TTLSecondsAfterFinished = ptrTo(int32(100))
				j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}
			}))
			h.sync("finished: wait for the TTL", "ns/ttl")
			h.clock.Step(100 * time.Second)
			h.sync("TTL passed: recheck and delete in the foreground", "ns/ttl")
			h.Golden()
		}},
		{"work_queue_job_completes_when_all_pods_end", func(t *testing.T) {
			h := newHarness(t, nil, newJob("wq", func(j *batchv1.Job) {
				j.Spec.Completions, j.Spec.Parallelism = nil, ptrTo(int32(2))
			}))
			h.sync("create", "ns/wq")
			h.Refresh()
			pods := h.pods(ns)
			h.setPod(pods[0], succeed)
			h.Refresh()
			h.sync("one success: no new pods, the other keeps running", "ns/wq")
			h.Refresh()
			h.setPod(pods[1], succeed)
			h.Refresh()
			h.sync("all ended: Complete", "ns/wq")
			h.Golden()
		}},
		{"success_policy_completes_indexed_job_early", func(t *testing.T) {
			h := newHarness(t, nil, newJob("sp", func(j *batchv1.Job) {
				j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion)
				j.Spec.Completions, j.Spec.Parallelism = ptrTo(int32(3)), ptrTo(int32(3))
				j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptrTo("0")}}}
			}))
			h.sync("create", "ns/sp")
			h.Refresh()
			for _, p := range h.pods(ns) {
				if completionIndex(p) == 0 {
					h.setPod(p, succeed)
				}
			}
			h.Refresh()
			h.sync("index 0 succeeded: SuccessCriteriaMet, the others deleted", "ns/sp")
			h.Refresh()
			h.sync("others gone: Complete", "ns/sp")
			h.Golden()
		}},
		{"on_failure_restarts_count_toward_backoff_limit", func(t *testing.T) {
			h := newHarness(t, nil, newJob("of", func(j *batchv1.Job) {
				j.Spec.BackoffLimit = ptrTo(int32(2))
				j.Spec.Template.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			}))
			h.sync("create", "ns/of")
			h.Refresh()
			h.setPod(h.pods(ns)[0], func(p *corev1.Pod) {
				runReady(p)
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", RestartCount: 2}}
			})
			h.Refresh()
			h.sync("two restarts: backoff limit reached", "ns/of")
			h.Golden()
		}},
		{"adopts_orphan_and_releases_mismatched_pod", func(t *testing.T) {
			j := newJob("a")
			orphan := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: ns, UID: "uid-orphan", Labels: j.Spec.Template.Labels}}
			stray := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stray", Namespace: ns, UID: "uid-stray",
				Labels: map[string]string{"app": "other"}, OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(j, jobKind)}}}
			h := newHarness(t, nil, j, orphan, stray)
			h.sync("adopt the orphan, release the stray", "ns/a")
			h.Golden()
		}},
		{"removes_finalizer_from_pod_of_deleted_job", func(t *testing.T) {
			j := newJob("gone")
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "left", Namespace: ns, UID: "uid-left",
				Finalizers:      []string{batchv1.JobTrackingFinalizer},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(j, jobKind)}}}
			h := newHarness(t, nil, p)
			h.syncOrphan("job gone: finalizer removed", "ns/left")
			h.Golden()
		}},
		{"retries_failed_pod_creation", func(t *testing.T) {
			h := newHarness(t, nil, newJob("e", func(j *batchv1.Job) { j.Spec.Parallelism, j.Spec.Completions = ptrTo(int32(3)), ptrTo(int32(3)) }))
			fails := 1
			h.client.PrependReactor("create", "pods", func(clienttesting.Action) (bool, runtime.Object, error) {
				if fails > 0 {
					fails--
					return true, nil, apierrors.NewForbidden(podsGVR.GroupResource(), "", errors.New("exceeded quota"))
				}
				return false, nil, nil
			})
			h.sync("first create fails: slow start stops, error returned", "ns/e")
			h.Refresh()
			h.sync("retry creates all three", "ns/e")
			h.Golden()
		}},
		{"skips_jobs_managed_elsewhere_and_bad_input", func(t *testing.T) {
			h := newHarness(t, nil,
				newJob("kueue", func(j *batchv1.Job) { j.Spec.ManagedBy = ptrTo("kueue.x-k8s.io/multikueue") }),
				newJob("mode", func(j *batchv1.Job) { j.Spec.CompletionMode = ptrTo(batchv1.CompletionMode("Sideways")) }),
				newJob("nolimit", func(j *batchv1.Job) { j.Spec.BackoffLimit = nil }),
			)
			h.sync("managed by another controller: untouched", "ns/kueue")
			h.sync("unknown completion mode: event only", "ns/mode")
			h.sync("no backoffLimit (not written through the API): event only", "ns/nolimit")
			h.sync("no such job", "ns/missing")
			h.sync("malformed key", "a/b/c")
			h.Golden()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, tc.run)
	}
}
