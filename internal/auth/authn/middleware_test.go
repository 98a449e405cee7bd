package authn

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/internal/auth/pki"
)

// echoUser answers with the user the middleware put in the context.
var echoUser = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	u, ok := UserFrom(r.Context())
	if !ok {
		http.Error(w, "no user in context", http.StatusInternalServerError)
		return
	}
	if r.Header.Get("Authorization") != "" {
		http.Error(w, "Authorization header reached the handler", http.StatusInternalServerError)
		return
	}
	json.NewEncoder(w).Encode(u)
})

// TestMiddleware_RealTLS runs the middleware behind a real TLS listener
// configured by pki, and sends certificates and tokens the way clients do.
func TestMiddleware_RealTLS(t *testing.T) {
	now := time.Now()
	// The cluster was made two years ago; its admin certificate from then
	// has expired. Ensure with the real clock re-issues what the server
	// and the current admin use, with the same CA.
	c := newCluster(t, now.Add(-2*pki.LeafValidity))
	expiredAdmin := c.bundle.Admin
	var err error
	if c.bundle, err = pki.Ensure(pki.Config{Dir: c.bundle.Dir}); err != nil {
		t.Fatal(err)
	}
	other := newCluster(t, now)

	x509Auth, err := NewX509(X509Config{Roots: c.bundle.CA.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := ParseTokenFile(strings.NewReader("good-token,alice,1000,\"devs,ops\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := Union(x509Auth, BearerToken(UnionTokens(tokens)))
	logs := &syncBuffer{}
	h, err := Middleware(a, echoUser, MiddlewareConfig{
		PublicPaths: PublicInfoPaths(),
		Logger:      slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = c.bundle.ServerTLSConfig()
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)

	admin := &User{Name: "skiff-admin", Groups: []string{"system:masters", GroupAuthenticated}}
	alice := &User{Name: "alice", UID: "1000", Groups: []string{"devs", "ops", GroupAuthenticated}}
	anonymous := &User{Name: UserAnonymous, Groups: []string{GroupUnauthenticated}}

	tests := []struct {
		name     string
		path     string
		cert     *pki.KeyPair // sent whatever CAs the server names
		token    string
		want     *User // nil: 401
		wantLogs string
	}{
		{name: "client certificate is its CN and O", path: "/api", cert: c.bundle.Admin, want: admin},
		{name: "certificate of another CA is 401", path: "/api", cert: other.bundle.Admin, wantLogs: "invalid client certificate"},
		{name: "expired certificate is 401", path: "/api", cert: expiredAdmin, wantLogs: "expired"},
		{name: "token is its user", path: "/api/v1/pods", token: "good-token", want: alice},
		{name: "bad token is 401", path: "/api", token: "bad-token", wantLogs: "invalid bearer token"},
		{name: "no credentials is 401", path: "/api"},
		{name: "good token beats a bad certificate", path: "/api", cert: other.bundle.Admin, token: "good-token", want: alice},
		{name: "good certificate beats a bad token", path: "/api", cert: c.bundle.Admin, token: "bad-token", want: admin},
		{name: "public path needs no credentials", path: "/healthz", want: anonymous},
		{name: "public path with trailing slash", path: "/version/", want: anonymous},
		{name: "public path still names an authenticated user", path: "/readyz", token: "good-token", want: alice},
		{name: "public path with a bad token is 401", path: "/livez", token: "bad-token"},
		{name: "below a public path is not public", path: "/healthz/etcd"},
		{name: "dot-dot out of a public path is not public", path: "/healthz/../api"},
	}
	t.Run("client-go sees 401 as Unauthorized and the admin kubeconfig as admin", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "admin.kubeconfig")
		if err := pki.WriteKubeconfig(path, c.bundle.AdminKubeconfig(srv.URL)); err != nil {
			t.Fatal(err)
		}
		adminCfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			t.Fatal(err)
		}
		anonCfg := rest.AnonymousClientConfig(adminCfg)
		for _, tc := range []struct {
			cfg      *rest.Config
			wantUser string
		}{
			{cfg: adminCfg, wantUser: "skiff-admin"},
			{cfg: anonCfg},
		} {
			dc, err := discovery.NewDiscoveryClientForConfig(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := dc.RESTClient().Get().AbsPath("/api").DoRaw(context.Background())
			if tc.wantUser == "" {
				if !apierrors.IsUnauthorized(err) {
					t.Errorf("anonymous GET /api: error %v, want Unauthorized", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("admin GET /api: %v", err)
			}
			var u User
			if err := json.Unmarshal(raw, &u); err != nil || u.Name != tc.wantUser {
				t.Errorf("admin GET /api: user %+v, %v", u, err)
			}
		}
	})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			tlsCfg := &tls.Config{RootCAs: c.bundle.CA.Pool()}
			if tt.cert != nil {
				tc := tt.cert.TLSCertificate()
				tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tc, nil }
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg, ForceAttemptHTTP2: true}}
			t.Cleanup(client.CloseIdleConnections)
			req, err := http.NewRequest("GET", srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Path = tt.path // unclean paths too
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoMajor != 2 {
				t.Errorf("protocol %s, want HTTP/2", resp.Proto)
			}

			if tt.want == nil {
				checkUnauthorized(t, resp, body)
			} else {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				var got User
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, &got, cmpopts.IgnoreFields(User{}, "Extra")); diff != "" {
					t.Errorf("user (-want +got):\n%s", diff)
				}
			}
			if tt.wantLogs != "" && !strings.Contains(logs.String(), tt.wantLogs) {
				t.Errorf("log lacks %q:\n%s", tt.wantLogs, logs.String())
			}
			if strings.Contains(logs.String(), "good-token") || strings.Contains(logs.String(), "bad-token") {
				t.Errorf("a token reached the log:\n%s", logs.String())
			}
		})
	}
}

