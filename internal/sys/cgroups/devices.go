package cgroups

import (
	"fmt"
	"strconv"
	"strings"
)

// DeviceType is the kind of device a DeviceRule matches.
type DeviceType byte

// Device types, as the kernel spells them.
const (
	DeviceAll   DeviceType = 'a'
	DeviceChar  DeviceType = 'c'
	DeviceBlock DeviceType = 'b'
)

// Wildcard as a DeviceRule major or minor number matches every number.
const Wildcard int64 = -1

// DeviceRule allows or denies access to devices. A process's access is
// decided for each of r, w and m separately by the last rule that matches
// the device and names that access; with no such rule it is denied.
type DeviceRule struct {
	Allow bool
	Type  DeviceType
	// Major and Minor select the device; Wildcard matches any.
	Major, Minor int64
	// Access is a non-empty combination of "r" (read), "w" (write) and "m"
	// (mknod).
	Access string
}

// String formats the rule as cgroup v1's devices.allow and devices.deny take
// it: "c 1:3 rwm", "c 136:* rw", "a".
func (r DeviceRule) String() string {
	if r.Type == DeviceAll {
		return "a"
	}
	num := func(n int64) string {
		if n == Wildcard {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.Type, num(r.Major), num(r.Minor), r.Access)
}

func (r DeviceRule) validate() error {
	switch r.Type {
	case DeviceChar, DeviceBlock:
	case DeviceAll:
		// cgroup v1 can only express "a" for every device and access.
		if r.Major != Wildcard || r.Minor != Wildcard || !sameAccess(r.Access, "rwm") {
			return invalid("type a rule %q must match every device with access rwm", r.Access)
		}
	default:
		return invalid("device type %q: want a, c or b", rune(r.Type))
	}
	if r.Major < Wildcard || r.Minor < Wildcard || r.Major > 0xfff || r.Minor > 0xfffff {
		return invalid("device %d:%d out of range", r.Major, r.Minor)
	}
	if r.Access == "" || strings.Trim(r.Access, "rwm") != "" {
		return invalid("device access %q: want a combination of r, w and m", r.Access)
	}
	return nil
}

func sameAccess(a, b string) bool {
	return accessBits(a) == accessBits(b)
}

// accessBits maps an access string to the kernel's BPF_DEVCG_ACC_* bits.
func accessBits(access string) uint32 {
	var bits uint32
	for _, c := range access {
		switch c {
		case 'm':
			bits |= accMknod
		case 'r':
			bits |= accRead
		case 'w':
			bits |= accWrite
		}
	}
	return bits
}

// Access bits and device types of struct bpf_cgroup_dev_ctx.
const (
	accMknod = 1
	accRead  = 2
	accWrite = 4

	devBlock = 1
	devChar  = 2
)

// DefaultDevices returns the device rules container runtimes (Docker, runc,
// containerd) give a container by default: mknod of any device, and read,
// write and mknod of /dev/null, zero, full, random, urandom, tty, console,
// ptmx and the pseudo-terminals under /dev/pts. /dev/fuse and /dev/net/tun
// are not included; add them for workloads that need them. The caller owns
// the returned slice.
func DefaultDevices() []DeviceRule {
	allow := func(t DeviceType, major, minor int64, access string) DeviceRule {
		return DeviceRule{Allow: true, Type: t, Major: major, Minor: minor, Access: access}
	}
	return []DeviceRule{
		allow(DeviceChar, Wildcard, Wildcard, "m"),
		allow(DeviceBlock, Wildcard, Wildcard, "m"),
		allow(DeviceChar, 1, 3, "rwm"),          // /dev/null
		allow(DeviceChar, 1, 5, "rwm"),          // /dev/zero
		allow(DeviceChar, 1, 7, "rwm"),          // /dev/full
		allow(DeviceChar, 1, 8, "rwm"),          // /dev/random
		allow(DeviceChar, 1, 9, "rwm"),          // /dev/urandom
		allow(DeviceChar, 5, 0, "rwm"),          // /dev/tty
		allow(DeviceChar, 5, 1, "rwm"),          // /dev/console
		allow(DeviceChar, 5, 2, "rwm"),          // /dev/ptmx
		allow(DeviceChar, 136, Wildcard, "rwm"), // /dev/pts/*
	}
}
