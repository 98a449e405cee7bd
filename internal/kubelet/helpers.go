package kubelet

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// This file holds small pieces several files of the package use.

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func sortStrings(s []string) { slices.Sort(s) }

func compareStrings(a, b string) int { return cmp.Compare(a, b) }

func everything() labels.Selector { return labels.Everything() }

func isNotFound(err error) bool { return grpcstatus.Code(err) == codes.NotFound }

func isDeadline(err error) bool { return grpcstatus.Code(err) == codes.DeadlineExceeded }

// grpcMessage is a CRI error's message without the gRPC decoration.
func grpcMessage(err error) string {
	if s, ok := grpcstatus.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// containerRef is the event target of one container of a pod.
func containerRef(pod *corev1.Pod, name string) *corev1.ObjectReference {
	if pod == nil {
		return nil
	}
	field := "spec.containers{" + name + "}"
	if isInitContainer(pod, name) {
		field = "spec.initContainers{" + name + "}"
	}
	return &corev1.ObjectReference{
		Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		ResourceVersion: pod.ResourceVersion, FieldPath: field,
	}
}

// apiObjects reads ConfigMaps and Secrets from the API.
type apiObjects struct{ client kubernetes.Interface }

func (a apiObjects) ConfigMap(ctx context.Context, ns, name string) (*corev1.ConfigMap, error) {
	return a.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
}

func (a apiObjects) Secret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	return a.client.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
}

// pullAuths returns the credentials of the pod's imagePullSecrets that
// match image's registry, in order; a single nil (anonymous) when none
// does.
func (k *Kubelet) pullAuths(ctx context.Context, pod *corev1.Pod, image string) ([]*runtimeapi.AuthConfig, error) {
	var out []*runtimeapi.AuthConfig
	var errs []error
	for _, ref := range pod.Spec.ImagePullSecrets {
		s, err := k.client.CoreV1().Secrets(pod.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %s: %w", ref.Name, err))
			continue
		}
		auths, err := dockerAuths(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("secret %s: %w", ref.Name, err))
			continue
		}
		out = append(out, matchAuths(auths, image)...)
	}
	if len(out) == 0 {
		out = []*runtimeapi.AuthConfig{nil}
	}
	return out, errors.Join(errs...)
}

// dockerAuth is one entry of a docker config file.
type dockerAuth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// dockerAuths reads a kubernetes.io/dockerconfigjson or dockercfg
// secret.
func dockerAuths(s *corev1.Secret) (map[string]dockerAuth, error) {
	if data, ok := s.Data[corev1.DockerConfigJsonKey]; ok {
		var cfg struct {
			Auths map[string]dockerAuth `json:"auths"`
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("parse %s: %w", corev1.DockerConfigJsonKey, err)
		}
		return cfg.Auths, nil
	}
	if data, ok := s.Data[corev1.DockerConfigKey]; ok {
		var cfg map[string]dockerAuth
		if err := json.Unmarshal(data, &cfg); err != nil {
			return nil, fmt.Errorf("parse %s: %w", corev1.DockerConfigKey, err)
		}
		return cfg, nil
	}
	return nil, errors.New("not a docker config secret")
}

// imageRegistry splits an image reference into registry host and
// repository path, Docker's way: a first element with a dot, a colon or
// "localhost" is a host, else the registry is docker.io.
func imageRegistry(image string) (host, repo string) {
	if i := strings.IndexAny(image, "@"); i >= 0 {
		image = image[:i]
	}
	first, rest, ok := strings.Cut(image, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first, rest
	}
	return "docker.io", image
}

// registryKey normalizes a docker config key to host and path.
func registryKey(key string) (host, p string) {
	key = strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	host, p, _ = strings.Cut(key, "/")
	switch host {
	case "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com":
		host, p = "docker.io", ""
	}
	if p == "v1" || p == "v1/" || p == "v2" || p == "v2/" {
		p = ""
	}
	return host, strings.Trim(p, "/")
}

func matchAuths(auths map[string]dockerAuth, image string) []*runtimeapi.AuthConfig {
	host, repo := imageRegistry(image)
	var out []*runtimeapi.AuthConfig
	for _, key := range sortedKeys(auths) {
		kh, kp := registryKey(key)
		if ok, _ := path.Match(kh, host); !ok && kh != host {
			continue
		}
		if kp != "" && repo != kp && !strings.HasPrefix(repo, kp+"/") {
			continue
		}
		a := auths[key]
		user, pass := a.Username, a.Password
		if user == "" && a.Auth != "" {
			if dec, err := base64.StdEncoding.DecodeString(a.Auth); err == nil {
				user, pass, _ = strings.Cut(string(dec), ":")
			}
		}
		out = append(out, &runtimeapi.AuthConfig{
			Username: user, Password: pass, Auth: a.Auth, ServerAddress: kh,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
		})
	}
	return out
}
