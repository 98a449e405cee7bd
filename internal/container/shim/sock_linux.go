package shim

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The monitor's sockets are raw unix sockets wrapped in *os.File (which
// the Go poller serves as it serves net.Conn) rather than the net
// package: this package is initialized early in every helper process (see
// doc.go), and net would pull in a long tail of packages before it.

// listenUnix listens on the unix socket name (relative to the working
// directory), replacing a stale one.
func listenUnix(name string) (*os.File, error) {
	os.Remove(name)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", name, err)
	}
	if err := unix.Listen(fd, 128); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// accept waits for a connection on ln; it fails once ln is closed.
func accept(ln *os.File) (*os.File, error) {
	rc, err := ln.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		for {
			nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
			if aerr != unix.EINTR && aerr != unix.ECONNABORTED {
				return aerr != unix.EAGAIN
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, aerr
	}
	return os.NewFile(uintptr(nfd), "conn"), nil
}

// dialUnix connects to the unix socket at addr.
func dialUnix(addr string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: addr}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), addr), nil
}

// sendMsg writes data with the descriptors fds attached.
func sendMsg(f *os.File, data []byte, fds []int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), data, unix.UnixRights(fds...), nil, 0)
		return serr != unix.EAGAIN
	})
	return errors.Join(err, serr)
}

// recvMsg reads one message and the descriptors attached to it.
func recvMsg(f *os.File, buf []byte) (int, []*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return 0, nil, err
	}
	oob := make([]byte, unix.CmsgSpace(4*8))
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, nil, err
	}
	if rerr != nil {
		return 0, nil, rerr
	}
	var files []*os.File
	if oobn > 0 {
		files = parseRights(oob[:oobn])
	}
	return n, files, nil
}

// waitExit blocks until the process pid exits (without reaping it).
func waitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		return err != nil || n > 0
	})
}

// ignoreSignals makes the process ignore sigs (the kernel's SIG_IGN).
// Children inherit that across exec; inits undo it (resetIgnoredSignals).
func ignoreSignals(sigs ...unix.Signal) {
	for _, sig := range sigs {
		act := sigaction{handler: sigIgnore}
		unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptrOf(&act), 0, 8, 0, 0)
	}
}
