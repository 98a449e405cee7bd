// Package cli holds skiff's subcommands: it turns flags into component
// Configs and runs the components. Nothing below this package knows about
// flags.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/container"
	"github.com/skiff-sh/skiff/internal/version"
)

// DefaultDataDir is where skiff keeps its state unless told otherwise.
const DefaultDataDir = "/var/lib/skiff"

// Main runs skiff with the given argv and returns the process exit code.
func Main(args []string) int {
	container.MaybeRunInit() // re-executed runtime helpers never return from here
	version.Install()
	// "skiff kubectl" hands the rest of the command line to upstream kubectl
	// untouched, so its own flag parsing (and plugins) work as usual.
	if len(args) > 1 && args[1] == "kubectl" {
		return runKubectl(args[2:])
	}
	root := newRootCommand()
	root.SetArgs(args[1:])
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := root.ExecuteContext(ctx); err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			return exit.code
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		return 1
	}
	return 0
}

// exitError carries an exit status out of a command without printing.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "A Kubernetes-compatible cluster in one binary",
		Long:          "skiff runs a whole Kubernetes-compatible cluster from one binary: `skiff server` starts a control plane (and a node on the same host); `skiff kubectl` is upstream kubectl.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServerCommand(),
		newAgentCommand(),
		newCRICommand(),
		newImagesCommand(),
		newKubectlCommand(),
		newVersionCommand(),
	)
	return root
}
