package framework

import (
	"context"
	"math"
	"sync"
)

// DefaultParallelism is how many goroutines run filters and scores when
// a Parallelizer is not told otherwise (upstream's default).
const DefaultParallelism = 16

// Parallelizer runs independent pieces of work on several goroutines. The
// zero value uses DefaultParallelism.
type Parallelizer struct {
	// Parallelism is the number of goroutines; 0 means
	// DefaultParallelism.
	Parallelism int
}

// chunkSize balances the cost of handing out work against uneven
// pieces, as upstream does: about the square root of the work per
// worker.
func chunkSize(pieces, workers int) int {
	s := int(math.Sqrt(float64(pieces)))
	if r := pieces/workers + 1; r < s {
		s = r
	}
	if s < 1 {
		s = 1
	}
	return s
}

// Until runs do(i) for i in [0, pieces), on up to Parallelism goroutines,
// and returns when all calls have returned or ctx is done (then some
// pieces may not have run). do must be safe for concurrent use.
func (p Parallelizer) Until(ctx context.Context, pieces int, do func(i int)) {
	if pieces == 0 {
		return
	}
	workers := p.Parallelism
	if workers <= 0 {
		workers = DefaultParallelism
	}
	chunk := chunkSize(pieces, workers)
	chunks := (pieces + chunk - 1) / chunk
	if workers > chunks {
		workers = chunks
	}
	if workers == 1 {
		for i := 0; i < pieces && ctx.Err() == nil; i++ {
			do(i)
		}
		return
	}
	next := make(chan int, chunks)
	for c := 0; c < chunks; c++ {
		next <- c * chunk
	}
	close(next)
	var wg sync.WaitGroup
	wg.Add(workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer wg.Done()
			for start := range next {
				if ctx.Err() != nil {
					return
				}
				end := min(start+chunk, pieces)
				for i := start; i < end; i++ {
					do(i)
				}
			}
		}()
	}
	wg.Wait()
}

// errOnce keeps the first error set by concurrent workers.
type errOnce struct {
	mu  sync.Mutex
	err error // guarded by mu
}

func (e *errOnce) set(err error) {
	e.mu.Lock()
	if e.err == nil {
		e.err = err
	}
	e.mu.Unlock()
}

func (e *errOnce) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}