// syncBuffer is a bytes.Buffer that the server's goroutines and the test
// may use at once.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// checkUnauthorized checks a 401 answer against kube-apiserver's.
func checkUnauthorized(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	want := `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}` + "\n"
	if diff := cmp.Diff(want, string(body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	var st metav1.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Reason != metav1.StatusReasonUnauthorized || st.Code != 401 {
		t.Errorf("status = %+v", st)
	}
}

func TestMiddleware_PublicPathPatterns(t *testing.T) {
	h, err := Middleware(AuthenticatorFunc(func(*http.Request) (*User, bool, error) { return nil, false, nil }), echoUser,
		MiddlewareConfig{PublicPaths: []string{"/healthz", "/metrics/*"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want int
	}{
		{"/healthz", 200},
		{"/healthz/", 401}, // exact, as RBAC's nonResourceURLs
		{"/healthzz", 401},
		{"/metrics/cadvisor", 200},
		{"/metrics", 401},
		{"/metrics/../api", 401},
		{"//healthz", 401},
		{"/", 401},
		{"/api", 401},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.URL.Path = tt.path
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("status %d, want %d", w.Code, tt.want)
			}
		})
	}
}

func TestMiddleware_ZeroConfigAllowsNothingAnonymous(t *testing.T) {
	h, err := Middleware(Union(), echoUser, MiddlewareConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range PublicInfoPaths() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", p, w.Code)
		}
	}
}

func TestMiddleware_RejectsBadConfig(t *testing.T) {
	none := Union()
	tests := []struct {
		name     string
		a        Authenticator
		next     http.Handler
		cfg      MiddlewareConfig
		wantText string
	}{
		{name: "no authenticator", next: echoUser, wantText: "no authenticator"},
		{name: "no handler", a: none, wantText: "no handler"},
		{name: "relative public path", a: none, next: echoUser, cfg: MiddlewareConfig{PublicPaths: []string{"healthz"}}, wantText: "does not begin with /"},
		{name: "star inside a public path", a: none, next: echoUser, cfg: MiddlewareConfig{PublicPaths: []string{"/healthz*"}}, wantText: "* may only end a path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Middleware(tt.a, tt.next, tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("error = %v, want %q", err, tt.wantText)
			}
		})
	}
}

func TestUnion(t *testing.T) {
	alice := &User{Name: "alice"}
	bob := &User{Name: "bob"}
	errA, errB := errors.New("a failed"), errors.New("b failed")
	yes := func(u *User) Authenticator {
		return AuthenticatorFunc(func(*http.Request) (*User, bool, error) { return u, true, nil })
	}
	no := AuthenticatorFunc(func(*http.Request) (*User, bool, error) { return nil, false, nil })
	fail := func(err error) Authenticator {
		return AuthenticatorFunc(func(*http.Request) (*User, bool, error) { return nil, false, err })
	}

	tests := []struct {
		name     string
		as       []Authenticator
		want     *User
		wantErrs []error
	}{
		{name: "empty union sees nothing"},
		{name: "first success wins", as: []Authenticator{no, yes(alice), yes(bob)}, want: alice},
		{name: "success after a failure still wins", as: []Authenticator{fail(errA), yes(bob)}, want: bob},
		{name: "all failures are reported", as: []Authenticator{fail(errA), no, fail(errB)}, wantErrs: []error{errA, errB}},
		{name: "nobody saw credentials", as: []Authenticator{no, no}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ok, err := Union(tt.as...).AuthenticateRequest(httptest.NewRequest("GET", "/", nil))
			if ok != (tt.want != nil) || u != tt.want {
				t.Errorf("got %v, %v; want %v", u, ok, tt.want)
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("error %v does not wrap %v", err, want)
				}
			}
			if len(tt.wantErrs) == 0 && err != nil {
				t.Errorf("error = %v", err)
			}
		})
	}
}

func TestUnionTokens_AsksEachInTurn(t *testing.T) {
	first, err := ParseTokenFile(strings.NewReader("t1,alice,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	lookupFailed := errors.New("lookup failed")
	var asked []string
	broken := TokenAuthenticatorFunc(func(_ context.Context, token string) (*User, bool, error) {
		asked = append(asked, token)
		return nil, false, lookupFailed
	})
	ts := UnionTokens(first, broken)

	if u, ok, err := ts.AuthenticateToken(context.Background(), "t1"); !ok || err != nil || u.Name != "alice" {
		t.Errorf("t1: %v %v %v", u, ok, err)
	}
	if _, ok, err := ts.AuthenticateToken(context.Background(), "t2"); ok || !errors.Is(err, lookupFailed) {
		t.Errorf("t2: ok=%v err=%v, want the lookup error", ok, err)
	}
	if diff := cmp.Diff([]string{"t2"}, asked); diff != "" {
		t.Errorf("second authenticator asked (-want +got):\n%s", diff)
	}
}

func TestUserContext(t *testing.T) {
	if u, ok := UserFrom(context.Background()); ok || u != nil {
		t.Errorf("empty context has user %v", u)
	}
	if _, ok := UserFrom(WithUser(context.Background(), nil)); ok {
		t.Error("nil user counts as a user")
	}
	alice := &User{Name: "alice", Groups: []string{"devs"}, Extra: map[string][]string{"k": {"v"}}}
	got, ok := UserFrom(WithUser(context.Background(), alice))
	if !ok || got != alice {
		t.Errorf("UserFrom = %v, %v", got, ok)
	}
	clone := alice.Clone()
	clone.Groups[0] = "ops"
	clone.Extra["k"][0] = "w"
	if alice.Groups[0] != "devs" || alice.Extra["k"][0] != "v" {
		t.Error("Clone shares memory with the original")
	}
}
