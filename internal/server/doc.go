// Package server assembles skiff's control plane, the way `skiff server`
// runs it:
//
//	data dir ─► PKI (CA, serving and admin certificates, admin.kubeconfig)
//	        └─► etcd (embedded member, or an external cluster)
//	               └─► storage (protobuf store, one watch cache per resource)
//	                      └─► apiserver (REST layer over the registry's rules)
//	                             + OpenAPI, discovery, health, version, metrics
//	                             behind authentication, on HTTPS
//	bootstrap: system namespaces, priority classes, the kubernetes Service
//
// It is the only place, besides the API server, that touches the storage
// layer: everything else reaches the cluster through the API.
package server
