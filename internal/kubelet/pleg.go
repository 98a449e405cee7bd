package kubelet

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The kubelet learns what happens in the runtime from its container
// events (CRI GetContainerEvents): each event names a container, and
// through its sandbox or labels the pod, whose worker then syncs. The
// relist compares nothing; it only wakes every pod the runtime or the API
// knows, as a safety net for lost events, every RelistInterval, or every
// second while the event stream is down.

// runEvents consumes the runtime's event stream, reconnecting with
// backoff, until ctx ends.
func (k *Kubelet) runEvents(ctx context.Context) {
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		stream, err := k.rt.GetContainerEvents(ctx, &runtimeapi.GetEventsRequest{})
		if err == nil {
			k.setEvents(true)
			delay = 100 * time.Millisecond
			for {
				ev, err := stream.Recv()
				if err != nil {
					if !errors.Is(err, io.EOF) && ctx.Err() == nil {
						k.log.Warn("container event stream broke; relisting every second", "err", err)
					}
					break
				}
				k.handleEvent(ev)
			}
			// Events may have been lost: look at everything once.
			if ctx.Err() == nil {
				k.relist(ctx)
			}
		} else if ctx.Err() == nil {
			k.log.Debug("no container event stream", "err", err)
		}
		k.setEvents(false)
		t := k.clock.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		delay = min(2*delay, 10*time.Second)
	}
}

func (k *Kubelet) setEvents(up bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.events = up
}

// handleEvent wakes the worker of the pod an event concerns.
func (k *Kubelet) handleEvent(ev *runtimeapi.ContainerEventResponse) {
	uid := ev.GetPodSandboxStatus().GetMetadata().GetUid()
	if uid == "" {
		for _, c := range ev.ContainersStatuses {
			if u := c.Labels[labelPodUID]; u != "" {
				uid = u
				break
			}
		}
	}
	if uid == "" {
		return // not a pod of ours
	}
	k.enqueue(types.UID(uid))
}

// runRelist wakes every pod periodically.
func (k *Kubelet) runRelist(ctx context.Context) {
	for {
		k.mu.Lock()
		d := k.cfg.RelistInterval
		if !k.events {
			d = time.Second
		}
		k.mu.Unlock()
		t := k.clock.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
		if err := k.relist(ctx); err != nil && ctx.Err() == nil {
			k.log.Warn("relist failed", "err", err)
		}
	}
}

// relist wakes the worker of every pod the runtime holds or the API binds
// here.
func (k *Kubelet) relist(ctx context.Context) error {
	uids := map[types.UID]bool{}
	sbs, err := k.rt.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return err
	}
	for _, sb := range sbs.Items {
		if u := sb.GetMetadata().GetUid(); u != "" && sb.Labels[labelPodUID] != "" {
			uids[types.UID(u)] = true
		}
	}
	cs, err := k.rt.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return err
	}
	for _, c := range cs.Containers {
		if u := c.Labels[labelPodUID]; u != "" {
			uids[types.UID(u)] = true
		}
	}
	k.mu.Lock()
	for uid := range k.pods {
		uids[uid] = true
	}
	k.mu.Unlock()
	// Pods that left only state on disk (volumes, termination messages):
	// their workers find nothing to run and clean up.
	if entries, err := os.ReadDir(filepath.Join(k.cfg.RootDir, "pods")); err == nil {
		for _, e := range entries {
			if e.IsDir() {
				uids[types.UID(e.Name())] = true
			}
		}
	}
	for uid := range uids {
		k.enqueue(uid)
	}
	return nil
}
