// Command skiff is a Kubernetes-compatible cluster in one binary.
//
// The subcommands live in internal/cli; main only runs them and maps an
// error to the exit status.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones on hosts without a zoneinfo database

	"github.com/skiff-sh/skiff/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args))
}
