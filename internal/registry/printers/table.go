// Package printers gives the table columns "kubectl get" shows for each
// resource, the way upstream's server-side printers do.
package printers

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Table describes the columns "kubectl get" shows for a resource. Columns
// begin with the Name column; columns with Priority 1 show only with
// -o wide.
type Table struct {
	Columns []metav1.TableColumnDefinition
	// Row returns one cell per column for obj.
	Row func(obj runtime.Object) ([]interface{}, error)
}
