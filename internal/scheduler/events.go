package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
)

// scheduledEvent writes the Normal "Scheduled" event of a bound pod
// itself, on the binding goroutine, rather than through the broadcaster:
// one per bound pod at hundreds a second would overflow the broadcaster's
// queue and be dropped, and writing it here makes a binding's cost, for
// back-pressure, what it really is. The event is the one the recorder
// would make.
func (in *instance) scheduledEvent(ctx context.Context, pod *v1.Pod, node string) {
	if in.eventsClient == nil {
		in.recorder.Eventf(pod, v1.EventTypeNormal, "Scheduled", "Successfully assigned %v/%v to %v", pod.Namespace, pod.Name, node)
		return
	}
	ref, err := reference.GetReference(scheme.Scheme, pod)
	if err != nil {
		in.log.Error("reference pod for an event", "pod", key(pod), "err", err)
		return
	}
	now := metav1.NewTime(in.cfg.Clock.Now())
	ev := &v1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: fmt.Sprintf("%v.%x", pod.Name, now.UnixNano()), Namespace: pod.Namespace},
		InvolvedObject:      *ref,
		Reason:              "Scheduled",
		Message:             fmt.Sprintf("Successfully assigned %v/%v to %v", pod.Namespace, pod.Name, node),
		Source:              v1.EventSource{Component: in.cfg.SchedulerName, Host: in.cfg.LeaderElection.Identity},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		Type:                v1.EventTypeNormal,
		ReportingController: in.cfg.SchedulerName,
		ReportingInstance:   in.cfg.LeaderElection.Identity,
	}
	if _, err := in.eventsClient.CoreV1().Events(pod.Namespace).Create(ctx, ev, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
		in.log.Debug("write Scheduled event", "pod", key(pod), "err", err)
	}
}

// asyncSink writes new events on up to cap(sem) goroutines. client-go's
// broadcaster hands events to its sink one at a time, and one create per
// round trip falls far behind a scheduler that binds hundreds of pods a
// second: its queue fills and it drops events. When every writer is busy
// Create blocks, the broadcaster's queue fills, and events are dropped
// there, never the scheduling loop slowed.
//
// Create returns at once, so the broadcaster cannot retry a failed write;
// failures are logged. Updates and patches (repeated events) stay
// synchronous.
type asyncSink struct {
	inner record.EventSink
	sem   chan struct{}
	wg    sync.WaitGroup
	log   *slog.Logger
}

var _ record.EventSink = (*asyncSink)(nil)

func newAsyncSink(inner record.EventSink, writers int, log *slog.Logger) *asyncSink {
	return &asyncSink{inner: inner, sem: make(chan struct{}, writers), log: log}
}

func (s *asyncSink) Create(e *v1.Event) (*v1.Event, error) {
	s.sem <- struct{}{}
	s.wg.Add(1)
	ev := e.DeepCopy()
	go func() {
		defer s.wg.Done()
		defer func() { <-s.sem }()
		if _, err := s.inner.Create(ev); err != nil {
			s.log.Debug("write event", "object", ev.InvolvedObject.Namespace+"/"+ev.InvolvedObject.Name, "reason", ev.Reason, "err", err)
		}
	}()
	return e, nil
}

func (s *asyncSink) Update(e *v1.Event) (*v1.Event, error) { return s.inner.Update(e) }

func (s *asyncSink) Patch(e *v1.Event, data []byte) (*v1.Event, error) {
	return s.inner.Patch(e, data)
}

// wait returns when every write started has finished.
func (s *asyncSink) wait() { s.wg.Wait() }
