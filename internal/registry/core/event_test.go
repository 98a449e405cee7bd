package core_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/skiff-sh/skiff/internal/registry/core"
)

var (
	eventTime = metav1.NewMicroTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	oldTime   = metav1.NewTime(time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC))
)

// legacyEvent is what the old event recorders post to core/v1.
func legacyEvent() *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.17a9b2c3d4e5f6a7", Namespace: "default", UID: newUID()},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "pod-uid", APIVersion: "v1", FieldPath: "spec.containers{app}"},
		Reason:         "Pulled",
		Message:        "Successfully pulled image",
		Source:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
		FirstTimestamp: oldTime,
		LastTimestamp:  oldTime,
		Count:          1,
		Type:           corev1.EventTypeNormal,
	}
}

// newEvent is what client-go's events.k8s.io recorder posts.
func newEvent() *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: "web.17a9b2c3d4e5f6a8", Namespace: "default", UID: newUID()},
		EventTime:           eventTime,
		ReportingController: "skiff.dev/scheduler",
		ReportingInstance:   "scheduler-node-1",
		Action:              "Binding",
		Reason:              "Scheduled",
		Regarding:           corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "pod-uid", APIVersion: "v1"},
		Note:                "Successfully assigned default/web to node-1",
		Type:                corev1.EventTypeNormal,
	}
}

func TestCoreEventValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*corev1.Event)
		want   []fieldErr
	}{
		{"ValidLegacyEvent", func(*corev1.Event) {}, nil},
		{"TypeIsFree", func(e *corev1.Event) { e.Type = "Whatever" }, nil},
		{"ClusterScopedObjectInDefault", func(e *corev1.Event) { e.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1"} }, nil},
		{"RejectsNamespaceMismatch", func(e *corev1.Event) { e.InvolvedObject.Namespace = "other" }, []fieldErr{invalid("involvedObject.namespace")}},
		{"RejectsClusterScopedObjectElsewhere", func(e *corev1.Event) {
			e.Namespace = "team-a"
			e.InvolvedObject = corev1.ObjectReference{Kind: "Node", Name: "node-1"}
		}, []fieldErr{invalid("involvedObject.namespace")}},
		{"NewStyleNeedsReportingFields", func(e *corev1.Event) { e.EventTime = eventTime; e.Reason = "" },
			// Upstream also reports the empty controller as an invalid name, twice.
			[]fieldErr{required("reportingController"), invalid("reportingController"), invalid("reportingController"),
				required("reportingInstance"), required("action"), required("reason")}},
		{"NewStyleRejectsLongMessage", func(e *corev1.Event) {
			e.EventTime = eventTime
			e.ReportingController, e.ReportingInstance, e.Action = "kubelet", "node-1", "Pull"
			e.Message = strings.Repeat("x", 1025)
		}, []fieldErr{invalid("message")}},
		{"NewStyleRejectsBadController", func(e *corev1.Event) {
			e.EventTime = eventTime
			e.ReportingController, e.ReportingInstance, e.Action = "not a name", "node-1", "Pull"
		}, []fieldErr{invalid("reportingController")}},
		{"NewStyleRejectsLongReason", func(e *corev1.Event) {
			e.EventTime = eventTime
			e.ReportingController, e.ReportingInstance, e.Action = "kubelet", "node-1", "Pull"
			e.Reason = strings.Repeat("r", 129)
		}, []fieldErr{invalid("reason")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := legacyEvent()
			tc.mutate(e)
			r := lookup(t, "/events")
			wantErrs(t, create(t, r, e), tc.want...)
			// Updates get the same rules and nothing is immutable.
			changed := e.DeepCopy()
			changed.Count++
			changed.Message = "again"
			if len(tc.want) == 0 {
				wantErrs(t, update(t, r, changed, e))
			}
		})
	}
}

func TestEventsV1Validate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*eventsv1.Event)
		want   []fieldErr
	}{
		{"ValidEvent", func(*eventsv1.Event) {}, nil},
		{"ValidSeries", func(e *eventsv1.Event) { e.Series = &eventsv1.EventSeries{Count: 2, LastObservedTime: eventTime} }, nil},
		{"RequiresEventTime", func(e *eventsv1.Event) { e.EventTime = metav1.MicroTime{} }, []fieldErr{required("eventTime")}},
		{"RejectsUnknownType", func(e *eventsv1.Event) { e.Type = "Info" }, []fieldErr{invalid("type")}},
		{"RequiresReportingController", func(e *eventsv1.Event) { e.ReportingController = "" },
			[]fieldErr{required("reportingController"), invalid("reportingController"), invalid("reportingController")}},
		{"RequiresReportingInstance", func(e *eventsv1.Event) { e.ReportingInstance = "" }, []fieldErr{required("reportingInstance")}},
		{"RejectsLongReportingInstance", func(e *eventsv1.Event) { e.ReportingInstance = strings.Repeat("i", 129) }, []fieldErr{invalid("reportingInstance")}},
		{"RequiresAction", func(e *eventsv1.Event) { e.Action = "" }, []fieldErr{required("action")}},
		{"RejectsLongNote", func(e *eventsv1.Event) { e.Note = strings.Repeat("n", 1025) }, []fieldErr{invalid("message")}},
		{"AllowsRegardingInOtherNamespace", func(e *eventsv1.Event) { e.Regarding.Namespace = "other" }, nil},
		{"RejectsClusterScopedElsewhere", func(e *eventsv1.Event) {
			e.Namespace = "team-a"
			e.Regarding = corev1.ObjectReference{Kind: "Node", Name: "node-1"}
		}, []fieldErr{invalid("involvedObject.namespace")}},
		{"AllowsClusterScopedInKubeSystem", func(e *eventsv1.Event) {
			e.Namespace = "kube-system"
			e.Regarding = corev1.ObjectReference{Kind: "Node", Name: "node-1"}
		}, nil},
		{"RejectsDeprecatedFields", func(e *eventsv1.Event) {
			e.DeprecatedCount = 3
			e.DeprecatedFirstTimestamp = oldTime
			e.DeprecatedLastTimestamp = oldTime
			e.DeprecatedSource = corev1.EventSource{Component: "kubelet"}
		}, []fieldErr{invalid("count"), invalid("firstTimestamp"), invalid("lastTimestamp"), invalid("source")}},
		{"RejectsShortSeries", func(e *eventsv1.Event) { e.Series = &eventsv1.EventSeries{Count: 1} },
			[]fieldErr{invalid("series.count"), required("series.lastObservedTime")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEvent()
			tc.mutate(e)
			wantErrs(t, create(t, lookup(t, "events.k8s.io/events"), e), tc.want...)
		})
	}
}

