package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Action is what a filter does with a syscall, spelled as in OCI and
// Docker profiles.
type Action string

// The actions a Profile can name.
const (
	ActAllow       Action = "SCMP_ACT_ALLOW"
	ActErrno       Action = "SCMP_ACT_ERRNO"
	ActKill        Action = "SCMP_ACT_KILL"
	ActKillThread  Action = "SCMP_ACT_KILL_THREAD"
	ActKillProcess Action = "SCMP_ACT_KILL_PROCESS"
	ActTrap        Action = "SCMP_ACT_TRAP"
	ActLog         Action = "SCMP_ACT_LOG"
)

// Op compares a syscall argument with a value.
type Op string

// The comparisons a Profile can name.
const (
	OpEqual        Op = "SCMP_CMP_EQ"
	OpNotEqual     Op = "SCMP_CMP_NE"
	OpLess         Op = "SCMP_CMP_LT"
	OpLessEqual    Op = "SCMP_CMP_LE"
	OpGreater      Op = "SCMP_CMP_GT"
	OpGreaterEqual Op = "SCMP_CMP_GE"
	OpMaskedEqual  Op = "SCMP_CMP_MASKED_EQ"
)

// ErrInvalid is returned (wrapped) for a profile that cannot be compiled:
// an unknown action or operator, a bad argument index, or a program too
// long for the kernel.
var ErrInvalid = errors.New("invalid seccomp profile")

// Profile is a seccomp profile in the OCI/Docker JSON shape.
type Profile struct {
	DefaultAction   Action    `json:"defaultAction"`
	DefaultErrnoRet *uint     `json:"defaultErrnoRet,omitempty"`
	Architectures   []string  `json:"architectures,omitempty"`
	Syscalls        []Syscall `json:"syscalls,omitempty"`
}

// Syscall is one rule: the named syscalls get Action when every Arg
// condition holds.
type Syscall struct {
	Names    []string `json:"names"`
	Action   Action   `json:"action"`
	ErrnoRet *uint    `json:"errnoRet,omitempty"`
	Args     []Arg    `json:"args,omitempty"`
	// Includes and Excludes are Docker's filters: the rule applies only
	// when the container holds all of Includes.Caps and none of
	// Excludes.Caps.
	Includes *Filter `json:"includes,omitempty"`
	Excludes *Filter `json:"excludes,omitempty"`
}

// Filter selects rules by the container's capabilities.
type Filter struct {
	Caps []string `json:"caps,omitempty"`
}

// Arg is a condition on one syscall argument.
type Arg struct {
	Index    uint   `json:"index"`
	Value    uint64 `json:"value"`
	ValueTwo uint64 `json:"valueTwo,omitempty"`
	Op       Op     `json:"op"`
}

// Parse reads a profile from JSON (a Localhost profile file, for example).
func Parse(data []byte) (*Profile, error) {
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("%w: no defaultAction", ErrInvalid)
	}
	return &p, nil
}

// ForCaps returns p with Docker's includes/excludes filters resolved
// against the capability names the container holds, so that the result
// has no filters left.
func (p *Profile) ForCaps(capNames []string) *Profile {
	out := *p
	out.Syscalls = nil
	has := func(c string) bool { return slices.Contains(capNames, c) }
	for _, s := range p.Syscalls {
		ok := true
		if s.Includes != nil {
			for _, c := range s.Includes.Caps {
				ok = ok && has(c)
			}
		}
		if s.Excludes != nil {
			for _, c := range s.Excludes.Caps {
				ok = ok && !has(c)
			}
		}
		if ok {
			s.Includes, s.Excludes = nil, nil
			out.Syscalls = append(out.Syscalls, s)
		}
	}
	return &out
}
