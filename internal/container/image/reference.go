package image

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DockerHub is the domain of unqualified references ("busybox").
const DockerHub = "docker.io"

// Reference is a normalized image reference, as containerd and the CRI
// show them: "busybox" is docker.io/library/busybox:latest.
type Reference struct {
	// Domain is the registry host[:port]; "docker.io" for Docker Hub.
	Domain string
	// Path is the repository path, e.g. "library/busybox".
	Path string
	// Tag is empty when the reference names only a digest.
	Tag string
	// Digest ("sha256:...") is empty for a tag reference.
	Digest string
}

// ParseReference parses and normalizes s: a missing domain becomes
// docker.io, a one-element Docker Hub path gets "library/", a reference
// without tag or digest gets ":latest", and "name:tag@digest" keeps both
// (the digest wins when pulling). Errors wrap ErrInvalidReference.
func ParseReference(s string) (Reference, error) {
	if s == "" || strings.TrimSpace(s) != s {
		return Reference{}, fmt.Errorf("%w: %q", ErrInvalidReference, s)
	}
	base, dig, hasDigest := strings.Cut(s, "@")
	var r Reference
	if hasDigest {
		d, err := name.NewDigest(s)
		if err != nil {
			return Reference{}, fmt.Errorf("%w: %q: %v", ErrInvalidReference, s, err)
		}
		if !strings.HasPrefix(dig, "sha256:") {
			return Reference{}, fmt.Errorf("%w: %q: only sha256 digests are supported", ErrInvalidReference, s)
		}
		r.Digest = d.DigestStr()
		r.Domain, r.Path = d.RegistryStr(), d.RepositoryStr()
		// name.NewDigest drops a tag in "name:tag@digest"; keep it.
		if i, j := strings.LastIndex(base, ":"), strings.LastIndex(base, "/"); i > j {
			r.Tag = base[i+1:]
		}
	} else {
		t, err := name.NewTag(s)
		if err != nil {
			return Reference{}, fmt.Errorf("%w: %q: %v", ErrInvalidReference, s, err)
		}
		r.Domain, r.Path, r.Tag = t.RegistryStr(), t.RepositoryStr(), t.TagStr()
	}
	if r.Domain == name.DefaultRegistry {
		r.Domain = DockerHub
	}
	for _, c := range strings.Split(r.Path, "/") {
		if !validPathComponent(c) {
			return Reference{}, fmt.Errorf("%w: %q: bad repository path component %q", ErrInvalidReference, s, c)
		}
	}
	return r, nil
}

// validPathComponent checks the distribution grammar for one repository
// path component: [a-z0-9]+ runs joined by ".", "_", "__" or "-"+.
func validPathComponent(c string) bool {
	alnum := func(b byte) bool { return (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') }
	if c == "" || !alnum(c[0]) || !alnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); {
		if alnum(c[i]) {
			i++
			continue
		}
		j := i
		for j < len(c) && !alnum(c[j]) {
			j++
		}
		switch sep := c[i:j]; {
		case sep == "." || sep == "_" || sep == "__" || strings.Trim(sep, "-") == "":
		default:
			return false
		}
		i = j
	}
	return true
}

// Name returns "domain/path".
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// String returns the full normalized reference: name:tag, name@digest or
// name:tag@digest.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// TagRef returns "name:tag", or "" when r has no tag.
func (r Reference) TagRef() string {
	if r.Tag == "" {
		return ""
	}
	return r.Name() + ":" + r.Tag
}

// DigestRef returns "name@digest" for digest, the form of RepoDigests.
func (r Reference) DigestRef(digest string) string { return r.Name() + "@" + digest }

// identifier is what a registry request names: the digest if any, else the tag.
func (r Reference) identifier() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}
