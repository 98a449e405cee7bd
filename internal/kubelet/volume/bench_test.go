package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"
)

// benchPayload is a configMap of 10 keys of 1 KB, version v.
func benchPayload(v int) payload {
	p := payload{}
	for i := range 10 {
		data := make([]byte, 1024)
		for j := range data {
			data[j] = byte('a' + (i+v+j)%26)
		}
		p[fmt.Sprintf("key-%d", i)] = file{Data: data, Mode: 0o644}
	}
	return p
}

// BenchmarkWriteAtomic rewrites a 10-file volume through the atomic
// writer (new data dir, symlink swap, old dir removed), against writing
// the same files in place with os.WriteFile as the peer. The second
// figure is the no-change path that every resync takes, against reading
// the files.
func BenchmarkWriteAtomic(b *testing.B) {
	dir, plain := b.TempDir(), b.TempDir()
	var atomic, peer, same, read []time.Duration
	v := 0
	for b.Loop() {
		v++
		p := benchPayload(v)
		start := time.Now()
		if changed, err := writeAtomic(dir, p, nil, time.Now()); err != nil || !changed {
			b.Fatal(changed, err)
		}
		atomic = append(atomic, time.Since(start))
		start = time.Now()
		for name, f := range p {
			if err := os.WriteFile(filepath.Join(plain, name), f.Data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
		peer = append(peer, time.Since(start))
		start = time.Now()
		if changed, err := writeAtomic(dir, p, nil, time.Now()); err != nil || changed {
			b.Fatal(changed, err)
		}
		same = append(same, time.Since(start))
		start = time.Now()
		for name := range p {
			if _, err := os.ReadFile(filepath.Join(plain, name)); err != nil {
				b.Fatal(err)
			}
		}
		read = append(read, time.Since(start))
	}
	med := func(d []time.Duration) float64 {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return float64(d[len(d)/2].Nanoseconds())
	}
	b.ReportMetric(med(atomic), "atomic-median-ns")
	b.ReportMetric(med(peer), "writefile-median-ns")
	b.ReportMetric(med(atomic)/med(peer), "write-ratio")
	b.ReportMetric(med(same), "unchanged-median-ns")
	b.ReportMetric(med(read), "readfile-median-ns")
	b.ReportMetric(med(same)/med(read), "unchanged-ratio")
}
