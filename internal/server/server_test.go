package server_test

import (
	"context"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/testserver"
)

func TestServer_BootstrapObjects(t *testing.T) {
	ts := testserver.Start(t)
	c := kubernetes.NewForConfigOrDie(ts.Config)
	ctx := context.Background()
	for _, ns := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		if _, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
			t.Errorf("namespace %s: %v", ns, err)
		}
	}
	svc, err := c.CoreV1().Services("default").Get(ctx, "kubernetes", metav1.GetOptions{})
	if err != nil || svc.Spec.ClusterIP != "10.43.0.1" || svc.Spec.Ports[0].Port != 443 {
		t.Fatalf("kubernetes service: %v %+v", err, svc)
	}
	for _, pc := range []string{"system-node-critical", "system-cluster-critical"} {
		if _, err := c.SchedulingV1().PriorityClasses().Get(ctx, pc, metav1.GetOptions{}); err != nil {
			t.Errorf("priority class %s: %v", pc, err)
		}
	}
}

func TestServer_ServiceAccountTokens(t *testing.T) {
	ts := testserver.Start(t)
	c := kubernetes.NewForConfigOrDie(ts.Config)
	ctx := context.Background()
	sa, err := c.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := c.CoreV1().ServiceAccounts("default").CreateToken(ctx, "robot", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Status.Token == "" || tr.Status.ExpirationTimestamp.IsZero() || *tr.Spec.ExpirationSeconds != 3600 {
		t.Fatalf("token request: %+v", tr.Status)
	}
	// The token authenticates.
	cfg := rest.AnonymousClientConfig(ts.Config)
	cfg.BearerToken = tr.Status.Token
	if _, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Pods("default").List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatalf("request with the token: %v", err)
	}
	short := int64(60)
	_, err = c.CoreV1().ServiceAccounts("default").CreateToken(ctx, "robot", &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &short}}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "10 minutes") {
		t.Fatalf("short token: %v", err)
	}
	_, err = c.CoreV1().ServiceAccounts("default").CreateToken(ctx, "nobody", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("token for a missing service account: %v", err)
	}
	// Deleting the service account revokes its tokens.
	if err := c.CoreV1().ServiceAccounts("default").Delete(ctx, sa.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := 50
	for ; deadline > 0; deadline-- {
		_, err = kubernetes.NewForConfigOrDie(cfg).CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		if apierrors.IsUnauthorized(err) {
			break
		}
	}
	if deadline == 0 {
		t.Fatalf("token of a deleted service account still works: %v", err)
	}
}
