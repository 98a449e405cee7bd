package core

import (
	"context"
	"encoding/json"
	"reflect"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

func (b *builder) configMaps() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Resource:     "configmaps",
		Kind:         "ConfigMap",
		ListKind:     "ConfigMapList",
		SingularName: "configmap",
		ShortNames:   []string{"cm"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.ConfigMap{} },
		NewList:      func() runtime.Object { return &corev1.ConfigMapList{} },
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateConfigMap(obj.(*corev1.ConfigMap))
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			cm, o := obj.(*corev1.ConfigMap), old.(*corev1.ConfigMap)
			var allErrs field.ErrorList
			if deref(o.Immutable) {
				if !deref(cm.Immutable) {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), immutableWhenSetMsg))
				}
				if !reflect.DeepEqual(cm.Data, o.Data) {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), immutableWhenSetMsg))
				}
				if !reflect.DeepEqual(cm.BinaryData, o.BinaryData) {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("binaryData"), immutableWhenSetMsg))
				}
			}
			return append(allErrs, validateConfigMap(cm)...)
		},
	}
}

// validateConfigMap: keys are valid config map keys, not in both data and
// binaryData, and the values total at most 1 MiB.
func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	var allErrs field.ErrorList
	total := 0
	for k, v := range cm.Data {
		p := field.NewPath("data").Key(k)
		allErrs = append(allErrs, invalidMsgs(p, k, validation.IsConfigMapKey(k))...)
		if _, dup := cm.BinaryData[k]; dup {
			allErrs = append(allErrs, field.Invalid(p, k, "duplicate of key present in binaryData"))
		}
		total += len(v)
	}
	for k, v := range cm.BinaryData {
		allErrs = append(allErrs, invalidMsgs(field.NewPath("binaryData").Key(k), k, validation.IsConfigMapKey(k))...)
		total += len(v)
	}
	if total > corev1.MaxSecretSize {
		// An empty path: the error is about the whole object.
		allErrs = append(allErrs, field.TooLong(field.NewPath(""), "", corev1.MaxSecretSize))
	}
	return allErrs
}

func (b *builder) secrets() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Resource:     "secrets",
		Kind:         "Secret",
		ListKind:     "SecretList",
		SingularName: "secret",
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.Secret{} },
		NewList:      func() runtime.Object { return &corev1.SecretList{} },
		Default:      func(obj runtime.Object) { defaultSecret(obj.(*corev1.Secret)) },
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateSecret(obj.(*corev1.Secret))
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			s, o := obj.(*corev1.Secret), old.(*corev1.Secret)
			allErrs := validateImmutable(s.Type, o.Type, field.NewPath("type"))
			if deref(o.Immutable) {
				if !deref(s.Immutable) {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("immutable"), immutableWhenSetMsg))
				}
				if !reflect.DeepEqual(s.Data, o.Data) {
					allErrs = append(allErrs, field.Forbidden(field.NewPath("data"), immutableWhenSetMsg))
				}
			}
			return append(allErrs, validateSecret(s)...)
		},
		SelectableFields: func(obj runtime.Object) fields.Set {
			return fields.Set{"type": string(obj.(*corev1.Secret).Type)}
		},
		FieldLabels: []string{"type"},
	}
}

// defaultSecret sets type Opaque and folds stringData into data (a
// write-only convenience: upstream converts it before storing).
func defaultSecret(s *corev1.Secret) {
	if s.Type == "" {
		s.Type = corev1.SecretTypeOpaque
	}
	if len(s.StringData) > 0 {
		if s.Data == nil {
			s.Data = make(map[string][]byte, len(s.StringData))
		}
		for k, v := range s.StringData {
			s.Data[k] = []byte(v)
		}
	}
	s.StringData = nil
}

// validateSecret is upstream's ValidateSecret without metadata: valid
// keys, at most 1 MiB of data, and the keys each built-in type needs.
func validateSecret(s *corev1.Secret) field.ErrorList {
	var allErrs field.ErrorList
	dataPath := field.NewPath("data")
	total := 0
	for k, v := range s.Data {
		allErrs = append(allErrs, invalidMsgs(dataPath.Key(k), k, validation.IsConfigMapKey(k))...)
		total += len(v)
	}
	if total > corev1.MaxSecretSize {
		allErrs = append(allErrs, field.TooLong(dataPath, "", corev1.MaxSecretSize))
	}
	validJSON := func(key string) {
		v, ok := s.Data[key]
		if !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(key), ""))
			return
		}
		if err := json.Unmarshal(v, &map[string]any{}); err != nil {
			allErrs = append(allErrs, field.Invalid(dataPath.Key(key), "<secret contents redacted>", err.Error()))
		}
	}
	switch s.Type {
	case corev1.SecretTypeServiceAccountToken:
		// The token controller fills in the rest.
		if s.Annotations[corev1.ServiceAccountNameKey] == "" {
			allErrs = append(allErrs, field.Required(field.NewPath("metadata", "annotations").Key(corev1.ServiceAccountNameKey), ""))
		}
	case corev1.SecretTypeDockercfg:
		validJSON(corev1.DockerConfigKey)
	case corev1.SecretTypeDockerConfigJson:
		validJSON(corev1.DockerConfigJsonKey)
	case corev1.SecretTypeBasicAuth:
		// Either may be empty, but one must be there.
		_, user := s.Data[corev1.BasicAuthUsernameKey]
		_, pass := s.Data[corev1.BasicAuthPasswordKey]
		if !user && !pass {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.BasicAuthUsernameKey), ""))
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.BasicAuthPasswordKey), ""))
		}
	case corev1.SecretTypeSSHAuth:
		if len(s.Data[corev1.SSHAuthPrivateKey]) == 0 {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.SSHAuthPrivateKey), ""))
		}
	case corev1.SecretTypeTLS:
		if _, ok := s.Data[corev1.TLSCertKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSCertKey), ""))
		}
		if _, ok := s.Data[corev1.TLSPrivateKeyKey]; !ok {
			allErrs = append(allErrs, field.Required(dataPath.Key(corev1.TLSPrivateKeyKey), ""))
		}
	}
	return allErrs
}

// serviceAccounts: upstream validates only their metadata (the names in
// secrets and imagePullSecrets are not checked), and so does skiff.
func (b *builder) serviceAccounts() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Resource:     "serviceaccounts",
		Kind:         "ServiceAccount",
		ListKind:     "ServiceAccountList",
		SingularName: "serviceaccount",
		ShortNames:   []string{"sa"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.ServiceAccount{} },
		NewList:      func() runtime.Object { return &corev1.ServiceAccountList{} },
		Validate:     func(context.Context, runtime.Object) field.ErrorList { return nil },
		ValidateUpdate: func(context.Context, runtime.Object, runtime.Object) field.ErrorList {
			return nil
		},
	}
}
