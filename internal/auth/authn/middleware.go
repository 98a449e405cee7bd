package authn

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PublicInfoPaths returns the paths Kubernetes serves without credentials
// (the system:public-info-viewer role): /healthz, /livez, /readyz and
// /version. Each call returns a new slice.
func PublicInfoPaths() []string {
	return []string{"/healthz", "/livez", "/readyz", "/version", "/version/"}
}

// MiddlewareConfig configures Middleware. The zero value lets no request
// through without credentials and discards log lines.
type MiddlewareConfig struct {
	// PublicPaths are URL paths served without credentials, to the user
	// system:anonymous in the group system:unauthenticated. An entry
	// matches a request path exactly; an entry ending in "/*" matches
	// every path below it ("/healthz/*" matches "/healthz/etcd"). Entries
	// must begin with "/". Requests whose path is not clean ("/a/../b")
	// never count as public.
	PublicPaths []string
	// Logger receives a line for every request with invalid credentials;
	// nil discards.
	Logger *slog.Logger
}

func (c *MiddlewareConfig) validate() error {
	for _, p := range c.PublicPaths {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("authentication middleware: public path %q does not begin with /", p)
		}
		if strings.Contains(strings.TrimSuffix(p, "/*"), "*") {
			return fmt.Errorf("authentication middleware: public path %q: * may only end a path, as /*", p)
		}
	}
	return nil
}

// Middleware returns a handler that authenticates each request with a and
// passes it to next with the User in its context (see UserFrom). A request
// with invalid credentials, or with none on a path that is not public, gets
// 401 and a Kubernetes Status body in JSON (reason Unauthorized, message
// "Unauthorized"); the reason credentials failed goes to the log only. An
// authenticated request reaches next without its Authorization header.
// It returns an error when a or next is nil or cfg is invalid.
func Middleware(a Authenticator, next http.Handler, cfg MiddlewareConfig) (http.Handler, error) {
	if a == nil {
		return nil, errors.New("authentication middleware: no authenticator")
	}
	if next == nil {
		return nil, errors.New("authentication middleware: no handler")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.WithGroup("authn")
	public := publicMatcher(slices.Clone(cfg.PublicPaths))
	body, err := unauthorizedBody()
	if err != nil {
		return nil, err
	}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok, err := a.AuthenticateRequest(r)
		switch {
		case ok:
			r = r.WithContext(WithUser(r.Context(), u))
			if _, has := r.Header["Authorization"]; has {
				// As in kube-apiserver: credentials stop here and are never
				// proxied on. The header map is shared with the caller's
				// request, so change a copy.
				r.Header = r.Header.Clone()
				r.Header.Del("Authorization")
			}
			next.ServeHTTP(w, r)
			return
		case err != nil:
			log.Info("request with invalid credentials", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "err", err)
		case public(r.URL.Path):
			anon := &User{Name: UserAnonymous, Groups: []string{GroupUnauthenticated}}
			next.ServeHTTP(w, r.WithContext(WithUser(r.Context(), anon)))
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write(body)
	}), nil
}

// unauthorizedBody is the Status kube-apiserver answers 401 with.
func unauthorizedBody() ([]byte, error) {
	body, err := json.Marshal(&metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusFailure,
		Message:  "Unauthorized",
		Reason:   metav1.StatusReasonUnauthorized,
		Code:     http.StatusUnauthorized,
	})
	if err != nil {
		return nil, fmt.Errorf("authentication middleware: encode Status: %w", err)
	}
	return append(body, '\n'), nil
}

// publicMatcher returns a function that reports whether a request path is
// public.
func publicMatcher(paths []string) func(string) bool {
	exact := map[string]bool{}
	var prefixes []string
	for _, p := range paths {
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			prefixes = append(prefixes, prefix)
		} else {
			exact[p] = true
		}
	}
	return func(p string) bool {
		// "/healthz/" is clean enough; "/healthz/../api" and "//x" are not.
		if clean := path.Clean(p); p == "" || (clean != p && clean+"/" != p) {
			return false
		}
		if exact[p] {
			return true
		}
		for _, prefix := range prefixes {
			if strings.HasPrefix(p, prefix) {
				return true
			}
		}
		return false
	}
}
