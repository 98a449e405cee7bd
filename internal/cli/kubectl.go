package cli

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	componentcli "k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/plugin"
	"k8s.io/kubectl/pkg/cmd/util"
)

// newKubectlCommand is the placeholder that makes "skiff kubectl" show up in
// help; Main dispatches the real command before cobra parses anything.
func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl",
		Short:              "Run upstream kubectl against this cluster",
		Long:               "Run upstream kubectl. Without KUBECONFIG and ~/.kube/config it uses the local server's admin kubeconfig (" + DefaultDataDir + "/admin.kubeconfig).",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if code := runKubectl(args); code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
}

// runKubectl runs upstream kubectl with args and returns its exit code.
func runKubectl(args []string) int {
	if os.Getenv("KUBECONFIG") == "" && !hasUserKubeconfig() {
		local := filepath.Join(DefaultDataDir, "admin.kubeconfig")
		if _, err := os.Stat(local); err == nil {
			os.Setenv("KUBECONFIG", local)
		}
	}
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	cmd := kubectlcmd.NewDefaultKubectlCommandWithArgs(kubectlcmd.KubectlOptions{
		PluginHandler: kubectlcmd.NewDefaultPluginHandler(plugin.ValidPluginFilenamePrefixes),
		Arguments:     append([]string{"kubectl"}, args...),
		ConfigFlags: genericclioptions.NewConfigFlags(true).WithDeprecatedPasswordFlag().
			WithDiscoveryBurst(300).WithDiscoveryQPS(50.0).WithWarningPrinter(streams),
		IOStreams: streams,
	})
	cmd.SetArgs(args)
	if err := componentcli.RunNoErrOutput(cmd); err != nil {
		// CheckErr prints the error the way kubectl does and exits with
		// kubectl's exit code.
		util.CheckErr(err)
	}
	return 0
}

func hasUserKubeconfig() bool {
	home, err := os.UserHomeDir()
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(home, ".kube", "config"))
	return err == nil
}
