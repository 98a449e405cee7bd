// Package serviceaccount issues and verifies service-account tokens: the
// JWTs pods use to talk to the API (bound to a pod through the TokenRequest
// API, projected into the pod by the kubelet) as upstream Kubernetes makes
// them.
//
//	iss  the issuer (https://kubernetes.default.svc.cluster.local)
//	sub  system:serviceaccount:<namespace>:<name>
//	aud  the requested audiences (default: the issuer)
//	exp, iat, nbf
//	kubernetes.io: {namespace, serviceaccount{name,uid}, pod{name,uid}, node{name,uid}}
//
// A token authenticates as the service account's user
// (system:serviceaccount:<ns>:<name>, groups system:serviceaccounts and
// system:serviceaccounts:<ns>) while the service account, and the object it
// is bound to, still exist with the same UIDs.
package serviceaccount

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/skiff-sh/skiff/internal/auth/authn"
)

// DefaultIssuer is the issuer (and default audience) of the tokens.
const DefaultIssuer = "https://kubernetes.default.svc.cluster.local"

// ErrInvalidToken classifies every verification failure.
var ErrInvalidToken = errors.New("invalid service account token")

// Ref names an object a token is bound to.
type Ref struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// kubernetesClaims is the private "kubernetes.io" claim.
type kubernetesClaims struct {
	Namespace      string `json:"namespace"`
	ServiceAccount Ref    `json:"serviceaccount"`
	Pod            *Ref   `json:"pod,omitempty"`
	Secret         *Ref   `json:"secret,omitempty"`
	Node           *Ref   `json:"node,omitempty"`
}

type claims struct {
	jwt.RegisteredClaims
	Kubernetes kubernetesClaims `json:"kubernetes.io"`
}

// Request is what a token is issued for.
type Request struct {
	Namespace      string
	ServiceAccount Ref
	Audiences      []string
	Expiration     time.Duration
	// Pod, Secret and Node bind the token to an object; at most one of Pod
	// and Secret, Node only with Pod.
	Pod, Secret, Node *Ref
}

// Issuer signs tokens.
type Issuer struct {
	key    crypto.Signer
	issuer string
	now    func() time.Time
}

// NewIssuer returns an issuer signing with key (ECDSA P-256 or RSA).
func NewIssuer(key crypto.Signer, issuer string, now func() time.Time) (*Issuer, error) {
	if issuer == "" {
		issuer = DefaultIssuer
	}
	if now == nil {
		now = time.Now
	}
	if _, err := signingMethod(key.Public()); err != nil {
		return nil, err
	}
	return &Issuer{key: key, issuer: issuer, now: now}, nil
}

func signingMethod(pub crypto.PublicKey) (jwt.SigningMethod, error) {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return jwt.SigningMethodES256, nil
	case *rsa.PublicKey:
		return jwt.SigningMethodRS256, nil
	}
	return nil, fmt.Errorf("service account key: unsupported key type %T", pub)
}

// Issuer returns the iss claim the issuer writes.
func (i *Issuer) Issuer() string { return i.issuer }

// Issue signs a token for req and returns it with its expiry.
func (i *Issuer) Issue(req Request) (string, time.Time, error) {
	method, err := signingMethod(i.key.Public())
	if err != nil {
		return "", time.Time{}, err
	}
	now := i.now().Truncate(time.Second)
	exp := now.Add(req.Expiration)
	aud := req.Audiences
	if len(aud) == 0 {
		aud = []string{i.issuer}
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.issuer,
			Subject:   Username(req.Namespace, req.ServiceAccount.Name),
			Audience:  aud,
			ExpiresAt: jwt.NewNumericDate(exp),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
		},
		Kubernetes: kubernetesClaims{Namespace: req.Namespace, ServiceAccount: req.ServiceAccount, Pod: req.Pod, Secret: req.Secret, Node: req.Node},
	}
	tok := jwt.NewWithClaims(method, c)
	s, err := tok.SignedString(i.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("sign service account token: %w", err)
	}
	return s, exp, nil
}

