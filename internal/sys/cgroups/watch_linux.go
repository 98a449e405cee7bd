package cgroups

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Watch reports what happens to the cgroup until ctx ends or the cgroup is
// removed; then it closes the channel, after every goroutine and file it
// started has gone. The first event is the current state, EventPopulated or
// EventEmpty; then come changes of that state and OOM events.
//
// Sources: on cgroup2, inotify on cgroup.events (populated) and, when the
// memory controller is on v2, memory.events (oom, oom_kill). With memory on
// v1, an eventfd registered on memory.oom_control through
// cgroup.event_control, with the kill count read from memory.oom_control.
// Without cgroup2, populated is polled every Config.PollInterval.
//
// Events are not dropped: a reader that falls behind holds the watch back.
func (c *Cgroup) Watch(ctx context.Context) (<-chan Event, error) {
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w := &watcher{c: c}
	if err := w.open(); err != nil {
		w.close()
		return nil, fmt.Errorf("cgroup %s: watch: %w", c.name(), err)
	}
	populated, err := w.populated()
	if err != nil {
		w.close()
		return nil, fmt.Errorf("cgroup %s: watch: %w", c.name(), err)
	}
	if err := w.baseline(); err != nil {
		w.close()
		return nil, fmt.Errorf("cgroup %s: watch: %w", c.name(), err)
	}
	out := make(chan Event, 16)
	out <- stateEvent(populated)
	ctx, cancel := context.WithCancel(ctx)
	emit := func(e Event) bool {
		select {
		case out <- e:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var wg sync.WaitGroup
	run := func(f func(context.Context, func(Event) bool)) {
		wg.Go(func() {
			// When one source ends (the cgroup went away), all do.
			defer cancel()
			f(ctx, emit)
		})
	}
	w.lastPopulated = populated
	if w.inotify != nil {
		run(w.readInotify)
	} else {
		run(w.pollPopulated)
	}
	if w.eventfd != nil {
		run(w.readEventfd)
	}
	go func() {
		<-ctx.Done()
		w.close() // unblocks the readers
		wg.Wait()
		close(out)
	}()
	return out, nil
}

func stateEvent(populated bool) Event {
	if populated {
		return Event{Kind: EventPopulated}
	}
	return Event{Kind: EventEmpty}
}

// watcher holds the files of one Watch. Each reader goroutine owns the
// fields it updates; open, baseline and close run before and after them.
type watcher struct {
	c *Cgroup

	inotify  *os.File
	eventsWD int // watch on cgroup.events, or -1
	memoryWD int // watch on v2 memory.events, or -1

	eventfd   *os.File
	oomCtl    *os.File // v1 memory.oom_control, kept open while registered
	memoryDir string   // v1 memory directory

	lastPopulated bool
	oom, oomKill  uint64
}

func (w *watcher) open() error {
	w.eventsWD, w.memoryWD = -1, -1
	memDir, memV2, memErr := w.c.controllerDir("memory", "memory")
	if w.c.unified != "" {
		fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
		if err != nil {
			return fmt.Errorf("inotify: %w", err)
		}
		// A non-blocking descriptor joins Go's poller, so Close unblocks a
		// Read in progress.
		w.inotify = os.NewFile(uintptr(fd), "inotify")
		if w.eventsWD, err = unix.InotifyAddWatch(fd, filepath.Join(w.c.unified, "cgroup.events"), unix.IN_MODIFY); err != nil {
			return fileError("watch", filepath.Join(w.c.unified, "cgroup.events"), "", w.c.unified, err)
		}
		if memErr == nil && memV2 {
			if w.memoryWD, err = unix.InotifyAddWatch(fd, filepath.Join(memDir, "memory.events"), unix.IN_MODIFY); err != nil {
				return fileError("watch", filepath.Join(memDir, "memory.events"), "", memDir, err)
			}
		}
	}
	if memErr != nil || memV2 {
		return nil
	}
	// cgroup v1: register an eventfd for OOM notifications.
	w.memoryDir = memDir
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	w.eventfd = os.NewFile(uintptr(efd), "eventfd")
	if w.oomCtl, err = os.Open(filepath.Join(memDir, "memory.oom_control")); err != nil {
		return fileError("open", filepath.Join(memDir, "memory.oom_control"), "", memDir, err)
	}
	reg := strconv.Itoa(efd) + " " + strconv.Itoa(int(w.oomCtl.Fd()))
	// Registration must go through the host, never a fake: the kernel
	// reads descriptors of this process.
	if err := hostFS.writeFile(hostFS{}, filepath.Join(memDir, "cgroup.event_control"), reg); err != nil {
		return fileError("write", filepath.Join(memDir, "cgroup.event_control"), reg, memDir, err)
	}
	return nil
}

func (w *watcher) close() {
	for _, f := range []*os.File{w.inotify, w.eventfd, w.oomCtl} {
		if f != nil {
			f.Close()
		}
	}
}

// populated reads whether the cgroup or a descendant has processes.
func (w *watcher) populated() (bool, error) {
	if w.c.unified != "" {
		s, err := readFile(w.c.unified, "cgroup.events")
		if err != nil {
			return false, err
		}
		return parseKeyed(s)["populated"] == 1, nil
	}
	pids, err := w.c.allProcs()
	return len(pids) > 0, err
}

// baseline reads the OOM counters so that only new events are reported.
func (w *watcher) baseline() error {
	if w.memoryWD >= 0 {
		dir, _, _ := w.c.controllerDir("memory", "memory")
		s, err := readFile(dir, "memory.events")
		if err != nil {
			return err
		}
		kv := parseKeyed(s)
		w.oom, w.oomKill = kv["oom"], kv["oom_kill"]
	}
	if w.eventfd != nil {
		s, err := readFile(w.memoryDir, "memory.oom_control")
		if err != nil {
			return err
		}
		w.oomKill = parseKeyed(s)["oom_kill"]
	}
	return nil
}

// readInotify turns modifications of cgroup.events and memory.events into
// events. It returns when the files go away (IN_IGNORED: the cgroup was
// removed) or the inotify descriptor is closed.
func (w *watcher) readInotify(ctx context.Context, emit func(Event) bool) {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.inotify.Read(buf)
		if err != nil {
			return
		}
		var events, memory, gone bool
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			switch {
			case ev.Mask&unix.IN_IGNORED != 0:
				gone = true
			case int(ev.Wd) == w.eventsWD:
				events = true
			case int(ev.Wd) == w.memoryWD:
				memory = true
			}
		}
		if memory && !w.memoryEvents(emit) {
			return
		}
		if events && !w.populatedEvent(emit) {
			return
		}
		if gone {
			// Report the final state if it changed unseen.
			if w.lastPopulated {
				emit(Event{Kind: EventEmpty})
			}
			return
		}
	}
}

