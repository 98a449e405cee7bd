package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/container/shim"
)

// monitorRecord is Root/monitor.json: which process is the monitor.
type monitorRecord struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// ensureMonitor connects to the monitor of Root, starting one if none
// runs, subscribes to its events and reconciles the loaded containers
// with the ones it holds.
func (r *Runtime) ensureMonitor() error {
	recPath := filepath.Join(r.cfg.Root, "monitor.json")
	var rec monitorRecord
	alive := false
	if data, err := os.ReadFile(recPath); err == nil && json.Unmarshal(data, &rec) == nil {
		if fd, _ := pidfdFor(rec.Pid, rec.Start); fd >= 0 {
			unix.Close(fd)
			alive = shim.Ping(r.cfg.Root)
		}
	}
	if !alive {
		proc, err := shim.StartMonitor(r.cfg.Root)
		if err != nil {
			return err
		}
		go proc.Wait() // reap it, should it exit while we run
		rec.Pid = proc.Pid
		rec.Start, _ = startTime(proc.Pid)
		if err := saveJSON(recPath, rec); err != nil {
			return err
		}
		deadline := time.Now().Add(10 * time.Second)
		for !shim.Ping(r.cfg.Root) {
			if time.Now().After(deadline) {
				data, _ := os.ReadFile(filepath.Join(r.cfg.Root, shim.MonitorLog))
				return fmt.Errorf("monitor did not start: %s", data)
			}
			time.Sleep(2 * time.Millisecond)
		}
		r.log.Debug("started monitor", "pid", rec.Pid)
	}
	events, err := shim.Events(r.cfg.Root)
	if err != nil {
		return err
	}
	first, err := events.Next()
	if err != nil || first.Type != "live" {
		events.Close()
		return fmt.Errorf("monitor events: %v", err)
	}
	r.reconcile(first.IDs)
	r.mu.Lock()
	r.events = events
	r.mu.Unlock()
	go r.watchEvents(events)
	return nil
}

// reconcile settles every container the runtime thinks is created or
// running against the monitor's live set: those it does not hold have
// exited (their exit.json says how) or were orphaned by a monitor that
// died (they are killed and reported unknown).
func (r *Runtime) reconcile(live []string) {
	set := map[string]bool{}
	for _, id := range live {
		set[id] = true
	}
	r.mu.Lock()
	var gone []*ctr
	for id, c := range r.containers {
		c.mu.Lock()
		active := c.rec.State == stateCreated || c.rec.State == stateRunning
		c.mu.Unlock()
		if active && !set[id] {
			gone = append(gone, c)
		}
	}
	r.mu.Unlock()
	for _, c := range gone {
		if _, err := shim.ReadExit(c.bundle); errors.Is(err, os.ErrNotExist) {
			// No monitor holds it: kill what is left of it.
			signalProcess(c.rec.Pid, c.rec.PidStart, unix.SIGKILL)
			r.log.Warn("container lost its monitor", "container", c.rec.ID)
		} else {
			r.log.Info("container exited while the runtime was down", "container", c.rec.ID)
		}
		r.onExit(c)
	}
}

// watchEvents turns the monitor's exit events into container exits. If
// the monitor goes away, it starts a new one.
func (r *Runtime) watchEvents(events *shim.EventStream) {
	for {
		ev, err := events.Next()
		if err != nil {
			break
		}
		if ev.Type != "exit" {
			continue
		}
		if c, err := r.lookupContainer(ev.ID); err == nil && c.rec.ID == ev.ID {
			r.onExit(c)
		}
	}
	r.mu.Lock()
	closing := r.closing
	r.mu.Unlock()
	if closing {
		return
	}
	r.log.Error("lost the container monitor; starting a new one")
	for i := 0; ; i++ {
		if err := r.ensureMonitor(); err == nil {
			return
		} else if i%10 == 0 {
			r.log.Error("cannot start the container monitor", "err", err)
		}
		time.Sleep(time.Second)
		r.mu.Lock()
		closing = r.closing
		r.mu.Unlock()
		if closing {
			return
		}
	}
}
