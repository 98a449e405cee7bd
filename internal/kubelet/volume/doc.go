// Package volume is the node agent's volume manager: it prepares the
// volumes of the pods on this node, gives the container runtime the
// mounts of each container, keeps API-data volumes up to date while the
// pods run, and tears everything down when a pod goes.
//
// # Use
//
//	vm, err := volume.New(volume.Config{RootDir: "/var/lib/skiff/agent", Client: client})
//	go vm.Run(ctx)                                   // updates and token refresh
//	err = vm.SetUp(ctx, pod)                         // before the pod's sandbox starts
//	mounts, err := vm.Mounts(pod, &pod.Spec.Containers[0], env) // CreateContainer's mounts
//	...
//	err = vm.TearDown(ctx, pod.UID)                  // after the pod's containers are gone
//
// # Layout on disk
//
//	<root>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>     emptyDir (a tmpfs for medium Memory)
//	<root>/pods/<uid>/volumes/kubernetes.io~configmap/<name>     configMap
//	<root>/pods/<uid>/volumes/kubernetes.io~secret/<name>        secret
//	<root>/pods/<uid>/volumes/kubernetes.io~downward-api/<name>  downwardAPI
//	<root>/pods/<uid>/volumes/kubernetes.io~projected/<name>     projected
//	<root>/pods/<uid>/volume-subpaths/<volume>/<container>/<i>   bind mount of mount i's subPath
//
// A hostPath volume is the host's path itself, checked against its type
// (Directory, DirectoryOrCreate, File, FileOrCreate, Socket, CharDevice,
// BlockDevice; DirectoryOrCreate and FileOrCreate create what is missing,
// 0755 and 0644).
//
// # API-data volumes
//
// configMap, secret, downwardAPI and projected volumes are written the way
// the kubelet's atomic writer writes them, so that a program reading
// them never sees half an update:
//
//	<volume>/..2026_01_02_15_04_05.123456789/key   the files, with their modes
//	<volume>/..data -> ..2026_01_02_15_04_05.123456789
//	<volume>/key    -> ..data/key
//
// Secret and projected volumes are each a tmpfs, so that secrets and
// tokens never reach the disk (Config.SecretsOnDisk turns that off for
// tests without privileges); configMap and downwardAPI volumes are plain
// directories.
//
// An update writes a new timestamped directory, points "..data_tmp" at it,
// renames that over "..data" (one atomic step), fixes the top-level
// symlinks and removes the old directory. Nothing is written when the
// content, modes and owners are unchanged. File modes come from the
// items' mode, else defaultMode, else 0644; with a pod fsGroup every file
// gets that group with group read, and directories the setgid bit. A
// missing ConfigMap, Secret or key fails SetUp with ErrNotFound unless
// the source is optional.
//
// While Run runs, the manager watches every ConfigMap and Secret that a
// set-up pod reads (one watch per object, shared by the pods that read
// it) and rewrites the pods' volumes when one changes. Projected
// service-account tokens come from the TokenRequest API
// (serviceaccounts/<name>/token, bound to the pod, with the projection's
// audience and expirationSeconds) and are rewritten when 80% of their
// lifetime, or 24 hours, has passed; the clock is Config.Clock. When the
// pod runs as a single user or has an fsGroup, the token file is 0600
// and owned by that user, as the kubelet does. subPath mounts of
// API-data volumes are not updated (as in Kubernetes).
//
// # subPath
//
// A subPath must be relative without "..". After resolving symlinks it
// must stay inside the volume; the bind mount is then made from a file
// descriptor opened one component at a time without following symlinks,
// so that a container that swaps a directory for a symlink between the
// check and the mount cannot reach outside. A missing subPath is created
// (0755) in writable volumes and is an ErrNotFound in read-only ones.
// subPathExpr expands $(VAR) from the container's environment.
//
// # Teardown
//
// TearDown unmounts subPath binds and tmpfs emptyDirs, checks that no
// mount is left under the pod's directories, and only then removes them:
// a failed unmount is reported and never turns into deleting a hostPath's
// files through a bind mount. It works from disk, so PodsOnDisk plus
// TearDown cleans up after pods that vanished while the agent was down.
//
// # Not supported
//
// persistentVolumeClaim, ephemeral, csi, image and network volumes,
// volumeDevices, emptyDir medium HugePages, and the clusterTrustBundle and
// podCertificate projections fail SetUp or Mounts with ErrUnsupported.
// emptyDir sizeLimit on disk is not enforced here (eviction enforces it).
package volume
