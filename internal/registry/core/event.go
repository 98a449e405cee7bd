package core

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

// Upstream limits of new-style events.
const (
	reportingInstanceLengthLimit = 128
	actionLengthLimit            = 128
	reasonLengthLimit            = 128
	noteLengthLimit              = 1024
)

// Field selectors on core/v1 events.
var coreEventFieldLabels = []string{
	"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
	"involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
	"reason", "reportingComponent", "source", "type",
}

// eventsV1FieldLabels maps the field selectors of events.k8s.io/v1
// events to the core/v1 names, as upstream converts them.
var eventsV1FieldLabels = map[string]string{
	"reason":                    "reason",
	"regarding.kind":            "involvedObject.kind",
	"regarding.namespace":       "involvedObject.namespace",
	"regarding.name":            "involvedObject.name",
	"regarding.uid":             "involvedObject.uid",
	"regarding.apiVersion":      "involvedObject.apiVersion",
	"regarding.resourceVersion": "involvedObject.resourceVersion",
	"regarding.fieldPath":       "involvedObject.fieldPath",
	"reportingController":       "reportingComponent",
	"source":                    "source",
	"type":                      "type",
	"metadata.namespace":        "metadata.namespace",
	"metadata.name":             "metadata.name",
}

// EventsV1FieldLabel converts a field selector label of events.k8s.io/v1
// events ("regarding.name") to the core/v1 one ("involvedObject.name").
// It reports false for labels upstream does not support.
func EventsV1FieldLabel(label string) (string, bool) {
	l, ok := eventsV1FieldLabels[label]
	return l, ok
}

func (b *builder) events() *registry.Resource {
	return &registry.Resource{
		GroupVersion: corev1.SchemeGroupVersion,
		Resource:     "events",
		Kind:         "Event",
		ListKind:     "EventList",
		SingularName: "event",
		ShortNames:   []string{"ev"},
		Namespaced:   true,
		New:          func() runtime.Object { return &corev1.Event{} },
		NewList:      func() runtime.Object { return &corev1.EventList{} },
		// Core events are only checked as path segments: old clients name
		// them "<object>.<hex>", and upstream keeps accepting them.
		NameValidation:      nameIsPathSegment,
		AllowCreateOnUpdate: true,
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateLegacyEvent(obj.(*corev1.Event))
		},
		ValidateUpdate: func(_ context.Context, obj, _ runtime.Object) field.ErrorList {
			return validateLegacyEvent(obj.(*corev1.Event))
		},
		SelectableFields: func(obj runtime.Object) fields.Set { return eventFields(obj.(*corev1.Event)) },
		FieldLabels:      coreEventFieldLabels,
	}
}

// eventsV1 serves events.k8s.io/v1 events. They are stored apart from
// core/v1 events for now (upstream serves one storage under both APIs;
// ToEventsV1 and ToCoreEvent are the conversions for when skiff does
// too). Validation converts to core/v1 and applies upstream's strict
// rules for new-style events, so errors name core/v1 fields
// ("involvedObject", "message") as upstream's do.
func (b *builder) eventsV1() *registry.Resource {
	labels := make([]string, 0, len(eventsV1FieldLabels))
	for l := range eventsV1FieldLabels {
		if l != "metadata.namespace" && l != "metadata.name" {
			labels = append(labels, l)
		}
	}
	slices.Sort(labels)
	return &registry.Resource{
		GroupVersion:        eventsv1.SchemeGroupVersion,
		Resource:            "events",
		Kind:                "Event",
		ListKind:            "EventList",
		SingularName:        "event",
		ShortNames:          []string{"ev"},
		Namespaced:          true,
		New:                 func() runtime.Object { return &eventsv1.Event{} },
		NewList:             func() runtime.Object { return &eventsv1.EventList{} },
		AllowCreateOnUpdate: true,
		Validate: func(_ context.Context, obj runtime.Object) field.ErrorList {
			return validateEventCreate(ToCoreEvent(obj.(*eventsv1.Event)))
		},
		ValidateUpdate: func(_ context.Context, obj, old runtime.Object) field.ErrorList {
			return validateEventUpdate(ToCoreEvent(obj.(*eventsv1.Event)), ToCoreEvent(old.(*eventsv1.Event)))
		},
		SelectableFields: func(obj runtime.Object) fields.Set {
			core := eventFields(ToCoreEvent(obj.(*eventsv1.Event)))
			set := fields.Set{}
			for v1Label, coreLabel := range eventsV1FieldLabels {
				if v, ok := core[coreLabel]; ok {
					set[v1Label] = v
				}
			}
			return set
		},
		FieldLabels: labels,
	}
}

