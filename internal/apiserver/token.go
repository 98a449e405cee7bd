package apiserver

import (
	"fmt"
	"math"
	"net/http"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/auth/serviceaccount"
)

// TokenIssuer signs service-account tokens (serviceaccounts/token).
type TokenIssuer interface {
	Issue(req serviceaccount.Request) (string, time.Time, error)
}

// Token lifetimes, as upstream: at least 10 minutes, one hour by default.
const (
	minTokenExpiration     = 10 * time.Minute
	defaultTokenExpiration = time.Hour
)

// requestToken serves POST serviceaccounts/<name>/token: a TokenRequest is
// answered with a signed token for the service account, bound to a pod,
// secret or node when asked.
func (q *request) requestToken() {
	data, err := q.readBody()
	if err != nil {
		q.fail(err)
		return
	}
	obj, err := q.decodeInto(data, q.r.Header.Get("Content-Type"), &authenticationv1.TokenRequest{}, tokenRequestGVK)
	if err != nil {
		q.fail(err)
		return
	}
	tr := obj.(*authenticationv1.TokenRequest)
	exp := defaultTokenExpiration
	if tr.Spec.ExpirationSeconds != nil {
		exp = time.Duration(*tr.Spec.ExpirationSeconds) * time.Second
	}
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if exp < minTokenExpiration {
		errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), *tr.Spec.ExpirationSeconds, "may not specify a duration less than 10 minutes"))
	}
	if tr.Spec.ExpirationSeconds != nil && *tr.Spec.ExpirationSeconds > math.MaxUint32 {
		errs = append(errs, field.TooLong(spec.Child("expirationSeconds"), *tr.Spec.ExpirationSeconds, math.MaxUint32))
	}
	if len(errs) > 0 {
		q.fail(apierrors.NewInvalid(tokenRequestGVK.GroupKind(), q.info.Name, errs))
		return
	}
	saObj, ok := q.s.Lookup(corev1.SchemeGroupVersion.WithResource("serviceaccounts"), q.info.Namespace, q.info.Name)
	if !ok {
		o, err := q.s.store.Get(q.ctx, q.ep.key(q.info.Namespace, q.info.Name))
		if err != nil {
			q.fail(err)
			return
		}
		saObj = o
	}
	sa := saObj.(*corev1.ServiceAccount)
	req := serviceaccount.Request{
		Namespace:      sa.Namespace,
		ServiceAccount: serviceaccount.Ref{Name: sa.Name, UID: string(sa.UID)},
		Audiences:      tr.Spec.Audiences,
		Expiration:     exp,
	}
	if ref := tr.Spec.BoundObjectRef; ref != nil {
		if err := q.bindToken(&req, ref); err != nil {
			q.fail(err)
			return
		}
	}
	token, expiry, err := q.ep.tokens.Issue(req)
	if err != nil {
		q.fail(err)
		return
	}
	out := tr.DeepCopy()
	out.TypeMeta = metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenRequest"}
	out.Name, out.Namespace = sa.Name, sa.Namespace
	out.CreationTimestamp = metav1.NewTime(q.s.cfg.Now().Truncate(time.Second))
	out.Status = authenticationv1.TokenRequestStatus{Token: token, ExpirationTimestamp: metav1.NewTime(expiry)}
	if out.Spec.ExpirationSeconds == nil {
		secs := int64(exp / time.Second)
		out.Spec.ExpirationSeconds = &secs
	}
	if len(out.Spec.Audiences) == 0 {
		out.Spec.Audiences = nil
	}
	q.write(http.StatusCreated, out)
}

// bindToken binds req to the object ref names, which must exist (and have
// the given UID).
func (q *request) bindToken(req *serviceaccount.Request, ref *authenticationv1.BoundObjectReference) error {
	path := field.NewPath("spec", "boundObjectRef")
	if ref.APIVersion != "" && ref.APIVersion != "v1" {
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), q.info.Name, field.ErrorList{field.NotSupported(path.Child("apiVersion"), ref.APIVersion, []string{"v1"})})
	}
	var (
		resource string
		ns       = q.info.Namespace
	)
	switch ref.Kind {
	case "Pod":
		resource = "pods"
	case "Secret":
		resource = "secrets"
	case "Node":
		resource, ns = "nodes", ""
	default:
		return apierrors.NewInvalid(tokenRequestGVK.GroupKind(), q.info.Name, field.ErrorList{field.NotSupported(path.Child("kind"), ref.Kind, []string{"Pod", "Secret", "Node"})})
	}
	obj, ok := q.s.Lookup(corev1.SchemeGroupVersion.WithResource(resource), ns, ref.Name)
	if !ok {
		return apierrors.NewNotFound(corev1.Resource(resource), ref.Name)
	}
	uid := string(accessor(obj).GetUID())
	if ref.UID != "" && string(ref.UID) != uid {
		return apierrors.NewConflict(corev1.Resource(resource), ref.Name, fmt.Errorf("the UID in the bound object reference (%s) does not match the UID in record (%s); the object might have been deleted and then recreated", ref.UID, uid))
	}
	r := &serviceaccount.Ref{Name: ref.Name, UID: uid}
	switch ref.Kind {
	case "Pod":
		req.Pod = r
		if pod, ok := obj.(*corev1.Pod); ok && pod.Spec.NodeName != "" {
			if node, ok := q.s.Lookup(corev1.SchemeGroupVersion.WithResource("nodes"), "", pod.Spec.NodeName); ok {
				req.Node = &serviceaccount.Ref{Name: pod.Spec.NodeName, UID: string(accessor(node).GetUID())}
			}
		}
	case "Secret":
		req.Secret = r
	case "Node":
		req.Node = r
	}
	return nil
}
