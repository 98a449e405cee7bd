package authn

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseTokenFile_ReadsUsers(t *testing.T) {
	tests := []struct {
		name string
		file string
		want map[string]*User // by token
	}{
		{
			name: "upstream example with quoted groups",
			file: `31ada4fd-adec-460c-809a-9e56ceb75269,alice,1000,"devs,ops"` + "\n",
			want: map[string]*User{
				"31ada4fd-adec-460c-809a-9e56ceb75269": {Name: "alice", UID: "1000", Groups: []string{"devs", "ops", GroupAuthenticated}},
			},
		},
		{
			name: "groups column is optional, empty lines are skipped, CRLF is fine",
			file: "tok1,bob,2\r\n\r\ntok2,carol,,\r\n",
			want: map[string]*User{
				"tok1": {Name: "bob", UID: "2", Groups: []string{GroupAuthenticated}},
				"tok2": {Name: "carol", Groups: []string{GroupAuthenticated}},
			},
		},
		{
			name: "spaces around fields and groups are dropped, duplicates too",
			file: `tok3, dave, 3, " a , b,,a,system:authenticated"` + "\n",
			want: map[string]*User{
				"tok3": {Name: "dave", UID: "3", Groups: []string{"a", "b", GroupAuthenticated}},
			},
		},
		{
			name: "byte-order mark and no final newline",
			file: "\uFEFFtok4,erin,4,system:masters",
			want: map[string]*User{
				"tok4": {Name: "erin", UID: "4", Groups: []string{"system:masters", GroupAuthenticated}},
			},
		},
		{
			name: "empty file",
			file: "",
			want: map[string]*User{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tf, err := ParseTokenFile(strings.NewReader(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if tf.Len() != len(tt.want) {
				t.Errorf("Len = %d, want %d", tf.Len(), len(tt.want))
			}
			for token, want := range tt.want {
				got, ok, err := tf.AuthenticateToken(context.Background(), token)
				if err != nil || !ok {
					t.Fatalf("token %q: ok=%v err=%v", token, ok, err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("token %q (-want +got):\n%s", token, diff)
				}
			}
		})
	}
}

func TestParseTokenFile_RejectsMalformedLines(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		wantText string
	}{
		{name: "two fields", file: "ok,alice,1\nbad,bob\n", wantText: "line 2: malformed: 2 fields"},
		{name: "unquoted groups", file: "tok,alice,1,devs,ops\n", wantText: "line 1: malformed: 5 fields, want at most 4"},
		{name: "empty token", file: "\n\n,alice,1\n", wantText: "line 3: malformed: empty token"},
		{name: "empty user", file: "tok, ,1\n", wantText: "line 1: malformed: empty user name"},
		{name: "token with a space", file: `"to k",alice,1` + "\n", wantText: "line 1: malformed: token contains white space"},
		{name: "repeated token", file: "a,alice,1\nb,bob,2\na,carol,3\n", wantText: "line 3: malformed: token repeats the one on line 1"},
		{name: "broken quoting", file: "a,alice,1\nb,bob,2,\"devs\n", wantText: "line 2: malformed: extraneous or missing \" in quoted-field"},
		{name: "bare quote", file: "a,al\"ice,1\n", wantText: "line 1: malformed: bare \""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTokenFile(strings.NewReader(tt.file))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error = %q, want it to contain %q", err, tt.wantText)
			}
		})
	}
}

func TestLoadTokenFile(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(good, []byte("secret,alice,1,devs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("reads a file", func(t *testing.T) {
		tf, err := LoadTokenFile(good)
		if err != nil {
			t.Fatal(err)
		}
		if tf.Len() != 1 {
			t.Errorf("Len = %d", tf.Len())
		}
	})
	t.Run("names the file of a bad line", func(t *testing.T) {
		_, err := LoadTokenFile(bad)
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), bad+": line 1:") {
			t.Errorf("error = %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := LoadTokenFile(filepath.Join(dir, "nope.csv"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("error = %v, want not-exist", err)
		}
	})
}

func TestTokenFile_ReturnsCopies(t *testing.T) {
	tf, err := ParseTokenFile(strings.NewReader("tok,alice,1,devs\n"))
	if err != nil {
		t.Fatal(err)
	}
	u, _, _ := tf.AuthenticateToken(context.Background(), "tok")
	u.Groups[0] = "system:masters"
	u.Name = "mallory"
	again, _, _ := tf.AuthenticateToken(context.Background(), "tok")
	if again.Name != "alice" || again.Groups[0] != "devs" {
		t.Errorf("changing a returned User changed the file's: %+v", again)
	}
}

func TestBearerToken(t *testing.T) {
	tf, err := ParseTokenFile(strings.NewReader("good-token,alice,1\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := BearerToken(tf)
	alice := &User{Name: "alice", UID: "1", Groups: []string{GroupAuthenticated}}

	tests := []struct {
		name    string
		header  []string // Authorization values
		want    *User
		wantErr error
	}{
		{name: "no header is not ours"},
		{name: "good token authenticates", header: []string{"Bearer good-token"}, want: alice},
		{name: "scheme in any case", header: []string{"bearer good-token"}, want: alice},
		{name: "extra spaces are tolerated", header: []string{"  Bearer   good-token  "}, want: alice},
		{name: "unknown token is invalid", header: []string{"Bearer bad-token"}, wantErr: ErrInvalidToken},
		{name: "basic auth is not ours", header: []string{"Basic YWxpY2U6cHc="}},
		{name: "empty bearer is not ours", header: []string{"Bearer "}},
		{name: "scheme alone is not ours", header: []string{"Bearer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/api", nil)
			for _, h := range tt.header {
				r.Header.Add("Authorization", h)
			}
			u, ok, err := a.AuthenticateRequest(r)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if ok != (tt.want != nil) {
				t.Fatalf("ok = %v", ok)
			}
			if diff := cmp.Diff(tt.want, u); diff != "" {
				t.Errorf("user (-want +got):\n%s", diff)
			}
		})
	}
}