// populatedEvent emits a change of the populated state; false means stop.
func (w *watcher) populatedEvent(emit func(Event) bool) bool {
	p, err := w.populated()
	if err != nil {
		return !errors.Is(err, ErrNotExist) && !errors.Is(err, ErrNotSupported)
	}
	if p == w.lastPopulated {
		return true
	}
	w.lastPopulated = p
	return emit(stateEvent(p))
}

func (w *watcher) memoryEvents(emit func(Event) bool) bool {
	dir, _, _ := w.c.controllerDir("memory", "memory")
	s, err := readFile(dir, "memory.events")
	if err != nil {
		return !errors.Is(err, ErrNotExist) && !errors.Is(err, ErrNotSupported)
	}
	kv := parseKeyed(s)
	if n := kv["oom"]; n > w.oom {
		w.oom = n
		if !emit(Event{Kind: EventOOM, Count: n}) {
			return false
		}
	}
	if n := kv["oom_kill"]; n > w.oomKill {
		w.oomKill = n
		if !emit(Event{Kind: EventOOMKill, Count: n}) {
			return false
		}
	}
	return true
}

// readEventfd reports v1 OOM notifications. The kernel also signals the
// eventfd when the cgroup is removed; then the directory is gone and the
// reader returns.
func (w *watcher) readEventfd(ctx context.Context, emit func(Event) bool) {
	buf := make([]byte, 8)
	for {
		if _, err := io.ReadFull(w.eventfd, buf); err != nil {
			return
		}
		if _, err := os.Stat(w.memoryDir); err != nil {
			return
		}
		w.oom += binary.NativeEndian.Uint64(buf)
		if !emit(Event{Kind: EventOOM, Count: w.oom}) {
			return
		}
		// The notification comes when the OOM killer is invoked; the kill
		// is counted once it has chosen and signalled a victim, a moment
		// later (or never, with oom_kill_disable).
		for delay := time.Millisecond; delay < time.Second; delay *= 2 {
			s, err := readFile(w.memoryDir, "memory.oom_control")
			if err != nil {
				return
			}
			if n := parseKeyed(s)["oom_kill"]; n > w.oomKill {
				w.oomKill = n
				if !emit(Event{Kind: EventOOMKill, Count: n}) {
					return
				}
				break
			}
			if sleep(ctx, delay) != nil {
				return
			}
		}
	}
}

// pollPopulated polls for processes where there is no cgroup.events.
func (w *watcher) pollPopulated(ctx context.Context, emit func(Event) bool) {
	t := time.NewTicker(w.c.m.poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := w.c.check(); err != nil {
			if w.lastPopulated {
				emit(Event{Kind: EventEmpty})
			}
			return
		}
		if !w.populatedEvent(emit) {
			return
		}
	}
}
