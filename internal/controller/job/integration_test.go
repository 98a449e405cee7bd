package job_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/controller/job"
	"github.com/skiff-sh/skiff/internal/testserver"
)

// startController runs a Job controller against a real control plane
// until the test ends, with short delays so that tests run quickly.
func startController(t *testing.T) kubernetes.Interface {
	t.Helper()
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := job.New(job.Config{
		Client:               client,
		Informers:            factory,
		Logger:               slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
		BatchPeriod:          10 * time.Millisecond,
		PodFailureBackoff:    10 * time.Millisecond,
		MaxPodFailureBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	factory.Start(ctx.Done())
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})
	return client
}

func ptrTo[T any](v T) *T { return &v }

func isTerminal(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

func completionIndex(p *corev1.Pod) int {
	ix, err := strconv.Atoi(p.Annotations[batchv1.JobCompletionIndexAnnotation])
	if err != nil {
		return -1
	}
	return ix
}

func findCondition(list []batchv1.JobCondition, t batchv1.JobConditionType, st corev1.ConditionStatus) *batchv1.JobCondition {
	for i := range list {
		if list[i].Type == t && list[i].Status == st {
			return &list[i]
		}
	}
	return nil
}

func isFinished(j *batchv1.Job) bool {
	return findCondition(j.Status.Conditions, batchv1.JobComplete, corev1.ConditionTrue) != nil ||
		findCondition(j.Status.Conditions, batchv1.JobFailed, corev1.ConditionTrue) != nil
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(string(p))
	return len(p), nil
}

// apiJob is a Job as a user writes it; the API server fills in the rest.
func apiJob(name string, change func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
			}},
		},
	}
	change(j)
	return j
}

// finish sets a pod's status as a node agent would when its container
// exits with code.
func finish(ctx context.Context, client kubernetes.Interface, p *corev1.Pod, code int32) error {
	p = p.DeepCopy()
	p.Status.Phase = corev1.PodFailed
	if code == 0 {
		p.Status.Phase = corev1.PodSucceeded
	}
	now := metav1.Now()
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{
		Name: "main", Image: "busybox", ImageID: "busybox@sha256:0",
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, StartedAt: now, FinishedAt: now}},
	}}
	_, err := client.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{})
	return err
}

// drive finishes every pod of the Job that has not finished yet, with the
// exit code code(pod), until done(job) holds.
func drive(t *testing.T, client kubernetes.Interface, name string, code func(*corev1.Pod) int32, done func(*batchv1.Job) bool) *batchv1.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last *batchv1.Job
	err := wait.PollUntilContextCancel(ctx, 5*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		j, err := client.BatchV1().Jobs("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = j
		if done(j) {
			return true, nil
		}
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + name})
		if err != nil {
			return false, err
		}
		for i := range pods.Items {
			p := &pods.Items[i]
			if isTerminal(p) || p.DeletionTimestamp != nil {
				continue
			}
			if err := finish(ctx, client, p, code(p)); err != nil && !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
				return false, err
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("job %s: %v; last seen: %+v", name, err, last.Status)
	}
	return last
}

func jobPods(t *testing.T, client kubernetes.Interface, name string) []corev1.Pod {
	t.Helper()
	pods, err := client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: batchv1.JobNameLabel + "=" + name})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	return pods.Items
}

func conditionTypes(j *batchv1.Job) []string {
	var out []string
	for _, c := range j.Status.Conditions {
		out = append(out, fmt.Sprintf("%s=%s/%s", c.Type, c.Status, c.Reason))
	}
	return out
}

