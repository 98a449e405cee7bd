package image

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseReference(t *testing.T) {
	const dg = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		name, in string
		want     Reference
		wantStr  string
	}{
		{"BareNameIsDockerHubLibraryLatest", "busybox", Reference{"docker.io", "library/busybox", "latest", ""}, "docker.io/library/busybox:latest"},
		{"UserRepoOnDockerHub", "user/app:1.0", Reference{"docker.io", "user/app", "1.0", ""}, "docker.io/user/app:1.0"},
		{"IndexDockerIoIsDockerIo", "index.docker.io/library/nginx:1", Reference{"docker.io", "library/nginx", "1", ""}, "docker.io/library/nginx:1"},
		{"RegistryWithPort", "127.0.0.1:5000/a/b:c", Reference{"127.0.0.1:5000", "a/b", "c", ""}, "127.0.0.1:5000/a/b:c"},
		{"Localhost", "localhost/app", Reference{"localhost", "app", "latest", ""}, "localhost/app:latest"},
		{"ByDigest", "busybox@" + dg, Reference{"docker.io", "library/busybox", "", dg}, "docker.io/library/busybox@" + dg},
		{"TagAndDigest", "quay.io/x/y:v1@" + dg, Reference{"quay.io", "x/y", "v1", dg}, "quay.io/x/y:v1@" + dg},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseReference(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got.String() != tc.wantStr {
				t.Errorf("String() = %q, want %q", got.String(), tc.wantStr)
			}
		})
	}
}

func TestParseReference_RejectsBadInput(t *testing.T) {
	for _, in := range []string{"", " busybox", "UPPER/case", "a@sha256:short", "a@md5:d41d8cd98f00b204e9800998ecf8427e", "a:b:c:d", "a/../b"} {
		t.Run(in, func(t *testing.T) {
			if _, err := ParseReference(in); !errors.Is(err, ErrInvalidReference) {
				t.Errorf("ParseReference(%q) = %v, want ErrInvalidReference", in, err)
			}
		})
	}
}
