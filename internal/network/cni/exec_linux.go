package cni

import "github.com/skiff-sh/skiff/internal/sys/ns"

// execIn runs fn on a thread in the network namespace file netns, so the
// plugin processes fn starts are born there.
func execIn(netns string, fn func() ([]byte, error)) ([]byte, error) {
	var out []byte
	var err error
	if nerr := ns.Do(map[ns.Type]string{ns.Net: netns}, func() error {
		out, err = fn()
		return nil
	}); nerr != nil {
		return nil, nerr
	}
	return out, err
}