func TestEventsV1Update(t *testing.T) {
	r := lookup(t, "events.k8s.io/events")
	old := newEvent()
	cases := []struct {
		name   string
		mutate func(*eventsv1.Event)
		want   []fieldErr
	}{
		{"AllowsSeriesUpdate", func(e *eventsv1.Event) { e.Series = &eventsv1.EventSeries{Count: 5, LastObservedTime: eventTime} }, nil},
		{"RejectsBadSeries", func(e *eventsv1.Event) { e.Series = &eventsv1.EventSeries{Count: 1, LastObservedTime: eventTime} },
			[]fieldErr{invalid("series.count")}},
		{"RejectsNoteChange", func(e *eventsv1.Event) { e.Note = "edited" }, []fieldErr{invalid("message")}},
		{"RejectsRegardingChange", func(e *eventsv1.Event) { e.Regarding.Name = "other" }, []fieldErr{invalid("involvedObject")}},
		{"RejectsReasonChange", func(e *eventsv1.Event) { e.Reason = "Other" }, []fieldErr{invalid("reason")}},
		{"RejectsActionChange", func(e *eventsv1.Event) { e.Action = "Other" }, []fieldErr{invalid("action")}},
		{"RejectsEventTimeChange", func(e *eventsv1.Event) { e.EventTime = metav1.NewMicroTime(eventTime.Add(time.Second)) },
			[]fieldErr{invalid("eventTime")}},
		{"RejectsReportingChange", func(e *eventsv1.Event) { e.ReportingController, e.ReportingInstance = "skiff.dev/other", "other" },
			[]fieldErr{invalid("reportingController"), invalid("reportingInstance")}},
		{"RejectsRelatedChange", func(e *eventsv1.Event) { e.Related = &corev1.ObjectReference{Kind: "Node", Name: "node-1"} },
			[]fieldErr{invalid("related")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := old.DeepCopy()
			tc.mutate(e)
			wantErrs(t, update(t, r, e, old), tc.want...)
		})
	}
}

