package seccomp

import (
	"encoding/binary"
	"errors"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// run evaluates prog for one syscall in x/net/bpf's VM. The VM loads
// words big-endian, so each 32-bit word of seccomp_data is written that
// way at the offset the filter reads it from.
func run(t *testing.T, prog Program, arch uint32, nr uint32, args ...uint64) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.BigEndian.PutUint32(data[offNr:], nr)
	binary.BigEndian.PutUint32(data[offArch:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(data[offArgs+8*i:], uint32(a))
		binary.BigEndian.PutUint32(data[offArgs+8*i+4:], uint32(a>>32))
	}
	raw := make([]bpf.Instruction, len(prog))
	for i, in := range prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}.Disassemble()
	}
	vm, err := bpf.NewVM(raw)
	if err != nil {
		t.Fatalf("filter does not verify: %v", err)
	}
	out, err := vm.Run(data)
	if err != nil {
		t.Fatalf("run filter: %v", err)
	}
	return uint32(out)
}

func nr(t *testing.T, name string) uint32 {
	t.Helper()
	n, ok := syscallNumbers[name]
	if !ok {
		t.Fatalf("no syscall %q on this architecture", name)
	}
	return n
}

const eperm = retErrno | uint32(unix.EPERM)

func TestCompile_RuntimeDefault(t *testing.T) {
	plain, err := Compile(RuntimeDefault([]string{"CAP_CHOWN", "CAP_NET_RAW"}))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := Compile(RuntimeDefault([]string{"CAP_SYS_ADMIN"}))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		prog    Program
		arch    uint32
		syscall string
		args    []uint64
		want    uint32
	}{
		{name: "AllowsRead", prog: plain, syscall: "read", want: retAllow},
		{name: "AllowsExecve", prog: plain, syscall: "execve", want: retAllow},
		{name: "AllowsHighestNumberedListedSyscall", prog: plain, syscall: "futex_waitv", want: retAllow},
		{name: "RefusesMountWithoutSysAdmin", prog: plain, syscall: "mount", want: eperm},
		{name: "AllowsMountWithSysAdmin", prog: admin, syscall: "mount", want: retAllow},
		{name: "RefusesKexec", prog: admin, syscall: "kexec_load", want: eperm},
		{name: "RefusesUnknownNumber", prog: plain, want: eperm, syscall: ""},
		{name: "AllowsPlainClone", prog: plain, syscall: "clone", args: []uint64{unix.CLONE_VM | unix.CLONE_THREAD}, want: retAllow},
		{name: "RefusesCloneWithNewNamespace", prog: plain, syscall: "clone", args: []uint64{unix.CLONE_NEWNS}, want: eperm},
		{name: "AllowsCloneWithNewNamespaceWithSysAdmin", prog: admin, syscall: "clone", args: []uint64{unix.CLONE_NEWNS}, want: retAllow},
		{name: "Clone3IsENOSYS", prog: plain, syscall: "clone3", want: retErrno | uint32(unix.ENOSYS)},
		{name: "AllowsInetSocket", prog: plain, syscall: "socket", args: []uint64{unix.AF_INET}, want: retAllow},
		{name: "RefusesVsockSocket", prog: plain, syscall: "socket", args: []uint64{unix.AF_VSOCK}, want: eperm},
		{name: "AllowsLinuxPersonality", prog: plain, syscall: "personality", args: []uint64{8}, want: retAllow},
		{name: "RefusesOtherPersonality", prog: plain, syscall: "personality", args: []uint64{0x0400000}, want: eperm},
		{name: "RefusesForeignArch", prog: plain, arch: 0x40000003, syscall: "read", want: eperm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arch := uint32(nativeArch)
			if tt.arch != 0 {
				arch = tt.arch
			}
			n := uint32(999)
			if tt.syscall != "" {
				n = nr(t, tt.syscall)
			}
			if got := run(t, tt.prog, arch, n, tt.args...); got != tt.want {
				t.Errorf("%s(%v) -> %#x, want %#x", tt.syscall, tt.args, got, tt.want)
			}
		})
	}
}

