package manager_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/skiff-sh/skiff/internal/testserver"
)

// TestBadInput_RefusedWith422 is the bad input for workloads, sent
// to the real API server: each object is refused as invalid (422) naming
// the field at fault, and nothing is stored.
func TestBadInput_RefusedWith422(t *testing.T) {
	ts := testserver.Start(t)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	ctx := context.Background()

	mismatched := deploymentOf("mismatched", "registry.local/app:1", 1, rolling(intstr.FromInt32(1), intstr.FromInt32(0)))
	mismatched.Spec.Selector.MatchLabels = map[string]string{"app": "other"}

	cron := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: "bad-schedule"},
		Spec: batchv1.CronJobSpec{
			Schedule: "61 * * * *",
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				Containers:    []corev1.Container{{Name: "app", Image: "registry.local/app:1"}},
			}}}},
		},
	}

	for _, tc := range []struct {
		name   string
		create func() error
		get    func() error
		field  string
	}{
		{
			name: "a Deployment whose selector does not match its template",
			create: func() error {
				_, err := client.AppsV1().Deployments("default").Create(ctx, mismatched, metav1.CreateOptions{})
				return err
			},
			get: func() error {
				_, err := client.AppsV1().Deployments("default").Get(ctx, mismatched.Name, metav1.GetOptions{})
				return err
			},
			field: "spec.template.metadata.labels",
		},
		{
			name: "a CronJob with an invalid schedule",
			create: func() error {
				_, err := client.BatchV1().CronJobs("default").Create(ctx, cron, metav1.CreateOptions{})
				return err
			},
			get: func() error {
				_, err := client.BatchV1().CronJobs("default").Get(ctx, cron.Name, metav1.GetOptions{})
				return err
			},
			field: "spec.schedule",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.create()
			var status apierrors.APIStatus
			if !errors.As(err, &status) || status.Status().Code != http.StatusUnprocessableEntity || !apierrors.IsInvalid(err) {
				t.Fatalf("create: %v; want 422 Invalid", err)
			}
			var fields []string
			if d := status.Status().Details; d != nil {
				for _, c := range d.Causes {
					fields = append(fields, c.Field)
				}
			}
			if !strings.Contains(strings.Join(fields, " "), tc.field) {
				t.Errorf("causes name fields %v, want %s", fields, tc.field)
			}
			if err := tc.get(); !apierrors.IsNotFound(err) {
				t.Errorf("after the refusal, get: %v; want NotFound", err)
			}
		})
	}
}