// eventFields is upstream's ToSelectableFields for core events: "source"
// falls back to the reporting controller of new-style events.
func eventFields(e *corev1.Event) fields.Set {
	source := e.Source.Component
	if source == "" {
		source = e.ReportingController
	}
	return fields.Set{
		"involvedObject.kind":            e.InvolvedObject.Kind,
		"involvedObject.namespace":       e.InvolvedObject.Namespace,
		"involvedObject.name":            e.InvolvedObject.Name,
		"involvedObject.uid":             string(e.InvolvedObject.UID),
		"involvedObject.apiVersion":      e.InvolvedObject.APIVersion,
		"involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath":       e.InvolvedObject.FieldPath,
		"reason":                         e.Reason,
		"reportingComponent":             e.ReportingController,
		"source":                         source,
		"type":                           e.Type,
	}
}

// validateLegacyEvent is the validation every event passes (core/v1
// clients get only this one): the involved object's namespace matches the
// event's, and events with an eventTime carry the new-style fields.
func validateLegacyEvent(e *corev1.Event) field.ErrorList {
	var allErrs field.ErrorList
	nsPath := field.NewPath("involvedObject", "namespace")
	mismatch := field.Invalid(nsPath, e.InvolvedObject.Namespace, "does not match event.namespace")
	if e.EventTime.IsZero() {
		if e.InvolvedObject.Namespace == "" {
			// Cluster-scoped objects: "default" for old clients.
			if e.Namespace != metav1.NamespaceNone && e.Namespace != metav1.NamespaceDefault {
				allErrs = append(allErrs, mismatch)
			}
		} else if e.Namespace != e.InvolvedObject.Namespace {
			allErrs = append(allErrs, mismatch)
		}
	} else {
		if e.InvolvedObject.Namespace == "" && e.Namespace != metav1.NamespaceDefault && e.Namespace != metav1.NamespaceSystem {
			allErrs = append(allErrs, mismatch)
		}
		if e.ReportingController == "" {
			allErrs = append(allErrs, field.Required(field.NewPath("reportingController"), ""))
		}
		allErrs = append(allErrs, invalidMsgs(field.NewPath("reportingController"), e.ReportingController, validation.IsQualifiedName(e.ReportingController))...)
		allErrs = append(allErrs, requiredWithLimit(e.ReportingInstance, reportingInstanceLengthLimit, field.NewPath("reportingInstance"))...)
		allErrs = append(allErrs, requiredWithLimit(e.Action, actionLengthLimit, field.NewPath("action"))...)
		allErrs = append(allErrs, requiredWithLimit(e.Reason, reasonLengthLimit, field.NewPath("reason"))...)
		if len(e.Message) > noteLengthLimit {
			allErrs = append(allErrs, field.Invalid(field.NewPath("message"), "", fmt.Sprintf("can have at most %v characters", noteLengthLimit)))
		}
	}
	allErrs = append(allErrs, invalidMsgs(field.NewPath("namespace"), e.Namespace, validation.IsDNS1123Subdomain(e.Namespace))...)
	return allErrs
}

func requiredWithLimit(v string, limit int, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if v == "" {
		errs = append(errs, field.Required(p, ""))
	}
	if len(v) > limit {
		errs = append(errs, field.Invalid(p, "", fmt.Sprintf("can have at most %v characters", limit)))
	}
	return errs
}

var eventTypes = []string{corev1.EventTypeNormal, corev1.EventTypeWarning}

