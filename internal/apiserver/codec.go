package apiserver

import (
	"mime"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
)

// Media types skiff reads and writes.
const (
	mediaJSON     = "application/json"
	mediaYAML     = "application/yaml"
	mediaProtobuf = "application/vnd.kubernetes.protobuf"
)

// codecs holds the serializers for every media type. Objects are the
// external k8s.io/api types throughout: skiff has no internal versions, so
// there is no conversion, only encoding.
type codecs struct {
	scheme     *runtime.Scheme
	json       *json.Serializer
	jsonStrict *json.Serializer
	jsonPretty *json.Serializer
	yaml       *json.Serializer
	yamlStrict *json.Serializer
	proto      *protobuf.Serializer
	protoRaw   *protobuf.RawSerializer
}

func newCodecs(scheme *runtime.Scheme) *codecs {
	mf := json.DefaultMetaFactory
	return &codecs{
		scheme:     scheme,
		json:       json.NewSerializerWithOptions(mf, scheme, scheme, json.SerializerOptions{}),
		jsonStrict: json.NewSerializerWithOptions(mf, scheme, scheme, json.SerializerOptions{Strict: true}),
		jsonPretty: json.NewSerializerWithOptions(mf, scheme, scheme, json.SerializerOptions{Pretty: true}),
		yaml:       json.NewSerializerWithOptions(mf, scheme, scheme, json.SerializerOptions{Yaml: true}),
		yamlStrict: json.NewSerializerWithOptions(mf, scheme, scheme, json.SerializerOptions{Yaml: true, Strict: true}),
		proto:      protobuf.NewSerializer(scheme, scheme),
		protoRaw:   protobuf.NewRawSerializer(scheme, scheme),
	}
}

var acceptedMediaTypes = []string{mediaJSON, mediaYAML, mediaProtobuf}

// bodyDecoder picks the decoder for a request body by its Content-Type.
// strict asks for a decoder that reports unknown and duplicate fields (JSON
// and YAML only).
func (c *codecs) bodyDecoder(contentType string, strict bool) (runtime.Decoder, string, error) {
	mt := mediaTypeOf(contentType)
	switch mt {
	case "", mediaJSON, "application/merge-patch+json", "application/json-patch+json", "application/strategic-merge-patch+json":
		if strict {
			return c.jsonStrict, mediaJSON, nil
		}
		return c.json, mediaJSON, nil
	case mediaYAML, "application/apply-patch+yaml":
		if strict {
			return c.yamlStrict, mediaYAML, nil
		}
		return c.yaml, mediaYAML, nil
	case mediaProtobuf:
		return c.proto, mediaProtobuf, nil
	}
	return nil, "", errUnsupportedMediaType(mt)
}

func mediaTypeOf(contentType string) string {
	if contentType == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return contentType
	}
	return mt
}

// outputKind says what a response carries instead of the object itself.
type outputKind int

const (
	asObject outputKind = iota
	asTable
	asPartialMetadata     // PartialObjectMetadata / PartialObjectMetadataList
	asPartialMetadataList // only the list form was asked for
)

// output is a negotiated response format.
type output struct {
	mediaType string
	encoder   runtime.Encoder
	as        outputKind
	// tableVersion is "v1" or "v1beta1" for Table and metadata outputs.
	tableVersion string
}

func (o output) contentType() string { return o.mediaType }

// negotiate chooses the response format from the Accept header, the way
// upstream does: the client's preferences in order of quality, first match
// wins. pretty asks for indented JSON.
func (c *codecs) negotiate(r *http.Request) (output, error) {
	pretty := r.URL.Query().Get("pretty")
	isPretty := pretty == "true" || pretty == "1"
	accept := r.Header.Get("Accept")
	if accept == "" {
		accept = "*/*"
	}
	for _, clause := range parseAccept(accept) {
		var out output
		switch clause.mediaType {
		case mediaJSON, "application/*", "*/*":
			out = output{mediaType: mediaJSON, encoder: c.json}
			if isPretty {
				out.encoder = c.jsonPretty
			}
		case mediaYAML:
			out = output{mediaType: mediaYAML, encoder: c.yaml}
		case mediaProtobuf:
			out = output{mediaType: mediaProtobuf, encoder: c.proto}
		default:
			continue
		}
		if as := clause.params["as"]; as != "" {
			g, v := clause.params["g"], clause.params["v"]
			if g != "meta.k8s.io" || (v != "v1" && v != "v1beta1") {
				continue
			}
			switch as {
			case "Table":
				out.as = asTable
			case "PartialObjectMetadata":
				out.as = asPartialMetadata
			case "PartialObjectMetadataList":
				out.as = asPartialMetadataList
			default:
				continue
			}
			out.tableVersion = v
		}
		return out, nil
	}
	return output{}, errNotAcceptable()
}

type acceptClause struct {
	mediaType string
	params    map[string]string
	q         float64
}

// parseAccept splits an Accept header into clauses sorted by quality,
// keeping the client's order among equals.
func parseAccept(header string) []acceptClause {
	var out []acceptClause
	for _, part := range strings.Split(header, ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		if mt == "" {
			continue
		}
		cl := acceptClause{mediaType: mt, params: map[string]string{}, q: 1}
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
			k = strings.TrimSpace(k)
			v = strings.Trim(strings.TrimSpace(v), `"`)
			if k == "q" {
				if q, err := strconv.ParseFloat(v, 64); err == nil {
					cl.q = q
				}
				continue
			}
			cl.params[k] = v
		}
		if cl.q > 0 {
			out = append(out, cl)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].q > out[j].q })
	return out
}

// streamFormat is how a watch is framed for a media type.
type streamFormat struct {
	mediaType string
	// eventEncoder encodes the metav1.WatchEvent frames; objectEncoder
	// the objects embedded in them.
	eventEncoder  runtime.Encoder
	objectEncoder runtime.Encoder
	newFramer     func(w interface{ Write([]byte) (int, error) }) *streaming.Encoder
}

// setKind sets obj's apiVersion and kind from the scheme. obj must be the
// caller's own: shared objects (from the cache) already carry theirs.
func (c *codecs) setKind(obj runtime.Object) {
	if !obj.GetObjectKind().GroupVersionKind().Empty() {
		return
	}
	if gvks, _, err := c.scheme.ObjectKinds(obj); err == nil {
		obj.GetObjectKind().SetGroupVersionKind(gvks[0])
	}
}

// shallowCopyWithoutKind returns a shallow copy of obj with empty TypeMeta:
// list items are encoded without apiVersion and kind, as upstream does.
func shallowCopyWithoutKind(obj runtime.Object) runtime.Object {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return obj
	}
	cp := reflect.New(v.Elem().Type())
	cp.Elem().Set(v.Elem())
	out := cp.Interface().(runtime.Object)
	out.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	return out
}
