package cgroups

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf/asm"
)

// runDeviceProgram interprets the few instructions deviceProgram emits, so
// the rules' meaning can be checked without a kernel (the root tests load
// the same programs into one).
func runDeviceProgram(t *testing.T, insns asm.Instructions, typ, access, major, minor uint32) bool {
	t.Helper()
	ctx := [3]uint32{access<<16 | typ, major, minor}
	var r [11]uint64
	for pc, steps := 0, 0; ; steps++ {
		if pc < 0 || pc >= len(insns) || steps > 100000 {
			t.Fatalf("program ran off at pc %d after %d steps", pc, steps)
		}
		ins := insns[pc]
		pc++
		op := ins.OpCode
		switch {
		case op.Class() == asm.LdXClass:
			if ins.Src != asm.R1 || ins.Offset%4 != 0 {
				t.Fatalf("unexpected load %v", ins)
			}
			r[ins.Dst] = uint64(ctx[ins.Offset/4])
		case op.Class() == asm.ALUClass:
			src := uint64(uint32(ins.Constant))
			if op.Source() == asm.RegSource {
				src = r[ins.Src]
			}
			switch op.ALUOp() {
			case asm.Mov:
				r[ins.Dst] = uint64(uint32(src))
			case asm.And:
				r[ins.Dst] = uint64(uint32(r[ins.Dst] & src))
			case asm.RSh:
				r[ins.Dst] = uint64(uint32(r[ins.Dst]) >> src)
			default:
				t.Fatalf("unexpected ALU op %v", ins)
			}
		case op.Class() == asm.JumpClass:
			switch op.JumpOp() {
			case asm.Exit:
				return r[asm.R0] == 1
			case asm.Ja:
				pc += int(ins.Offset)
			case asm.JEq:
				if r[ins.Dst] == uint64(ins.Constant) {
					pc += int(ins.Offset)
				}
			case asm.JNE:
				if r[ins.Dst] != uint64(ins.Constant) {
					pc += int(ins.Offset)
				}
			default:
				t.Fatalf("unexpected jump %v", ins)
			}
		default:
			t.Fatalf("unexpected instruction %v", ins)
		}
	}
}

// access describes one device access for the table tests.
type access struct {
	typ          DeviceType
	major, minor uint32
	acc          string
}

func (a access) String() string { return fmt.Sprintf("%c_%d:%d_%s", a.typ, a.major, a.minor, a.acc) }

func TestDeviceProgram_DecidesLikeOrderedRules(t *testing.T) {
	allow := func(typ DeviceType, major, minor int64, acc string) DeviceRule {
		return DeviceRule{Allow: true, Type: typ, Major: major, Minor: minor, Access: acc}
	}
	deny := func(typ DeviceType, major, minor int64, acc string) DeviceRule {
		return DeviceRule{Type: typ, Major: major, Minor: minor, Access: acc}
	}
	all := DeviceRule{Type: DeviceAll, Major: Wildcard, Minor: Wildcard, Access: "rwm"}
	allowAll := all
	allowAll.Allow = true
	for _, tc := range []struct {
		name  string
		rules []DeviceRule
		want  map[access]bool
	}{
		{"default_devices", DefaultDevices(), map[access]bool{
			{DeviceChar, 1, 3, "rw"}:   true,  // /dev/null
			{DeviceChar, 1, 9, "r"}:    true,  // /dev/urandom
			{DeviceChar, 136, 7, "rw"}: true,  // /dev/pts/7
			{DeviceChar, 5, 2, "rw"}:   true,  // /dev/ptmx
			{DeviceChar, 10, 229, "m"}: true,  // mknod anything
			{DeviceBlock, 8, 0, "m"}:   true,  //
			{DeviceChar, 10, 229, "r"}: false, // /dev/fuse
			{DeviceBlock, 8, 0, "r"}:   false, // /dev/sda
			{DeviceBlock, 1, 3, "rw"}:  false, // block, not char
			{DeviceChar, 1, 3, "rwm"}:  true,
			{DeviceChar, 4, 1, "w"}:    false, // /dev/tty1
		}},
		{"nothing_allowed", nil, map[access]bool{
			{DeviceChar, 1, 3, "r"}: false,
			{DeviceChar, 1, 3, "m"}: false,
		}},
		{"deny_all_rule", []DeviceRule{all}, map[access]bool{
			{DeviceChar, 1, 3, "r"}: false,
		}},
		{"allow_all_then_deny_one", []DeviceRule{allowAll, deny(DeviceChar, 1, 5, "w")}, map[access]bool{
			{DeviceChar, 1, 5, "r"}:  true,
			{DeviceChar, 1, 5, "w"}:  false,
			{DeviceChar, 1, 5, "rw"}: false, // one denied bit denies the access
			{DeviceBlock, 8, 0, "w"}: true,
		}},
		{"later_rule_wins", []DeviceRule{deny(DeviceChar, 1, 3, "rwm"), allow(DeviceChar, 1, 3, "r")}, map[access]bool{
			{DeviceChar, 1, 3, "r"}: true,
			{DeviceChar, 1, 3, "w"}: false,
		}},
		{"partial_deny_after_allow", []DeviceRule{allow(DeviceChar, Wildcard, Wildcard, "rwm"), deny(DeviceChar, 1, Wildcard, "w")}, map[access]bool{
			{DeviceChar, 1, 3, "r"}:  true,
			{DeviceChar, 1, 3, "rw"}: false,
			{DeviceChar, 2, 3, "rw"}: true,
		}},
		{"needs_every_requested_bit", []DeviceRule{allow(DeviceChar, 1, 3, "r")}, map[access]bool{
			{DeviceChar, 1, 3, "r"}:  true,
			{DeviceChar, 1, 3, "rw"}: false,
		}},
		{"wildcard_major", []DeviceRule{allow(DeviceBlock, Wildcard, 0, "r")}, map[access]bool{
			{DeviceBlock, 8, 0, "r"}: true,
			{DeviceBlock, 8, 1, "r"}: false,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			insns, err := deviceProgram(tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			for a, want := range tc.want {
				typ := uint32(devChar)
				if a.typ == DeviceBlock {
					typ = devBlock
				}
				if got := runDeviceProgram(t, insns, typ, accessBits(a.acc), a.major, a.minor); got != want {
					t.Errorf("%v: allowed=%v, want %v", a, got, want)
				}
			}
		})
	}
}

func TestDeviceProgram_GoldenListing(t *testing.T) {
	insns, err := deviceProgram(DefaultDevices())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "device-program-default", fmt.Sprint(insns))
}

func TestDeviceProgram_RejectsBadRules(t *testing.T) {
	_, err := deviceProgram([]DeviceRule{{Allow: true, Type: DeviceChar, Major: 1, Minor: 3, Access: "q"}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "rule 0") {
		t.Errorf("err = %v, want ErrInvalid naming rule 0", err)
	}
}
