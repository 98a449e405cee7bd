package cgroups

import "fmt"

// EventKind says what happened to a watched cgroup.
type EventKind int

// Event kinds.
const (
	// EventPopulated: the cgroup (or a descendant) has processes again.
	EventPopulated EventKind = iota + 1
	// EventEmpty: the last process in the cgroup and its descendants left.
	EventEmpty
	// EventOOM: the cgroup hit its memory limit and the OOM killer ran.
	EventOOM
	// EventOOMKill: the OOM killer killed a process in the cgroup.
	EventOOMKill
)

func (k EventKind) String() string {
	switch k {
	case EventPopulated:
		return "populated"
	case EventEmpty:
		return "empty"
	case EventOOM:
		return "oom"
	case EventOOMKill:
		return "oom_kill"
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is one notification from Cgroup.Watch.
type Event struct {
	Kind EventKind
	// Count is, for EventOOM and EventOOMKill, the total number of such
	// events in the cgroup so far (as counted since creation on cgroup v2,
	// and since the watch began for v1 OOM events).
	Count uint64
}
