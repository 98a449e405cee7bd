// Package spec turns a CRI container request into an OCI runtime spec.
//
// Build is pure: it reads nothing but its Input (the image's /etc/passwd
// and /etc/group come in as a UserDB), so every rule the kubelet and
// containerd apply when they make a container is tested here without
// running anything:
//
//   - argv: the CRI command replaces the image ENTRYPOINT, and the CRI args
//     replace the image CMD; CMD is used only when neither command nor args
//     are given (Kubernetes' rule).
//   - env: the image's, overridden by the request's, plus PATH and HOSTNAME
//     when missing.
//   - user: RunAsUser or RunAsUsername, else the image's USER, resolved
//     against the image's /etc/passwd and /etc/group; supplementary groups
//     from /etc/group membership plus SupplementalGroups.
//   - capabilities: Docker's default set with add/drop ("ALL" allowed in
//     both); privileged gets every capability.
//   - mounts: /proc, /dev (tmpfs with the usual nodes), /dev/pts, /dev/shm
//     (the pod's), /dev/mqueue, /sys (read-only), /sys/fs/cgroup, the
//     pod's /etc/hosts, /etc/hostname and /etc/resolv.conf, then the
//     request's volumes with their propagation.
//   - masked and read-only /proc and /sys paths as runc masks them, unless
//     privileged or the request lists its own.
//   - seccomp: RuntimeDefault, Unconfined (the CRI default) or a Localhost
//     profile file.
package spec
