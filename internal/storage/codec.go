package storage

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
)

// Codec turns objects into the bytes kept in etcd and back. It is safe for
// concurrent use.
type Codec interface {
	Encode(obj runtime.Object) ([]byte, error)
	Decode(data []byte) (runtime.Object, error)
}

// NewProtobufCodec stores objects the way Kubernetes does: the protobuf
// encoding of each object behind the "k8s\x00" magic prefix, with its
// apiVersion and kind. Every type must be registered in scheme.
func NewProtobufCodec(scheme *runtime.Scheme) Codec {
	return &protobufCodec{scheme: scheme, serializer: protobuf.NewSerializer(scheme, scheme)}
}

type protobufCodec struct {
	scheme     *runtime.Scheme
	serializer *protobuf.Serializer
}

// Encode writes what the protobuf serializer writes — the magic prefix and
// a runtime.Unknown holding the kind and the object's own encoding — without
// touching obj: objects are shared (the watch cache hands the same one to
// many readers), so not even their apiVersion and kind may be set here.
func (c *protobufCodec) Encode(obj runtime.Object) ([]byte, error) {
	gvks, _, err := c.scheme.ObjectKinds(obj)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	m, ok := obj.(interface{ Marshal() ([]byte, error) })
	if !ok {
		return nil, fmt.Errorf("encode %s: not a protobuf type", gvks[0].Kind)
	}
	raw, err := m.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", gvks[0].Kind, err)
	}
	unk := runtime.Unknown{
		TypeMeta: runtime.TypeMeta{APIVersion: gvks[0].GroupVersion().String(), Kind: gvks[0].Kind},
		Raw:      raw,
	}
	data, err := unk.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", gvks[0].Kind, err)
	}
	return append(append(make([]byte, 0, len(protobufMagic)+len(data)), protobufMagic...), data...), nil
}

// protobufMagic begins every protobuf-encoded Kubernetes object.
var protobufMagic = []byte{0x6b, 0x38, 0x73, 0x00}

func (c *protobufCodec) Decode(data []byte) (runtime.Object, error) {
	obj, _, err := c.serializer.Decode(data, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("decode stored object: %w", err)
	}
	return obj, nil
}

// setResourceVersion writes rev into obj's metadata.
func setResourceVersion(obj runtime.Object, rev int64) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	m.SetResourceVersion(formatRV(rev))
	return nil
}

func accessor(obj runtime.Object) (metav1.Object, error) { return meta.Accessor(obj) }
