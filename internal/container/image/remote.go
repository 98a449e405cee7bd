package image

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// manifestAccept is what a pull accepts as a manifest.
var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.DockerManifestSchema2),
}, ", ")

// Pull fetches ref (normalized by ParseReference) from its registry or the
// registry's mirrors, verifies every digest, unpacks the layers it does not
// have yet, and adds the image to the store under ref's tag and under
// name@digest of the manifest or index ref resolved to. A multi-arch index
// resolves to Config.Platform.
//
// auth (nil: anonymous) is sent only to the image's own registry, never to
// mirrors, which use the credentials of their configs entry. progress may
// be nil. Errors wrap ErrNotFound, ErrUnauthorized, ErrDigestMismatch,
// ErrUnsafeLayer, ErrUnsupported or ErrInvalidReference where they apply;
// a failed pull leaves nothing in the index or on disk that GC would not
// remove (completed layers are kept for a retry).
func (s *Store) Pull(ctx context.Context, ref string, auth *AuthConfig, progress ProgressFunc) (*Image, error) {
	start := s.cfg.Now()
	img, err := s.pull(ctx, ref, auth, progress)
	s.metrics.pulls.WithLabelValues(errorClass(err)).Inc()
	if err != nil {
		s.cleanupAfterFailure()
		return nil, fmt.Errorf("pull image %s: %w", ref, err)
	}
	s.metrics.duration.Observe(s.cfg.Now().Sub(start).Seconds())
	s.log.Info("image pulled", "ref", ref, "image", img.ID, "took", s.cfg.Now().Sub(start))
	return img, nil
}

