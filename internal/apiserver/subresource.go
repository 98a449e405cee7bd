package apiserver

import (
	"fmt"
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// subresource describes a subresource for routing and discovery.
type subresource struct {
	name  string
	kind  schema.GroupVersionKind
	verbs []string
	// connect marks a stream (exec, attach, portforward): GET and POST
	// both upgrade, whatever the verb the request info computed.
	connect bool
}

var (
	scaleGVK        = autoscalingv1.SchemeGroupVersion.WithKind("Scale")
	bindingGVK      = corev1.SchemeGroupVersion.WithKind("Binding")
	evictionGVK     = policyv1.SchemeGroupVersion.WithKind("Eviction")
	tokenRequestGVK = authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")

	podExecGVK        = corev1.SchemeGroupVersion.WithKind("PodExecOptions")
	podAttachGVK      = corev1.SchemeGroupVersion.WithKind("PodAttachOptions")
	podPortForwardGVK = corev1.SchemeGroupVersion.WithKind("PodPortForwardOptions")
)

// subresources lists what ep serves below an object.
func (ep *endpoint) subresources() []subresource {
	var out []subresource
	if ep.res.Status != nil {
		out = append(out, subresource{name: "status", kind: ep.gvk, verbs: []string{"get", "patch", "update"}})
	}
	if ep.res.Scale != nil {
		out = append(out, subresource{name: "scale", kind: scaleGVK, verbs: []string{"get", "patch", "update"}})
	}
	switch ep.gvr {
	case corev1.SchemeGroupVersion.WithResource("pods"):
		out = append(out,
			subresource{name: "binding", kind: bindingGVK, verbs: []string{"create"}},
			subresource{name: "eviction", kind: evictionGVK, verbs: []string{"create"}},
			subresource{name: "log", kind: ep.gvk, verbs: []string{"get"}},
			subresource{name: "exec", kind: podExecGVK, verbs: []string{"create", "get"}, connect: true},
			subresource{name: "attach", kind: podAttachGVK, verbs: []string{"create", "get"}, connect: true},
			subresource{name: "portforward", kind: podPortForwardGVK, verbs: []string{"create", "get"}, connect: true},
		)
	case corev1.SchemeGroupVersion.WithResource("namespaces"):
		out = append(out, subresource{name: "finalize", kind: ep.gvk, verbs: []string{"update"}})
	case corev1.SchemeGroupVersion.WithResource("serviceaccounts"):
		if ep.tokens != nil {
			out = append(out, subresource{name: "token", kind: tokenRequestGVK, verbs: []string{"create"}})
		}
	}
	return out
}

func (q *request) serveSubresource() {
	var sr *subresource
	for _, s := range q.ep.subresources() {
		if s.name == q.info.Subresource {
			sr = &s
			break
		}
	}
	if sr == nil || len(q.info.Parts) > 3 {
		q.fail(errNotFoundResource())
		return
	}
	verb := q.info.Verb
	if sr.connect {
		q.stream(sr.name)
		return
	}
	if sr.name == "log" && verb == "get" {
		q.logs()
		return
	}
	if verb == "create" && !hasString(sr.verbs, "create") {
		verb = "post"
	}
	if !hasString(sr.verbs, verb) {
		q.fail(errMethodNotSupported(schema.GroupResource{Group: q.ep.gr.Group, Resource: q.ep.gr.Resource + "/" + sr.name}, verb))
		return
	}
	switch sr.name {
	case "status":
		switch verb {
		case "get":
			q.get()
		case "update":
			q.update("status")
		case "patch":
			q.patch("status")
		}
	case "scale":
		q.serveScale(verb)
	case "binding":
		q.bind()
	case "eviction":
		q.evict()
	case "finalize":
		q.finalizeNamespace()
	case "token":
		q.requestToken()
	}
}

// scaleOf builds the Scale of a parent object.
func (q *request) scaleOf(parent runtime.Object) *autoscalingv1.Scale {
	sc := q.ep.res.Scale.Get(parent)
	m := accessor(parent)
	sc.TypeMeta = metav1.TypeMeta{APIVersion: "autoscaling/v1", Kind: "Scale"}
	sc.ObjectMeta = metav1.ObjectMeta{
		Name:              m.GetName(),
		Namespace:         m.GetNamespace(),
		UID:               m.GetUID(),
		ResourceVersion:   m.GetResourceVersion(),
		CreationTimestamp: m.GetCreationTimestamp(),
	}
	return sc
}

func validateScale(sc *autoscalingv1.Scale) field.ErrorList {
	var errs field.ErrorList
	if sc.Spec.Replicas < 0 {
		errs = append(errs, field.Invalid(field.NewPath("spec", "replicas"), sc.Spec.Replicas, "must be greater than or equal to 0"))
	}
	return errs
}

func (q *request) serveScale(verb string) {
	if verb == "get" {
		obj, err := q.s.store.Get(q.ctx, q.ep.key(q.info.Namespace, q.info.Name))
		if err != nil {
			q.fail(err)
			return
		}
		q.write(http.StatusOK, q.scaleOf(obj))
		return
	}
	var (
		opts writeOptions
		err  error
		pr   *patchRequest
		body *autoscalingv1.Scale
	)
	if verb == "patch" {
		pr, err = q.parsePatch()
		if err == nil && pr.typ == types.ApplyYAMLPatchType {
			err = apierrors.NewBadRequest("server-side apply is not supported on the scale subresource")
		}
		if pr != nil {
			opts = pr.opts
		}
	} else {
		opts, err = q.writeOptions()
		if err == nil {
			var data []byte
			if data, err = q.readBody(); err == nil {
				var obj runtime.Object
				obj, err = q.decodeInto(data, q.r.Header.Get("Content-Type"), &autoscalingv1.Scale{}, scaleGVK)
				if err == nil {
					body = obj.(*autoscalingv1.Scale)
				}
			}
		}
	}
	if err != nil {
		q.fail(err)
		return
	}
	out, _, err := q.s.updateObject(q.ctx, q.ep, q.info.Namespace, q.info.Name, "scale", func(cur runtime.Object) (runtime.Object, error) {
		if cur == nil {
			return nil, apierrors.NewNotFound(q.ep.gr, q.info.Name)
		}
		sc := body
		if pr != nil {
			doc, err := jsonBytes(q.s.codecs, q.scaleOf(cur))
			if err != nil {
				return nil, err
			}
			patched, err := applyPatch(pr.typ, doc, pr.data, &autoscalingv1.Scale{})
			if err != nil {
				return nil, err
			}
			obj, err := q.decodeInto(patched, mediaJSON, &autoscalingv1.Scale{}, scaleGVK)
			if err != nil {
				return nil, err
			}
			sc = obj.(*autoscalingv1.Scale)
		}
		if sc.Name != "" && sc.Name != q.info.Name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", sc.Name, q.info.Name))
		}
		if errs := validateScale(sc); len(errs) > 0 {
			return nil, apierrors.NewInvalid(scaleGVK.GroupKind(), q.info.Name, errs)
		}
		m := accessor(cur)
		if rv := sc.ResourceVersion; rv != "" && rv != m.GetResourceVersion() {
			return nil, apierrors.NewConflict(q.ep.gr, q.info.Name, fmt.Errorf("%s", optimisticLockMessage))
		}
		q.ep.res.Scale.Set(cur, sc)
		return cur, nil
	}, opts)
	if err != nil {
		q.fail(err)
		return
	}
	q.write(http.StatusOK, q.scaleOf(out))
}

