package apiserver

import (
	"net/http"
	"strings"
)

// requestInfo is what the URL and method of a request say about it.
//
//	/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}
//	/apis/{group}/{version}/{resource}/{name}/{subresource}
type requestInfo struct {
	IsResource  bool
	APIPrefix   string // "api" or "apis"
	Group       string
	Version     string
	Namespace   string
	Resource    string
	Name        string
	Subresource string
	// Verb is the Kubernetes verb: get, list, watch, create, update,
	// patch, delete, deletecollection (or the HTTP method, lower case,
	// for non-resource requests).
	Verb string
	// Parts are the path segments after the group version.
	Parts []string
}

// parseRequestInfo reads a request the way upstream's RequestInfoFactory
// does, for the prefixes skiff serves.
func parseRequestInfo(r *http.Request) requestInfo {
	info := requestInfo{Verb: strings.ToLower(r.Method)}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	prefix := segs[0]
	switch {
	case prefix == "api" && len(segs) >= 3:
		info.Version, segs = segs[1], segs[2:]
	case prefix == "apis" && len(segs) >= 4:
		info.Group, info.Version, segs = segs[1], segs[2], segs[3:]
	default:
		return info
	}
	info.IsResource, info.APIPrefix = true, prefix
	// "namespaces/{ns}/{resource}..." scopes a request to a namespace,
	// but "namespaces/{name}[/status|/finalize]" is about the namespace
	// object itself, which is cluster-scoped.
	if segs[0] == "namespaces" && len(segs) > 2 && segs[2] != "status" && segs[2] != "finalize" {
		info.Namespace = segs[1]
		segs = segs[2:]
	}
	info.Parts = segs
	switch len(segs) {
	default:
		info.Subresource = segs[2]
		fallthrough
	case 2:
		info.Name = segs[1]
		fallthrough
	case 1:
		info.Resource = segs[0]
	}

	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case isWatch(q.Get("watch")):
			info.Verb = "watch"
		case info.Name == "":
			info.Verb = "list"
		default:
			info.Verb = "get"
		}
	case http.MethodPost:
		info.Verb = "create"
	case http.MethodPut:
		info.Verb = "update"
	case http.MethodPatch:
		info.Verb = "patch"
	case http.MethodDelete:
		info.Verb = "delete"
		if info.Name == "" {
			info.Verb = "deletecollection"
		}
	}
	return info
}

func isWatch(v string) bool { return v == "true" || v == "1" }
