package storage

import (
	"bytes"
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

func (c *protobufCodec) Encode(obj runtime.Object) ([]byte, error) {
	gvks, _, err := c.scheme.ObjectKinds(obj)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	// The serializer writes the kind from the object's TypeMeta; set it
	// on a shallow level only for the duration of the call.
	kind := obj.GetObjectKind()
	saved := kind.GroupVersionKind()
	kind.SetGroupVersionKind(gvks[0])
	defer kind.SetGroupVersionKind(saved)
	var buf bytes.Buffer
	if err := c.serializer.Encode(obj, &buf); err != nil {
		return nil, fmt.Errorf("encode %s: %w", gvks[0].Kind, err)
	}
	return buf.Bytes(), nil
}

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