func (s *Store) pull(ctx context.Context, ref string, auth *AuthConfig, progress ProgressFunc) (*Image, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	tr := newTracker(r.String(), progress)
	if s.cfg.StallTimeout > 0 {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		timeout := s.cfg.StallTimeout
		timer := time.AfterFunc(timeout, func() {
			cancel(fmt.Errorf("%w: no data from the registry for %s", context.DeadlineExceeded, timeout))
		})
		defer timer.Stop()
		defer cancel(nil)
		tr.kick = func() { timer.Reset(timeout) }
	}
	var errs []error
	for _, ep := range s.cfg.Registries.endpoints(r.Domain) {
		img, err := s.pullFrom(ctx, r, ep, auth, tr)
		if err == nil {
			return img, nil
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		kind := "registry"
		if ep.mirror {
			kind = "mirror"
		}
		s.log.Debug("pull from endpoint failed", "ref", r.String(), kind, ep.host, "err", err)
		errs = append(errs, fmt.Errorf("%s %s: %w", kind, ep.host, err))
	}
	return nil, combine(errs)
}

// combine reports every endpoint's failure but classifies the error by the
// first one that says something definite (not found, unauthorized, bad
// digest) rather than by a mere connection failure.
func combine(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	primary := errs[len(errs)-1]
	for _, err := range errs {
		if errorClass(err) != resultError {
			primary = err
			break
		}
	}
	var others []string
	for _, err := range errs {
		if err != primary {
			others = append(others, err.Error())
		}
	}
	return fmt.Errorf("%w (also tried: %s)", primary, strings.Join(others, "; "))
}

func (s *Store) pullFrom(ctx context.Context, r Reference, ep endpoint, auth *AuthConfig, tr *tracker) (*Image, error) {
	src, err := s.connect(ctx, r, ep, auth)
	if err != nil {
		return nil, err
	}
	body, mediaType, header, err := src.fetchManifest(ctx, r.identifier())
	if err != nil {
		return nil, fmt.Errorf("manifest %q: %w", r.identifier(), err)
	}
	top := digestOf(body)
	if r.Digest != "" && top.String() != r.Digest {
		return nil, fmt.Errorf("%w: manifest %s: content hashes to %s", ErrDigestMismatch, r.Digest, top)
	}
	if header != "" && header != top.String() {
		return nil, fmt.Errorf("%w: manifest %s: registry says %s, content hashes to %s", ErrDigestMismatch, r.identifier(), header, top)
	}
	manifest, md, err := s.resolve(ctx, src, body, mediaType, top)
	if err != nil {
		return nil, err
	}
	req := request{
		top: body, topDigest: top, manifest: manifest, manifestDigest: md,
		digests: []string{r.DigestRef(top.String())},
	}
	if t := r.TagRef(); t != "" {
		req.tags = []string{t}
	}
	return s.store(ctx, src, req, tr)
}

// registrySource reads one repository of one registry endpoint.
type registrySource struct {
	client *http.Client
	base   string // scheme://host/v2/repo
}

var _ source = (*registrySource)(nil)

// connect authenticates to an endpoint (ping, then the basic or token
// flow the registry asks for).
func (s *Store) connect(ctx context.Context, r Reference, ep endpoint, auth *AuthConfig) (*registrySource, error) {
	var opts []name.Option
	if ep.plainHTTP {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(ep.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: registry %q: %v", ErrInvalidReference, ep.host, err)
	}
	repo := reg.Repo(r.Path)
	inner := s.cfg.Transport.Clone()
	hc := s.cfg.Registries.Configs[ep.host]
	if hc.TLS != nil {
		tc, err := hc.TLS.load()
		if err != nil {
			return nil, err
		}
		inner.TLSClientConfig = tc
	} else if inner.TLSClientConfig == nil {
		inner.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	creds := hc.Auth
	if creds.empty() && !ep.mirror {
		creds = auth
	}
	authr, err := authenticator(creds)
	if err != nil {
		return nil, err
	}
	rt, err := transport.NewWithContext(ctx, reg, authr, inner, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, classify4xx(err)
	}
	return &registrySource{
		client: &http.Client{Transport: rt},
		base:   fmt.Sprintf("%s://%s/v2/%s", reg.Scheme(), reg.RegistryStr(), repo.RepositoryStr()),
	}, nil
}

// authenticator turns CRI-style credentials into go-containerregistry's.
func authenticator(a *AuthConfig) (authn.Authenticator, error) {
	if a.empty() {
		return authn.Anonymous, nil
	}
	cfg := authn.AuthConfig{
		Username: a.Username, Password: a.Password,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	}
	if a.Auth != "" && cfg.Username == "" {
		raw, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return nil, fmt.Errorf("%w: auth is not base64", ErrUnauthorized)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, fmt.Errorf("%w: auth is not base64 of user:password", ErrUnauthorized)
		}
		cfg.Username, cfg.Password = user, pass
	}
	return authn.FromConfig(cfg), nil
}

// classify4xx wraps registry errors in the store's error classes.
func classify4xx(err error) error {
	var terr *transport.Error
	if !errors.As(err, &terr) {
		return err
	}
	switch terr.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %v", ErrUnauthorized, err)
	}
	return err
}

// retryAfter are the waits before the second and third attempt of a
// request the registry answered with 429 or a 5xx status.
func retryAfter() []time.Duration { return []time.Duration{100 * time.Millisecond, time.Second} }

func (rs *registrySource) get(ctx context.Context, url, accept string) (*http.Response, error) {
	waits := retryAfter()
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := rs.client.Do(req)
		if err != nil {
			return nil, err
		}
		err = transport.CheckError(resp, http.StatusOK)
		if err == nil {
			return resp, nil
		}
		resp.Body.Close()
		transient := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
		if !transient || attempt == len(waits) {
			return nil, classify4xx(err)
		}
		select {
		case <-time.After(waits[attempt]):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// fetchManifest gets a manifest by tag or digest, with its media type and
// the Docker-Content-Digest the registry claims.
func (rs *registrySource) fetchManifest(ctx context.Context, ident string) ([]byte, string, string, error) {
	resp, err := rs.get(ctx, rs.base+"/manifests/"+ident, manifestAccept)
	if err != nil {
		return nil, "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, "", "", err
	}
	if len(body) > maxManifestSize {
		return nil, "", "", fmt.Errorf("manifest larger than %d bytes", maxManifestSize)
	}
	mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	return body, strings.TrimSpace(mt), resp.Header.Get("Docker-Content-Digest"), nil
}

func (rs *registrySource) manifest(ctx context.Context, d v1.Hash) ([]byte, string, error) {
	body, mt, _, err := rs.fetchManifest(ctx, d.String())
	return body, mt, err
}

func (rs *registrySource) blob(ctx context.Context, desc v1.Descriptor) (io.ReadCloser, error) {
	resp, err := rs.get(ctx, rs.base+"/blobs/"+desc.Digest.String(), "")
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}
