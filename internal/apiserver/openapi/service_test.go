package openapi

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	openapi_v2 "github.com/google/gnostic-models/openapiv2"
	openapi_v3 "github.com/google/gnostic-models/openapiv3"
	"google.golang.org/protobuf/proto"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"
)

// rawClient neither follows redirects nor undoes gzip, so that tests see
// the replies as sent.
var rawClient = &http.Client{
	Transport:     &http.Transport{DisableCompression: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func fetch(t *testing.T, method, url string, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := rawClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

func index(t *testing.T, ts *httptest.Server) handler3.OpenAPIV3Discovery {
	t.Helper()
	r := fetch(t, http.MethodGet, ts.URL+PathV3, nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", PathV3, r.status, r.body)
	}
	var idx handler3.OpenAPIV3Discovery
	if err := json.Unmarshal(r.body, &idx); err != nil {
		t.Fatalf("decode index: %v", err)
	}
	return idx
}

func decodeV2JSON(t *testing.T, b []byte) {
	t.Helper()
	var s spec.Swagger
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatalf("decode v2 JSON: %v", err)
	}
	if s.Swagger != "2.0" || len(s.Definitions) == 0 || len(s.Paths.Paths) == 0 {
		t.Errorf("v2 document: swagger %q, %d definitions, %d paths", s.Swagger, len(s.Definitions), len(s.Paths.Paths))
	}
}

func decodeV2Proto(t *testing.T, b []byte) {
	t.Helper()
	var d openapi_v2.Document
	if err := proto.Unmarshal(b, &d); err != nil {
		t.Fatalf("decode v2 protobuf: %v", err)
	}
	if d.GetSwagger() != "2.0" || len(d.GetPaths().GetPath()) == 0 {
		t.Errorf("v2 protobuf: swagger %q, %d paths", d.GetSwagger(), len(d.GetPaths().GetPath()))
	}
}

func decodeV3JSON(t *testing.T, b []byte) {
	t.Helper()
	var o spec3.OpenAPI
	if err := json.Unmarshal(b, &o); err != nil {
		t.Fatalf("decode v3 JSON: %v", err)
	}
	if o.Version != "3.0.0" || len(o.Paths.Paths) == 0 || len(o.Components.Schemas) == 0 {
		t.Errorf("v3 document: openapi %q, %d paths, %d schemas", o.Version, len(o.Paths.Paths), len(o.Components.Schemas))
	}
}

func decodeV3Proto(t *testing.T, b []byte) {
	t.Helper()
	var d openapi_v3.Document
	if err := proto.Unmarshal(b, &d); err != nil {
		t.Fatalf("decode v3 protobuf: %v", err)
	}
	if d.GetOpenapi() != "3.0.0" || len(d.GetPaths().GetPath()) == 0 {
		t.Errorf("v3 protobuf: openapi %q, %d paths", d.GetOpenapi(), len(d.GetPaths().GetPath()))
	}
}

func TestServeHTTP_NegotiatesDocuments(t *testing.T) {
	ts := httptest.NewServer(newService(t))
	t.Cleanup(ts.Close)
	appsV1 := index(t, ts).Paths["apis/apps/v1"].ServerRelativeURL
	if appsV1 == "" {
		t.Fatal("index lacks apis/apps/v1")
	}

	tests := []struct {
		name       string
		method     string
		path       string
		header     map[string]string
		wantStatus int
		wantType   string
		decode     func(*testing.T, []byte)
	}{
		{name: "v2 defaults to JSON", path: PathV2, wantStatus: 200, wantType: mediaJSON, decode: decodeV2JSON},
		{name: "v2 any type is JSON", path: PathV2, header: map[string]string{"Accept": "*/*"}, wantStatus: 200, wantType: mediaJSON, decode: decodeV2JSON},
		{name: "v2 protobuf", path: PathV2, header: map[string]string{"Accept": mediaV2Proto}, wantStatus: 200, wantType: mediaV2Proto, decode: decodeV2Proto},
		{name: "v2 protobuf as kubectl 1.20 asks", path: PathV2, header: map[string]string{"Accept": mediaV2ProtoOld}, wantStatus: 200, wantType: mediaV2Proto, decode: decodeV2Proto},
		{name: "v2 preferred protobuf", path: PathV2, header: map[string]string{"Accept": "application/json;q=0.5, " + mediaV2Proto}, wantStatus: 200, wantType: mediaV2Proto, decode: decodeV2Proto},
		{name: "v2 not acceptable", path: PathV2, header: map[string]string{"Accept": "text/html"}, wantStatus: http.StatusNotAcceptable},
		{name: "v2 refused JSON", path: PathV2, header: map[string]string{"Accept": "application/json;q=0"}, wantStatus: http.StatusNotAcceptable},
		{name: "legacy path is protobuf whatever asked", path: PathV2Legacy, header: map[string]string{"Accept": "application/json"}, wantStatus: 200, wantType: mediaV2Proto, decode: decodeV2Proto},
		{name: "v3 document JSON", path: appsV1, wantStatus: 200, wantType: mediaJSON, decode: decodeV3JSON},
		{name: "v3 document protobuf", path: appsV1, header: map[string]string{"Accept": mediaV3Proto}, wantStatus: 200, wantType: mediaV3Proto, decode: decodeV3Proto},
		{name: "v3 document protobuf old spelling", path: appsV1, header: map[string]string{"Accept": mediaV3ProtoOld}, wantStatus: 200, wantType: mediaV3Proto, decode: decodeV3Proto},
		{name: "v3 index refuses protobuf", path: PathV3, header: map[string]string{"Accept": mediaV3Proto}, wantStatus: http.StatusNotAcceptable},
		{name: "unknown group version", path: "/openapi/v3/apis/example.com/v1", wantStatus: http.StatusNotFound},
		{name: "empty document key", path: PathV3Prefix, wantStatus: http.StatusNotFound},
		{name: "unknown path", path: "/openapi/v4", wantStatus: http.StatusNotFound},
		{name: "post refused", method: http.MethodPost, path: PathV2, wantStatus: http.StatusMethodNotAllowed},
		{name: "head", method: http.MethodHead, path: PathV2, wantStatus: 200, wantType: mediaJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			r := fetch(t, method, ts.URL+tt.path, tt.header)
			if r.status != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			if tt.wantType != "" {
				if got := r.header.Get("Content-Type"); got != tt.wantType {
					t.Errorf("Content-Type %q, want %q", got, tt.wantType)
				}
				if r.header.Get("ETag") == "" {
					t.Error("no ETag")
				}
			}
			if tt.decode != nil {
				tt.decode(t, r.body)
			}
			if r.status == http.StatusMethodNotAllowed && r.header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", r.header.Get("Allow"))
			}
		})
	}
}

