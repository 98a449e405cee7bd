package core_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var objMeta = metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "uid-1"}

func TestConfigMapValidate(t *testing.T) {
	big := strings.Repeat("x", corev1.MaxSecretSize/2+1)
	cases := []struct {
		name string
		cm   corev1.ConfigMap
		want []fieldErr
	}{
		{"Valid", corev1.ConfigMap{Data: map[string]string{"app.conf": "x", "a_b-c": "y"}, BinaryData: map[string][]byte{"blob": {0}}}, nil},
		{"RejectsBadKey", corev1.ConfigMap{Data: map[string]string{"a/b": "x"}}, []fieldErr{invalid("data[a/b]")}},
		{"RejectsDotDotKey", corev1.ConfigMap{Data: map[string]string{"..": "x"}}, []fieldErr{invalid("data[..]")}},
		{"RejectsBadBinaryKey", corev1.ConfigMap{BinaryData: map[string][]byte{"a b": nil}}, []fieldErr{invalid("binaryData[a b]")}},
		{"RejectsKeyInBoth", corev1.ConfigMap{Data: map[string]string{"k": "x"}, BinaryData: map[string][]byte{"k": nil}}, []fieldErr{invalid("data[k]")}},
		{"RejectsMoreThanOneMebibyte", corev1.ConfigMap{Data: map[string]string{"a": big}, BinaryData: map[string][]byte{"b": []byte(big)}}, []fieldErr{tooLong("[]")}}, // sic: upstream's path
		{"AcceptsExactlyOneMebibyte", corev1.ConfigMap{Data: map[string]string{"a": strings.Repeat("x", corev1.MaxSecretSize)}}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cm := tc.cm.DeepCopy()
			cm.ObjectMeta = objMeta
			wantErrs(t, create(t, lookup(t, "/configmaps"), cm), tc.want...)
		})
	}
}

func TestConfigMapImmutable(t *testing.T) {
	r := lookup(t, "/configmaps")
	old := &corev1.ConfigMap{ObjectMeta: objMeta, Immutable: ptrTo(true), Data: map[string]string{"k": "v"}, BinaryData: map[string][]byte{"b": {1}}}
	cases := []struct {
		name   string
		mutate func(*corev1.ConfigMap)
		want   []fieldErr
	}{
		{"AllowsLabelChange", func(cm *corev1.ConfigMap) { cm.Labels = map[string]string{"a": "b"} }, nil},
		{"RejectsDataChange", func(cm *corev1.ConfigMap) { cm.Data["k"] = "w" }, []fieldErr{forbidden("data")}},
		{"RejectsBinaryDataChange", func(cm *corev1.ConfigMap) { cm.BinaryData = nil }, []fieldErr{forbidden("binaryData")}},
		{"RejectsUnsettingImmutable", func(cm *corev1.ConfigMap) { cm.Immutable = ptrTo(false) }, []fieldErr{forbidden("immutable")}},
		{"RejectsDroppingImmutable", func(cm *corev1.ConfigMap) { cm.Immutable = nil }, []fieldErr{forbidden("immutable")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cm := old.DeepCopy()
			tc.mutate(cm)
			wantErrs(t, update(t, r, cm, old), tc.want...)
		})
	}
	t.Run("MutableUntilSet", func(t *testing.T) {
		o := &corev1.ConfigMap{ObjectMeta: objMeta, Data: map[string]string{"k": "v"}}
		cm := o.DeepCopy()
		cm.Data["k"] = "w"
		cm.Immutable = ptrTo(true)
		wantErrs(t, update(t, r, cm, o))
	})
}