// validateEventCreate is upstream's strict validation of events created
// through events.k8s.io/v1, on the converted core/v1 event.
func validateEventCreate(e *corev1.Event) field.ErrorList {
	allErrs := validateLegacyEvent(e)
	allErrs = append(allErrs, validateEventSeries(e)...)
	if e.EventTime.IsZero() {
		allErrs = append(allErrs, field.Required(field.NewPath("eventTime"), ""))
	}
	if e.Type != corev1.EventTypeNormal && e.Type != corev1.EventTypeWarning {
		allErrs = append(allErrs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", e.Type)))
	}
	if !e.FirstTimestamp.IsZero() {
		allErrs = append(allErrs, field.Invalid(field.NewPath("firstTimestamp"), "", "needs to be unset"))
	}
	if !e.LastTimestamp.IsZero() {
		allErrs = append(allErrs, field.Invalid(field.NewPath("lastTimestamp"), "", "needs to be unset"))
	}
	if e.Count != 0 {
		allErrs = append(allErrs, field.Invalid(field.NewPath("count"), "", "needs to be unset"))
	}
	if e.Source.Component != "" || e.Source.Host != "" {
		allErrs = append(allErrs, field.Invalid(field.NewPath("source"), "", "needs to be unset"))
	}
	return allErrs
}

// validateEventUpdate: only the series (and metadata) of a new-style
// event may change.
func validateEventUpdate(e, old *corev1.Event) field.ErrorList {
	allErrs := validateLegacyEvent(e)
	if !reflect.DeepEqual(e.Series, old.Series) {
		allErrs = append(allErrs, validateEventSeries(e)...)
	}
	for _, f := range []struct {
		name     string
		new, old any
	}{
		{"involvedObject", e.InvolvedObject, old.InvolvedObject},
		{"reason", e.Reason, old.Reason},
		{"message", e.Message, old.Message},
		{"source", e.Source, old.Source},
		{"firstTimestamp", e.FirstTimestamp, old.FirstTimestamp},
		{"lastTimestamp", e.LastTimestamp, old.LastTimestamp},
		{"count", e.Count, old.Count},
		{"type", e.Type, old.Type},
		{"eventTime", e.EventTime, old.EventTime},
		{"action", e.Action, old.Action},
		{"related", e.Related, old.Related},
		{"reportingController", e.ReportingController, old.ReportingController},
		{"reportingInstance", e.ReportingInstance, old.ReportingInstance},
	} {
		allErrs = append(allErrs, validateImmutable(f.new, f.old, field.NewPath(f.name))...)
	}
	return allErrs
}

func validateEventSeries(e *corev1.Event) field.ErrorList {
	if e.Series == nil {
		return nil
	}
	var allErrs field.ErrorList
	if e.Series.Count < 2 {
		allErrs = append(allErrs, field.Invalid(field.NewPath("series.count"), "", "should be at least 2"))
	}
	if e.Series.LastObservedTime.IsZero() {
		allErrs = append(allErrs, field.Required(field.NewPath("series.lastObservedTime"), ""))
	}
	return allErrs
}

// ToEventsV1 converts a core/v1 Event to events.k8s.io/v1 as upstream
// does: involvedObject becomes regarding, message note, source
// deprecatedSource, firstTimestamp/lastTimestamp/count the deprecated
// fields; reason, type, eventTime, series, action, related,
// reportingController (core's "reportingComponent") and
// reportingInstance carry over. It returns a new object sharing nothing
// with in; TypeMeta is set when in has one. ToCoreEvent(ToEventsV1(e))
// equals e.
func ToEventsV1(in *corev1.Event) *eventsv1.Event {
	in = in.DeepCopy()
	out := &eventsv1.Event{
		ObjectMeta:               in.ObjectMeta,
		EventTime:                in.EventTime,
		ReportingController:      in.ReportingController,
		ReportingInstance:        in.ReportingInstance,
		Action:                   in.Action,
		Reason:                   in.Reason,
		Regarding:                in.InvolvedObject,
		Related:                  in.Related,
		Note:                     in.Message,
		Type:                     in.Type,
		DeprecatedSource:         in.Source,
		DeprecatedFirstTimestamp: in.FirstTimestamp,
		DeprecatedLastTimestamp:  in.LastTimestamp,
		DeprecatedCount:          in.Count,
	}
	if in.Series != nil {
		out.Series = &eventsv1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
	if in.Kind != "" || in.APIVersion != "" {
		out.TypeMeta = metav1.TypeMeta{APIVersion: eventsv1.SchemeGroupVersion.String(), Kind: "Event"}
	}
	return out
}

// ToCoreEvent converts an events.k8s.io/v1 Event to core/v1, the inverse
// of ToEventsV1. ToEventsV1(ToCoreEvent(e)) equals e.
func ToCoreEvent(in *eventsv1.Event) *corev1.Event {
	in = in.DeepCopy()
	out := &corev1.Event{
		ObjectMeta:          in.ObjectMeta,
		InvolvedObject:      in.Regarding,
		Reason:              in.Reason,
		Message:             in.Note,
		Source:              in.DeprecatedSource,
		FirstTimestamp:      in.DeprecatedFirstTimestamp,
		LastTimestamp:       in.DeprecatedLastTimestamp,
		Count:               in.DeprecatedCount,
		Type:                in.Type,
		EventTime:           in.EventTime,
		Action:              in.Action,
		Related:             in.Related,
		ReportingController: in.ReportingController,
		ReportingInstance:   in.ReportingInstance,
	}
	if in.Series != nil {
		out.Series = &corev1.EventSeries{Count: in.Series.Count, LastObservedTime: in.Series.LastObservedTime}
	}
	if in.Kind != "" || in.APIVersion != "" {
		out.TypeMeta = metav1.TypeMeta{APIVersion: corev1.SchemeGroupVersion.String(), Kind: "Event"}
	}
	return out
}
