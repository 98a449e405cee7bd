package openapi

import (
	"os"
	"testing"
	"time"
)

func TestScratchDump(t *testing.T) {
	start := time.Now()
	s, err := New(skiffResources(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("New: %v defs=%d docs=%v", time.Since(start), len(s.model.defs), s.model.keys)
	start = time.Now()
	rep, err := s.v2.json.get()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("v2 json: %v %d bytes", time.Since(start), len(rep.body))
	os.WriteFile("/tmp/oa/v2.json", rep.body, 0o644)
	start = time.Now()
	p, err := s.v2.proto.get()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("v2 proto: %v %d bytes", time.Since(start), len(p.body))
	start = time.Now()
	for _, k := range s.model.keys {
		r, err := s.v3[k].json.get()
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll("/tmp/oa/v3/"+k, 0o755)
		os.WriteFile("/tmp/oa/v3/"+k+"/doc.json", r.body, 0o644)
	}
	t.Logf("v3 json all: %v", time.Since(start))
	start = time.Now()
	for _, k := range s.model.keys {
		if _, err := s.v3[k].proto.get(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("v3 proto all: %v", time.Since(start))
	idx, _ := s.v3Index.json.get()
	os.WriteFile("/tmp/oa/index.json", idx.body, 0o644)
}
