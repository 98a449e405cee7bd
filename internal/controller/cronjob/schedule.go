package cronjob

import (
	"errors"
	"time"

	batchv1 "k8s.io/api/batch/v1"
)

// schedule is a parsed cron schedule: the times it fires.
type schedule interface {
	// Next returns the first time after t the schedule fires, in t's
	// location (which is how the schedule's zone is chosen).
	Next(t time.Time) time.Time
}

const (
	// tooManyMissed is the number of missed starts past which the
	// controller warns (TooManyMissedTimes), as upstream.
	tooManyMissed = 100
	// walkLimit bounds the starts walked one by one to find the most
	// recent one; past it, the walk jumps ahead by the schedule's first
	// interval.
	walkLimit = 1000
	// nextScheduleDelta is added to the wait for the next start so that
	// the sync lands just after it.
	nextScheduleDelta = 100 * time.Millisecond
)

// errScheduleTooDense is returned for schedules whose starts are less than
// a second apart (or that never fire twice, such as "0 0 31 2 *").
var errScheduleTooDense = errors.New("time difference between two schedules is less than 1 second")

// earliest is the time after which a CronJob's starts count: its last
// start, else its creation; with includeDeadline, no earlier than
// startingDeadlineSeconds before now.
func earliest(cj *batchv1.CronJob, now time.Time, includeDeadline bool) time.Time {
	t := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		t = cj.Status.LastScheduleTime.Time
	}
	if includeDeadline && cj.Spec.StartingDeadlineSeconds != nil {
		if d := now.Add(-time.Duration(*cj.Spec.StartingDeadlineSeconds) * time.Second); d.After(t) {
			t = d
		}
	}
	return t
}

// mostRecent returns the latest start of s in (from, now] and how many
// starts that interval holds (estimated past walkLimit), or nil when there
// is none. All times are taken in loc.
func mostRecent(s schedule, from, now time.Time, loc *time.Location) (*time.Time, int64, error) {
	from, now = from.In(loc), now.In(loc)
	t1 := s.Next(from)
	if t1.After(now) {
		return nil, 0, nil
	}
	t2 := s.Next(t1)
	if t2.After(now) {
		return &t1, 1, nil
	}
	interval := t2.Sub(t1).Round(time.Second)
	if interval < time.Second {
		return nil, 0, errScheduleTooDense
	}
	last, n := t2, int64(2)
	for t := s.Next(t2); !t.After(now); t = s.Next(t) {
		last = t
		n++
		if n < walkLimit {
			continue
		}
		// Far behind (a controller down for long, a clock jump): count
		// the rest by the first interval, exact for regular schedules, and
		// walk only the last few starts.
		skip := int64(now.Sub(t)/interval) - 2
		if skip > 0 {
			n += skip
			jumped := t.Add(time.Duration(skip) * interval)
			if s.Next(jumped).After(now) {
				// Irregular schedule overshot: keep the walk's answer.
				break
			}
			t = jumped
			last = jumped
		}
		for u := s.Next(t); !u.After(now); u = s.Next(u) {
			last = u
			n++
		}
		break
	}
	return &last, n, nil
}

// nextStart returns how long until just after the start following the
// most recent one (or following earliest, when none is due).
func nextStart(cj *batchv1.CronJob, s schedule, now time.Time, loc *time.Location) (time.Duration, bool) {
	from := earliest(cj, now, false)
	recent, _, err := mostRecent(s, from, now, loc)
	if err != nil {
		return 0, false
	}
	if recent == nil {
		recent = &from
	}
	next := s.Next(recent.In(loc))
	return next.Add(nextScheduleDelta).Sub(now), true
}
