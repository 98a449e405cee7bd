package imageservice_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/skiff-sh/skiff/internal/testutil/testimage"
)

// BenchmarkImport imports one `docker save` archive of four 8 MiB layers
// that do not compress: directly into the store, and through the service
// (gRPC over a unix socket, as `skiff images import` does). The cost of the
// service reads as the ratio of the two. The image is removed
// and collected between iterations, outside the timer, so that every
// import does the whole work.
//
//	go test -run '^$' -bench Import -benchtime 10x ./internal/container/imageservice/
func BenchmarkImport(b *testing.B) {
	var layers []testimage.Layer
	for i := range 4 {
		data := make([]byte, 8<<20)
		rnd := rand.New(rand.NewChaCha8([32]byte{byte(i)}))
		for j := range data {
			data[j] = byte(rnd.Uint32())
		}
		layers = append(layers, testimage.Layer{Entries: []testimage.Entry{{Path: fmt.Sprintf("data/%d", i), Content: data}}})
	}
	img := testimage.Build(b, testimage.Spec{Layers: layers, Config: v1.Config{Cmd: []string{"/bin/true"}}})
	p := filepath.Join(b.TempDir(), "img.tar")
	img.WriteDockerArchive(b, p, "bench:1")
	archive, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	run := func(b *testing.B, h *harness, importOnce func() error) {
		b.SetBytes(int64(len(archive)))
		for b.Loop() {
			if err := importOnce(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if err := h.store.Remove(img.ID()); err != nil {
				b.Fatal(err)
			}
			if _, err := h.store.GC(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.Run("Direct", func(b *testing.B) {
		h := newHarness(b)
		run(b, h, func() error { _, err := h.store.Import(ctx, bytes.NewReader(archive), nil); return err })
	})
	b.Run("Service", func(b *testing.B) {
		h := newHarness(b)
		run(b, h, func() error { _, err := h.client.Import(ctx, bytes.NewReader(archive), nil); return err })
	})
}
