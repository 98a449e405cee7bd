package volume

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Token lifetimes, as the kubelet uses them.
const (
	// defaultTokenSeconds is a projection's expirationSeconds when it
	// sets none (the API defaults it to one hour).
	defaultTokenSeconds = 3600
	// maxTokenAge: a token older than this is refreshed whatever its
	// lifetime.
	maxTokenAge = 24 * time.Hour
	// refreshFraction of a token's lifetime passes before it is
	// refreshed.
	refreshFraction = 0.8
)

// tokenKey names one serviceAccountToken source of a projected volume.
type tokenKey struct {
	uid    types.UID
	volume string
	source int
}

type token struct {
	value    string
	audience string
	seconds  int64
	issued   time.Time
	expires  time.Time
	// queued: the pod was queued for a refresh of this token.
	queued bool
}

// refreshAt is when t must be replaced: at 80% of its lifetime, or 24
// hours after it was issued, whichever is first.
func (t *token) refreshAt() time.Time {
	at := t.issued.Add(time.Duration(float64(t.expires.Sub(t.issued)) * refreshFraction))
	if limit := t.issued.Add(maxTokenAge); limit.Before(at) {
		return limit
	}
	return at
}

// token returns a valid token for the projection, from the cache while
// it is fresh, else from the TokenRequest API (bound to the pod).
func (m *Manager) token(ctx context.Context, pod *v1.Pod, key tokenKey, tp *v1.ServiceAccountTokenProjection) (string, error) {
	seconds := int64(defaultTokenSeconds)
	if tp.ExpirationSeconds != nil {
		seconds = *tp.ExpirationSeconds
	}
	now := m.clock.Now()
	m.mu.Lock()
	cached := m.tokens[key]
	m.mu.Unlock()
	if cached != nil && cached.audience == tp.Audience && cached.seconds == seconds && now.Before(cached.refreshAt()) {
		return cached.value, nil
	}
	if m.cfg.Client == nil {
		return "", fmt.Errorf("%w: serviceAccountToken projections need an API client", ErrUnsupported)
	}
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: &seconds,
			BoundObjectRef: &authenticationv1.BoundObjectReference{
				APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID,
			},
		},
	}
	if tp.Audience != "" {
		req.Spec.Audiences = []string{tp.Audience}
	}
	resp, err := m.cfg.Client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		// A token that has not expired yet is still better than none.
		if cached != nil && cached.audience == tp.Audience && now.Before(cached.expires) {
			m.log.Warn("cannot refresh service account token; keeping the current one", "pod", pod.Namespace+"/"+pod.Name, "serviceAccount", sa, "err", err)
			return cached.value, nil
		}
		return "", fmt.Errorf("request token for service account %s/%s: %w", pod.Namespace, sa, err)
	}
	if resp.Status.Token == "" {
		return "", fmt.Errorf("request token for service account %s/%s: empty token", pod.Namespace, sa)
	}
	expires := resp.Status.ExpirationTimestamp.Time
	if expires.IsZero() || !expires.After(now) {
		expires = now.Add(time.Duration(seconds) * time.Second)
	}
	t := &token{value: resp.Status.Token, audience: tp.Audience, seconds: seconds, issued: now, expires: expires}
	m.mu.Lock()
	if _, tracked := m.pods[key.uid]; tracked {
		m.tokens[key] = t
	}
	m.mu.Unlock()
	m.poke()
	return t.value, nil
}

// nextRefresh is the earliest time a token not yet queued is due.
func (m *Manager) nextRefresh() (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var next time.Time
	found := false
	for _, t := range m.tokens {
		if t.queued {
			continue
		}
		if at := t.refreshAt(); !found || at.Before(next) {
			next, found = at, true
		}
	}
	return next, found
}

// dueTokens marks the tokens that are due as queued and returns their
// pods.
func (m *Manager) dueTokens() []types.UID {
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[types.UID]bool{}
	var out []types.UID
	for k, t := range m.tokens {
		if t.queued || now.Before(t.refreshAt()) {
			continue
		}
		t.queued = true
		if !seen[k.uid] {
			seen[k.uid] = true
			out = append(out, k.uid)
		}
	}
	return out
}
