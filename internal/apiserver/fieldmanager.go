package apiserver

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/client-go/applyconfigurations"
)

// newTypeConverter gives server-side apply the structural schema of every
// built-in type (list types, map keys, atomic fields), from the schemas
// client-go ships for its apply configurations.
func newTypeConverter(scheme *runtime.Scheme) (managedfields.TypeConverter, error) {
	return applyconfigurations.NewTypeConverter(scheme), nil
}

// defaulter adapts a Resource's Default hook to the field manager.
type defaulter func(runtime.Object)

func (d defaulter) Default(obj runtime.Object) {
	if d != nil {
		d(obj)
	}
}

// fieldManager returns the field manager for writes to ep's subresource
// ("" for the main resource).
func (s *Server) fieldManager(ep *endpoint, subresource string) (*managedfields.FieldManager, error) {
	ep.managers.mu.Lock()
	defer ep.managers.mu.Unlock()
	if fm, ok := ep.managers.entries[subresource]; ok {
		return fm, nil
	}
	tc, err := s.fieldTypeConverter()
	if err != nil {
		return nil, err
	}
	fm, err := managedfields.NewDefaultFieldManager(tc, s.cfg.Scheme, defaulter(ep.res.Default), s.cfg.Scheme,
		ep.gvk, ep.gvk.GroupVersion(), subresource, resetFields(ep.gvk.GroupVersion(), subresource))
	if err != nil {
		return nil, fmt.Errorf("field manager for %s: %w", ep.gr, err)
	}
	if ep.managers.entries == nil {
		ep.managers.entries = map[string]*managedfields.FieldManager{}
	}
	ep.managers.entries[subresource] = fm
	return fm, nil
}

// managerName is the field manager of a write: the fieldManager parameter,
// else the client's user agent up to the first "/", as upstream does.
func managerName(param, userAgent string) string {
	if param != "" {
		return param
	}
	name, _, _ := strings.Cut(userAgent, "/")
	if len(name) > 128 {
		name = name[:128]
	}
	if name == "" {
		return "unknown"
	}
	return name
}

// WarmUp parses the built-in apply schemas in the background, so that the
// first write does not wait for them. Call it as early as possible.
func WarmUp(scheme *runtime.Scheme) {
	go newTypeConverter(scheme)
}