// bind assigns a pod to a node (pods/binding), as the scheduler does.
func (q *request) bind() {
	opts, err := q.writeOptions()
	if err != nil {
		q.fail(err)
		return
	}
	data, err := q.readBody()
	if err != nil {
		q.fail(err)
		return
	}
	obj, err := q.decodeInto(data, q.r.Header.Get("Content-Type"), &corev1.Binding{}, bindingGVK)
	if err != nil {
		q.fail(err)
		return
	}
	b := obj.(*corev1.Binding)
	if b.Name != "" && b.Name != q.info.Name {
		q.fail(apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", b.Name, q.info.Name)))
		return
	}
	var errs field.ErrorList
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		errs = append(errs, field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node", "<empty>"}))
	}
	if b.Target.Name == "" {
		errs = append(errs, field.Required(field.NewPath("target", "name"), ""))
	}
	if len(errs) > 0 {
		q.fail(apierrors.NewInvalid(bindingGVK.GroupKind(), q.info.Name, errs))
		return
	}
	now := metav1.NewTime(q.s.cfg.Now())
	_, _, err = q.s.updateObject(q.ctx, q.ep, q.info.Namespace, q.info.Name, "binding", func(cur runtime.Object) (runtime.Object, error) {
		if cur == nil {
			return nil, apierrors.NewNotFound(q.ep.gr, q.info.Name)
		}
		pod := cur.(*corev1.Pod)
		if b.UID != "" && b.UID != pod.UID {
			return nil, apierrors.NewConflict(q.ep.gr, q.info.Name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID))
		}
		if pod.DeletionTimestamp != nil {
			return nil, apierrors.NewConflict(q.ep.gr, q.info.Name, fmt.Errorf("pod %s is being deleted, cannot be assigned to a host", pod.Name))
		}
		if pod.Spec.NodeName != "" {
			return nil, apierrors.NewConflict(q.ep.gr, q.info.Name, fmt.Errorf("pod %v is already assigned to node %q", pod.Name, pod.Spec.NodeName))
		}
		pod.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if pod.Annotations == nil {
				pod.Annotations = map[string]string{}
			}
			pod.Annotations[k] = v
		}
		setPodCondition(&pod.Status, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now})
		return pod, nil
	}, opts)
	if err != nil {
		q.fail(err)
		return
	}
	q.write(http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
}

