package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiff-sh/skiff/internal/version"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the skiff version and the Kubernetes version it serves",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "skiff %s (Kubernetes %s)\n", version.Skiff, version.Kubernetes)
		},
	}
}
