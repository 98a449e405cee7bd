package openapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kube-openapi/pkg/spec3"
)

// discard is a ResponseWriter that keeps nothing, so that benchmarks
// measure serving rather than recording.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(int)             {}

func newDiscard() *discard { return &discard{h: http.Header{}} }

// BenchmarkNew is the Service's share of server startup: checking the
// resources and reflecting over their types.
func BenchmarkNew(b *testing.B) {
	rs := skiffResources()
	for b.Loop() {
		if _, err := New(rs, Config{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFirstRequests is what the first client of each kind pays: each
// iteration starts from a new Service.
func BenchmarkFirstRequests(b *testing.B) {
	tests := []struct {
		name  string
		paths []string
		query map[string]string
	}{
		{name: "v2 json", paths: []string{PathV2}},
		{name: "v2 protobuf", paths: []string{PathV2}, query: map[string]string{"Accept": mediaV2Proto}},
		{name: "v3 index", paths: []string{PathV3}},
		{name: "v3 apps/v1 json", paths: []string{PathV3Prefix + "apis/apps/v1"}},
		{name: "v3 api/v1 protobuf", paths: []string{PathV3Prefix + "api/v1"}, query: map[string]string{"Accept": mediaV3Proto}},
	}
	rs := skiffResources()
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				s, err := New(rs, Config{})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for _, p := range tt.paths {
					req := httptest.NewRequest(http.MethodGet, p, nil)
					for k, v := range tt.query {
						req.Header.Set(k, v)
					}
					w := httptest.NewRecorder()
					s.ServeHTTP(w, req)
					if w.Code != http.StatusOK {
						b.Fatalf("%s: %d", p, w.Code)
					}
				}
			}
		})
	}
}

// BenchmarkV3 compares the Service with kube-openapi's handler3 serving
// the same v3 documents, cold (the index and every document from nothing)
// and warm (one cached document), and reports the ratio. handler3 is
// handed the documents already built, so the cold ratio is the price of
// the reflection and rendering that generated code spares upstream.
func BenchmarkV3(b *testing.B) {
	rs := skiffResources()
	built := newService(b)
	docs := map[string]*spec3.OpenAPI{}
	for _, key := range built.model.keys {
		docs[key] = built.model.openAPI(key, built.info)
	}
	keys := built.model.keys

	b.Run("cold", func(b *testing.B) {
		var ours, theirs time.Duration
		for b.Loop() {
			start := time.Now()
			s, err := New(rs, Config{})
			if err != nil {
				b.Fatal(err)
			}
			s.ServeHTTP(newDiscard(), httptest.NewRequest(http.MethodGet, PathV3, nil))
			for _, key := range keys {
				s.ServeHTTP(newDiscard(), httptest.NewRequest(http.MethodGet, PathV3Prefix+key, nil))
			}
			mid := time.Now()
			up := handler3.NewOpenAPIService()
			for key, doc := range docs {
				up.UpdateGroupVersion(key, doc)
			}
			up.HandleDiscovery(newDiscard(), httptest.NewRequest(http.MethodGet, PathV3, nil))
			for _, key := range keys {
				up.HandleGroupVersion(newDiscard(), httptest.NewRequest(http.MethodGet, PathV3Prefix+key, nil))
			}
			ours += mid.Sub(start)
			theirs += time.Since(mid)
		}
		report(b, ours, theirs)
	})

	b.Run("warm", func(b *testing.B) {
		up := handler3.NewOpenAPIService()
		for key, doc := range docs {
			up.UpdateGroupVersion(key, doc)
		}
		req := httptest.NewRequest(http.MethodGet, PathV3Prefix+"apis/apps/v1", nil)
		built.ServeHTTP(newDiscard(), req)
		up.HandleGroupVersion(newDiscard(), req)
		var ours, theirs time.Duration
		for b.Loop() {
			start := time.Now()
			built.ServeHTTP(newDiscard(), req)
			mid := time.Now()
			up.HandleGroupVersion(newDiscard(), req)
			ours += mid.Sub(start)
			theirs += time.Since(mid)
		}
		report(b, ours, theirs)
	})
}

func report(b *testing.B, ours, theirs time.Duration) {
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "skiff-ns/op")
	b.ReportMetric(float64(theirs.Nanoseconds())/float64(b.N), "handler3-ns/op")
	b.ReportMetric(float64(ours)/float64(theirs), "skiff/handler3")
}
