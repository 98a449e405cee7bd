// Command forgetter calls memtrim.Forget and then needs the dynamic
// loader's work: it starts new threads (pthread_create, called through
// the GOT in a cgo binary). The memtrim tests build it externally linked
// with full RELRO, as skiff can be, and expect it to exit 0.
package main

import (
	"fmt"
	"net" // cgo, so that threads start through pthread_create
	"os"
	"runtime"
	"sync"

	"github.com/skiff-sh/skiff/internal/sys/memtrim"
)

var _ = net.IPv4len

func main() {
	st, err := memtrim.Forget()
	if err != nil {
		fmt.Fprintln(os.Stderr, "forget:", err)
		os.Exit(1)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// The thread dies with this goroutine, so the next one
			// needs a new thread.
			runtime.LockOSThread()
		}()
		wg.Wait()
	}
	fmt.Printf("forgot %d mappings\n", st.Mappings)
}
