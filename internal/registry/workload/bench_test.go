package workload

import (
	"context"
	"encoding/json"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// BenchmarkDeployment_DefaultValidate measures what a create of a typical
// Deployment costs in this package: Default then Validate on a fresh copy.
// Its peer, BenchmarkDeployment_DecodeJSON, decodes the same manifest from
// JSON, which every create pays anyway; compare the two as a ratio.
//
//	go test -run '^$' -bench 'Deployment_' -benchmem ./internal/registry/workload/
func BenchmarkDeployment_DefaultValidate(b *testing.B) {
	r := lookup(b, "deployments")
	src := typicalDeployment()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d := src.DeepCopy()
		r.Default(d)
		if errs := r.Validate(ctx, d); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

func BenchmarkDeployment_DecodeJSON(b *testing.B) {
	raw, err := json.Marshal(typicalDeployment())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		var d appsv1.Deployment
		if err := json.Unmarshal(raw, &d); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPod_CreateHooks: PrepareForCreate, Default and Validate of the
// pod a Deployment's replica set creates.
func BenchmarkPod_CreateHooks(b *testing.B) {
	r := lookup(b, "pods")
	d := typicalDeployment()
	DefaultDeployment(d)
	src := basicPod()
	src.Spec = d.Spec.Template.Spec
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		p := src.DeepCopy()
		r.PrepareForCreate(ctx, p)
		r.Default(p)
		if errs := r.Validate(ctx, p); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}
