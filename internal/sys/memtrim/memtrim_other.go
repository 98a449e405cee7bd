//go:build !linux

package memtrim

import "errors"

func pageout(addr, length uintptr) error {
	return errors.New("memtrim: not supported on this platform")
}

func dontneed(addr, length uintptr) error {
	return errors.New("memtrim: not supported on this platform")
}
