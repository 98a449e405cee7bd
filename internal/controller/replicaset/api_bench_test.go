package replicaset_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/skiff-sh/skiff/internal/testserver"
)

// BenchmarkReplicaSet_CreatesPods measures how long a ReplicaSet of 200
// takes from creation to 200 pods in its status, against the real API
// server. Its peer creates the same 200 pods straight from a client with
// 16 workers: the ratio is the controller's overhead over the API's
// write speed.
//
//	go test ./internal/controller/replicaset -run '^$' -bench CreatesPods -benchtime 5x
func BenchmarkReplicaSet_CreatesPods(b *testing.B) {
	const n = 200
	ts := testserver.Start(b)
	client := kubernetes.NewForConfigOrDie(ts.Config)
	startControllerB(b, client)
	ctx := context.Background()
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.local/app:1"}}}
	var ctrl, peer time.Duration
	i := 0
	for b.Loop() {
		i++
		ns := fmt.Sprintf("bench-%d", i)
		for _, name := range []string{ns, ns + "-peer"} {
			if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		w, err := client.AppsV1().ReplicaSets(ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", "web").String()})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if _, err := client.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: appsv1.ReplicaSetSpec{
				Replicas: ptr.To[int32](n),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: spec},
			},
		}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		for ev := range w.ResultChan() {
			if rs, ok := ev.Object.(*appsv1.ReplicaSet); ok && rs.Status.Replicas == n {
				break
			}
		}
		ctrl += time.Since(start)
		w.Stop()

		start = time.Now()
		var wg sync.WaitGroup
		next := make(chan int)
		for range 16 {
			wg.Go(func() {
				for j := range next {
					if _, err := client.CoreV1().Pods(ns+"-peer").Create(ctx, &corev1.Pod{
						ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", j)}, Spec: spec,
					}, metav1.CreateOptions{}); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for j := range n {
			next <- j
		}
		close(next)
		wg.Wait()
		peer += time.Since(start)
	}
	b.ReportMetric(float64(ctrl.Milliseconds())/float64(b.N), "replicaset-ms/op")
	b.ReportMetric(float64(peer.Milliseconds())/float64(b.N), "direct-ms/op")
	b.ReportMetric(float64(ctrl)/float64(peer), "ratio")
}