func TestCompile_ArgumentOperators(t *testing.T) {
	errno := uint(unix.EACCES)
	p := &Profile{
		DefaultAction:   ActErrno,
		DefaultErrnoRet: &errno,
		Syscalls: []Syscall{
			{Names: []string{"read"}, Action: ActAllow, Args: []Arg{{Index: 0, Value: 1 << 33, Op: OpGreater}}},
			{Names: []string{"write"}, Action: ActAllow, Args: []Arg{{Index: 2, Value: 100, Op: OpLessEqual}}},
			{Names: []string{"close"}, Action: ActAllow, Args: []Arg{{Index: 0, Value: 3, Op: OpGreaterEqual}, {Index: 0, Value: 10, Op: OpLess}}},
			{Names: []string{"dup"}, Action: ActKillProcess},
		},
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	eacces := retErrno | uint32(unix.EACCES)
	tests := []struct {
		name    string
		syscall string
		args    []uint64
		want    uint32
	}{
		{"GreaterPassesOnHighWord", "read", []uint64{1<<33 + 1}, retAllow},
		{"GreaterFailsWhenEqual", "read", []uint64{1 << 33}, eacces},
		{"GreaterFailsOnSmallValue", "read", []uint64{5}, eacces},
		{"LessEqualPassesAtBound", "write", []uint64{0, 0, 100}, retAllow},
		{"LessEqualFailsAbove", "write", []uint64{0, 0, 101}, eacces},
		{"LessEqualFailsOnHighWord", "write", []uint64{0, 0, 1 << 32}, eacces},
		{"AllConditionsMustHold", "close", []uint64{5}, retAllow},
		{"RangeLowerBound", "close", []uint64{2}, eacces},
		{"RangeUpperBound", "close", []uint64{10}, eacces},
		{"KillProcess", "dup", nil, retKillProcess},
		{"DefaultErrno", "open", nil, eacces},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, ok := syscallNumbers[tt.syscall]
			if !ok {
				t.Skipf("no %s on this architecture", tt.syscall)
			}
			if got := run(t, prog, nativeArch, n, tt.args...); got != tt.want {
				t.Errorf("%s(%v) -> %#x, want %#x", tt.syscall, tt.args, got, tt.want)
			}
		})
	}
}

func TestCompile_RejectsBadProfiles(t *testing.T) {
	tests := []struct {
		name string
		json string
	}{
		{"UnknownDefaultAction", `{"defaultAction":"SCMP_ACT_EXPLODE"}`},
		{"UnknownRuleAction", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"nope"}]}`},
		{"BadArgIndex", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}`},
		{"BadOperator", `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_ABOUT"}]}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Compile(p); !errors.Is(err, ErrInvalid) {
				t.Errorf("Compile error = %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("NotJSON", func(t *testing.T) {
		if _, err := Parse([]byte("{")); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse error = %v, want ErrInvalid", err)
		}
	})
	t.Run("NoDefaultAction", func(t *testing.T) {
		if _, err := Parse([]byte("{}")); !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse error = %v, want ErrInvalid", err)
		}
	})
}

func TestForCaps_AppliesDockerFilters(t *testing.T) {
	p := &Profile{DefaultAction: ActErrno, Syscalls: []Syscall{
		{Names: []string{"mount"}, Action: ActAllow, Includes: &Filter{Caps: []string{"CAP_SYS_ADMIN"}}},
		{Names: []string{"clone"}, Action: ActAllow, Excludes: &Filter{Caps: []string{"CAP_SYS_ADMIN"}}},
	}}
	got := p.ForCaps([]string{"CAP_SYS_ADMIN"})
	if len(got.Syscalls) != 1 || got.Syscalls[0].Names[0] != "mount" {
		t.Errorf("ForCaps(SYS_ADMIN) = %+v, want only the mount rule", got.Syscalls)
	}
}
