package authn

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"time"
)

// Well-known user and group names, as Kubernetes spells them.
const (
	// UserAnonymous is the user of a request without credentials on a
	// public path.
	UserAnonymous = "system:anonymous"
	// GroupAuthenticated holds every authenticated user.
	GroupAuthenticated = "system:authenticated"
	// GroupUnauthenticated holds the anonymous user.
	GroupUnauthenticated = "system:unauthenticated"
	// GroupMasters is the group RBAC treats as cluster-admin and never
	// denies.
	GroupMasters = "system:masters"
)

// Errors authenticators return, wrapped with detail. Check with errors.Is.
var (
	// ErrInvalidToken: a bearer token that no token authenticator accepts.
	ErrInvalidToken = errors.New("invalid bearer token")
	// ErrInvalidCertificate: a client certificate that does not verify
	// against the cluster CA (another CA, expired, not for client auth).
	ErrInvalidCertificate = errors.New("invalid client certificate")
)

// User is an authenticated identity. Authenticators return a User that the
// caller owns and may modify.
type User struct {
	Name   string
	UID    string
	Groups []string
	// Extra holds further attributes (a credential ID, a service
	// account's pod name) for authorizers and audit.
	Extra map[string][]string
}

// Clone returns a deep copy of u.
func (u *User) Clone() *User {
	c := *u
	c.Groups = slices.Clone(u.Groups)
	if u.Extra != nil {
		c.Extra = make(map[string][]string, len(u.Extra))
		for k, v := range u.Extra {
			c.Extra[k] = slices.Clone(v)
		}
	}
	return &c
}

// Authenticator finds the user behind a request.
//
// AuthenticateRequest returns one of:
//
//	(user, true, nil)  the request's credentials are valid.
//	(nil, false, nil)  the request carries no credentials of this kind;
//	                   another authenticator may know them.
//	(nil, false, err)  the request carries credentials of this kind and
//	                   they are invalid; err says why, for the log, and
//	                   must never be shown to the client.
//
// It must not read the body or modify the request. It is safe for
// concurrent use.
type Authenticator interface {
	AuthenticateRequest(r *http.Request) (*User, bool, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(r *http.Request) (*User, bool, error)

// AuthenticateRequest calls f(r).
func (f AuthenticatorFunc) AuthenticateRequest(r *http.Request) (*User, bool, error) { return f(r) }

// TokenAuthenticator finds the user a bearer token stands for. Its results
// mean what Authenticator's do: (nil, false, nil) for "not one of my
// tokens, ask the next", an error for a token of its kind that is invalid
// (expired, bad signature) or when it could not decide (a lookup failed).
// It is safe for concurrent use.
type TokenAuthenticator interface {
	AuthenticateToken(ctx context.Context, token string) (*User, bool, error)
}

// TokenAuthenticatorFunc adapts a function to TokenAuthenticator.
type TokenAuthenticatorFunc func(ctx context.Context, token string) (*User, bool, error)

// AuthenticateToken calls f(ctx, token).
func (f TokenAuthenticatorFunc) AuthenticateToken(ctx context.Context, token string) (*User, bool, error) {
	return f(ctx, token)
}

// Union returns an Authenticator that asks each of as in order and returns
// the first success. When none succeeds it returns the errors of those
// that failed, joined, or (nil, false, nil) when none saw credentials.
func Union(as ...Authenticator) Authenticator {
	as = slices.Clone(as)
	return AuthenticatorFunc(func(r *http.Request) (*User, bool, error) {
		var errs []error
		for _, a := range as {
			u, ok, err := a.AuthenticateRequest(r)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ok {
				return u, true, nil
			}
		}
		return nil, false, errors.Join(errs...)
	})
}

// UnionTokens is Union for token authenticators.
func UnionTokens(ts ...TokenAuthenticator) TokenAuthenticator {
	ts = slices.Clone(ts)
	return TokenAuthenticatorFunc(func(ctx context.Context, token string) (*User, bool, error) {
		var errs []error
		for _, t := range ts {
			u, ok, err := t.AuthenticateToken(ctx, token)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if ok {
				return u, true, nil
			}
		}
		return nil, false, errors.Join(errs...)
	})
}

// withAuthenticated returns groups with GroupAuthenticated added once.
func withAuthenticated(groups []string) []string {
	out := make([]string, 0, len(groups)+1)
	for _, g := range groups {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	if !slices.Contains(out, GroupAuthenticated) {
		out = append(out, GroupAuthenticated)
	}
	return out
}

type userKey struct{}

// WithUser returns a copy of ctx that carries u.
func WithUser(ctx context.Context, u *User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the user WithUser put in ctx. Handlers behind
// Middleware always find one (system:anonymous on public paths). The
// caller must not modify the User.
func UserFrom(ctx context.Context) (*User, bool) {
	u, ok := ctx.Value(userKey{}).(*User)
	return u, ok && u != nil
}

// Clock tells the time. Tests pass a fixed clock; nil means the real one.
type Clock interface {
	Now() time.Time
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
