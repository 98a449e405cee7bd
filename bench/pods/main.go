// Command pods benchmarks pods on a real node: it starts the `skiff server`
// binary with its node agent on a fresh data dir, makes the toolbox test
// image present on the node (`skiff images import`), and measures
//
//   - pod start: 100 pods created at once, each timed from its create
//     request to a watch (opened before the creates) seeing it Running;
//     with the steps in between: create → bound (the API and scheduler
//     floor), → container started (the runtime's CRI event), → Running
//     seen;
//   - pod delete, grace period 0 (`sleep infinity`) and 30 (`signals 0`,
//     which exits on SIGTERM at once): delete request → the watch's
//     DELETED event, and → the container stopped (CRI event);
//   - memory: RSS of the server process, and PSS summed over every process
//     that maps the skiff binary (server, runtime monitor),
//     idle and with the pods running. Container processes run other
//     binaries and are counted apart.
//
// The peer, in the same run: the same sandbox + container starts made
// directly against the agent's CRI socket, all at once (no pod network,
// no volumes, no API), and the same stops (StopContainer with the grace
// period, StopPodSandbox, RemovePodSandbox). The ratios are what to
// compare between runs: these machines are shared and noisy.
//
//	sudo go run ./bench/pods [-pods 100] [-skiff PATH] [-out FILE]
//
// A node agent owns the host's pod bridge (skiff0) and nftables table, so
// the benchmark first waits until no other `skiff server` with an agent
// and no `skiff agent` has run on the host for -quiet (30 s), and the
// report warns when one appeared during the run. It removes everything it made at
// the end, on failure and on Ctrl-C too: pods, containers, the server,
// mounts, cgroups, pod logs, and (when no other agent runs by then) the
// bridge and the nftables table.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.IntVar(&o.pods, "pods", 100, "pods per batch")
	flag.StringVar(&o.skiff, "skiff", "", "the skiff binary to run (default: build ./cmd/skiff)")
	flag.StringVar(&o.out, "out", "", "also write the report to this file")
	flag.DurationVar(&o.settle, "settle", 15*time.Second, "how long after the node is Ready to read the idle memory (the agent gives back start-up memory 5 s after Ready)")
	flag.DurationVar(&o.waitOthers, "wait-others", 30*time.Minute, "how long to wait for other node agents on this host to exit")
	flag.DurationVar(&o.quiet, "quiet", 30*time.Second, "how long no other node agent must have run before the benchmark starts")
	flag.BoolVar(&o.verbose, "v", false, "print progress to stderr")
	flag.Parse()
	if os.Geteuid() != 0 {
		fatal(errors.New("needs root (it runs a node agent)"))
	}
	if o.pods < 1 {
		fatal(errors.New("-pods must be at least 1"))
	}
	var w io.Writer = os.Stdout
	if o.out != "" {
		f, err := os.Create(o.out)
		if err != nil {
			fatal(err)
		}
		defer f.Close()
		w = io.MultiWriter(os.Stdout, f)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, w, o); err != nil {
		stop()
		fatal(err)
	}
}

// options are the command's flags.
type options struct {
	pods       int
	skiff      string
	out        string
	settle     time.Duration
	waitOthers time.Duration
	quiet      time.Duration
	verbose    bool
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}
