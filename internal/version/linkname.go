package version

import (
	"sync/atomic"
	_ "unsafe" // for go:linkname

	_ "k8s.io/client-go/pkg/version"  // the variables named below must be linked in
	_ "k8s.io/component-base/version" // ditto
)

// Upstream binaries get their version from -ldflags "-X"; skiff sets the
// same variables at start instead, so that a plain `go build` makes a
// kubectl that reports (and is accepted as) v1.37.

//go:linkname componentGitVersion k8s.io/component-base/version.gitVersion
var componentGitVersion string

// component-base reports gitVersion through this value, set from
// gitVersion at its init.
//
//go:linkname componentDynamicVersion k8s.io/component-base/version.dynamicGitVersion
var componentDynamicVersion atomic.Value

//go:linkname componentGitMajor k8s.io/component-base/version.gitMajor
var componentGitMajor string

//go:linkname componentGitMinor k8s.io/component-base/version.gitMinor
var componentGitMinor string

//go:linkname componentGitTreeState k8s.io/component-base/version.gitTreeState
var componentGitTreeState string

//go:linkname componentGitCommit k8s.io/component-base/version.gitCommit
var componentGitCommit string

//go:linkname clientGitCommit k8s.io/client-go/pkg/version.gitCommit
var clientGitCommit string

//go:linkname clientGitVersion k8s.io/client-go/pkg/version.gitVersion
var clientGitVersion string

//go:linkname clientGitMajor k8s.io/client-go/pkg/version.gitMajor
var clientGitMajor string

//go:linkname clientGitMinor k8s.io/client-go/pkg/version.gitMinor
var clientGitMinor string

//go:linkname clientGitTreeState k8s.io/client-go/pkg/version.gitTreeState
var clientGitTreeState string

// Install makes the embedded Kubernetes libraries report Kubernetes as
// their version. Call it once, first thing in main.
func Install() {
	componentGitVersion, clientGitVersion = Kubernetes, Kubernetes
	componentGitMajor, clientGitMajor = "1", "1"
	componentGitMinor, clientGitMinor = "37", "37"
	componentGitTreeState, clientGitTreeState = "clean", "clean"
	componentGitCommit, clientGitCommit = "", ""
	componentDynamicVersion.Store(Kubernetes)
}
