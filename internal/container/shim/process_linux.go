package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-sh/skiff/internal/sys/caps"
	"github.com/skiff-sh/skiff/internal/sys/seccomp"
)

var rlimitTypes = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

// finishProcess applies the process part of a spec to the calling
// (locked) thread, in the order the kernel allows: rlimits, seccomp (when
// no_new_privs is off it needs CAP_SYS_ADMIN, so it goes first), bounding
// set, user and groups, capabilities, no_new_privs, working directory,
// seccomp (when no_new_privs is on, as late as possible). It returns the
// resolved path of the program to exec.
func finishProcess(p *specs.Process, sc *specs.LinuxSeccomp) (string, error) {
	if len(p.Args) == 0 {
		return "", errors.New("no command")
	}
	for _, rl := range p.Rlimits {
		t, ok := rlimitTypes[rl.Type]
		if !ok {
			return "", fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		// syscall.Setrlimit, so that the runtime does not restore its
		// saved RLIMIT_NOFILE on exec.
		if err := syscall.Setrlimit(t, &syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return "", fmt.Errorf("set %s: %w", rl.Type, err)
		}
	}
	var prog seccomp.Program
	if sc != nil {
		data, err := json.Marshal(sc)
		if err != nil {
			return "", err
		}
		profile, err := seccomp.Parse(data)
		if err != nil {
			return "", err
		}
		if prog, err = seccomp.Compile(profile); err != nil {
			return "", err
		}
	}
	if prog != nil && !p.NoNewPrivileges {
		if err := seccomp.Load(prog); err != nil {
			return "", err
		}
	}
	var set caps.Sets
	if c := p.Capabilities; c != nil {
		var err error
		for _, x := range []struct {
			dst   *caps.Set
			names []string
		}{{&set.Bounding, c.Bounding}, {&set.Effective, c.Effective}, {&set.Permitted, c.Permitted}, {&set.Inheritable, c.Inheritable}, {&set.Ambient, c.Ambient}} {
			if *x.dst, err = caps.ParseSet(x.names); err != nil {
				return "", err
			}
		}
	}
	// Nobody gets a capability the runtime itself lacks (root on some
	// hosts lacks CAP_SYS_RESOURCE, say): a privileged container gets
	// every capability there is to give.
	if cur, err := caps.Current(); err == nil {
		set.Bounding &= cur.Permitted
		set.Effective &= cur.Permitted
		set.Permitted &= cur.Permitted
		set.Inheritable &= cur.Permitted
		set.Ambient &= cur.Permitted
	}
	// Create the working directory while still root, as runc does.
	if p.Cwd != "" {
		os.MkdirAll(p.Cwd, 0o755)
	}
	if err := caps.DropBounding(set.Bounding); err != nil {
		return "", err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return "", fmt.Errorf("keep capabilities: %w", err)
	}
	if err := setUser(p.User); err != nil {
		return "", err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return "", fmt.Errorf("keep capabilities: %w", err)
	}
	if err := caps.SetThread(set); err != nil {
		return "", err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return "", fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if p.Cwd != "" {
		if err := unix.Chdir(p.Cwd); err != nil {
			return "", fmt.Errorf("chdir to working dir %s: %w", p.Cwd, err)
		}
	}
	exe, err := lookPath(p.Args[0], p.Env)
	if err != nil {
		return "", err
	}
	if prog != nil && p.NoNewPrivileges {
		if err := seccomp.Load(prog); err != nil {
			return "", err
		}
	}
	return exe, nil
}

// setUser switches the calling thread (only: it is about to exec) to u.
func setUser(u specs.User) error {
	gids := make([]uint32, 0, len(u.AdditionalGids))
	gids = append(gids, u.AdditionalGids...)
	var ptr unsafe.Pointer
	if len(gids) > 0 {
		ptr = unsafe.Pointer(&gids[0])
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(ptr), 0); errno != 0 {
		return fmt.Errorf("setgroups %v: %w", gids, errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); errno != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, errno)
	}
	if _, _, errno := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); errno != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, errno)
	}
	return nil
}

// lookPath finds the program the way execvp does, with the container's
// PATH, and checks it can be executed.
func lookPath(name string, env []string) (string, error) {
	check := func(p string) error {
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.IsDir() {
			return errors.New("is a directory")
		}
		if err := unix.Access(p, unix.X_OK); err != nil {
			return fmt.Errorf("permission denied: %w", err)
		}
		return nil
	}
	if strings.Contains(name, "/") {
		if err := check(name); err != nil {
			return "", fmt.Errorf("exec: %q: %w", name, err)
		}
		return name, nil
	}
	search := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			search = v
		}
	}
	for _, dir := range strings.Split(search, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, name)
		if check(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}
