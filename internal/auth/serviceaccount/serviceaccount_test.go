package serviceaccount

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

func TestIssueAndVerify(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	iss, err := NewIssuer(key, "", clock)
	if err != nil {
		t.Fatal(err)
	}
	objects := map[string]string{"ServiceAccount/ns/default": "sa-uid", "Pod/ns/web": "pod-uid"}
	lookup := func(ctx context.Context, kind, ns, name string) (string, error) {
		return objects[kind+"/"+ns+"/"+name], nil
	}
	v, _ := NewVerifier(key.Public(), "", nil, lookup, clock)
	tok, exp, err := iss.Issue(Request{Namespace: "ns", ServiceAccount: Ref{"default", "sa-uid"}, Expiration: time.Hour, Pod: &Ref{"web", "pod-uid"}})
	if err != nil || !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("issue: %v %v", exp, err)
	}
	u, ok, err := v.AuthenticateToken(context.Background(), tok)
	if err != nil || !ok || u.Name != "system:serviceaccount:ns:default" || u.Extra["authentication.kubernetes.io/pod-name"][0] != "web" {
		t.Fatalf("verify: %+v %v %v", u, ok, err)
	}

	t.Run("expired", func(t *testing.T) {
		late, _ := NewVerifier(key.Public(), "", nil, lookup, func() time.Time { return now.Add(2 * time.Hour) })
		if _, _, err := late.AuthenticateToken(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		w, _ := NewVerifier(other.Public(), "", nil, lookup, clock)
		if _, _, err := w.AuthenticateToken(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		tok2, _, _ := iss.Issue(Request{Namespace: "ns", ServiceAccount: Ref{"default", "sa-uid"}, Expiration: time.Hour, Audiences: []string{"vault"}})
		if _, _, err := v.AuthenticateToken(context.Background(), tok2); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("bound pod deleted", func(t *testing.T) {
		delete(objects, "Pod/ns/web")
		defer func() { objects["Pod/ns/web"] = "pod-uid" }()
		if _, _, err := v.AuthenticateToken(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("not a JWT is not ours", func(t *testing.T) {
		if _, ok, err := v.AuthenticateToken(context.Background(), "static-token"); ok || err != nil {
			t.Fatalf("got %v %v", ok, err)
		}
	})
}
