package printers

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ErrUnexpectedType is returned (wrapped) by a Table's Row when it is given
// an object of another kind than the one the table was built for.
var ErrUnexpectedType = errors.New("unexpected object type")

// Table describes the columns "kubectl get" shows for a resource. Columns
// begin with the Name column; columns with Priority 1 show only with
// -o wide.
//
// The one exception to "Name first" is upstream's own: both kinds of events
// begin with LAST SEEN and show their name only with -o wide.
//
// A Table holds no state: Row and Conditions may be called concurrently.
type Table struct {
	Columns []metav1.TableColumnDefinition
	// Row returns one cell per column for obj, wide columns included (the
	// server always sends them; kubectl hides those of Priority 1 unless
	// asked for -o wide). Cells are string, int64 or bool, so they encode
	// to JSON, YAML and protobuf alike. Row returns an error wrapping
	// ErrUnexpectedType when obj is not of the table's kind, and an error
	// when obj cannot be printed (a controller reference with a malformed
	// apiVersion, as upstream).
	Row func(obj runtime.Object) ([]interface{}, error)
	// Conditions, when not nil, returns the row conditions of obj (a new
	// slice, or nil). Only pods have any: a Completed condition once they
	// succeeded or failed, which kubectl may use to dim or hide the row.
	Conditions func(obj runtime.Object) []metav1.TableRowCondition
}

// Rows returns the table rows for obj, which is either one object of the
// table's kind or a list of them (anything meta.IsListType accepts). Each
// row carries the item itself in Object, as upstream does before the
// includeObject option is applied; the caller replaces or drops it.
func (t *Table) Rows(obj runtime.Object) ([]metav1.TableRow, error) {
	if isNil(obj) {
		return nil, fmt.Errorf("%w: nil %T", ErrUnexpectedType, obj)
	}
	if !meta.IsListType(obj) {
		row, err := t.row(obj)
		if err != nil {
			return nil, err
		}
		return []metav1.TableRow{row}, nil
	}
	var rows []metav1.TableRow
	if n := meta.LenList(obj); n > 0 {
		rows = make([]metav1.TableRow, 0, n)
	}
	err := meta.EachListItem(obj, func(item runtime.Object) error {
		row, err := t.row(item)
		if err != nil {
			return err
		}
		rows = append(rows, row)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// Convert builds the meta.k8s.io/v1 Table for obj (one object or a list)
// the way upstream's table convertor does: column definitions unless
// noHeaders, one row per item, and the list's resourceVersion, continue
// token and remaining item count. The caller sets TypeMeta and applies
// includeObject. The result shares t.Columns and the objects in obj; the
// caller must not modify them.
func (t *Table) Convert(obj runtime.Object, noHeaders bool) (*metav1.Table, error) {
	rows, err := t.Rows(obj)
	if err != nil {
		return nil, err
	}
	table := &metav1.Table{Rows: rows}
	if !noHeaders {
		table.ColumnDefinitions = t.Columns
	}
	if l, err := meta.ListAccessor(obj); err == nil {
		table.ResourceVersion = l.GetResourceVersion()
		table.Continue = l.GetContinue()
		table.RemainingItemCount = l.GetRemainingItemCount()
	} else if c, err := meta.CommonAccessor(obj); err == nil {
		table.ResourceVersion = c.GetResourceVersion()
	}
	return table, nil
}

func (t *Table) row(obj runtime.Object) (metav1.TableRow, error) {
	cells, err := t.Row(obj)
	if err != nil {
		return metav1.TableRow{}, err
	}
	if len(cells) != len(t.Columns) {
		return metav1.TableRow{}, fmt.Errorf("table row for %T: %d cells for %d columns", obj, len(cells), len(t.Columns))
	}
	row := metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: obj}}
	if t.Conditions != nil {
		row.Conditions = t.Conditions(obj)
	}
	return row, nil
}

// rowOf adapts a printer of one Go type to Table.Row: it rejects objects of
// any other type, and nil pointers, with ErrUnexpectedType.
func rowOf[T any, PT interface {
	*T
	runtime.Object
}](print func(PT) ([]interface{}, error)) func(runtime.Object) ([]interface{}, error) {
	return func(obj runtime.Object) ([]interface{}, error) {
		o, ok := obj.(PT)
		if !ok {
			return nil, fmt.Errorf("%w: %T, want %T", ErrUnexpectedType, obj, PT(nil))
		}
		if o == nil {
			return nil, fmt.Errorf("%w: nil %T", ErrUnexpectedType, obj)
		}
		return print(o)
	}
}

// cellsOf is rowOf for printers that cannot fail.
func cellsOf[T any, PT interface {
	*T
	runtime.Object
}](print func(PT) []interface{}) func(runtime.Object) ([]interface{}, error) {
	return rowOf(func(o PT) ([]interface{}, error) { return print(o), nil })
}
