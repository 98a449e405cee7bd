package seccomp

import (
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// Kernel return values of a filter.
const (
	retKillProcess = 0x80000000
	retKillThread  = 0x00000000
	retTrap        = 0x00030000
	retErrno       = 0x00050000
	retLog         = 0x7ffc0000
	retAllow       = 0x7fff0000
)

// seccomp_data offsets.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

// maxInstructions is the kernel's limit on a filter's length.
const maxInstructions = 4096

// Program is a compiled filter, ready for Load.
type Program []unix.SockFilter

// ret returns the kernel value for action a.
func ret(a Action, errno *uint, fallbackErrno uint) (uint32, error) {
	switch a {
	case ActAllow:
		return retAllow, nil
	case ActErrno:
		e := fallbackErrno
		if errno != nil {
			e = *errno
		}
		return retErrno | uint32(e&0xffff), nil
	case ActKill, ActKillThread:
		return retKillThread, nil
	case ActKillProcess:
		return retKillProcess, nil
	case ActTrap:
		return retTrap, nil
	case ActLog:
		return retLog, nil
	}
	return 0, fmt.Errorf("%w: unsupported action %q", ErrInvalid, a)
}

// rule is one Syscall entry, resolved to a return value.
type rule struct {
	ret  uint32
	args []Arg
}

// asm assembles a program with labels. Conditional jumps only ever skip
// one instruction; jumps to labels are "ja", whose 32-bit offset reaches
// anywhere, so programs of any size assemble.
type asm struct {
	prog   []unix.SockFilter
	labels map[int]int // label -> instruction index
	fixups map[int]int // instruction index -> label
	next   int
}

func newAsm() *asm { return &asm{labels: map[int]int{}, fixups: map[int]int{}} }

func (a *asm) newLabel() int { a.next++; return a.next }

func (a *asm) mark(l int) { a.labels[l] = len(a.prog) }

func (a *asm) stmt(code uint16, k uint32) {
	a.prog = append(a.prog, unix.SockFilter{Code: code, K: k})
}

// jumpIf emits "if (A <op> k) goto l" where op is BPF_JEQ, BPF_JGT or
// BPF_JGE (or BPF_JSET), or the negation when not is true.
func (a *asm) jumpIf(op uint16, k uint32, not bool, l int) {
	// Condition true: fall through to the ja; false: skip it.
	jt, jf := uint8(0), uint8(1)
	if not {
		jt, jf = 1, 0
	}
	a.prog = append(a.prog, unix.SockFilter{Code: unix.BPF_JMP | op | unix.BPF_K, Jt: jt, Jf: jf, K: k})
	a.jump(l)
}

func (a *asm) jump(l int) {
	a.fixups[len(a.prog)] = l
	a.prog = append(a.prog, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JA})
}

func (a *asm) ret(k uint32) { a.stmt(unix.BPF_RET|unix.BPF_K, k) }

func (a *asm) load(off uint32) { a.stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }

func (a *asm) finish() (Program, error) {
	for at, l := range a.fixups {
		to, ok := a.labels[l]
		if !ok {
			return nil, fmt.Errorf("%w: internal error: unbound label", ErrInvalid)
		}
		a.prog[at].K = uint32(to - at - 1)
	}
	if len(a.prog) > maxInstructions {
		return nil, fmt.Errorf("%w: %d instructions, more than the kernel's %d", ErrInvalid, len(a.prog), maxInstructions)
	}
	return Program(a.prog), nil
}

