package apiserver

import (
	"fmt"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"
)

var patchTypes = []string{string(types.JSONPatchType), string(types.MergePatchType), string(types.StrategicMergePatchType), string(types.ApplyYAMLPatchType)}

// patchRequest is a parsed PATCH.
type patchRequest struct {
	typ   types.PatchType
	data  []byte
	force bool
	opts  writeOptions
}

func (q *request) parsePatch() (*patchRequest, error) {
	opts, err := q.writeOptions()
	if err != nil {
		return nil, err
	}
	p := &patchRequest{typ: types.PatchType(mediaTypeOf(q.r.Header.Get("Content-Type"))), opts: opts}
	switch p.typ {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType:
	default:
		return nil, statusError(http.StatusUnsupportedMediaType, metav1.StatusReasonUnsupportedMediaType,
			fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: %v", patchTypes))
	}
	if p.data, err = q.readBody(); err != nil {
		return nil, err
	}
	if len(p.data) == 0 {
		return nil, apierrors.NewBadRequest("the body of the request was empty")
	}
	v := q.query()
	var errs field.ErrorList
	if f := v.Get("force"); f != "" {
		if p.typ != types.ApplyYAMLPatchType {
			errs = append(errs, field.Forbidden(field.NewPath("force"), "may not be specified for non-apply patch"))
		}
		p.force = f == "true"
	}
	if p.typ == types.ApplyYAMLPatchType && v.Get("fieldManager") == "" {
		errs = append(errs, field.Required(field.NewPath("fieldManager"), "is required for apply patch"))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Group: "meta.k8s.io", Kind: "PatchOptions"}, "", errs)
	}
	return p, nil
}

// applyPatch applies a JSON, merge or strategic merge patch to the JSON of
// an object. dataStruct is an empty object of the patched type, for the
// strategic merge's patch directives.
func applyPatch(typ types.PatchType, doc, patch []byte, dataStruct runtime.Object) ([]byte, error) {
	switch typ {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		out, err := p.Apply(doc)
		if err != nil {
			return nil, patchFailed(err)
		}
		return out, nil
	case types.MergePatchType:
		out, err := jsonpatch.MergePatch(doc, patch)
		if err != nil {
			if err == jsonpatch.ErrBadJSONPatch || err == jsonpatch.ErrBadJSONDoc {
				return nil, apierrors.NewBadRequest(err.Error())
			}
			return nil, patchFailed(err)
		}
		return out, nil
	case types.StrategicMergePatchType:
		var probe map[string]interface{}
		if err := yaml.Unmarshal(patch, &probe); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		out, err := strategicpatch.StrategicMergePatch(doc, patch, dataStruct)
		if err != nil {
			return nil, patchFailed(err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported patch type %s", typ)
}

// patchFailed is upstream's 422 for a patch that cannot be applied.
func patchFailed(err error) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    http.StatusUnprocessableEntity,
		Reason:  metav1.StatusReasonInvalid,
		Message: fmt.Sprintf("the server rejected our request due to an error in our request: %v", err),
	}}
}

// patch serves PATCH on the resource or its status.
func (q *request) patch(sub string) {
	p, err := q.parsePatch()
	if err != nil {
		q.fail(err)
		return
	}
	mutate := func(cur runtime.Object) (runtime.Object, error) {
		if p.typ == types.ApplyYAMLPatchType {
			return q.applyServerSide(cur, p, sub)
		}
		if cur == nil {
			return nil, apierrors.NewNotFound(q.ep.gr, q.info.Name)
		}
		doc, err := jsonBytes(q.s.codecs, withKind(q.s.codecs, cur))
		if err != nil {
			return nil, err
		}
		out, err := applyPatch(p.typ, doc, p.data, q.ep.res.New())
		if err != nil {
			return nil, err
		}
		return q.decodeInto(out, mediaJSON, q.ep.res.New(), q.ep.gvk)
	}
	if p.typ == types.ApplyYAMLPatchType {
		p.opts.applied = true
		p.opts.createOnUpdate = sub == ""
	}
	out, created, err := q.s.updateObject(q.ctx, q.ep, q.info.Namespace, q.info.Name, sub, mutate, p.opts)
	if err != nil {
		q.fail(err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	q.respond(code, out)
}

// applyServerSide merges an apply configuration into cur (nil: the object
// does not exist yet) with the field manager, which tracks ownership and
// reports conflicts with other managers as 409.
func (q *request) applyServerSide(cur runtime.Object, p *patchRequest, sub string) (runtime.Object, error) {
	patchObj := &unstructured.Unstructured{Object: map[string]interface{}{}}
	if err := yaml.Unmarshal(p.data, &patchObj.Object); err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("error decoding YAML: %v", err))
	}
	if name := patchObj.GetName(); name != "" && name != q.info.Name {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", name, q.info.Name))
	}
	if ns := patchObj.GetNamespace(); q.ep.res.Namespaced && ns != "" && ns != q.info.Namespace {
		return nil, apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	live := cur
	if live == nil {
		live = q.ep.res.New()
		m := accessor(live)
		m.SetName(q.info.Name)
		if q.ep.res.Namespaced {
			m.SetNamespace(q.info.Namespace)
		}
	}
	live.GetObjectKind().SetGroupVersionKind(q.ep.gvk)
	fmSub := ""
	if sub == "status" {
		fmSub = "status"
	}
	fm, err := q.s.fieldManager(q.ep, fmSub)
	if err != nil {
		return nil, err
	}
	out, err := fm.Apply(live, patchObj, p.opts.manager, p.force)
	if err != nil {
		if _, ok := err.(apierrors.APIStatus); ok {
			return nil, err
		}
		return nil, apierrors.NewBadRequest(err.Error())
	}
	validation, _ := q.fieldValidation()
	if validation != "Ignore" {
		if err := yaml.UnmarshalStrict(p.data, &map[string]interface{}{}); err != nil {
			if validation == "Strict" {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("error strict decoding YAML: %v", err))
			}
			q.warnings = append(q.warnings, err.Error())
		}
	}
	if cur == nil {
		// A create through apply keeps the managed fields it computed.
		accessor(out).SetResourceVersion("")
	}
	return out, nil
}
