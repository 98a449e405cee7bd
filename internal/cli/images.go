package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/skiff-sh/skiff/internal/agent"
	"github.com/skiff-sh/skiff/internal/container/image"
	"github.com/skiff-sh/skiff/internal/container/imageservice"
)

// agentCRISocket is where `skiff agent` and `skiff server` (whose node
// agent keeps its state under the same default root) serve the CRI, and
// with it the image service: cri.sock in the agent's root dir.
const agentCRISocket = agent.DefaultRootDir + "/cri.sock"

// imagesOptions are the flags all `skiff images` commands share.
type imagesOptions struct {
	socket string
}

func newImagesCommand() *cobra.Command {
	o := &imagesOptions{}
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Manage the node's images: import, ls, rm, pull, gc",
		Long: "skiff images manages the image store of the container runtime running on this host " +
			"(of `skiff agent`, `skiff server` or `skiff cri`), through the runtime's socket. " +
			"Images imported here are what pods on this node run, so nodes without a registry can be given their images:\n\n" +
			"  docker save app:1 | ssh node skiff images import -",
		// NoArgs with a RunE makes an unknown subcommand an error, not help.
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.PersistentFlags().StringVar(&o.socket, "socket", agentCRISocket,
		"the runtime's CRI socket (default: the agent's; "+DefaultCRISocket+", skiff cri's default, when only that one exists)")
	cmd.AddCommand(
		newImagesImportCommand(o),
		newImagesListCommand(o),
		newImagesRemoveCommand(o),
		newImagesPullCommand(o),
		newImagesGCCommand(o),
	)
	return cmd
}

// dial returns a client of the runtime's image service.
func (o *imagesOptions) dial(cmd *cobra.Command) (*imageservice.Client, error) {
	if o.socket == "" {
		return nil, errors.New("--socket must not be empty")
	}
	socket := resolveSocket(o.socket, cmd.Flags().Changed("socket"), DefaultCRISocket)
	if _, err := os.Stat(socket); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no runtime socket at %s: is skiff agent, skiff server or skiff cri running on this host? (--socket names another)", socket)
	} else if err != nil {
		return nil, fmt.Errorf("runtime socket: %w", err)
	}
	return imageservice.Dial(socket)
}

// resolveSocket returns the socket to use: the --socket value when the
// user gave one; otherwise the default (the agent's), unless only
// fallback (skiff cri's default) exists.
func resolveSocket(value string, given bool, fallback string) string {
	if !given && !exists(value) && exists(fallback) {
		return fallback
	}
	return value
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// newDisplay makes the progress display for w: redrawn in place on a
// terminal, plain lines elsewhere.
func newDisplay(w io.Writer, importing bool) *imageservice.Display {
	cfg := imageservice.DisplayConfig{Import: importing}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb" {
		cfg.Terminal = true
		if width, _, err := term.GetSize(int(f.Fd())); err == nil {
			cfg.Width = width
		}
	}
	return imageservice.NewDisplay(w, cfg)
}

func newImagesImportCommand(o *imagesOptions) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use:   "import FILE|DIR|-",
		Short: "Import the images of a docker save or OCI-layout tarball (- reads it from stdin)",
		Long: "Import adds the images of an archive to the runtime: a `docker save` tarball (its RepoTags name the images) " +
			"or an OCI image-layout tarball (`docker save` of recent Docker, `podman save --format oci-archive`, `ctr export`; " +
			"images are named by their io.containerd.image.name or full org.opencontainers.image.ref.name annotation). " +
			"The archive may be gzip or zstd compressed. A directory holding an OCI layout is sent as a tarball. " +
			"Layers are verified against their digests.",
		Example: "  skiff images import app.tar\n  docker save app:1 | skiff images import -\n  skiff images import ./oci-layout/",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openArchive(args[0], cmd.InOrStdin())
			if err != nil {
				return fmt.Errorf("import: %w", err)
			}
			defer r.Close()
			c, err := o.dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			var d *imageservice.Display
			var progress image.ProgressFunc
			if !quiet {
				d = newDisplay(out, true)
				progress = d.Update
			}
			imgs, err := c.Import(cmd.Context(), r, progress)
			if quiet {
				for _, img := range imgs {
					fmt.Fprintln(out, img.ID)
				}
			} else {
				d.Done(imgs...)
			}
			source := args[0]
			if source == "-" {
				source = "stdin"
			}
			if err != nil {
				return fmt.Errorf("%s: %w", source, err) // the runtime's error says "import: ..."
			}
			if len(imgs) == 0 {
				return fmt.Errorf("%s: import: the archive holds no image", source)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the IDs of the imported images")
	return cmd
}