// Compile turns p into a filter for the running architecture. Syscall
// names the architecture does not have are ignored, as libseccomp does.
// Rules for one syscall are tried in the order p lists them.
func Compile(p *Profile) (Program, error) {
	fallback := uint(unix.EPERM)
	if p.DefaultErrnoRet != nil {
		fallback = *p.DefaultErrnoRet
	}
	def, err := ret(p.DefaultAction, p.DefaultErrnoRet, fallback)
	if err != nil {
		return nil, fmt.Errorf("default action: %w", err)
	}
	plain := map[uint32]uint32{} // syscall -> action, for rules without args
	cond := map[uint32][]rule{}  // syscall -> rules with args, in order
	for _, s := range p.Syscalls {
		r, err := ret(s.Action, s.ErrnoRet, fallback)
		if err != nil {
			return nil, fmt.Errorf("syscalls %v: %w", s.Names, err)
		}
		for _, a := range s.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("%w: syscalls %v: argument index %d", ErrInvalid, s.Names, a.Index)
			}
			switch a.Op {
			case OpEqual, OpNotEqual, OpLess, OpLessEqual, OpGreater, OpGreaterEqual, OpMaskedEqual:
			default:
				return nil, fmt.Errorf("%w: syscalls %v: operator %q", ErrInvalid, s.Names, a.Op)
			}
		}
		for _, name := range s.Names {
			nr, ok := syscallNumbers[name]
			if !ok {
				continue
			}
			if len(s.Args) == 0 {
				if _, dup := plain[nr]; !dup {
					plain[nr] = r
				}
				continue
			}
			cond[nr] = append(cond[nr], rule{ret: r, args: s.Args})
		}
	}

	a := newAsm()
	deflt := a.newLabel()
	a.load(offArch)
	a.jumpIf(unix.BPF_JEQ, nativeArch, true, deflt)
	a.load(offNr)
	if x32Bit != 0 {
		a.jumpIf(unix.BPF_JGE, x32Bit, false, deflt)
	}

	// Syscalls with argument rules first, each to its own block.
	condNrs := make([]uint32, 0, len(cond))
	for nr := range cond {
		condNrs = append(condNrs, nr)
	}
	sort.Slice(condNrs, func(i, j int) bool { return condNrs[i] < condNrs[j] })
	blocks := map[uint32]int{}
	for _, nr := range condNrs {
		blocks[nr] = a.newLabel()
		a.jumpIf(unix.BPF_JEQ, nr, false, blocks[nr])
	}

	// The rest: a binary search over runs of numbers with one action.
	type span struct{ lo, hi, ret uint32 }
	var nrs []uint32
	for nr := range plain {
		if _, c := cond[nr]; !c {
			nrs = append(nrs, nr)
		}
	}
	sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })
	var spans []span
	for _, nr := range nrs {
		if n := len(spans); n > 0 && spans[n-1].hi+1 == nr && spans[n-1].ret == plain[nr] {
			spans[n-1].hi = nr
			continue
		}
		spans = append(spans, span{nr, nr, plain[nr]})
	}
	var search func(s []span)
	search = func(s []span) {
		if len(s) == 0 {
			a.jump(deflt)
			return
		}
		mid := len(s) / 2
		m := s[mid]
		ge, above := a.newLabel(), a.newLabel()
		a.jumpIf(unix.BPF_JGE, m.lo, false, ge)
		search(s[:mid])
		a.mark(ge)
		a.jumpIf(unix.BPF_JGT, m.hi, false, above)
		a.ret(m.ret)
		a.mark(above)
		search(s[mid+1:])
	}
	search(spans)

	for _, nr := range condNrs {
		a.mark(blocks[nr])
		for _, r := range cond[nr] {
			nextRule := a.newLabel()
			for _, arg := range r.args {
				emitArg(a, arg, nextRule)
			}
			a.ret(r.ret)
			a.mark(nextRule)
		}
		// No rule matched: the syscall's plain action if it has one.
		if pr, ok := plain[nr]; ok {
			a.ret(pr)
		} else {
			a.jump(deflt)
		}
	}

	a.mark(deflt)
	a.ret(def)
	return a.finish()
}

// emitArg emits code that falls through when arg's condition holds and
// jumps to fail otherwise. It clobbers A.
func emitArg(a *asm, arg Arg, fail int) {
	lo := uint32(offArgs + 8*arg.Index)
	hi := lo + 4 // little endian: the high word follows
	v := arg.Value
	switch arg.Op {
	case OpEqual, OpMaskedEqual:
		mask := ^uint64(0)
		if arg.Op == OpMaskedEqual {
			mask, v = arg.Value, arg.ValueTwo
		}
		a.load(hi)
		a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, uint32(mask>>32))
		a.jumpIf(unix.BPF_JEQ, uint32(v>>32), true, fail)
		a.load(lo)
		a.stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, uint32(mask))
		a.jumpIf(unix.BPF_JEQ, uint32(v), true, fail)
	case OpNotEqual:
		pass := a.newLabel()
		a.load(hi)
		a.jumpIf(unix.BPF_JEQ, uint32(v>>32), true, pass)
		a.load(lo)
		a.jumpIf(unix.BPF_JEQ, uint32(v), false, fail)
		a.mark(pass)
	case OpGreater, OpGreaterEqual, OpLess, OpLessEqual:
		// Compare the high words; only when they are equal do the low
		// words decide.
		pass := a.newLabel()
		greater := arg.Op == OpGreater || arg.Op == OpGreaterEqual
		a.load(hi)
		if greater {
			a.jumpIf(unix.BPF_JGT, uint32(v>>32), false, pass)
			a.jumpIf(unix.BPF_JEQ, uint32(v>>32), true, fail)
		} else {
			a.jumpIf(unix.BPF_JGE, uint32(v>>32), true, pass) // hi < v.hi
			a.jumpIf(unix.BPF_JEQ, uint32(v>>32), true, fail) // hi > v.hi
		}
		a.load(lo)
		switch arg.Op {
		case OpGreater:
			a.jumpIf(unix.BPF_JGT, uint32(v), true, fail)
		case OpGreaterEqual:
			a.jumpIf(unix.BPF_JGE, uint32(v), true, fail)
		case OpLess:
			a.jumpIf(unix.BPF_JGE, uint32(v), false, fail)
		case OpLessEqual:
			a.jumpIf(unix.BPF_JGT, uint32(v), false, fail)
		}
		a.mark(pass)
	}
}