func TestEventSelectableFields(t *testing.T) {
	t.Run("Core", func(t *testing.T) {
		got := lookup(t, "/events").SelectableFields(legacyEvent())
		want := fields.Set{
			"involvedObject.kind": "Pod", "involvedObject.namespace": "default", "involvedObject.name": "web",
			"involvedObject.uid": "pod-uid", "involvedObject.apiVersion": "v1", "involvedObject.resourceVersion": "",
			"involvedObject.fieldPath": "spec.containers{app}", "reason": "Pulled", "reportingComponent": "",
			"source": "kubelet", "type": "Normal",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("fields (-want +got):\n%s", diff)
		}
	})
	t.Run("SourceFallsBackToReportingController", func(t *testing.T) {
		got := lookup(t, "/events").SelectableFields(core.ToCoreEvent(newEvent()))
		if got["source"] != "skiff.dev/scheduler" || got["reportingComponent"] != "skiff.dev/scheduler" {
			t.Errorf("fields = %v", got)
		}
	})
	t.Run("EventsV1", func(t *testing.T) {
		got := lookup(t, "events.k8s.io/events").SelectableFields(newEvent())
		want := fields.Set{
			"regarding.kind": "Pod", "regarding.namespace": "default", "regarding.name": "web", "regarding.uid": "pod-uid",
			"regarding.apiVersion": "v1", "regarding.resourceVersion": "", "regarding.fieldPath": "",
			"reason": "Scheduled", "reportingController": "skiff.dev/scheduler", "source": "skiff.dev/scheduler", "type": "Normal",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("fields (-want +got):\n%s", diff)
		}
	})
}

func TestEventsV1FieldLabel(t *testing.T) {
	cases := map[string]string{
		"regarding.name":      "involvedObject.name",
		"reportingController": "reportingComponent",
		"metadata.name":       "metadata.name",
		"type":                "type",
	}
	for in, want := range cases {
		if got, ok := core.EventsV1FieldLabel(in); !ok || got != want {
			t.Errorf("EventsV1FieldLabel(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := core.EventsV1FieldLabel("note"); ok {
		t.Error("note is not selectable upstream")
	}
}

// fullCoreEvent sets every field of a core/v1 Event.
func fullCoreEvent() *corev1.Event {
	e := legacyEvent()
	e.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Event"}
	e.Labels = map[string]string{"a": "b"}
	e.EventTime = eventTime
	e.Series = &corev1.EventSeries{Count: 4, LastObservedTime: eventTime}
	e.Action = "Pull"
	e.Related = &corev1.ObjectReference{Kind: "Node", Name: "node-1"}
	e.ReportingController = "kubelet"
	e.ReportingInstance = "node-1"
	e.InvolvedObject.ResourceVersion = "42"
	return e
}

func TestEventConversion(t *testing.T) {
	t.Run("CoreToEventsV1Fields", func(t *testing.T) {
		in := fullCoreEvent()
		out := core.ToEventsV1(in)
		want := &eventsv1.Event{
			TypeMeta:                 metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "Event"},
			ObjectMeta:               in.ObjectMeta,
			EventTime:                eventTime,
			Series:                   &eventsv1.EventSeries{Count: 4, LastObservedTime: eventTime},
			ReportingController:      "kubelet",
			ReportingInstance:        "node-1",
			Action:                   "Pull",
			Reason:                   "Pulled",
			Regarding:                in.InvolvedObject,
			Related:                  &corev1.ObjectReference{Kind: "Node", Name: "node-1"},
			Note:                     "Successfully pulled image",
			Type:                     "Normal",
			DeprecatedSource:         corev1.EventSource{Component: "kubelet", Host: "node-1"},
			DeprecatedFirstTimestamp: oldTime,
			DeprecatedLastTimestamp:  oldTime,
			DeprecatedCount:          1,
		}
		if diff := cmp.Diff(want, out); diff != "" {
			t.Errorf("ToEventsV1 (-want +got):\n%s", diff)
		}
	})
	t.Run("RoundTripFromCore", func(t *testing.T) {
		for name, in := range map[string]*corev1.Event{"full": fullCoreEvent(), "legacy": legacyEvent(), "empty": {}} {
			if diff := cmp.Diff(in, core.ToCoreEvent(core.ToEventsV1(in))); diff != "" {
				t.Errorf("%s: core → events.k8s.io → core (-in +out):\n%s", name, diff)
			}
		}
	})
	t.Run("RoundTripFromEventsV1", func(t *testing.T) {
		full := core.ToEventsV1(fullCoreEvent())
		for name, in := range map[string]*eventsv1.Event{"full": full, "new": newEvent(), "empty": {}} {
			if diff := cmp.Diff(in, core.ToEventsV1(core.ToCoreEvent(in))); diff != "" {
				t.Errorf("%s: events.k8s.io → core → events.k8s.io (-in +out):\n%s", name, diff)
			}
		}
	})
	t.Run("SharesNothingWithInput", func(t *testing.T) {
		in := fullCoreEvent()
		out := core.ToEventsV1(in)
		out.Labels["a"] = "changed"
		out.Series.Count = 99
		out.Related.Name = "changed"
		if in.Labels["a"] != "b" || in.Series.Count != 4 || in.Related.Name != "node-1" {
			t.Error("the conversion aliases its input")
		}
	})
}