func basicSecret(typ corev1.SecretType, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: *objMeta.DeepCopy(), Type: typ, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestSecretValidate(t *testing.T) {
	cases := []struct {
		name   string
		secret *corev1.Secret
		want   []fieldErr
	}{
		{"ValidOpaque", basicSecret("", map[string]string{"password": "x"}), nil},
		{"ValidCustomType", basicSecret("example.com/token", map[string]string{"t": "x"}), nil},
		{"RejectsBadKey", basicSecret(corev1.SecretTypeOpaque, map[string]string{"a/b": "x"}), []fieldErr{invalid("data[a/b]")}},
		{"RejectsMoreThanOneMebibyte", basicSecret(corev1.SecretTypeOpaque, map[string]string{"a": strings.Repeat("x", corev1.MaxSecretSize+1)}),
			[]fieldErr{tooLong("data")}},
		{"ServiceAccountTokenNeedsAnnotation", basicSecret(corev1.SecretTypeServiceAccountToken, nil),
			[]fieldErr{required("metadata.annotations[kubernetes.io/service-account.name]")}},
		{"ValidServiceAccountToken", func() *corev1.Secret {
			s := basicSecret(corev1.SecretTypeServiceAccountToken, nil)
			s.Annotations = map[string]string{corev1.ServiceAccountNameKey: "default"}
			return s
		}(), nil},
		{"DockerConfigJSONNeedsKey", basicSecret(corev1.SecretTypeDockerConfigJson, nil), []fieldErr{required("data[.dockerconfigjson]")}},
		{"DockerConfigJSONNeedsJSON", basicSecret(corev1.SecretTypeDockerConfigJson, map[string]string{".dockerconfigjson": "{nope"}),
			[]fieldErr{invalid("data[.dockerconfigjson]")}},
		{"ValidDockerConfigJSON", basicSecret(corev1.SecretTypeDockerConfigJson, map[string]string{".dockerconfigjson": `{"auths":{}}`}), nil},
		{"DockercfgNeedsJSON", basicSecret(corev1.SecretTypeDockercfg, map[string]string{".dockercfg": "[]"}), []fieldErr{invalid("data[.dockercfg]")}},
		{"BasicAuthNeedsUserOrPassword", basicSecret(corev1.SecretTypeBasicAuth, nil),
			[]fieldErr{required("data[username]"), required("data[password]")}},
		{"BasicAuthWithEmptyPassword", basicSecret(corev1.SecretTypeBasicAuth, map[string]string{"password": ""}), nil},
		{"SSHAuthNeedsKey", basicSecret(corev1.SecretTypeSSHAuth, map[string]string{"ssh-privatekey": ""}), []fieldErr{required("data[ssh-privatekey]")}},
		{"TLSNeedsCertAndKey", basicSecret(corev1.SecretTypeTLS, map[string]string{"tls.crt": "x"}), []fieldErr{required("data[tls.key]")}},
		{"ValidTLS", basicSecret(corev1.SecretTypeTLS, map[string]string{"tls.crt": "", "tls.key": ""}), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantErrs(t, create(t, lookup(t, "/secrets"), tc.secret), tc.want...)
		})
	}
}

func TestSecretDataRedactedInErrors(t *testing.T) {
	s := basicSecret(corev1.SecretTypeDockerConfigJson, map[string]string{".dockerconfigjson": `{"password":"hunter2"`})
	errs := create(t, lookup(t, "/secrets"), s)
	if msg := errs.ToAggregate().Error(); strings.Contains(msg, "hunter2") {
		t.Errorf("error shows the secret: %s", msg)
	}
}

func TestSecretStringDataFoldedIntoData(t *testing.T) {
	s := basicSecret("", map[string]string{"a": "old", "b": "kept"})
	s.StringData = map[string]string{"a": "new"}
	create(t, lookup(t, "/secrets"), s)
	if diff := cmp.Diff(map[string][]byte{"a": []byte("new"), "b": []byte("kept")}, s.Data); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if s.StringData != nil {
		t.Errorf("stringData stored: %v", s.StringData)
	}
}

func TestSecretUpdate(t *testing.T) {
	r := lookup(t, "/secrets")
	cases := []struct {
		name   string
		old    *corev1.Secret
		mutate func(*corev1.Secret)
		want   []fieldErr
	}{
		{"RejectsTypeChange", basicSecret(corev1.SecretTypeOpaque, map[string]string{"tls.crt": "", "tls.key": ""}),
			func(s *corev1.Secret) { s.Type = corev1.SecretTypeTLS }, []fieldErr{invalid("type")}},
		{"AllowsDataChange", basicSecret(corev1.SecretTypeOpaque, map[string]string{"a": "1"}),
			func(s *corev1.Secret) { s.Data["a"] = []byte("2") }, nil},
		{"RejectsDataChangeWhenImmutable", func() *corev1.Secret {
			s := basicSecret(corev1.SecretTypeOpaque, map[string]string{"a": "1"})
			s.Immutable = ptrTo(true)
			return s
		}(), func(s *corev1.Secret) { s.StringData = map[string]string{"a": "2"} }, []fieldErr{forbidden("data")}},
		{"RejectsUnsettingImmutable", func() *corev1.Secret {
			s := basicSecret(corev1.SecretTypeOpaque, nil)
			s.Immutable = ptrTo(true)
			return s
		}(), func(s *corev1.Secret) { s.Immutable = ptrTo(false) }, []fieldErr{forbidden("immutable")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.old.DeepCopy()
			tc.mutate(s)
			wantErrs(t, update(t, r, s, tc.old), tc.want...)
		})
	}
}

func TestSecretSelectableFields(t *testing.T) {
	got := lookup(t, "/secrets").SelectableFields(basicSecret(corev1.SecretTypeTLS, nil))
	if got["type"] != string(corev1.SecretTypeTLS) {
		t.Errorf("fields = %v", got)
	}
}

// TestServiceAccountValidate: upstream checks only the metadata, not the
// secret names a service account lists.
func TestServiceAccountValidate(t *testing.T) {
	sa := &corev1.ServiceAccount{ObjectMeta: objMeta, Secrets: []corev1.ObjectReference{{Name: "Not_A_Name"}},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "registry"}}}
	r := lookup(t, "/serviceaccounts")
	wantErrs(t, create(t, r, sa))
	wantErrs(t, update(t, r, sa.DeepCopy(), sa))
}