// TestIntegration runs Jobs on a real API server and etcd, playing the
// node agent by writing pod status.
func TestIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	client := startController(t)
	ctx := context.Background()

	t.Run("job_with_backoff_limit_fails_after_the_right_number_of_pods", func(t *testing.T) {
		j := apiJob("fails", func(j *batchv1.Job) { j.Spec.BackoffLimit = ptrTo(int32(2)) })
		if _, err := client.BatchV1().Jobs("default").Create(ctx, j, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		got := drive(t, client, "fails", func(*corev1.Pod) int32 { return 1 }, isFinished)
		if findCondition(got.Status.Conditions, batchv1.JobFailed, corev1.ConditionTrue) == nil ||
			findCondition(got.Status.Conditions, batchv1.JobFailureTarget, corev1.ConditionTrue) == nil {
			t.Fatalf("conditions = %v, want FailureTarget and Failed", conditionTypes(got))
		}
		if c := findCondition(got.Status.Conditions, batchv1.JobFailed, corev1.ConditionTrue); c.Reason != batchv1.JobReasonBackoffLimitExceeded {
			t.Errorf("Failed reason = %q, want %q", c.Reason, batchv1.JobReasonBackoffLimitExceeded)
		}
		pods := jobPods(t, client, "fails")
		if len(pods) != 3 {
			t.Errorf("job created %d pods, want backoffLimit+1 = 3", len(pods))
		}
		if got.Status.Failed != 3 || got.Status.Succeeded != 0 || got.Status.Active != 0 {
			t.Errorf("status failed/succeeded/active = %d/%d/%d, want 3/0/0", got.Status.Failed, got.Status.Succeeded, got.Status.Active)
		}
		for _, p := range pods {
			if slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
				t.Errorf("pod %s keeps the tracking finalizer", p.Name)
			}
		}
	})

	t.Run("indexed_job_completes_and_is_deleted_after_its_ttl", func(t *testing.T) {
		j := apiJob("indexed", func(j *batchv1.Job) {
			j.Spec.CompletionMode = ptrTo(batchv1.IndexedCompletion)
			j.Spec.Completions, j.Spec.Parallelism = ptrTo(int32(4)), ptrTo(int32(2))
			j.Spec.TTLSecondsAfterFinished = ptrTo(int32(0))
		})
		if _, err := client.BatchV1().Jobs("default").Create(ctx, j, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		// Index 2 fails once; the others succeed.
		failed := false
		code := func(p *corev1.Pod) int32 {
			if completionIndex(p) == 2 && !failed {
				failed = true
				return 3
			}
			return 0
		}
		got := drive(t, client, "indexed", code, func(j *batchv1.Job) bool { return isFinished(j) || j.DeletionTimestamp != nil })
		if c := findCondition(got.Status.Conditions, batchv1.JobComplete, corev1.ConditionTrue); c == nil {
			t.Fatalf("conditions = %v, want Complete", conditionTypes(got))
		}
		if got.Status.CompletedIndexes != "0-3" || got.Status.Succeeded != 4 || got.Status.Failed != 1 {
			t.Errorf("completedIndexes/succeeded/failed = %q/%d/%d, want 0-3/4/1", got.Status.CompletedIndexes, got.Status.Succeeded, got.Status.Failed)
		}
		indexes := map[string]int{}
		for _, p := range jobPods(t, client, "indexed") {
			indexes[p.Labels[batchv1.JobCompletionIndexAnnotation]]++
			if p.Spec.Hostname != "indexed-"+p.Annotations[batchv1.JobCompletionIndexAnnotation] {
				t.Errorf("pod %s hostname %q", p.Name, p.Spec.Hostname)
			}
		}
		if want := map[string]int{"0": 1, "1": 1, "2": 2, "3": 1}; fmt.Sprint(indexes) != fmt.Sprint(want) {
			t.Errorf("pods per index = %v, want %v", indexes, want)
		}
		// ttlSecondsAfterFinished 0: deleted in the foreground at once. No
		// garbage collector runs here, so the Job stays, marked deleted.
		err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			j, err := client.BatchV1().Jobs("default").Get(ctx, "indexed", metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, nil
			}
			return err == nil && j.DeletionTimestamp != nil, err
		})
		if err != nil {
			t.Fatalf("job not deleted after its TTL: %v", err)
		}
	})

	t.Run("suspended_job_runs_no_pods_until_resumed", func(t *testing.T) {
		j := apiJob("later", func(j *batchv1.Job) { j.Spec.Suspend = ptrTo(true) })
		if _, err := client.BatchV1().Jobs("default").Create(ctx, j, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
			j, err := client.BatchV1().Jobs("default").Get(ctx, "later", metav1.GetOptions{})
			return err == nil && findCondition(j.Status.Conditions, batchv1.JobSuspended, corev1.ConditionTrue) != nil, err
		})
		if err != nil {
			t.Fatalf("no Suspended condition: %v", err)
		}
		if pods := jobPods(t, client, "later"); len(pods) != 0 {
			t.Fatalf("suspended job has %d pods", len(pods))
		}
		patch := []byte(`{"spec":{"suspend":false}}`)
		if _, err := client.BatchV1().Jobs("default").Patch(ctx, "later", "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		got := drive(t, client, "later", func(*corev1.Pod) int32 { return 0 }, isFinished)
		if findCondition(got.Status.Conditions, batchv1.JobComplete, corev1.ConditionTrue) == nil {
			t.Fatalf("conditions = %v, want Complete", conditionTypes(got))
		}
		if c := findCondition(got.Status.Conditions, batchv1.JobSuspended, corev1.ConditionFalse); c == nil || c.Reason != "JobResumed" {
			t.Errorf("conditions = %v, want Suspended=False/JobResumed", conditionTypes(got))
		}
	})
}
