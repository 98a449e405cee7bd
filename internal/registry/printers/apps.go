package printers

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	appsv1beta1 "k8s.io/api/apps/v1beta1"
	corev1 "k8s.io/api/core/v1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The workload tables take their descriptions from the oldest API version
// of each kind, as upstream does; the wording differs slightly from
// apps/v1's.

func deploymentTable(c clock) *Table {
	status := extensionsv1beta1.DeploymentStatus{}.SwaggerDoc()
	return &Table{
		Columns: append([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Ready", "string", readyDescription),
			column("Up-to-date", "string", status["updatedReplicas"]),
			column("Available", "string", status["availableReplicas"]),
			ageColumn(),
		}, append(containerColumns(),
			wideColumn("Selector", "string", extensionsv1beta1.DeploymentSpec{}.SwaggerDoc()["selector"]))...),
		Row: cellsOf(func(d *appsv1.Deployment) []interface{} {
			selector := "<invalid>"
			if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
				selector = s.String()
			}
			names, images := containerCells(d.Spec.Template.Spec.Containers)
			return []interface{}{
				d.Name,
				fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, deref(d.Spec.Replicas)),
				int64(d.Status.UpdatedReplicas),
				int64(d.Status.AvailableReplicas),
				c.since(d.CreationTimestamp),
				names,
				images,
				selector,
			}
		}),
	}
}

func replicaSetTable(c clock) *Table {
	spec := extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()
	status := extensionsv1beta1.ReplicaSetStatus{}.SwaggerDoc()
	return &Table{
		Columns: append([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Desired", "integer", spec["replicas"]),
			column("Current", "integer", status["replicas"]),
			column("Ready", "integer", status["readyReplicas"]),
			ageColumn(),
		}, append(containerColumns(),
			wideColumn("Selector", "string", spec["selector"]))...),
		Row: cellsOf(func(rs *appsv1.ReplicaSet) []interface{} {
			names, images := containerCells(rs.Spec.Template.Spec.Containers)
			return []interface{}{
				rs.Name,
				int64(deref(rs.Spec.Replicas)),
				int64(rs.Status.Replicas),
				int64(rs.Status.ReadyReplicas),
				c.since(rs.CreationTimestamp),
				names,
				images,
				metav1.FormatLabelSelector(rs.Spec.Selector),
			}
		}),
	}
}

func statefulSetTable(c clock) *Table {
	return &Table{
		Columns: append([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Ready", "string", readyDescription),
			ageColumn(),
		}, containerColumns()...),
		Row: cellsOf(func(ss *appsv1.StatefulSet) []interface{} {
			names, images := containerCells(ss.Spec.Template.Spec.Containers)
			return []interface{}{
				ss.Name,
				fmt.Sprintf("%d/%d", ss.Status.ReadyReplicas, deref(ss.Spec.Replicas)),
				c.since(ss.CreationTimestamp),
				names,
				images,
			}
		}),
	}
}

func daemonSetTable(c clock) *Table {
	status := extensionsv1beta1.DaemonSetStatus{}.SwaggerDoc()
	return &Table{
		Columns: append([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Desired", "integer", status["desiredNumberScheduled"]),
			column("Current", "integer", status["currentNumberScheduled"]),
			column("Ready", "integer", status["numberReady"]),
			column("Up-to-date", "integer", status["updatedNumberScheduled"]),
			column("Available", "integer", status["numberAvailable"]),
			column("Node Selector", "string", corev1.PodSpec{}.SwaggerDoc()["nodeSelector"]),
			ageColumn(),
		}, append(containerColumns(),
			wideColumn("Selector", "string", extensionsv1beta1.DaemonSetSpec{}.SwaggerDoc()["selector"]))...),
		Row: cellsOf(func(ds *appsv1.DaemonSet) []interface{} {
			names, images := containerCells(ds.Spec.Template.Spec.Containers)
			return []interface{}{
				ds.Name,
				int64(ds.Status.DesiredNumberScheduled),
				int64(ds.Status.CurrentNumberScheduled),
				int64(ds.Status.NumberReady),
				int64(ds.Status.UpdatedNumberScheduled),
				int64(ds.Status.NumberAvailable),
				labels.FormatLabels(ds.Spec.Template.Spec.NodeSelector),
				c.since(ds.CreationTimestamp),
				names,
				images,
				metav1.FormatLabelSelector(ds.Spec.Selector),
			}
		}),
	}
}

func controllerRevisionTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Controller", "string", "Controller of the object"),
			column("Revision", "string", appsv1beta1.ControllerRevision{}.SwaggerDoc()["revision"]),
			ageColumn(),
		},
		Row: rowOf(func(cr *appsv1.ControllerRevision) ([]interface{}, error) {
			controller := none
			if ref := metav1.GetControllerOf(cr); ref != nil {
				gv, err := schema.ParseGroupVersion(ref.APIVersion)
				if err != nil {
					return nil, fmt.Errorf("controllerrevision %s: controller reference: %w", cr.Name, err)
				}
				controller = kindName(gv.WithKind(ref.Kind).GroupKind(), ref.Name)
			}
			return []interface{}{cr.Name, controller, cr.Revision, c.since(cr.CreationTimestamp)}, nil
		}),
	}
}

// kindName prints "kind.group/name" in lower case ("daemonset.apps/web"),
// or just name for an empty kind.
func kindName(gk schema.GroupKind, name string) string {
	if gk.Empty() {
		return name
	}
	return strings.ToLower(gk.String()) + "/" + name
}
