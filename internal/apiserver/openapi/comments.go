package openapi

import "reflect"

// typeComments is what the source comments of an API type tell upstream's
// generator beyond the Go type: which fields are required, how lists and
// maps merge (server-side apply reads that from the schema) and literal
// defaults. Comments are gone at run time, so the table in
// zz_generated.comments.go keeps them for the packages it covers; a test
// regenerates it from the module sources and fails when it is stale.
type typeComments struct {
	structType string                   // +structType: the definition's x-kubernetes-map-type
	fields     map[string]fieldComments // by JSON name
}

// fieldComments are the comment tags of one field.
type fieldComments struct {
	optional    bool // +optional on a field without omitempty
	required    bool // +required on a field with omitempty
	listType    string
	listMapKeys []string
	mapType     string // +mapType, or +structType on the field
	defaultJSON string // +default, when a JSON literal
}

// commentsOf returns the comments of the named struct type t: known (from
// the table) when its package is covered.
func commentsOf(t reflect.Type) (c *typeComments, known bool) {
	if t.Name() == "" || !coveredPackage(t.PkgPath()) {
		return nil, false
	}
	c = upstreamComments(t.PkgPath() + "." + t.Name())
	if c == nil {
		c = &typeComments{}
	}
	return c, true
}

// isRequired tells whether a field is required. Upstream's generator marks
// a field required when its comment says +required, or when it has no
// omitempty and its comment does not say +optional. For covered types the
// table restores the comments and the rule is exact. For others it is
// approximated: fields without omitempty whose types are usually optional
// (pointers, slices, maps, bools) are left out, since marking too few only
// weakens client-side validation while marking too many would make kubectl
// reject valid objects.
func isRequired(f reflect.StructField, fc fieldComments, known, omitempty bool) bool {
	if known {
		switch {
		case fc.required:
			return true
		case fc.optional:
			return false
		}
		return !omitempty
	}
	if omitempty {
		return false
	}
	switch f.Type.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Bool, reflect.Interface, reflect.Array:
		return false
	}
	return true
}

// defaultOf returns the default upstream documents for a value of type t:
// the zero value of non-pointer fields that JSON always carries, {} for
// structs (Go fills them in whatever the client sends), nothing for
// pointers, collections and types that unmarshal themselves. It mirrors
// upstream's generator, which reads the same from the source.
func (b *typeBuilder) defaultOf(t reflect.Type, omitempty bool) any {
	if b.declaresCached(t, "UnmarshalJSON") {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Array, reflect.Interface:
		return nil
	case reflect.Struct:
		if t.NumField() == 1 && t.Field(0).Anonymous {
			return b.defaultOf(t.Field(0).Type, omitempty)
		}
		return map[string]any{}
	}
	if omitempty {
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		return ""
	case reflect.Bool:
		return false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return 0
	}
	return nil
}
