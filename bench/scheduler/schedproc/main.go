// Command schedproc runs skiff's scheduler alone against a kubeconfig,
// for bench/scheduler: a process holding nothing but the scheduler and
// its clients, so that its memory is the scheduler's.
//
//	schedproc -kubeconfig admin.kubeconfig [-profile dir] [-v]
//
// SIGUSR1 prints a line "heap_inuse=… heap_sys=… sys=…" (and writes
// heap.pprof with -profile) while the scheduler runs; SIGTERM stops it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/skiff-sh/skiff/internal/scheduler"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "admin kubeconfig of the cluster")
	profile := flag.String("profile", "", "write cpu.pprof and heap.pprof into this directory")
	verbose := flag.Bool("v", false, "debug log")
	flag.Parse()
	if err := run(*kubeconfig, *profile, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, profile string, verbose bool) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	s, err := scheduler.New(scheduler.Config{
		RESTConfig: cfg,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
	})
	if err != nil {
		return err
	}
	if profile != "" {
		f, err := os.Create(filepath.Join(profile, "cpu.pprof"))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			report(profile)
		}
	}()
	return s.Run(ctx)
}

// report prints the Go memory figures, after a collection so that they
// count live memory only.
func report(profile string) {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if profile != "" {
		if f, err := os.Create(filepath.Join(profile, "heap.pprof")); err == nil {
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	fmt.Printf("heap_inuse=%d heap_sys=%d sys=%d\n", ms.HeapInuse, ms.HeapSys, ms.Sys)
}
