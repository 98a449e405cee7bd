package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/container"
	"github.com/skiff-sh/skiff/internal/container/cri"
	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/sys/cgroups"
	"github.com/skiff-sh/skiff/internal/version"
)

// DefaultCRISocket is where the node agent's runtime serves the CRI, and
// where `skiff cri` and `skiff images` look unless told otherwise.
const DefaultCRISocket = "/run/skiff/cri.sock"

// criOptions are the flags of `skiff cri`.
type criOptions struct {
	root, socket, logLevel, registryConfig string
	metricsAddress, streamingAddress       string
	cgroupParent                           string
	logMaxSize                             int64
	logMaxFiles                            int
	pidsLimit                              int64
}

func newCRICommand() *cobra.Command {
	o := criOptions{}
	cmd := &cobra.Command{
		Use:   "cri",
		Short: "Serve the container runtime alone over the CRI (for crictl and the kubelet)",
		Long: "skiff cri runs skiff's container runtime and image store, and serves them on a unix socket " +
			"with the Kubernetes CRI (RuntimeService and ImageService), as containerd does. crictl works against it:\n\n" +
			"  crictl --runtime-endpoint unix:///run/skiff/cri.sock ps\n\n" +
			"Containers keep running when skiff cri stops; a new skiff cri on the same --root adopts them.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCRI(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.root, "root", filepath.Join(DefaultDataDir, "cri"), "state directory: images under images/, sandboxes and containers under runtime/")
	f.StringVar(&o.socket, "socket", DefaultCRISocket, "unix socket to serve the CRI on")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&o.registryConfig, "registry-config", "", "registries file (mirrors, TLS, credentials) for image pulls")
	f.StringVar(&o.metricsAddress, "metrics-address", "", "host:port to serve Prometheus /metrics on (empty: off)")
	f.StringVar(&o.streamingAddress, "streaming-address", "127.0.0.1:0", "host:port of the exec/attach/port-forward server (port 0: any free one)")
	f.StringVar(&o.cgroupParent, "cgroup-parent", cgroups.DefaultParent, "cgroup under which pod cgroups are created")
	f.Int64Var(&o.logMaxSize, "container-log-max-size", container.DefaultLogMaxSize, "rotate a container's log once it passes this many bytes (negative: never)")
	f.IntVar(&o.logMaxFiles, "container-log-max-files", container.DefaultLogMaxFiles, "container log files to keep, the live one included")
	f.Int64Var(&o.pidsLimit, "pids-limit", 0, "maximum processes per container (0: no limit)")
	return cmd
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(strings.ToUpper(s)))
	return l, err
}

func runCRI(ctx context.Context, o criOptions) error {
	level, err := parseLevel(o.logLevel)
	if err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	if o.root == "" || o.socket == "" {
		return errors.New("--root and --socket must not be empty")
	}
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cg, err := cgroups.New(cgroups.Config{Parent: o.cgroupParent, Logger: log.WithGroup("cgroups")})
	if err != nil {
		return err
	}
	var regs image.Registries
	if o.registryConfig != "" {
		if regs, err = image.LoadRegistries(o.registryConfig); err != nil {
			return err
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	imageRoot := filepath.Join(root, "images")
	store, err := image.New(image.Config{Root: imageRoot, Registries: regs, Logger: log.WithGroup("images"), Metrics: reg})
	if err != nil {
		return err
	}
	rt, err := container.New(container.Config{
		Root: filepath.Join(root, "runtime"), Cgroups: container.HostCgroups(cg), Images: store,
		LogMaxSize: o.logMaxSize, LogMaxFiles: o.logMaxFiles, PidsLimit: o.pidsLimit,
		Logger: log.WithGroup("runtime"),
	})
	if err != nil {
		return err
	}
	defer rt.Close()
	srv, err := cri.New(cri.Config{
		Runtime: rt, Images: store, ImageRoot: imageRoot, StreamingAddress: o.streamingAddress,
		Version: version.Skiff, Metrics: reg, Logger: log.WithGroup("cri"),
	})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.socket), 0o755); err != nil {
		return err
	}
	if err := os.Remove(o.socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ln, err := net.Listen("unix", o.socket)
	if err != nil {
		return err
	}
	defer os.Remove(o.socket)
	if err := os.Chmod(o.socket, 0o660); err != nil {
		return err
	}
	if o.metricsAddress != "" {
		mln, err := net.Listen("tcp", o.metricsAddress)
		if err != nil {
			return fmt.Errorf("--metrics-address: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go msrv.Serve(mln)
		defer msrv.Close()
		log.Info("serving metrics", "address", mln.Addr().String())
	}
	log.Info("serving CRI", "socket", o.socket, "streaming", srv.StreamingURL(), "root", root)
	return srv.Serve(ctx, ln)
}
