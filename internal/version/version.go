// Package version says which skiff this is and which Kubernetes API version it
// serves. Release builds set Skiff with -ldflags "-X".
package version

import (
	"runtime"

	apimachineryversion "k8s.io/apimachinery/pkg/version"
)

// Skiff is the skiff release; "dev" for builds from a checkout.
var Skiff = "dev"

// Kubernetes is the Kubernetes release whose API skiff serves.
const Kubernetes = "v1.37.2"

// Info is what GET /version returns.
func Info() apimachineryversion.Info {
	return apimachineryversion.Info{
		Major:                 "1",
		Minor:                 "37",
		EmulationMajor:        "1",
		EmulationMinor:        "37",
		MinCompatibilityMajor: "1",
		MinCompatibilityMinor: "36",
		GitVersion:            Kubernetes + "+skiff-" + Skiff,
		GitCommit:             "",
		GitTreeState:          "clean",
		BuildDate:             "1970-01-01T00:00:00Z",
		GoVersion:             runtime.Version(),
		Compiler:              runtime.Compiler,
		Platform:              runtime.GOOS + "/" + runtime.GOARCH,
	}
}
