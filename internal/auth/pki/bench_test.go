package pki

import (
	"crypto/rand"
	"crypto/rsa"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkEnsure measures a first start (everything created) against a
// later start (everything loaded and checked).
func BenchmarkEnsure(b *testing.B) {
	b.Run("first-run", func(b *testing.B) {
		root := b.TempDir()
		i := 0
		for b.Loop() {
			i++
			if _, err := Ensure(Config{Dir: filepath.Join(root, strconv.Itoa(i))}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reuse", func(b *testing.B) {
		dir := b.TempDir()
		if _, err := Ensure(Config{Dir: dir}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := Ensure(Config{Dir: dir}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkIssueClient measures issuing a client certificate (new ECDSA
// P-256 key and signature); its peer is generating an RSA 2048 key alone.
func BenchmarkIssueClient(b *testing.B) {
	bundle, err := Ensure(Config{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("ecdsa-p256-issue", func(b *testing.B) {
		for b.Loop() {
			if _, err := bundle.CA.IssueClient("system:node:n", []string{"system:nodes"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rsa-2048-keygen-peer", func(b *testing.B) {
		for b.Loop() {
			if _, err := rsa.GenerateKey(rand.Reader, 2048); err != nil {
				b.Fatal(err)
			}
		}
	})
}
