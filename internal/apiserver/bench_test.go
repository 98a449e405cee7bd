package apiserver

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// BenchmarkCreate measures a pod create through the whole REST layer
// (HTTP, decode, defaults, managed fields, etcd, encode), protobuf in and
// out, against a raw etcd put of the same bytes in the same run.
func BenchmarkCreate(b *testing.B) {
	env := startTestServerB(b)
	ctx := context.Background()
	cfg := rest.CopyConfig(env.config)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	c := kubernetes.NewForConfigOrDie(cfg)
	n := 0
	b.Run("api", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			n++
			if _, err := c.CoreV1().Pods("default").Create(ctx, pod(fmt.Sprintf("b-%d", n), map[string]string{"app": "x"}), metav1.CreateOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("etcd", func(b *testing.B) {
		data, _ := env.store.Codec().Encode(pod("raw", nil))
		for i := 0; i < b.N; i++ {
			if _, err := env.store.Client().Put(ctx, fmt.Sprintf("/bench/%d", i), string(data)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkListFromCache lists 2,000 pods from the watch cache, JSON and
// protobuf.
func BenchmarkListFromCache(b *testing.B) {
	env := startTestServerB(b)
	ctx := context.Background()
	for i := range 2000 {
		if _, err := env.client.CoreV1().Pods("default").Create(ctx, pod(fmt.Sprintf("l-%04d", i), map[string]string{"app": "x"}), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for _, ct := range []string{"application/json", "application/vnd.kubernetes.protobuf"} {
		b.Run(ct, func(b *testing.B) {
			cfg := rest.CopyConfig(env.config)
			cfg.ContentType = ct
			cfg.AcceptContentTypes = ct
			c := kubernetes.NewForConfigOrDie(cfg)
			for i := 0; i < b.N; i++ {
				l, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{ResourceVersion: "0"})
				if err != nil || len(l.Items) != 2000 {
					b.Fatalf("%v %d", err, len(l.Items))
				}
			}
		})
	}
}

// BenchmarkListHandler measures only the server's side of a LIST of 2,000
// pods from the cache: the handler writing into a recorder.
func BenchmarkListHandler(b *testing.B) {
	env := startTestServerB(b)
	ctx := context.Background()
	for i := range 2000 {
		if _, err := env.client.CoreV1().Pods("default").Create(ctx, pod(fmt.Sprintf("l-%04d", i), map[string]string{"app": "x"}), metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for _, accept := range []string{"application/json", "application/vnd.kubernetes.protobuf", "application/json;as=Table;v=v1;g=meta.k8s.io"} {
		b.Run(accept, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				req := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods?resourceVersion=0", nil)
				req.Header.Set("Accept", accept)
				rec := httptest.NewRecorder()
				env.server.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
				b.SetBytes(int64(rec.Body.Len()))
			}
		})
	}
}
