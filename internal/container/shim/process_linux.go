package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"runtime"
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
// (locked) thread with the steps a forked init takes (processSteps), and
// returns the resolved path of the program to exec.
func finishProcess(p *specs.Process, sc *specs.LinuxSeccomp) (string, error) {
	if len(p.Args) == 0 {
		return "", errors.New("no command")
	}
	steps, exe, err := processSteps(p, sc)
	if err != nil {
		return "", err
	}
	for _, rl := range p.Rlimits {
		if rl.Type == "RLIMIT_NOFILE" {
			// Through package syscall as well, so that the Go runtime
			// does not put back the limit it saved at start on exec.
			syscall.Setrlimit(unix.RLIMIT_NOFILE, &syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard})
		}
	}
	for _, s := range steps {
		a := s.args
		if _, _, errno := unix.RawSyscall6(s.trap, a[0], a[1], a[2], a[3], a[4], a[5]); errno != 0 && errno != s.ignore {
			return "", fmt.Errorf("%s: %w", s.text(), errno)
		}
	}
	runtime.KeepAlive(steps)
	return exe, nil
}

// compileSeccomp compiles the spec's filter; nil when it has none.
func compileSeccomp(sc *specs.LinuxSeccomp) (seccomp.Program, error) {
	if sc == nil {
		return nil, nil
	}
	data, err := json.Marshal(sc)
	if err != nil {
		return nil, err
	}
	profile, err := seccomp.Parse(data)
	if err != nil {
		return nil, err
	}
	return seccomp.Compile(profile)
}

// capSets parses the spec's capabilities, limited to those the calling
// thread has: nobody gets a capability the runtime itself lacks (root on
// some hosts lacks CAP_SYS_RESOURCE, say), and a privileged container
// gets every capability there is to give.
func capSets(c *specs.LinuxCapabilities) (caps.Sets, error) {
	var set caps.Sets
	if c != nil {
		var err error
		for _, x := range []struct {
			dst   *caps.Set
			names []string
		}{{&set.Bounding, c.Bounding}, {&set.Effective, c.Effective}, {&set.Permitted, c.Permitted}, {&set.Inheritable, c.Inheritable}, {&set.Ambient, c.Ambient}} {
			if *x.dst, err = caps.ParseSet(x.names); err != nil {
				return set, err
			}
		}
	}
	if cur, err := caps.Current(); err == nil {
		set.Bounding &= cur.Permitted
		set.Effective &= cur.Permitted
		set.Permitted &= cur.Permitted
		set.Inheritable &= cur.Permitted
		set.Ambient &= cur.Permitted
	}
	return set, nil
}

// processSteps returns the steps with which a forked init applies the
// process part of a spec, in finishProcess's order, and the program's
// resolved path. The calling thread is in the container's root: it
// creates the working directory and looks the program up as root; the
// checks as the container's user happen at chdir and exec.
func processSteps(proc *specs.Process, sc *specs.LinuxSeccomp) ([]step, string, error) {
	var steps []step
	for _, rl := range proc.Rlimits {
		t, ok := rlimitTypes[rl.Type]
		if !ok {
			return nil, "", fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		lim := &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}
		steps = append(steps, sysStep("set "+rl.Type, unix.SYS_PRLIMIT64, 0, uintptr(t), uintptr(unsafe.Pointer(lim)), 0).holding(lim))
	}
	prog, err := compileSeccomp(sc)
	if err != nil {
		return nil, "", err
	}
	var load step
	if prog != nil {
		fprog := &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		load = sysStep("load seccomp filter", unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(fprog))).holding(fprog, prog)
		if !proc.NoNewPrivileges {
			steps = append(steps, load)
		}
	}
	set, err := capSets(proc.Capabilities)
	if err != nil {
		return nil, "", err
	}
	for c := caps.Cap(0); c <= caps.Last(); c++ {
		if !set.Bounding.Has(c) {
			drop := sysStep("drop "+c.String()+" from bounding set", unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c))
			drop.ignore = unix.EINVAL // the kernel does not know this one
			steps = append(steps, drop)
		}
	}
	u := proc.User
	gids := append([]uint32{0}, u.AdditionalGids...)[1:]
	var gidsPtr uintptr
	if len(gids) > 0 {
		gidsPtr = uintptr(unsafe.Pointer(&gids[0]))
	}
	hdr := &unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := &[2]unix.CapUserData{
		{Effective: uint32(set.Effective), Permitted: uint32(set.Permitted), Inheritable: uint32(set.Inheritable)},
		{Effective: uint32(set.Effective >> 32), Permitted: uint32(set.Permitted >> 32), Inheritable: uint32(set.Inheritable >> 32)},
	}
	steps = append(steps,
		sysStep("keep capabilities", unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 1),
		sysStep(fmt.Sprintf("setgroups %v", gids), unix.SYS_SETGROUPS, uintptr(len(gids)), gidsPtr).holding(gids),
		sysStep(fmt.Sprintf("setgid %d", u.GID), unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)),
		sysStep(fmt.Sprintf("setuid %d", u.UID), unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)),
		sysStep("keep capabilities", unix.SYS_PRCTL, unix.PR_SET_KEEPCAPS, 0),
		sysStep("capset", unix.SYS_CAPSET, uintptr(unsafe.Pointer(hdr)), uintptr(unsafe.Pointer(&data[0]))).holding(hdr, data),
	)
	clear := sysStep("clear ambient capabilities", unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL)
	clear.ignore = unix.EINVAL
	steps = append(steps, clear)
	for _, c := range set.Ambient.Caps() {
		steps = append(steps, sysStep("raise ambient "+c.String(), unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c)))
	}
	if proc.NoNewPrivileges {
		steps = append(steps, sysStep("set no_new_privs", unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1))
	}
	if proc.Cwd != "" {
		// Created while still root, as runc does.
		os.MkdirAll(proc.Cwd, 0o755)
		if err := unix.Chdir(proc.Cwd); err != nil {
			return nil, "", fmt.Errorf("chdir to working dir %s: %w", proc.Cwd, err)
		}
		cwd := cstring(proc.Cwd)
		steps = append(steps, sysStep("chdir to working dir "+proc.Cwd, unix.SYS_CHDIR, ptr(cwd)).holding(cwd))
	}
	exe, err := lookPath(proc.Args[0], proc.Env)
	if err != nil {
		return nil, "", err
	}
	if prog != nil && proc.NoNewPrivileges {
		steps = append(steps, load)
	}
	return steps, exe, nil
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