func TestServeHTTP_V3HashesAndCaching(t *testing.T) {
	ts := httptest.NewServer(newService(t))
	t.Cleanup(ts.Close)
	idx := index(t, ts)
	want := []string{"api", "api/v1", "apis", "apis/apps", "apis/apps/v1", "apis/metrics.k8s.io/v1beta1", "apis/rbac.authorization.k8s.io/v1", "version"}
	for _, key := range want {
		if _, ok := idx.Paths[key]; !ok {
			t.Errorf("index lacks %q", key)
		}
	}
	url := idx.Paths["api/v1"].ServerRelativeURL
	path, hash, _ := strings.Cut(url, "?hash=")

	t.Run("current hash is cached forever", func(t *testing.T) {
		r := fetch(t, http.MethodGet, ts.URL+url, nil)
		if r.status != 200 || r.header.Get("Cache-Control") != cacheForever {
			t.Errorf("status %d, Cache-Control %q", r.status, r.header.Get("Cache-Control"))
		}
		if got := strings.Trim(r.header.Get("ETag"), `"`); got != hash {
			t.Errorf("ETag %q, want the hash %q", got, hash)
		}
	})
	t.Run("no hash is not cached", func(t *testing.T) {
		r := fetch(t, http.MethodGet, ts.URL+path, nil)
		if r.status != 200 || r.header.Get("Cache-Control") != "" {
			t.Errorf("status %d, Cache-Control %q", r.status, r.header.Get("Cache-Control"))
		}
	})
	t.Run("stale hash redirects to the current one", func(t *testing.T) {
		r := fetch(t, http.MethodGet, ts.URL+path+"?hash=0123", nil)
		if r.status != http.StatusMovedPermanently || r.header.Get("Location") != url {
			t.Errorf("status %d, Location %q, want 301 to %q", r.status, r.header.Get("Location"), url)
		}
	})
	t.Run("if-none-match", func(t *testing.T) {
		first := fetch(t, http.MethodGet, ts.URL+url, nil)
		r := fetch(t, http.MethodGet, ts.URL+url, map[string]string{"If-None-Match": first.header.Get("ETag")})
		if r.status != http.StatusNotModified || len(r.body) != 0 {
			t.Errorf("status %d with %d bytes, want 304", r.status, len(r.body))
		}
	})
	t.Run("index has an etag", func(t *testing.T) {
		first := fetch(t, http.MethodGet, ts.URL+PathV3, nil)
		r := fetch(t, http.MethodGet, ts.URL+PathV3, map[string]string{"If-None-Match": first.header.Get("ETag")})
		if r.status != http.StatusNotModified {
			t.Errorf("status %d, want 304", r.status)
		}
	})
}

