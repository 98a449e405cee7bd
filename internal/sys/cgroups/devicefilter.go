package cgroups

import (
	"fmt"
	"math"
	"slices"

	"github.com/cilium/ebpf/asm"
)

// deviceProgram compiles device rules into a BPF_PROG_TYPE_CGROUP_DEVICE
// program: it returns 1 to allow the access in its context, 0 to deny it.
//
// The kernel passes struct bpf_cgroup_dev_ctx { u32 access_type; u32 major;
// u32 minor; }, where access_type holds the device type in its low 16 bits
// and the requested access bits (mknod, read, write) in its high 16 bits.
// One access can request several bits (open for read and write asks for
// both); it is allowed only if every requested bit is. For each bit, the
// program walks the rules that name that bit from last to first and lets
// the first one matching the device decide; when none matches, the bit is
// denied. That is the meaning of an ordered rule list on top of "deny all".
//
// Layout of the program:
//
//	r2 = access_type; r3 = type; r4 = access bits; r5 = major; r6 = minor
//	for each bit b in m, r, w:
//	    if r4 & b == 0: goto next_b
//	    for each rule naming b, last first:
//	        if type/major/minor differ: goto next_rule
//	        goto (allow ? next_b : deny)
//	    goto deny
//	next_b: ...
//	r0 = 1; exit
//	deny: r0 = 0; exit
func deviceProgram(rules []DeviceRule) (asm.Instructions, error) {
	for i, r := range rules {
		if err := r.validate(); err != nil {
			return nil, fmt.Errorf("device rule %d: %w", i, err)
		}
	}
	var a assembler
	a.emit(asm.LoadMem(asm.R2, asm.R1, 0, asm.Word))
	a.emit(asm.Mov.Reg32(asm.R3, asm.R2))
	a.emit(asm.And.Imm32(asm.R3, 0xffff))
	a.emit(asm.Mov.Reg32(asm.R4, asm.R2))
	a.emit(asm.RSh.Imm32(asm.R4, 16))
	a.emit(asm.LoadMem(asm.R5, asm.R1, 4, asm.Word))
	a.emit(asm.LoadMem(asm.R6, asm.R1, 8, asm.Word))
	for _, bit := range []uint32{accMknod, accRead, accWrite} {
		next := fmt.Sprintf("after_bit_%d", bit)
		a.emit(asm.Mov.Reg32(asm.R7, asm.R4))
		a.emit(asm.And.Imm32(asm.R7, int32(bit)))
		a.jump(asm.JEq.Imm(asm.R7, 0, ""), next)
		decided := false
		for i, r := range slices.Backward(rules) {
			if accessBits(r.Access)&bit == 0 {
				continue
			}
			skip := fmt.Sprintf("bit_%d_rule_%d_next", bit, i)
			if r.Type != DeviceAll {
				typ := int32(devChar)
				if r.Type == DeviceBlock {
					typ = devBlock
				}
				a.jump(asm.JNE.Imm(asm.R3, typ, ""), skip)
			}
			if r.Major != Wildcard {
				a.jump(asm.JNE.Imm(asm.R5, int32(r.Major), ""), skip)
			}
			if r.Minor != Wildcard {
				a.jump(asm.JNE.Imm(asm.R6, int32(r.Minor), ""), skip)
			}
			if r.Allow {
				a.jump(asm.Ja.Label(""), next)
			} else {
				a.jump(asm.Ja.Label(""), "deny")
			}
			a.label(skip)
			if r.Type == DeviceAll {
				// Matches everything: the rules before it never decide,
				// and the verifier rejects code that cannot run.
				decided = true
				break
			}
		}
		if !decided {
			a.jump(asm.Ja.Label(""), "deny")
		}
		a.label(next)
	}
	a.emit(asm.Mov.Imm32(asm.R0, 1))
	a.emit(asm.Return())
	if a.used("deny") {
		a.label("deny")
		a.emit(asm.Mov.Imm32(asm.R0, 0))
		a.emit(asm.Return())
	}
	return a.assemble()
}

// assembler resolves jumps to labels by instruction index, which lets
// several labels name the same instruction.
type assembler struct {
	insns   asm.Instructions
	targets map[int]string // instruction index -> label it jumps to
	labels  map[string]int // label -> index of the instruction it names
}

func (a *assembler) emit(ins asm.Instruction) { a.insns = append(a.insns, ins) }

func (a *assembler) jump(ins asm.Instruction, label string) {
	if a.targets == nil {
		a.targets = make(map[int]string)
	}
	a.targets[len(a.insns)] = label
	a.emit(ins)
}

func (a *assembler) label(name string) {
	if a.labels == nil {
		a.labels = make(map[string]int)
	}
	a.labels[name] = len(a.insns)
}

func (a *assembler) used(label string) bool {
	for _, l := range a.targets {
		if l == label {
			return true
		}
	}
	return false
}

func (a *assembler) assemble() (asm.Instructions, error) {
	out := slices.Clone(a.insns)
	for i, label := range a.targets {
		to, ok := a.labels[label]
		if !ok || to >= len(out) {
			return nil, fmt.Errorf("device program: jump to undefined label %q", label)
		}
		off := to - (i + 1)
		if off < 0 || off > math.MaxInt16 {
			return nil, fmt.Errorf("device program: too many rules (jump of %d): %w", off, ErrInvalid)
		}
		// The label was only ours; the kernel needs the offset.
		out[i] = out[i].WithReference("")
		out[i].Offset = int16(off)
	}
	return out, nil
}
