package cronjob_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiff-sh/skiff/internal/controller/cronjob"
	"github.com/skiff-sh/skiff/internal/testserver"
)

func ptrTo[T any](v T) *T { return &v }

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(string(p))
	return len(p), nil
}

// TestIntegration runs a CronJob on a real API server and etcd. The
// controller's clock is fake and starts a minute after the CronJob is
// created, so its first start is due at once; the test plays the Job
// controller by writing the Job's status.
func TestIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	ctx := context.Background()

	cj := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "every-minute", Namespace: "default"},
		Spec: batchv1.CronJobSpec{
			Schedule:          "* * * * *",
			TimeZone:          ptrTo("Etc/UTC"),
			ConcurrencyPolicy: batchv1.ForbidConcurrent,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "main", Image: "busybox"}},
			}}}},
		},
	}
	created, err := client.BatchV1().CronJobs("default").Create(ctx, cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	clock := testingclock.NewFakeClock(created.CreationTimestamp.Add(61 * time.Second))
	factory := informers.NewSharedInformerFactory(client, 0)
	c, err := cronjob.New(cronjob.Config{
		Client:    client,
		Informers: factory,
		Clock:     clock,
		Logger:    slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	factory.Start(runCtx.Done())
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		factory.Shutdown()
	})

	var job *batchv1.Job
	waitFor(t, "the CronJob's first Job", func(ctx context.Context) (bool, error) {
		jobs, err := client.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
		if err != nil || len(jobs.Items) == 0 {
			return false, err
		}
		job = &jobs.Items[0]
		return true, nil
	})
	if ref := metav1.GetControllerOf(job); ref == nil || ref.UID != created.UID {
		t.Errorf("job %s controller = %v, want the CronJob", job.Name, ref)
	}
	if job.Annotations[batchv1.CronJobScheduledTimestampAnnotation] == "" {
		t.Errorf("job %s has no scheduled-timestamp annotation", job.Name)
	}
	if job.Spec.Selector == nil || job.Spec.Template.Labels[batchv1.JobNameLabel] != job.Name {
		t.Errorf("job %s was not completed by the API server: selector %v, labels %v", job.Name, job.Spec.Selector, job.Spec.Template.Labels)
	}
	waitFor(t, "the Job in status.active", func(ctx context.Context) (bool, error) {
		got, err := client.BatchV1().CronJobs("default").Get(ctx, cj.Name, metav1.GetOptions{})
		return err == nil && len(got.Status.Active) == 1 && got.Status.Active[0].UID == job.UID && got.Status.LastScheduleTime != nil, err
	})

	// The Job completes; the CronJob notices.
	now := metav1.Now()
	job.Status.StartTime = &now
	job.Status.CompletionTime = &now
	job.Status.Succeeded = 1
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	if _, err := client.BatchV1().Jobs("default").UpdateStatus(ctx, job, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the completed Job out of status.active", func(ctx context.Context) (bool, error) {
		got, err := client.BatchV1().CronJobs("default").Get(ctx, cj.Name, metav1.GetOptions{})
		return err == nil && len(got.Status.Active) == 0 && got.Status.LastSuccessfulTime != nil, err
	})

	// A minute later, the next start.
	clock.Step(time.Minute)
	waitFor(t, "the second Job", func(ctx context.Context) (bool, error) {
		jobs, err := client.BatchV1().Jobs("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(jobs.Items) == 2, err
	})
}

func waitFor(t *testing.T, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, 60*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