// Username is a service account's user name.
func Username(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// Lookup reports the current UID of an object a token names, or "" when
// it does not exist. kind is "ServiceAccount", "Pod", "Secret" or "Node".
type Lookup func(ctx context.Context, kind, namespace, name string) (uid string, err error)

// Verifier authenticates service-account tokens.
type Verifier struct {
	pub       crypto.PublicKey
	issuer    string
	audiences []string
	lookup    Lookup
	now       func() time.Time
}

// NewVerifier verifies tokens signed by pub's key, for any of audiences
// (default: the issuer), with lookup checking that the objects still exist.
func NewVerifier(pub crypto.PublicKey, issuer string, audiences []string, lookup Lookup, now func() time.Time) (*Verifier, error) {
	if issuer == "" {
		issuer = DefaultIssuer
	}
	if len(audiences) == 0 {
		audiences = []string{issuer}
	}
	if now == nil {
		now = time.Now
	}
	if _, err := signingMethod(pub); err != nil {
		return nil, err
	}
	return &Verifier{pub: pub, issuer: issuer, audiences: audiences, lookup: lookup, now: now}, nil
}

// AuthenticateToken implements authn.TokenAuthenticator. A token that is
// not a JWT from this issuer is not ours: (nil, false, nil), so other
// authenticators may try it.
func (v *Verifier) AuthenticateToken(ctx context.Context, token string) (*authn.User, bool, error) {
	if strings.Count(token, ".") != 2 {
		return nil, false, nil
	}
	var c claims
	parser := jwt.NewParser(jwt.WithTimeFunc(v.now), jwt.WithIssuer(v.issuer), jwt.WithExpirationRequired())
	_, err := parser.ParseWithClaims(token, &c, func(t *jwt.Token) (interface{}, error) {
		want, err := signingMethod(v.pub)
		if err != nil {
			return nil, err
		}
		if t.Method.Alg() != want.Alg() {
			return nil, fmt.Errorf("unexpected signing method %s", t.Method.Alg())
		}
		return v.pub, nil
	})
	if errors.Is(err, jwt.ErrTokenInvalidIssuer) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if !audienceMatches(c.Audience, v.audiences) {
		return nil, false, fmt.Errorf("%w: no accepted audience in %v", ErrInvalidToken, []string(c.Audience))
	}
	k := c.Kubernetes
	if k.Namespace == "" || k.ServiceAccount.Name == "" {
		return nil, false, fmt.Errorf("%w: no service account claims", ErrInvalidToken)
	}
	if v.lookup != nil {
		checks := []struct {
			kind, ns string
			ref      *Ref
		}{{"ServiceAccount", k.Namespace, &k.ServiceAccount}, {"Pod", k.Namespace, k.Pod}, {"Secret", k.Namespace, k.Secret}, {"Node", "", k.Node}}
		for _, ch := range checks {
			if ch.ref == nil {
				continue
			}
			uid, err := v.lookup(ctx, ch.kind, ch.ns, ch.ref.Name)
			if err != nil {
				return nil, false, err
			}
			if uid == "" || uid != ch.ref.UID {
				return nil, false, fmt.Errorf("%w: %s %s is gone or was replaced", ErrInvalidToken, ch.kind, ch.ref.Name)
			}
		}
	}
	u := &authn.User{
		Name:   Username(k.Namespace, k.ServiceAccount.Name),
		UID:    k.ServiceAccount.UID,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + k.Namespace, "system:authenticated"},
	}
	if k.Pod != nil {
		u.Extra = map[string][]string{
			"authentication.kubernetes.io/pod-name": {k.Pod.Name},
			"authentication.kubernetes.io/pod-uid":  {k.Pod.UID},
		}
	}
	return u, true, nil
}

func audienceMatches(got jwt.ClaimStrings, accepted []string) bool {
	for _, g := range got {
		for _, a := range accepted {
			if g == a {
				return true
			}
		}
	}
	return false
}
