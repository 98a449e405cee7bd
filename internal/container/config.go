package container

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Defaults for Config's zero values.
const (
	DefaultLogMaxSize  = 10 << 20
	DefaultLogMaxFiles = 5
)

// Config configures a Runtime. Root is required; every other zero value
// means the documented default.
type Config struct {
	// Root holds the runtime's state: sandboxes/<id> and containers/<id>.
	// Nothing else may write under it. Required.
	Root string
	// Cgroups is the host's cgroup hierarchy. Required.
	Cgroups Cgroups
	// Images gives containers their image. Required for CreateContainer.
	Images Images
	// LogMaxSize rotates a container's log once it passes this many bytes
	// (0: DefaultLogMaxSize; negative: never); LogMaxFiles is how many
	// files to keep, the live one included (0: DefaultLogMaxFiles).
	LogMaxSize  int64
	LogMaxFiles int
	// Rlimits are applied to every container (none by default: containers
	// inherit the runtime's).
	Rlimits []specs.POSIXRlimit
	// PidsLimit caps the processes of each container (0: no limit).
	PidsLimit int64
	// SeccompProfileRoot is where relative Localhost seccomp profiles are
	// found (default: Root/seccomp).
	SeccompProfileRoot string
	// StopTimeout bounds how long StopContainer waits after SIGKILL
	// (default 10s).
	StopTimeout time.Duration
	// Logger gets the runtime's logs (default: discarded).
	Logger *slog.Logger
	// Now returns the current time (default time.Now).
	Now func() time.Time
}

func (c *Config) validate() error {
	if c.Root == "" {
		return errors.New("container runtime: Config.Root is required")
	}
	if !filepath.IsAbs(c.Root) {
		return fmt.Errorf("container runtime: Config.Root %q is not absolute", c.Root)
	}
	if c.Cgroups == nil {
		return errors.New("container runtime: Config.Cgroups is required")
	}
	if c.LogMaxFiles < 0 || c.PidsLimit < 0 || c.StopTimeout < 0 {
		return errors.New("container runtime: negative LogMaxFiles, PidsLimit or StopTimeout")
	}
	if c.LogMaxSize == 0 {
		c.LogMaxSize = DefaultLogMaxSize
	}
	if c.LogMaxFiles == 0 {
		c.LogMaxFiles = DefaultLogMaxFiles
	}
	if c.SeccompProfileRoot == "" {
		c.SeccompProfileRoot = filepath.Join(c.Root, "seccomp")
	}
	if c.StopTimeout == 0 {
		c.StopTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}
