// Package openapi builds and serves the OpenAPI documents of skiff's API
// server: v2 (JSON and protobuf) and v3 (one document per group version,
// found through /openapi/v3). Clients depend on them: kubectl apply and
// helm validate manifests with them, kubectl explain prints their field
// descriptions, and kubectl decides from the fieldValidation parameter of
// the PATCH operations to leave validation to the server.
//
// # Use
//
// The server describes what it serves as a list of Resource values and
// installs the Service on its mux:
//
//	svc, err := openapi.New([]openapi.Resource{{
//		GroupVersion: schema.GroupVersion{Group: "apps", Version: "v1"},
//		Resource:     "deployments",
//		Kind:         "Deployment",
//		Namespaced:   true,
//		Object:       &appsv1.Deployment{},
//		List:         &appsv1.DeploymentList{},
//		Subresources: []openapi.Subresource{
//			{Name: "status", Object: &appsv1.Deployment{}, Verbs: []string{"get", "update", "patch"}},
//			{Name: "scale", Object: &autoscalingv1.Scale{}, Kind: autoscalingv1.SchemeGroupVersion.WithKind("Scale"),
//				Verbs: []string{"get", "update", "patch"}},
//		},
//	}}, openapi.Config{Version: "v1.37.2", Logger: logger})
//	if err != nil { ... } // errors.Is(err, openapi.ErrInvalid)
//	svc.Install(mux)
//
// Streams are subresources without an object: pods/log is
//
//	{Name: "log", Options: &corev1.PodLogOptions{}, Verbs: []string{"get"}}
//
// and exec, attach, portforward and proxy are connect subresources, whose
// verbs stand for HTTP methods and whose options become query parameters:
//
//	{Name: "exec", Options: &corev1.PodExecOptions{}, Verbs: []string{"get", "create"}, Connect: true}
//	{Name: "proxy", Options: &corev1.PodProxyOptions{}, Verbs: []string{"get", "create", "update", "patch", "delete"}, Connect: true, WithPath: true}
//
// # How the documents are made
//
//	[]Resource ──New──► model: definitions + routes     reflection only, ~7 ms
//	                        │ first request of each document
//	                        ▼
//	        spec.Swagger / spec3.OpenAPI ──► JSON ──► protobuf, gzip   (each kept)
//
// Definitions come from the Go types by reflection, the way upstream's
// generator makes them from the source:
//
//   - names as upstream: the OpenAPIModelName the type declares, else its
//     package path with the domain reversed (k8s.io/api/core/v1.Pod →
//     io.k8s.api.core.v1.Pod);
//   - properties from the json tags, embedded structs without a JSON name
//     inlined; descriptions from the SwaggerDoc methods of the API types
//     (the "" key describes the type);
//   - types that say how they serialize (OpenAPISchemaType,
//     OpenAPISchemaFormat, OpenAPIV3OneOfTypes: metav1.Time, Quantity,
//     IntOrString, Duration) become scalar definitions, oneOf in v3. Only
//     methods a type declares count, not those promoted from an embedded
//     field;
//   - x-kubernetes-patch-strategy and x-kubernetes-patch-merge-key from the
//     patchStrategy and patchMergeKey tags; x-kubernetes-group-version-kind
//     on the kinds served; upstream's zero-value defaults.
//
// Upstream's generator also reads comments: +optional and +required,
// +listType, +listMapKey, +mapType, +structType and +default. Comments do
// not exist at run time, so zz_generated.comments.go keeps them for every
// package of k8s.io/api, metav1 and k8s.io/metrics; a test regenerates it
// from the module sources (go test -run TestUpstreamComments -update) and
// fails when it is stale. With it, required fields, list types and map
// keys are upstream's, which server-side apply and kubectl's validation
// depend on. Types of other packages get an approximation (see
// isRequired) and no list types.
//
// Routes follow upstream's layout: collection and item paths, the
// all-namespaces list, subresources, discovery (/api/, /apis/, /apis/<g>/,
// /version/), upstream's operation IDs (listCoreV1NamespacedPod,
// patchAppsV1NamespacedDeployment), tags, x-kubernetes-action, and query
// parameters read from the apimachinery options types (ListOptions,
// PatchOptions ...) with their descriptions. Every PATCH of an object
// advertises fieldValidation, which makes kubectl leave validation to the
// server. The deprecated /watch/ paths are left out.
//
// # Serving
//
// Each encoding of each document is made on its first request, and its
// bytes, gzipped bytes and ETag (upstream's: SHA-512 of the JSON) kept;
// later requests cost a lookup and a copy. The v3 index lists each
// document with its ETag as hash; a request with the current hash is
// cacheable forever, one with a stale hash is redirected to the current
// URL. The serving is written here rather than taken from kube-openapi's
// handler packages: pkg/handler brings dependencies skiff does not have,
// and neither answers 404 for unknown documents or keeps gzipped bytes;
// the formats (handler3's index type and protobuf conversion, gnostic's v2
// protobuf) are kube-openapi's.
package openapi
