package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestCachedList_SameBytesAsTheSerializer checks that lists assembled from
// cached item encodings are byte for byte what the serializers write for
// the same list (the slow path is forced with ?pretty=false... by asking
// for a limit, which reads etcd at the same revision).
func TestCachedList_SameBytesAsTheSerializer(t *testing.T) {
	env := startTestServer(t)
	ctx := context.Background()
	for i := range 5 {
		p := pod(fmt.Sprintf("p%d", i), map[string]string{"i": fmt.Sprint(i)})
		if _, err := env.client.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, accept := range []string{"application/json", "application/vnd.kubernetes.protobuf"} {
		t.Run(accept, func(t *testing.T) {
			get := func(query string) []byte {
				req := httptest.NewRequest("GET", "/api/v1/namespaces/default/pods?"+query, nil)
				req.Header.Set("Accept", accept)
				rec := httptest.NewRecorder()
				env.server.ServeHTTP(rec, req)
				if rec.Code != 200 {
					t.Fatalf("%s: %d %s", query, rec.Code, rec.Body)
				}
				return rec.Body.Bytes()
			}
			// A consistent list: served from the cache once it is current.
			fast := get("")
			fast2 := get("resourceVersion=0") // from the encoding cache
			// The same objects at the same revision, encoded whole.
			rv := fastRV(t, env)
			slow := get("resourceVersion=" + rv + "&resourceVersionMatch=Exact")
			if !bytes.Equal(fast, slow) || !bytes.Equal(fast, fast2) {
				t.Fatalf("cached list differs from the serializer's:\nfast %q\nslow %q", fast, slow)
			}
		})
	}
}

func fastRV(t *testing.T, env *testEnv) string {
	l, err := env.client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{ResourceVersion: "0"})
	if err != nil {
		t.Fatal(err)
	}
	return l.ResourceVersion
}