// openArchive opens what `skiff images import` was given: a file, a
// directory (sent as a tarball made on the fly) or "-" for stdin.
func openArchive(arg string, stdin io.Reader) (io.ReadCloser, error) {
	if arg == "-" {
		if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return nil, errors.New("stdin is a terminal: pipe an archive in, or name a file")
		}
		return io.NopCloser(stdin), nil
	}
	f, err := os.Open(arg)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.IsDir() {
		return f, nil
	}
	f.Close()
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := tw.AddFS(os.DirFS(arg))
		if err == nil {
			err = tw.Close()
		}
		if err != nil {
			err = fmt.Errorf("tar %s: %w", arg, err)
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

func newImagesListCommand(o *imagesOptions) *cobra.Command {
	var opts imageservice.TableOptions
	cmd := &cobra.Command{
		Use:     "ls [REF]",
		Aliases: []string{"list"},
		Short:   "List images (only the one REF names, if given)",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ref := ""
			if len(args) == 1 {
				ref = args[0]
			}
			imgs, err := c.List(cmd.Context(), ref)
			if err != nil {
				return fmt.Errorf("list images: %w", err)
			}
			return imageservice.WriteTable(cmd.OutOrStdout(), imgs, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "print only image IDs")
	f.BoolVar(&opts.Digests, "digests", false, "show digests")
	f.BoolVar(&opts.NoTrunc, "no-trunc", false, "show IDs and digests whole")
	return cmd
}

func newImagesRemoveCommand(o *imagesOptions) *cobra.Command {
	return &cobra.Command{
		Use:     "rm REF...",
		Aliases: []string{"remove", "rmi"},
		Short:   "Remove images, then free the layers nothing uses any more",
		Long: "rm removes each REF: a tag removes that tag, and the image with its last tag; an image ID " +
			"(or unique ID prefix) removes the image with all its tags. Containers keep the layers they run on. " +
			"The content no image and no container uses is then freed.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			var freed image.GCResult
			var errs []error
			for _, ref := range args {
				res, err := c.Remove(cmd.Context(), ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if res.Deleted {
					fmt.Fprintf(out, "Deleted: %s\n", res.ID)
				} else {
					fmt.Fprintf(out, "Untagged: %s\n", ref)
				}
				freed = addGC(freed, res.Freed)
			}
			if freed != (image.GCResult{}) {
				fmt.Fprintln(out, describeGC(freed))
			}
			return errors.Join(errs...)
		},
	}
}

func addGC(a, b image.GCResult) image.GCResult {
	return image.GCResult{Blobs: a.Blobs + b.Blobs, Layers: a.Layers + b.Layers, Bytes: a.Bytes + b.Bytes}
}

func describeGC(r image.GCResult) string {
	if r == (image.GCResult{}) {
		return "Nothing to free"
	}
	return fmt.Sprintf("Freed %d blobs (%s) and %d unpacked layers", r.Blobs, imageservice.FormatSize(r.Bytes), r.Layers)
}

func newImagesPullCommand(o *imagesOptions) *cobra.Command {
	var creds string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull REF",
		Short: "Pull an image, showing progress",
		Long: "pull has the runtime pull REF from its registry (or the mirrors of the runtime's registries config), " +
			"and shows the progress of each layer: in place on a terminal, a line per step otherwise.",
		Example: "  skiff images pull busybox\n  skiff images pull --creds me:secret registry.example:5000/team/app:1",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var auth *image.AuthConfig
			if creds != "" {
				user, pass, ok := strings.Cut(creds, ":")
				if !ok || user == "" {
					return errors.New("--creds wants USER:PASSWORD")
				}
				auth = &image.AuthConfig{Username: user, Password: pass}
			}
			c, err := o.dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			if quiet {
				img, err := c.Pull(cmd.Context(), args[0], auth, nil)
				if err != nil {
					return err
				}
				fmt.Fprintln(out, img.ID)
				return nil
			}
			d := newDisplay(out, false)
			img, err := c.Pull(cmd.Context(), args[0], auth, d.Update)
			if err != nil {
				return err
			}
			d.Done(img)
			return nil
		},
	}
	cmd.Flags().StringVar(&creds, "creds", "", "registry credentials, USER:PASSWORD")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "show no progress; print only the image ID")
	return cmd
}

func newImagesGCCommand(o *imagesOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Free the blobs and layers that no image and no container uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.dial(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			freed, err := c.GC(cmd.Context())
			if err != nil {
				return fmt.Errorf("gc: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), describeGC(freed))
			return nil
		},
	}
}
