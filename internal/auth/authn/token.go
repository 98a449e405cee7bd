package authn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"unicode"
)

// ErrMalformed: a token file line that cannot be used. The error names
// the line.
var ErrMalformed = errors.New("malformed")

// maxTokenFileSize bounds a token file: a million tokens would still fit.
const maxTokenFileSize = 64 << 20

// BearerToken returns an Authenticator that takes the token from an
// "Authorization: Bearer <token>" header (the scheme in any case) and asks
// tokens who it is. Without such a header, or with an empty token, it
// returns (nil, false, nil). A token that tokens does not know gives an
// error wrapping ErrInvalidToken. It leaves the request as it is;
// Middleware drops the Authorization header once a request is
// authenticated.
func BearerToken(tokens TokenAuthenticator) Authenticator {
	return AuthenticatorFunc(func(r *http.Request) (*User, bool, error) {
		scheme, token, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		if !ok || !strings.EqualFold(scheme, "bearer") {
			return nil, false, nil
		}
		token = strings.TrimSpace(token)
		if token == "" {
			return nil, false, nil
		}
		u, ok, err := tokens.AuthenticateToken(r.Context(), token)
		if err != nil {
			return nil, false, err
		}
		if !ok {
			return nil, false, ErrInvalidToken
		}
		return u, true, nil
	})
}

// TokenFile authenticates static bearer tokens read from a CSV file in the
// format of kube-apiserver's --token-auth-file:
//
//	token,user,uid,"group1,group2"
//
// one token a line; the groups column is optional and must be quoted when
// it lists more than one group. Leading spaces in fields are ignored.
// Each user is also in system:authenticated. A TokenFile is immutable and
// safe for concurrent use.
type TokenFile struct {
	// users is keyed by the SHA-256 of the token, so that a lookup's time
	// does not depend on how much of a guess matches a real token.
	users map[[sha256.Size]byte]*User
}

var _ TokenAuthenticator = (*TokenFile)(nil)

// LoadTokenFile reads and parses the token file at path. Errors name the
// file and, for a bad line, wrap ErrMalformed and give its number.
func LoadTokenFile(path string) (*TokenFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	tf, err := ParseTokenFile(f)
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return tf, nil
}

// ParseTokenFile parses a token file from r. Every line must be valid: a
// bad line (fewer than 3 or more than 4 fields, an empty token or user, a
// token with spaces, a token seen before, broken CSV quoting) fails the
// whole file with an error that wraps ErrMalformed and gives the line
// number. Empty lines are skipped. An empty file gives an empty TokenFile.
func ParseTokenFile(r io.Reader) (*TokenFile, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxTokenFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxTokenFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxTokenFileSize)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF")) // a byte-order mark some editors write

	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	tf := &TokenFile{users: map[[sha256.Size]byte]*User{}}
	firstLine := map[[sha256.Size]byte]int{}
	for {
		record, err := cr.Read()
		if err == io.EOF {
			return tf, nil
		}
		if pe, ok := errors.AsType[*csv.ParseError](err); ok {
			return nil, fmt.Errorf("line %d: %w: %w", pe.Line, ErrMalformed, pe.Err)
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		bad := func(format string, args ...any) error {
			return fmt.Errorf("line %d: %w: %s", line, ErrMalformed, fmt.Sprintf(format, args...))
		}
		switch {
		case len(record) < 3:
			return nil, bad("%d fields, want token,user,uid and optionally groups", len(record))
		case len(record) > 4:
			return nil, bad(`%d fields, want at most 4: token,user,uid,"group1,group2" (quote the groups)`, len(record))
		}
		token, name, uid := record[0], record[1], record[2]
		switch {
		case token == "":
			return nil, bad("empty token")
		case strings.ContainsFunc(token, unicode.IsSpace):
			return nil, bad("token contains white space")
		case strings.TrimSpace(name) == "":
			return nil, bad("empty user name")
		}
		key := sha256.Sum256([]byte(token))
		if first, dup := firstLine[key]; dup {
			return nil, bad("token repeats the one on line %d", first)
		}
		firstLine[key] = line

		var groups []string
		if len(record) == 4 {
			for g := range strings.SplitSeq(record[3], ",") {
				if g = strings.TrimSpace(g); g != "" {
					groups = append(groups, g)
				}
			}
		}
		tf.users[key] = &User{Name: name, UID: uid, Groups: withAuthenticated(groups)}
	}
}

// Len returns the number of tokens.
func (f *TokenFile) Len() int { return len(f.users) }

// AuthenticateToken returns a copy of the user of token, or (nil, false,
// nil) for a token not in the file. It never returns an error.
func (f *TokenFile) AuthenticateToken(_ context.Context, token string) (*User, bool, error) {
	u, ok := f.users[sha256.Sum256([]byte(token))]
	if !ok {
		return nil, false, nil
	}
	return u.Clone(), true, nil
}