func TestServeHTTP_Gzip(t *testing.T) {
	ts := httptest.NewServer(newService(t))
	t.Cleanup(ts.Close)
	plain := fetch(t, http.MethodGet, ts.URL+PathV2, nil)
	tests := []struct {
		name     string
		encoding string
		wantGzip bool
	}{
		{name: "gzip accepted", encoding: "gzip", wantGzip: true},
		{name: "among others", encoding: "br, gzip;q=0.8", wantGzip: true},
		{name: "any coding", encoding: "*", wantGzip: true},
		{name: "gzip refused", encoding: "gzip;q=0", wantGzip: false},
		{name: "other coding only", encoding: "br", wantGzip: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := fetch(t, http.MethodGet, ts.URL+PathV2, map[string]string{"Accept-Encoding": tt.encoding})
			gzipped := r.header.Get("Content-Encoding") == "gzip"
			if gzipped != tt.wantGzip {
				t.Fatalf("Content-Encoding %q, want gzip %v", r.header.Get("Content-Encoding"), tt.wantGzip)
			}
			body := r.body
			if gzipped {
				zr, err := gzip.NewReader(bytes.NewReader(r.body))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(body, plain.body) {
				t.Errorf("body differs from the plain one (%d vs %d bytes)", len(body), len(plain.body))
			}
			if !strings.Contains(strings.Join(r.header.Values("Vary"), ","), "Accept-Encoding") {
				t.Errorf("Vary %q lacks Accept-Encoding", r.header.Values("Vary"))
			}
		})
	}
}

// TestServeHTTP_ConcurrentFirstRequests races the first requests of every
// document: each is built once and all see the same bytes.
func TestServeHTTP_ConcurrentFirstRequests(t *testing.T) {
	svc := newService(t)
	paths := []string{PathV2, PathV2Legacy, PathV3}
	for _, key := range svc.model.keys {
		paths = append(paths, PathV3Prefix+key)
	}
	const workers = 4
	got := make([]map[string][]byte, workers)
	var wg sync.WaitGroup
	for w := range workers {
		got[w] = map[string][]byte{}
		wg.Go(func() {
			for _, p := range paths {
				rec := httptest.NewRecorder()
				svc.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
				got[w][p] = rec.Body.Bytes()
			}
		})
	}
	wg.Wait()
	for w := 1; w < workers; w++ {
		for _, p := range paths {
			if !bytes.Equal(got[0][p], got[w][p]) || len(got[w][p]) == 0 {
				t.Errorf("%s: worker %d saw %d bytes, worker 0 %d", p, w, len(got[w][p]), len(got[0][p]))
			}
		}
	}
}

func TestInstall_RegistersPaths(t *testing.T) {
	mux := http.NewServeMux()
	newService(t).Install(mux)
	for _, p := range []string{PathV2, PathV2Legacy, PathV3, PathV3Prefix + "api/v1"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s through the mux: %d", p, rec.Code)
		}
	}
}
