package apiserver

import (
	"bytes"
	"fmt"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// includeObject reads the includeObject table option: None, Metadata (the
// default) or Object.
func (q *request) includeObject() (metav1.IncludeObjectPolicy, error) {
	v := metav1.IncludeObjectPolicy(q.query().Get("includeObject"))
	switch v {
	case "":
		return metav1.IncludeMetadata, nil
	case metav1.IncludeNone, metav1.IncludeMetadata, metav1.IncludeObject:
		return v, nil
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("includeObject must be one of None, Metadata, or Object, got %q", v))
}

// respond writes obj with the status code in the negotiated format,
// converting to a Table or to metadata when the client asked. obj may be
// shared (from the cache): it is never modified.
func (q *request) respond(code int, obj runtime.Object) {
	out, err := q.transform(obj, true)
	if err != nil {
		q.fail(err)
		return
	}
	q.write(code, out)
}

// write encodes obj as is.
func (q *request) write(code int, obj runtime.Object) {
	var buf bytes.Buffer
	if err := q.out.encoder.Encode(withKind(q.s.codecs, obj), &buf); err != nil {
		q.fail(fmt.Errorf("encode response: %w", err))
		return
	}
	q.setWarnings()
	q.w.Header().Set("Content-Type", q.out.contentType())
	q.w.Header().Set("X-Content-Type-Options", "nosniff")
	q.w.WriteHeader(code)
	if q.r.Method != http.MethodHead {
		q.w.Write(buf.Bytes())
	}
}

// withKind returns obj with apiVersion and kind set, copying it shallowly
// when they are missing (a shared object must not be written to).
func withKind(c *codecs, obj runtime.Object) runtime.Object {
	if !obj.GetObjectKind().GroupVersionKind().Empty() {
		return obj
	}
	gvks, _, err := c.scheme.ObjectKinds(obj)
	if err != nil {
		return obj
	}
	cp := shallowCopyWithoutKind(obj)
	cp.GetObjectKind().SetGroupVersionKind(gvks[0])
	return cp
}

// transform converts a single object for the negotiated output.
func (q *request) transform(obj runtime.Object, headers bool) (runtime.Object, error) {
	if _, isStatus := obj.(*metav1.Status); isStatus {
		return obj, nil
	}
	switch q.out.as {
	case asTable:
		return q.toTable([]runtime.Object{obj}, metav1.ListMeta{}, headers)
	case asPartialMetadata:
		return q.partialMetadata(obj), nil
	case asPartialMetadataList:
		return nil, errNotAcceptable()
	}
	return obj, nil
}

// partialMetadata returns obj's metadata as a PartialObjectMetadata.
func (q *request) partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	m := accessor(obj)
	p := meta.AsPartialObjectMetadata(m)
	p.TypeMeta = metav1.TypeMeta{APIVersion: "meta.k8s.io/" + q.out.tableVersion, Kind: "PartialObjectMetadata"}
	return p
}

// toTable renders objects as a meta.k8s.io Table with the resource's
// columns. headers=false leaves out the column definitions (watch events
// after the first).
func (q *request) toTable(objs []runtime.Object, listMeta metav1.ListMeta, headers bool) (*metav1.Table, error) {
	include, err := q.includeObject()
	if err != nil {
		return nil, err
	}
	t := &metav1.Table{
		TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/" + q.out.tableVersion, Kind: "Table"},
		ListMeta: listMeta,
		Rows:     make([]metav1.TableRow, 0, len(objs)),
	}
	if headers && q.query().Get("noHeaders") != "true" {
		t.ColumnDefinitions = q.ep.table.Columns
	}
	for _, obj := range objs {
		cells, err := q.ep.table.Row(obj)
		if err != nil {
			return nil, fmt.Errorf("table row: %w", err)
		}
		row := metav1.TableRow{Cells: cells}
		if q.ep.table.Conditions != nil {
			row.Conditions = q.ep.table.Conditions(obj)
		}
		switch include {
		case metav1.IncludeMetadata:
			raw, err := jsonBytes(q.s.codecs, q.partialMetadata(obj))
			if err != nil {
				return nil, err
			}
			row.Object.Raw = raw
		case metav1.IncludeObject:
			raw, err := jsonBytes(q.s.codecs, withKind(q.s.codecs, obj))
			if err != nil {
				return nil, err
			}
			row.Object.Raw = raw
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

func jsonBytes(c *codecs, obj runtime.Object) ([]byte, error) {
	var buf bytes.Buffer
	if err := c.json.Encode(obj, &buf); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
