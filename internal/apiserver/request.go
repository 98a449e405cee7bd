package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// request is one resource request on its way through the REST layer.
type request struct {
	s    *Server
	w    http.ResponseWriter
	r    *http.Request
	ctx  context.Context
	info requestInfo
	ep   *endpoint
	out  output
	// warnings are sent as Warning headers with the response.
	warnings []string
}

func (q *request) query() url.Values { return q.r.URL.Query() }

func (q *request) fail(err error) {
	q.s.writeError(q.w, q.r, err, q.ep.gr, q.info.Name)
}

// serve dispatches on subresource and verb.
func (q *request) serve() {
	out, err := q.s.codecs.negotiate(q.r)
	if err != nil {
		q.fail(err)
		return
	}
	q.out = out
	if q.info.Subresource != "" {
		q.serveSubresource()
		return
	}
	verb := q.info.Verb
	if !q.ep.verbs.Has(verb) {
		q.fail(errMethodNotSupported(q.ep.gr, verb))
		return
	}
	switch verb {
	case "get":
		q.get()
	case "list":
		q.list()
	case "watch":
		q.watch()
	case "create":
		q.create()
	case "update":
		q.update("")
	case "patch":
		q.patch("")
	case "delete":
		q.delete()
	case "deletecollection":
		q.deleteCollection()
	default:
		q.fail(errMethodNotSupported(q.ep.gr, verb))
	}
}

// readBody reads the request body, refusing more than the configured limit
// with 413.
func (q *request) readBody() ([]byte, error) {
	limit := q.s.cfg.MaxRequestBodyBytes
	if q.r.ContentLength > limit {
		return nil, errRequestEntityTooLarge(limit)
	}
	data, err := io.ReadAll(io.LimitReader(q.r.Body, limit+1))
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("read request body: %v", err))
	}
	if int64(len(data)) > limit {
		return nil, errRequestEntityTooLarge(limit)
	}
	return data, nil
}

// fieldValidation returns the request's fieldValidation directive:
// Ignore, Warn (the default) or Strict.
func (q *request) fieldValidation() (string, error) {
	v := q.query().Get("fieldValidation")
	switch strings.ToLower(v) {
	case "":
		return "Warn", nil
	case "ignore":
		return "Ignore", nil
	case "warn":
		return "Warn", nil
	case "strict":
		return "Strict", nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got %q", v))
}

// dryRun reports whether the request asks for dryRun=All; any other value
// is an error, as upstream.
func (q *request) dryRun() (bool, error) {
	vals := q.query()["dryRun"]
	for _, v := range vals {
		if v != "All" {
			return false, apierrors.NewBadRequest(fmt.Sprintf("Invalid dryRun value: %v", vals))
		}
	}
	return len(vals) > 0, nil
}

// decodeObject decodes a request body into a new object of the resource's
// kind, honouring fieldValidation for unknown and duplicate fields.
func (q *request) decodeObject(data []byte, contentType string) (runtime.Object, error) {
	return q.decodeInto(data, contentType, q.ep.res.New(), q.ep.gvk)
}

func (q *request) decodeInto(data []byte, contentType string, into runtime.Object, want schema.GroupVersionKind) (runtime.Object, error) {
	validation, err := q.fieldValidation()
	if err != nil {
		return nil, err
	}
	dec, _, err := q.s.codecs.bodyDecoder(contentType, validation != "Ignore")
	if err != nil {
		return nil, err
	}
	if len(data) == 0 {
		return nil, apierrors.NewBadRequest("the body of the request was empty")
	}
	obj, gvk, err := dec.Decode(data, &want, into)
	if err != nil {
		if runtime.IsStrictDecodingError(err) && obj == into {
			if validation == "Strict" {
				return nil, apierrors.NewBadRequest(err.Error())
			}
			q.warnings = append(q.warnings, strictErrors(err)...)
		} else {
			return nil, decodeError(err, want.Kind, gvk, data)
		}
	}
	if obj != into || (gvk != nil && gvk.Kind != "" && gvk.Kind != want.Kind) {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: the object provided is unrecognized", gvk.Kind, gvk.Version, want.Kind))
	}
	if gvk != nil && gvk.GroupVersion() != want.GroupVersion() {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", gvk.GroupVersion(), want.GroupVersion()))
	}
	obj.GetObjectKind().SetGroupVersionKind(want)
	return obj, nil
}

// decodeError is upstream's 400 for a body that does not decode.
func decodeError(err error, kind string, gvk *schema.GroupVersionKind, body []byte) error {
	if gvk != nil && gvk.Kind != "" {
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", gvk.Kind, gvk.Version, kind, err))
	}
	return apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (must be of type %s): %v (%s)", kind, err, summarize(body, 30)))
}

func decodeErrorMessage(err error, kind string) string {
	return fmt.Sprintf("the object provided is unrecognized (must be of type %s): %v", kind, err)
}

// summarize quotes the start of a body for an error message.
func summarize(data []byte, max int) string {
	if len(data) <= max {
		return string(data)
	}
	return string(data[:max]) + " ..."
}

// strictErrors splits a strict decoding error into one message per field.
func strictErrors(err error) []string {
	type errs interface{ Errors() []error }
	var se errs
	if errors.As(err, &se) {
		var out []string
		for _, e := range se.Errors() {
			out = append(out, e.Error())
		}
		return out
	}
	return []string{err.Error()}
}

// accessor returns obj's metadata; every served type has it.
func accessor(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(fmt.Sprintf("object %T has no metadata: %v", obj, err))
	}
	return m
}

// invalid builds the 422 for validation errors.
func (q *request) invalid(name string, errs field.ErrorList) error {
	return apierrors.NewInvalid(q.ep.gvk.GroupKind(), name, errs)
}

// setWarnings writes the Warning headers collected so far.
func (q *request) setWarnings() {
	for _, w := range q.warnings {
		q.w.Header().Add("Warning", `299 - `+strconv.Quote(w))
	}
}

// gracePeriod parses gracePeriodSeconds from the query.
func parseInt64(v string) (*int64, error) {
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, err
	}
	return &n, nil
}
