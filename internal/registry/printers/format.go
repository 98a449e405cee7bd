package printers

import (
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Placeholders upstream prints for missing values.
const (
	none    = "<none>"
	unset   = "<unset>"
	unknown = "<unknown>"
	pending = "<pending>"
)

// Column descriptions upstream writes out rather than taking from the API
// documentation.
const (
	containersDescription = "Names of each container in the template."
	imagesDescription     = "Images referenced by each container in the template."
	readyDescription      = "Number of the pod with ready state"
)

// column is a column every table shows.
func column(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description}
}

// wideColumn is a column shown only with -o wide.
func wideColumn(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Priority: 1, Description: description}
}

// nameColumn is the NAME column that begins (almost) every table.
func nameColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]}
}

// ageColumn is the AGE column.
func ageColumn() metav1.TableColumnDefinition {
	return column("Age", "string", metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"])
}

// containerColumns are the wide CONTAINERS and IMAGES columns of the
// workload tables.
func containerColumns() []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		wideColumn("Containers", "string", containersDescription),
		wideColumn("Images", "string", imagesDescription),
	}
}

// containerCells lays out the names and the images of containers, each
// comma-separated.
func containerCells(containers []corev1.Container) (names, images string) {
	var n, i strings.Builder
	for k := range containers {
		if k > 0 {
			n.WriteByte(',')
			i.WriteByte(',')
		}
		n.WriteString(containers[k].Name)
		i.WriteString(containers[k].Image)
	}
	return n.String(), i.String()
}

// formatBoolPtr prints "True", "False", or "<unset>" for nil.
func formatBoolPtr(b *bool) string {
	switch {
	case b == nil:
		return unset
	case *b:
		return "True"
	default:
		return "False"
	}
}

// deref returns *p, or zero for nil.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// joinWithMore joins the first of count items listed (at most limit of
// them) and tells how many more there are: "a,b,c + 2 more...". An empty
// list prints as "<unset>".
func joinWithMore(list []string, count, limit int) string {
	s := strings.Join(list, ",")
	if count > limit {
		return fmt.Sprintf("%s + %d more...", s, count-limit)
	}
	if s == "" {
		return unset
	}
	return s
}

// metaOf returns obj's object metadata, or an error wrapping
// ErrUnexpectedType when obj has none.
func metaOf(obj runtime.Object) (metav1.Object, error) {
	if isNil(obj) {
		return nil, fmt.Errorf("%w: nil %T", ErrUnexpectedType, obj)
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, fmt.Errorf("%w: %T has no object metadata", ErrUnexpectedType, obj)
	}
	return m, nil
}

// isNil reports whether obj is nil or a nil pointer.
func isNil(obj runtime.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
