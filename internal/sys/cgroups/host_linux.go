package cgroups

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// detectLayout reads the hierarchies this process sees from its mount table.
func detectLayout() (Layout, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return Layout{}, fmt.Errorf("detect cgroup layout: %w", err)
	}
	defer f.Close()
	l, err := parseMountInfo(f)
	if err != nil {
		return Layout{}, fmt.Errorf("detect cgroup layout: %w", err)
	}
	return l, nil
}

// hostFS is fsOps on the real cgroup file systems.
type hostFS struct{}

func (hostFS) mkdir(dir string) error { return os.Mkdir(dir, 0o755) }

func (hostFS) rmdir(dir string) error {
	if err := unix.Rmdir(dir); err != nil {
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}

// writeFile writes an interface file with plain system calls: os.File
// would register every (pollable) cgroup file with the runtime's poller,
// which costs two more system calls per file.
func (hostFS) writeFile(name, data string) error {
	fd, err := unix.Open(name, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	// Interface files take one value per write(2); the kernel reports a
	// value it refuses as an error, never as a short write.
	for {
		_, err = unix.Write(fd, []byte(data))
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: name, Err: err}
	}
	return nil
}

// readSmall reads a whole (small) file with plain system calls, for the
// same reason as writeFile.
func readSmall(name string) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, &os.PathError{Op: "read", Path: name, Err: err}
		case n == 0:
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

func (hostFS) attachDevices(dir string, rules []DeviceRule) error {
	return attachDeviceProgram(dir, rules)
}

func killProcess(pid int) error { return unix.Kill(pid, unix.SIGKILL) }

// attachDeviceProgram loads the device program for rules and attaches it to
// the cgroup2 directory dir, then detaches the programs that were there
// before, so the new rules replace the old ones. The program stays attached
// after this process exits (it is not a link tied to a file descriptor); it
// goes away with the cgroup.
func attachDeviceProgram(dir string, rules []DeviceRule) error {
	insns, err := deviceProgram(rules)
	if err != nil {
		return err
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "skiff_devices",
		Type:         ebpf.CGroupDevice,
		Instructions: insns,
		License:      "Apache-2.0",
	})
	if err != nil {
		return fmt.Errorf("load device program: %w", err)
	}
	defer prog.Close()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	var old []ebpf.ProgramID
	if q, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice}); err == nil {
		for _, p := range q.Programs {
			old = append(old, p.ID)
		}
	}
	// With BPF_F_ALLOW_MULTI every attached program must allow an access,
	// so between this attach and the detaches below the old and new rules
	// both apply: no access slips through that either would deny.
	attach := link.RawAttachProgramOptions{Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI}
	if err := link.RawAttachProgram(attach); err != nil {
		// Someone attached a program without ALLOW_MULTI; attaching
		// without it replaces that one.
		attach.Flags = 0
		if err2 := link.RawAttachProgram(attach); err2 != nil {
			return fmt.Errorf("attach device program to %s: %w", dir, err)
		}
		return nil
	}
	for _, id := range old {
		p, err := ebpf.NewProgramFromID(id)
		if err != nil {
			return fmt.Errorf("detach old device program %d from %s: %w", id, dir, err)
		}
		err = link.RawDetachProgram(link.RawDetachProgramOptions{Target: fd, Program: p, Attach: ebpf.AttachCGroupDevice})
		p.Close()
		if err != nil {
			return fmt.Errorf("detach old device program %d from %s: %w", id, dir, err)
		}
	}
	return nil
}
