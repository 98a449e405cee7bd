package printers

import (
	"strings"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// event is what the events table prints, common to core/v1 and
// events.k8s.io/v1 Events: upstream converts both to one internal type.
type event struct {
	name                string
	eventType           string
	reason              string
	message             string
	object              corev1.ObjectReference
	source              corev1.EventSource
	reportingController string
	reportingInstance   string
	first, last         metav1.Time
	eventTime           metav1.MicroTime
	count               int32
	series              *eventsv1.EventSeries
}

func eventColumns() []metav1.TableColumnDefinition {
	doc := corev1.Event{}.SwaggerDoc()
	name := nameColumn()
	name.Priority = 1
	return []metav1.TableColumnDefinition{
		column("Last Seen", "string", doc["lastTimestamp"]),
		column("Type", "string", doc["type"]),
		column("Reason", "string", doc["reason"]),
		column("Object", "string", doc["involvedObject"]),
		wideColumn("Subobject", "string", corev1.ObjectReference{}.SwaggerDoc()["fieldPath"]),
		wideColumn("Source", "string", doc["source"]),
		column("Message", "string", doc["message"]),
		wideColumn("First Seen", "string", doc["firstTimestamp"]),
		wideColumn("Count", "string", doc["count"]),
		name,
	}
}

func coreEventTable(c clock) *Table {
	return &Table{
		Columns: eventColumns(),
		Row: cellsOf(func(e *corev1.Event) []interface{} {
			ev := event{
				name:                e.Name,
				eventType:           e.Type,
				reason:              e.Reason,
				message:             e.Message,
				object:              e.InvolvedObject,
				source:              e.Source,
				reportingController: e.ReportingController,
				reportingInstance:   e.ReportingInstance,
				first:               e.FirstTimestamp,
				last:                e.LastTimestamp,
				eventTime:           e.EventTime,
				count:               e.Count,
			}
			if e.Series != nil {
				ev.series = &eventsv1.EventSeries{Count: e.Series.Count, LastObservedTime: e.Series.LastObservedTime}
			}
			return eventCells(c, &ev)
		}),
	}
}

func eventsV1Table(c clock) *Table {
	return &Table{
		Columns: eventColumns(),
		Row: cellsOf(func(e *eventsv1.Event) []interface{} {
			return eventCells(c, &event{
				name:                e.Name,
				eventType:           e.Type,
				reason:              e.Reason,
				message:             e.Note,
				object:              e.Regarding,
				source:              e.DeprecatedSource,
				reportingController: e.ReportingController,
				reportingInstance:   e.ReportingInstance,
				first:               e.DeprecatedFirstTimestamp,
				last:                e.DeprecatedLastTimestamp,
				eventTime:           e.EventTime,
				count:               e.DeprecatedCount,
				series:              e.Series,
			})
		}),
	}
}

// eventCells prints an event. LAST SEEN falls back from lastTimestamp to
// the series' last observation, firstTimestamp and eventTime; a singleton
// event of the new API has no count and counts as 1.
func eventCells(c clock, e *event) []interface{} {
	first := c.since(e.first)
	if e.first.IsZero() {
		first = c.sinceMicro(e.eventTime)
	}
	last := c.since(e.last)
	if e.last.IsZero() {
		last = first
	}
	count := e.count
	if e.series != nil {
		last = c.sinceMicro(e.series.LastObservedTime)
		count = e.series.Count
	} else if count == 0 {
		count = 1
	}

	target := strings.ToLower(e.object.Kind)
	if e.object.Name != "" {
		target += "/" + e.object.Name
	}

	source := firstNonEmpty(e.source.Component, e.reportingController)
	if instance := firstNonEmpty(e.source.Host, e.reportingInstance); instance != "" {
		source += ", " + instance
	}

	return []interface{}{
		last,
		e.eventType,
		e.reason,
		target,
		e.object.FieldPath,
		source,
		strings.TrimSpace(e.message),
		first,
		int64(count),
		e.name,
	}
}
