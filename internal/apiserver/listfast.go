package apiserver

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiff-sh/skiff/internal/storage"
)

// Lists from the watch cache are written from each item's cached
// encoding: the same bytes the serializers produce, assembled instead of
// re-encoded, so a LIST of thousands of objects costs a copy, not an
// encode. writeCachedList returns false when the request needs another
// format (tables, metadata, YAML, pretty JSON); respondList then encodes.

// protoMarshaler is what generated protobuf types implement.
type protoMarshaler interface {
	Marshal() ([]byte, error)
}

// protobufMagic prefixes every protobuf-encoded object (runtime.Unknown).
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

func (q *request) writeCachedList(items []*storage.Item, listMeta metav1.ListMeta) bool {
	if q.out.as != asObject || q.query().Get("pretty") == "true" {
		return false
	}
	var (
		body []byte
		err  error
	)
	switch q.out.mediaType {
	case mediaJSON:
		body, err = q.cachedListJSON(items, listMeta)
	case mediaProtobuf:
		body, err = q.cachedListProtobuf(items, listMeta)
	default:
		return false
	}
	if err != nil {
		q.fail(err)
		return true
	}
	q.setWarnings()
	h := q.w.Header()
	h.Set("Content-Type", q.out.mediaType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	q.w.WriteHeader(http.StatusOK)
	if q.r.Method != http.MethodHead {
		q.w.Write(body)
	}
	return true
}

func (q *request) cachedListJSON(items []*storage.Item, listMeta metav1.ListMeta) ([]byte, error) {
	c := q.s.codecs
	meta, err := json.Marshal(listMeta)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(64 + len(items)*1024)
	b.WriteString(`{"kind":`)
	b.WriteString(strconv.Quote(q.ep.res.ListKind))
	b.WriteString(`,"apiVersion":`)
	b.WriteString(strconv.Quote(q.ep.gvr.GroupVersion().String()))
	b.WriteString(`,"metadata":`)
	b.Write(meta)
	b.WriteString(`,"items":[`)
	for i, it := range items {
		data, err := it.Encoded("json-item", func(obj runtime.Object) ([]byte, error) {
			return jsonBytes(c, shallowCopyWithoutKind(obj))
		})
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(data)
	}
	b.WriteString("]}\n")
	return b.Bytes(), nil
}

func (q *request) cachedListProtobuf(items []*storage.Item, listMeta metav1.ListMeta) ([]byte, error) {
	lm, err := listMeta.Marshal()
	if err != nil {
		return nil, err
	}
	// A list message: field 1 the ListMeta, field 2 each item, all
	// length-delimited.
	var raw []byte
	raw = appendField(raw, 1, lm)
	for _, it := range items {
		data, err := it.Encoded("proto-item", func(obj runtime.Object) ([]byte, error) {
			m, ok := obj.(protoMarshaler)
			if !ok {
				return nil, errNotAcceptable()
			}
			return m.Marshal()
		})
		if err != nil {
			return nil, err
		}
		raw = appendField(raw, 2, data)
	}
	unk := runtime.Unknown{
		TypeMeta: runtime.TypeMeta{APIVersion: q.ep.gvr.GroupVersion().String(), Kind: q.ep.res.ListKind},
		Raw:      raw,
	}
	body, err := unk.Marshal()
	if err != nil {
		return nil, err
	}
	return append(append([]byte(nil), protobufMagic...), body...), nil
}

// appendField appends a length-delimited protobuf field.
func appendField(b []byte, field int, data []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field<<3|2))
	b = binary.AppendUvarint(b, uint64(len(data)))
	return append(b, data...)
}