func setPodCondition(st *corev1.PodStatus, c corev1.PodCondition) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == c.Type {
			if st.Conditions[i].Status != c.Status {
				st.Conditions[i] = c
			}
			return
		}
	}
	st.Conditions = append(st.Conditions, c)
}

// evict deletes a pod through the Eviction API (kubectl drain). Pod
// disruption budgets are not served yet, so nothing can refuse it.
func (q *request) evict() {
	data, err := q.readBody()
	if err != nil {
		q.fail(err)
		return
	}
	obj, err := q.decodeEviction(data)
	if err != nil {
		q.fail(err)
		return
	}
	ev := obj.(*policyv1.Eviction)
	if ev.Name != "" && ev.Name != q.info.Name {
		q.fail(apierrors.NewBadRequest(fmt.Sprintf("name in URL does not match name in Eviction object")))
		return
	}
	opts := ev.DeleteOptions
	if opts == nil {
		opts = &metav1.DeleteOptions{}
	}
	if _, _, err := q.s.deleteObject(q.ctx, q.ep, q.info.Namespace, q.info.Name, opts); err != nil {
		q.fail(err)
		return
	}
	q.write(http.StatusCreated, &metav1.Status{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: metav1.StatusSuccess, Code: http.StatusCreated})
}

// decodeEviction accepts policy/v1 and policy/v1beta1 Evictions.
func (q *request) decodeEviction(data []byte) (runtime.Object, error) {
	dec, _, err := q.s.codecs.bodyDecoder(q.r.Header.Get("Content-Type"), false)
	if err != nil {
		return nil, err
	}
	ev := &policyv1.Eviction{}
	if _, gvk, err := dec.Decode(data, &evictionGVK, ev); err != nil {
		return nil, apierrors.NewBadRequest(decodeErrorMessage(err, "Eviction"))
	} else if gvk != nil && gvk.Kind != "" && gvk.Kind != "Eviction" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (must be of type Eviction): %s", gvk.Kind))
	}
	return ev, nil
}

// finalizeNamespace updates a namespace's spec.finalizers (the namespace
// controller's last step), deleting it once nothing is left to wait for.
func (q *request) finalizeNamespace() {
	opts, err := q.writeOptions()
	if err != nil {
		q.fail(err)
		return
	}
	data, err := q.readBody()
	if err != nil {
		q.fail(err)
		return
	}
	obj, err := q.decodeObject(data, q.r.Header.Get("Content-Type"))
	if err != nil {
		q.fail(err)
		return
	}
	want := obj.(*corev1.Namespace)
	out, _, err := q.s.updateObject(q.ctx, q.ep, "", q.info.Name, "finalize", func(cur runtime.Object) (runtime.Object, error) {
		if cur == nil {
			return nil, apierrors.NewNotFound(q.ep.gr, q.info.Name)
		}
		ns := cur.(*corev1.Namespace)
		if want.ResourceVersion != "" && want.ResourceVersion != ns.ResourceVersion {
			return nil, apierrors.NewConflict(q.ep.gr, q.info.Name, fmt.Errorf("%s", optimisticLockMessage))
		}
		ns.Spec.Finalizers = want.Spec.Finalizers
		return ns, nil
	}, opts)
	if err != nil {
		q.fail(err)
		return
	}
	q.respond(http.StatusOK, out)
}
