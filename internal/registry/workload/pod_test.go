package workload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

func TestPodValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   []fieldErr
	}{
		{"ValidPod", func(*corev1.Pod) {}, nil},
		{"RejectsNoContainers", func(p *corev1.Pod) { p.Spec.Containers = nil }, []fieldErr{required("spec.containers")}},
		{"RejectsContainerWithoutName", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "" }, []fieldErr{required("spec.containers[0].name")}},
		{"RejectsContainerNameNotDNSLabel", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "App_1" }, []fieldErr{invalid("spec.containers[0].name")}},
		{"RejectsDuplicateContainerNames", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, p.Spec.Containers[0])
		}, []fieldErr{duplicate("spec.containers[1].name")}},
		{"RejectsInitContainerNamedLikeContainer", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "app", Image: "busybox"}}
		}, []fieldErr{duplicate("spec.initContainers[0].name")}},
		{"RejectsEmptyImage", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, []fieldErr{required("spec.containers[0].image")}},
		{"RejectsWhitespaceImage", func(p *corev1.Pod) { p.Spec.Containers[0].Image = " " }, []fieldErr{invalid("spec.containers[0].image")}},
		{"RejectsPaddedImage", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.27 " }, []fieldErr{invalid("spec.containers[0].image")}},
		{"RejectsContainerPortZero", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 0}}
		}, []fieldErr{required("spec.containers[0].ports[0].containerPort")}},
		{"RejectsContainerPortTooLarge", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 65536}}
		}, []fieldErr{invalid("spec.containers[0].ports[0].containerPort")}},
		{"RejectsHostPortOutOfRange", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: -1}}
		}, []fieldErr{invalid("spec.containers[0].ports[0].hostPort")}},
		{"RejectsUnknownProtocol", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, Protocol: "ICMP"}}
		}, []fieldErr{notSupported("spec.containers[0].ports[0].protocol")}},
		{"RejectsBadPortName", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "Not_A_Name", ContainerPort: 80}}
		}, []fieldErr{invalid("spec.containers[0].ports[0].name")}},
		{"RejectsDuplicatePortName", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 80}, {Name: "http", ContainerPort: 81}}
		}, []fieldErr{duplicate("spec.containers[0].ports[1].name")}},
		{"RejectsHostPortConflict", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "b", Image: "b", Ports: []corev1.ContainerPort{{ContainerPort: 81, HostPort: 80}}})
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}}
		}, []fieldErr{duplicate("spec.containers[1].ports[0].hostPort")}},
		{"RejectsHostNetworkHostPortMismatch", func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 81}}
		}, []fieldErr{invalid("spec.containers[0].ports[0].hostPort")}},
		{"RejectsUnknownRestartPolicy", func(p *corev1.Pod) { p.Spec.RestartPolicy = "Sometimes" }, []fieldErr{notSupported("spec.restartPolicy")}},
		{"RejectsUnknownDNSPolicy", func(p *corev1.Pod) { p.Spec.DNSPolicy = "Google" }, []fieldErr{notSupported("spec.dnsPolicy")}},
		{"RejectsDNSNoneWithoutConfig", func(p *corev1.Pod) { p.Spec.DNSPolicy = corev1.DNSNone }, []fieldErr{required("spec.dnsConfig")}},
		{"RejectsBadNameserver", func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"not-an-ip"}}
		}, []fieldErr{invalid("spec.dnsConfig.nameservers[0]")}},
		{"RejectsUnknownPullPolicy", func(p *corev1.Pod) { p.Spec.Containers[0].ImagePullPolicy = "Sometimes" }, []fieldErr{notSupported("spec.containers[0].imagePullPolicy")}},
		{"RejectsUnknownTerminationMessagePolicy", func(p *corev1.Pod) {
			p.Spec.Containers[0].TerminationMessagePolicy = "Stdout"
		}, []fieldErr{notSupported("spec.containers[0].terminationMessagePolicy")}},
		{"RejectsRequestsAboveLimits", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: mustQuantity("2")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: mustQuantity("1")},
			}
		}, []fieldErr{invalid("spec.containers[0].resources.requests")}},
		{"RejectsNegativeQuantity", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceMemory: mustQuantity("-1Mi")}
		}, []fieldErr{invalid("spec.containers[0].resources.requests[memory]")}},
		{"RejectsNonStandardResourceName", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"gpus": mustQuantity("1")}
		}, []fieldErr{invalid("spec.containers[0].resources.requests[gpus]"), invalid("spec.containers[0].resources.requests[gpus]")}},
		{"RejectsExtendedResourceRequestWithoutLimit", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{"example.com/gpu": mustQuantity("1")}
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: mustQuantity("1")}
		}, []fieldErr{required("spec.containers[0].resources.limits")}},
		{"RejectsFractionalExtendedResource", func(p *corev1.Pod) {
			q := corev1.ResourceList{"example.com/gpu": mustQuantity("500m")}
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: q, Limits: q}
		}, []fieldErr{invalid("spec.containers[0].resources.requests[example.com/gpu]"), invalid("spec.containers[0].resources.limits[example.com/gpu]")}},
		{"RejectsHugePagesWithoutCPUOrMemory", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"hugepages-2Mi": mustQuantity("4Mi")}
		}, []fieldErr{forbidden("spec.containers[0].resources")}},
		{"RejectsBadEnvName", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A=B"}}
		}, []fieldErr{invalid("spec.containers[0].env[0].name")}},
		{"AcceptsRelaxedEnvName", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "1-my.var"}}
		}, nil},
		{"RejectsEnvWithoutName", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Value: "x"}}
		}, []fieldErr{required("spec.containers[0].env[0].name")}},
		{"RejectsEnvValueAndValueFrom", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", Value: "x", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}}
		}, []fieldErr{invalid("spec.containers[0].env[0].valueFrom")}},
		{"RejectsUnknownDownwardField", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.hostname"}}}}
		}, []fieldErr{notSupported("spec.containers[0].env[0].valueFrom.fieldRef.fieldPath")}},
		{"AcceptsLabelSubscript", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}}}
		}, nil},
		{"RejectsConfigMapKeyRefWithoutKey", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}}}}
		}, []fieldErr{required("spec.containers[0].env[0].valueFrom.configMapKeyRef.key")}},
		{"RejectsEnvFromWithoutSource", func(p *corev1.Pod) {
			p.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{Prefix: "X_"}}
		}, []fieldErr{invalid("spec.containers[0].envFrom")}},
		{"RejectsVolumeNameNotDNSLabel", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "Data"}}
		}, []fieldErr{invalid("spec.volumes[0].name")}},
		{"RejectsDuplicateVolumes", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}, {Name: "data"}}
		}, []fieldErr{duplicate("spec.volumes[1].name")}},
		{"RejectsTwoVolumeSources", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				EmptyDir: &corev1.EmptyDirVolumeSource{}, HostPath: &corev1.HostPathVolumeSource{Path: "/tmp"},
			}}}
		}, []fieldErr{forbidden("spec.volumes[0].hostPath")}},
		{"RejectsSecretVolumeWithoutName", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{}}}}
		}, []fieldErr{required("spec.volumes[0].secret.secretName")}},
		{"RejectsBadFileMode", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s", DefaultMode: ptrTo(int32(0o1000))}}}}
		}, []fieldErr{invalid("spec.volumes[0].secret.defaultMode")}},
		{"RejectsKeyPathEscaping", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "c", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, Items: []corev1.KeyToPath{{Key: "k", Path: "../etc/passwd"}},
			}}}}
		}, []fieldErr{invalid("spec.volumes[0].configMap.items[0].path"), invalid("spec.volumes[0].configMap.items[0].path")}},
		{"RejectsHostPathWithoutPath", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{}}}}
		}, []fieldErr{required("spec.volumes[0].hostPath.path")}},
		{"RejectsMountOfUnknownVolume", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "missing", MountPath: "/data"}}
		}, []fieldErr{notFound("spec.containers[0].volumeMounts[0].name")}},
		{"RejectsMountWithoutPath", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "data"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data"}}
		}, []fieldErr{required("spec.containers[0].volumeMounts[0].mountPath")}},
		{"RejectsDuplicateMountPath", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "a"}, {Name: "b"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "a", MountPath: "/d"}, {Name: "b", MountPath: "/d"}}
		}, []fieldErr{invalid("spec.containers[0].volumeMounts[1].mountPath")}},
		{"RejectsAbsoluteSubPath", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "a"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "a", MountPath: "/d", SubPath: "/etc"}}
		}, []fieldErr{invalid("spec.containers[0].volumeMounts.subPath")}},
		{"RejectsBidirectionalUnprivileged", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "a"}}
			p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "a", MountPath: "/d", MountPropagation: ptrTo(corev1.MountPropagationBidirectional)}}
		}, []fieldErr{forbidden("spec.containers[0].volumeMounts.mountPropagation")}},
		{"RejectsProbeWithoutHandler", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{}
		}, []fieldErr{required("spec.containers[0].livenessProbe")}},
		{"RejectsProbeWithTwoHandlers", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				Exec: &corev1.ExecAction{Command: []string{"true"}}, TCPSocket: &corev1.TCPSocketAction{Port: intstrName("http")},
			}}
		}, []fieldErr{forbidden("spec.containers[0].readinessProbe.tcpSocket")}},
		{"RejectsProbePortOutOfRange", func(p *corev1.Pod) {
			p.Spec.Containers[0].ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 70000}}}
		}, []fieldErr{invalid("spec.containers[0].readinessProbe.grpc.port")}},
		{"RejectsLivenessSuccessThresholdAboveOne", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{SuccessThreshold: 2, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
		}, []fieldErr{invalid("spec.containers[0].livenessProbe.successThreshold")}},
		{"RejectsNegativeProbeDelay", func(p *corev1.Pod) {
			p.Spec.Containers[0].LivenessProbe = &corev1.Probe{InitialDelaySeconds: -1, ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
		}, []fieldErr{invalid("spec.containers[0].livenessProbe.initialDelaySeconds")}},
		{"RejectsProbeOnPlainInitContainer", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}}
		}, []fieldErr{forbidden("spec.initContainers[0].readinessProbe")}},
		{"AcceptsProbeOnSidecar", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "busybox", RestartPolicy: ptrTo(corev1.ContainerRestartPolicyAlways),
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}}}
		}, nil},
		{"RejectsRestartPolicyOnContainer", func(p *corev1.Pod) {
			p.Spec.Containers[0].RestartPolicy = ptrTo(corev1.ContainerRestartPolicyAlways)
		}, []fieldErr{forbidden("spec.containers[0].restartPolicy")}},
		{"RejectsBadNodeSelectorKey", func(p *corev1.Pod) {
			p.Spec.NodeSelector = map[string]string{"bad key": "x"}
		}, []fieldErr{invalid("spec.nodeSelector")}},
		{"RejectsTolerationOperator", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: "Has"}}
		}, []fieldErr{notSupported("spec.tolerations[0].operator")}},
		{"RejectsTolerationEffect", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: "NoRun"}}
		}, []fieldErr{notSupported("spec.tolerations[0].effect")}},
		{"RejectsEmptyKeyWithEqual", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Operator: corev1.TolerationOpEqual, Value: "v"}}
		}, []fieldErr{invalid("spec.tolerations[0].operator")}},
		{"RejectsTolerationSecondsWithoutNoExecute", func(p *corev1.Pod) {
			p.Spec.Tolerations = []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: ptrTo(int64(5))}}
		}, []fieldErr{invalid("spec.tolerations[0].effect")}},
		{"RejectsEmptyNodeSelectorTerms", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{}}}
		}, []fieldErr{required("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms")}},
		{"RejectsPodAffinityWithoutTopologyKey", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			}}}}
		}, []fieldErr{
			required("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey"),
			invalid("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey"),
			invalid("spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey"),
		}},
		{"RejectsPreferredWeightOutOfRange", func(p *corev1.Pod) {
			p.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{{Weight: 101}}}}
		}, []fieldErr{invalid("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight")}},
		{"RejectsNegativeRunAsUser", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptrTo(int64(-1))}
		}, []fieldErr{invalid("spec.securityContext.runAsUser")}},
		{"RejectsContainerNegativeRunAsGroup", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsGroup: ptrTo(int64(-5))}
		}, []fieldErr{invalid("spec.containers[0].securityContext.runAsGroup")}},
		{"RejectsPrivilegedWithoutEscalation", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptrTo(true), AllowPrivilegeEscalation: ptrTo(false)}
		}, []fieldErr{invalid("spec.containers[0].securityContext")}},
		{"RejectsSeccompWithoutType", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{SeccompProfile: &corev1.SeccompProfile{}}
		}, []fieldErr{required("spec.securityContext.seccompProfile.type")}},
		{"RejectsBadSysctl", func(p *corev1.Pod) {
			p.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "Net.Core"}}}
		}, []fieldErr{invalid("spec.securityContext.sysctls[0].name")}},
		{"RejectsNetSysctlWithHostNetwork", func(p *corev1.Pod) {
			p.Spec.HostNetwork = true
			p.Spec.SecurityContext = &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "net.ipv4.ip_forward", Value: "1"}}}
		}, []fieldErr{invalid("spec.securityContext.sysctls[0].name")}},
		{"RejectsZeroActiveDeadline", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(0)) }, []fieldErr{invalid("spec.activeDeadlineSeconds")}},
		{"RejectsBadHostname", func(p *corev1.Pod) { p.Spec.Hostname = "host.name" }, []fieldErr{invalid("spec.hostname")}},
		{"RejectsBadServiceAccountName", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "Bad_SA" }, []fieldErr{invalid("spec.serviceAccountName")}},
		{"RejectsEphemeralContainersOnCreate", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}}
		}, []fieldErr{forbidden("spec.ephemeralContainers")}},
		{"RejectsNodeNameWithSchedulingGates", func(p *corev1.Pod) {
			p.Spec.NodeName = "node-1"
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/gate"}}
		}, []fieldErr{forbidden("spec.nodeName")}},
		{"RejectsDuplicateSchedulingGates", func(p *corev1.Pod) {
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "g"}, {Name: "g"}}
		}, []fieldErr{duplicate("spec.schedulingGates[1]")}},
		{"RejectsTopologySpreadWithoutSkew", func(p *corev1.Pod) {
			p.Spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{TopologyKey: "zone", WhenUnsatisfiable: corev1.DoNotSchedule}}
		}, []fieldErr{invalid("spec.topologySpreadConstraints[0].maxSkew")}},
		{"RejectsTokenProjectionWithoutServiceAccount", func(p *corev1.Pod) {
			p.Spec.Volumes = []corev1.Volume{{Name: "t", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}},
			}}}}
		}, []fieldErr{forbidden("spec.volumes[0].projected.sources[0].serviceAccountToken")}},
		{"RejectsDeletionCostNotInteger", func(p *corev1.Pod) {
			p.Annotations = map[string]string{corev1.PodDeletionCost: "cheap"}
		}, []fieldErr{invalid("metadata.annotations[controller.kubernetes.io/pod-deletion-cost]")}},
		{"RejectsMirrorPodWithoutNode", func(p *corev1.Pod) {
			p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
		}, []fieldErr{invalid("metadata.annotations[kubernetes.io/config.mirror]")}},
		{"RejectsUnknownOS", func(p *corev1.Pod) { p.Spec.OS = &corev1.PodOS{Name: "plan9"} }, []fieldErr{notSupported("spec.os.name")}},
	}
	r := lookup(t, "pods")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := basicPod()
			tc.mutate(pod)
			wantErrs(t, create(t, r, pod), tc.want...)
		})
	}
}

func TestPodValidate_ForbidPrivileged(t *testing.T) {
	pod := basicPod()
	pod.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptrTo(true)}
	for _, tc := range []struct {
		name string
		cfg  Config
		want []fieldErr
	}{
		{"AllowedByDefault", Config{}, nil},
		{"RejectedWhenForbidden", Config{ForbidPrivileged: true}, []fieldErr{forbidden("spec.containers[0].securityContext.privileged")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Resources(tc.cfg)[0]
			wantErrs(t, create(t, r, pod.DeepCopy()), tc.want...)
		})
	}
}

func TestPodCreate_Status(t *testing.T) {
	r := lookup(t, "pods")
	pod := basicPod()
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", Message: "from the client"}
	if errs := create(t, r, pod); len(errs) != 0 {
		t.Fatal(errs)
	}
	want := corev1.PodStatus{Phase: corev1.PodPending, QOSClass: corev1.PodQOSBestEffort}
	if diff := cmp.Diff(want, pod.Status); diff != "" {
		t.Errorf("status after create (-want +got):\n%s", diff)
	}
}

func TestPodQOSClass(t *testing.T) {
	res := func(req, lim string) corev1.ResourceRequirements {
		var r corev1.ResourceRequirements
		if req != "" {
			r.Requests = corev1.ResourceList{corev1.ResourceCPU: mustQuantity(req), corev1.ResourceMemory: mustQuantity(req + "Mi")}
		}
		if lim != "" {
			r.Limits = corev1.ResourceList{corev1.ResourceCPU: mustQuantity(lim), corev1.ResourceMemory: mustQuantity(lim + "Mi")}
		}
		return r
	}
	cases := []struct {
		name       string
		containers []corev1.ResourceRequirements
		init       []corev1.ResourceRequirements
		want       corev1.PodQOSClass
	}{
		{"BestEffortWithoutResources", []corev1.ResourceRequirements{{}}, nil, corev1.PodQOSBestEffort},
		{"GuaranteedWithEqualRequestsAndLimits", []corev1.ResourceRequirements{res("1", "1"), res("2", "2")}, nil, corev1.PodQOSGuaranteed},
		{"GuaranteedWithLimitsOnly", []corev1.ResourceRequirements{res("", "1")}, nil, corev1.PodQOSGuaranteed},
		{"BurstableWithRequestsBelowLimits", []corev1.ResourceRequirements{res("1", "2")}, nil, corev1.PodQOSBurstable},
		{"BurstableWithRequestsOnly", []corev1.ResourceRequirements{res("1", "")}, nil, corev1.PodQOSBurstable},
		{"BurstableWhenOneContainerIsBestEffort", []corev1.ResourceRequirements{res("1", "1"), {}}, nil, corev1.PodQOSBurstable},
		{"BurstableWithCPUOnly", []corev1.ResourceRequirements{{Limits: corev1.ResourceList{corev1.ResourceCPU: mustQuantity("1")}}}, nil, corev1.PodQOSBurstable},
		{"BurstableWhenInitContainerDiffers", []corev1.ResourceRequirements{res("1", "1")}, []corev1.ResourceRequirements{res("1", "2")}, corev1.PodQOSBurstable},
		{"IgnoresOtherResources", []corev1.ResourceRequirements{{Limits: corev1.ResourceList{corev1.ResourceEphemeralStorage: mustQuantity("1Gi")}}}, nil, corev1.PodQOSBestEffort},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := basicPod()
			pod.Spec.Containers = nil
			for i, r := range tc.containers {
				pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: "x", Resources: r})
			}
			for i, r := range tc.init {
				pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{Name: fmt.Sprintf("i%d", i), Image: "x", Resources: r})
			}
			preparePodForCreate(pod)
			if pod.Status.QOSClass != tc.want {
				t.Errorf("qosClass = %s, want %s", pod.Status.QOSClass, tc.want)
			}
		})
	}
}

func TestPodCreate_DefaultTolerations(t *testing.T) {
	notReady := corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrTo(int64(300))}
	unreachable := corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptrTo(int64(300))}
	all := corev1.Toleration{Operator: corev1.TolerationOpExists}
	own := corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute}
	noSchedule := corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	cases := []struct {
		name string
		have []corev1.Toleration
		want []corev1.Toleration
	}{
		{"AddsBoth", nil, []corev1.Toleration{notReady, unreachable}},
		{"KeepsTolerateEverything", []corev1.Toleration{all}, []corev1.Toleration{all}},
		{"KeepsOwnNotReady", []corev1.Toleration{own}, []corev1.Toleration{own, unreachable}},
		{"IgnoresOtherEffects", []corev1.Toleration{noSchedule}, []corev1.Toleration{noSchedule, notReady, unreachable}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := basicPod()
			pod.Spec.Tolerations = tc.have
			preparePodForCreate(pod)
			if diff := cmp.Diff(tc.want, pod.Spec.Tolerations); diff != "" {
				t.Errorf("tolerations (-want +got):\n%s", diff)
			}
		})
	}
}

// storedPod is a pod as the REST layer stores it after create, bound to a
// node.
func storedPod(t *testing.T) *corev1.Pod {
	t.Helper()
	pod := basicPod()
	if errs := create(t, lookup(t, "pods"), pod); len(errs) != 0 {
		t.Fatal(errs)
	}
	pod.Spec.NodeName = "node-1"
	return pod
}

func TestPodValidateUpdate(t *testing.T) {
	cases := []struct {
		name   string
		old    func(*corev1.Pod)
		mutate func(*corev1.Pod)
		want   []fieldErr
	}{
		{"AllowsImageChange", nil, func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nginx:1.28" }, nil},
		{"AllowsLabelChange", nil, func(p *corev1.Pod) { p.Labels["tier"] = "front" }, nil},
		{"AllowsActiveDeadlineSet", nil, func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(60)) }, nil},
		{"AllowsActiveDeadlineLowered", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(60)) }, func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(30)) }, nil},
		{"RejectsActiveDeadlineRaised", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(60)) }, func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(90)) }, []fieldErr{invalid("spec.activeDeadlineSeconds")}},
		{"RejectsActiveDeadlineCleared", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptrTo(int64(60)) }, func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = nil }, []fieldErr{invalid("spec.activeDeadlineSeconds")}},
		{"AllowsTolerationAdded", nil, func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
		}, nil},
		{"AllowsTolerationSecondsChange", nil, func(p *corev1.Pod) { p.Spec.Tolerations[0].TolerationSeconds = ptrTo(int64(5)) }, nil},
		{"RejectsTolerationRemoved", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "k", Operator: corev1.TolerationOpExists})
		}, func(p *corev1.Pod) { p.Spec.Tolerations = p.Spec.Tolerations[:2] }, []fieldErr{forbidden("spec.tolerations")}},
		{"RejectsResourceChange", nil, func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: mustQuantity("1")}
		}, []fieldErr{forbidden("spec")}},
		{"RejectsContainerAdded", nil, func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "b", Image: "b"})
		}, []fieldErr{forbidden("spec.containers")}},
		{"RejectsNodeNameChange", nil, func(p *corev1.Pod) { p.Spec.NodeName = "node-2" }, []fieldErr{forbidden("spec")}},
		{"AllowsGracePeriodFromNegativeToOne", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptrTo(int64(-1)) }, func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptrTo(int64(1)) }, nil},
		{"RejectsGracePeriodChange", nil, func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptrTo(int64(5)) }, []fieldErr{forbidden("spec")}},
		{"AllowsSchedulingGateRemoved", func(p *corev1.Pod) {
			p.Spec.NodeName = ""
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "a"}, {Name: "b"}}
		}, func(p *corev1.Pod) { p.Spec.SchedulingGates = p.Spec.SchedulingGates[1:] }, nil},
		{"RejectsSchedulingGateAdded", func(p *corev1.Pod) { p.Spec.NodeName = "" }, func(p *corev1.Pod) {
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "a"}}
		}, []fieldErr{forbidden("spec.schedulingGates[0].name")}},
		{"AllowsNodeSelectorAdditionWhileGated", func(p *corev1.Pod) {
			p.Spec.NodeName = ""
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "a"}}
			p.Spec.NodeSelector = map[string]string{"zone": "a"}
		}, func(p *corev1.Pod) { p.Spec.NodeSelector["disk"] = "ssd" }, nil},
		{"RejectsNodeSelectorChangeWhileGated", func(p *corev1.Pod) {
			p.Spec.NodeName = ""
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "a"}}
			p.Spec.NodeSelector = map[string]string{"zone": "a"}
		}, func(p *corev1.Pod) { p.Spec.NodeSelector["zone"] = "b" }, []fieldErr{invalid("spec.nodeSelector")}},
		{"RejectsMirrorAnnotationAdded", nil, func(p *corev1.Pod) {
			p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"}
		}, []fieldErr{forbidden("metadata.annotations[kubernetes.io/config.mirror]")}},
	}
	r := lookup(t, "pods")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := storedPod(t)
			if tc.old != nil {
				tc.old(old)
			}
			pod := old.DeepCopy()
			tc.mutate(pod)
			errs := runUpdate(t, r, pod, old)
			wantErrs(t, errs, tc.want...)
		})
	}
}

func TestPodValidateUpdate_Message(t *testing.T) {
	old := storedPod(t)
	pod := old.DeepCopy()
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80}}
	errs := runUpdate(t, lookup(t, "pods"), pod, old)
	if len(errs) != 1 {
		t.Fatalf("errors = %v, want one", errs)
	}
	const want = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
	if !strings.HasPrefix(errs[0].Detail, want) {
		t.Errorf("detail = %q, want prefix %q", errs[0].Detail, want)
	}
	if !strings.Contains(errs[0].Detail, "ContainerPort") {
		t.Errorf("detail has no diff naming the changed field: %q", errs[0].Detail)
	}
}

func TestPodStatusUpdate(t *testing.T) {
	cases := []struct {
		name   string
		old    func(*corev1.Pod)
		mutate func(*corev1.Pod)
		want   []fieldErr
	}{
		{"AllowsRunning", nil, func(p *corev1.Pod) {
			p.Status.Phase = corev1.PodRunning
			p.Status.HostIP, p.Status.HostIPs = "192.168.1.2", []corev1.HostIP{{IP: "192.168.1.2"}}
			p.Status.PodIP, p.Status.PodIPs = "10.1.0.5", []corev1.PodIP{{IP: "10.1.0.5"}, {IP: "fd00::5"}}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: "example.com/ready", Status: corev1.ConditionTrue}}
		}, nil},
		{"RejectsUnknownPhase", nil, func(p *corev1.Pod) { p.Status.Phase = "Sleeping" }, []fieldErr{notSupported("status.phase")}},
		{"RejectsStatusOfUnknownContainer", nil, func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "ghost"}}
		}, []fieldErr{notFound("status.containerStatuses[0].name")}},
		{"RejectsDuplicateContainerStatus", nil, func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app"}, {Name: "app"}}
		}, []fieldErr{duplicate("status.containerStatuses[1].name")}},
		{"RejectsQOSChange", nil, func(p *corev1.Pod) { p.Status.QOSClass = corev1.PodQOSGuaranteed }, []fieldErr{invalid("status.qosClass")}},
		{"RejectsBadPodIP", nil, func(p *corev1.Pod) { p.Status.PodIPs = []corev1.PodIP{{IP: "10.1.0.256"}} }, []fieldErr{invalid("status.podIPs[0]")}},
		{"RejectsTwoIPv4PodIPs", nil, func(p *corev1.Pod) {
			p.Status.PodIPs = []corev1.PodIP{{IP: "10.1.0.5"}, {IP: "10.1.0.6"}}
		}, []fieldErr{invalid("status.podIPs")}},
		{"RejectsHostIPsMismatch", nil, func(p *corev1.Pod) {
			p.Status.HostIP, p.Status.HostIPs = "192.168.1.2", []corev1.HostIP{{IP: "192.168.1.3"}}
		}, []fieldErr{invalid("status.hostIPs[0].ip")}},
		{"RejectsBadConditionType", nil, func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: "not a type", Status: corev1.ConditionTrue}}
		}, []fieldErr{invalid("status.conditions[0].type")}},
		{"RejectsRestartOfTerminatedContainerWithNever", func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyNever
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}
		}, func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		}, []fieldErr{forbidden("status.containerStatuses[0].state")}},
		{"AllowsRestartAfterFailureWithOnFailure", func(p *corev1.Pod) {
			p.Spec.RestartPolicy = corev1.RestartPolicyOnFailure
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}
		}, func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
		}, nil},
	}
	sub := lookup(t, "pods").Status
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := storedPod(t)
			if tc.old != nil {
				tc.old(old)
			}
			pod := old.DeepCopy()
			tc.mutate(pod)
			sub.PrepareForUpdate(context.Background(), pod, old)
			wantErrs(t, sub.ValidateUpdate(context.Background(), pod, old), tc.want...)
		})
	}
}

func TestPodStatusUpdate_KeepsServerOwnedFields(t *testing.T) {
	old := storedPod(t)
	old.Status.ObservedGeneration = 3
	old.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, ObservedGeneration: 3}}
	pod := old.DeepCopy()
	pod.Status.QOSClass = ""
	pod.Status.ObservedGeneration = 0
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	lookup(t, "pods").Status.PrepareForUpdate(context.Background(), pod, old)
	if pod.Status.QOSClass != old.Status.QOSClass || pod.Status.ObservedGeneration != 3 || pod.Status.Conditions[0].ObservedGeneration != 3 {
		t.Errorf("status = %+v, want qosClass and observed generations carried over", pod.Status)
	}
}

func TestPodGracefulDelete(t *testing.T) {
	cases := []struct {
		name    string
		pod     func(*corev1.Pod)
		opts    *metav1.DeleteOptions
		want    int64
		gracful bool
	}{
		{"UsesSpecGracePeriod", nil, &metav1.DeleteOptions{}, 30, true},
		{"UsesOptionsGracePeriod", nil, &metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(5))}, 5, true},
		{"ZeroFromOptions", nil, &metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(0))}, 0, true},
		{"ZeroWhenUnscheduled", func(p *corev1.Pod) { p.Spec.NodeName = "" }, &metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(5))}, 0, true},
		{"ZeroWhenSucceeded", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, &metav1.DeleteOptions{}, 0, true},
		{"ZeroWhenFailed", func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed }, &metav1.DeleteOptions{}, 0, true},
		{"NegativeBecomesOne", nil, &metav1.DeleteOptions{GracePeriodSeconds: ptrTo(int64(-10))}, 1, true},
		{"NegativeSpecBecomesOne", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = ptrTo(int64(-1)) }, &metav1.DeleteOptions{}, 1, true},
		{"ZeroWithoutSpecPeriod", func(p *corev1.Pod) { p.Spec.TerminationGracePeriodSeconds = nil }, &metav1.DeleteOptions{}, 0, true},
		{"NotGracefulWithoutOptions", nil, nil, 0, false},
	}
	r := lookup(t, "pods")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := storedPod(t)
			if tc.pod != nil {
				tc.pod(pod)
			}
			got, graceful := r.GracefulDelete(pod, tc.opts)
			if got != tc.want || graceful != tc.gracful {
				t.Errorf("GracefulDelete = %d, %v; want %d, %v", got, graceful, tc.want, tc.gracful)
			}
			if tc.opts != nil && (tc.opts.GracePeriodSeconds == nil || *tc.opts.GracePeriodSeconds != tc.want) {
				t.Errorf("options.gracePeriodSeconds = %v, want %d written back", tc.opts.GracePeriodSeconds, tc.want)
			}
		})
	}
}

func TestPodSelectableFields(t *testing.T) {
	r := lookup(t, "pods")
	pod := storedPod(t)
	pod.Spec.ServiceAccountName = "builder"
	pod.Status.PodIPs = []corev1.PodIP{{IP: "10.1.0.5"}, {IP: "fd00::5"}}
	pod.Status.NominatedNodeName = "node-2"
	want := fields.Set{
		"spec.nodeName":            "node-1",
		"spec.restartPolicy":       "Always",
		"spec.schedulerName":       "default-scheduler",
		"spec.serviceAccountName":  "builder",
		"spec.hostNetwork":         "false",
		"status.phase":             "Pending",
		"status.podIP":             "10.1.0.5",
		"status.nominatedNodeName": "node-2",
	}
	got := r.SelectableFields(pod)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	for k := range got {
		if !contains(r.FieldLabels, k) {
			t.Errorf("FieldLabels lacks %q", k)
		}
	}
	sel := fields.ParseSelectorOrDie("spec.nodeName=node-1,status.phase!=Running")
	if !sel.Matches(got) {
		t.Errorf("selector %s does not match %v", sel, got)
	}
}

type fakePriorityClasses map[string]*schedulingv1.PriorityClass

func (f fakePriorityClasses) Get(_ context.Context, name string) (*schedulingv1.PriorityClass, error) {
	if pc, ok := f[name]; ok {
		return pc, nil
	}
	return nil, fmt.Errorf("priorityclass %q: %w", name, ErrPriorityClassNotFound)
}

func (f fakePriorityClasses) GlobalDefault(context.Context) (*schedulingv1.PriorityClass, error) {
	var best *schedulingv1.PriorityClass
	for _, pc := range f {
		if pc.GlobalDefault && (best == nil || pc.Value > best.Value) {
			best = pc
		}
	}
	return best, nil
}

func TestPodPriorityAdmission(t *testing.T) {
	never := corev1.PreemptNever
	classes := fakePriorityClasses{
		"high":    {ObjectMeta: metav1.ObjectMeta{Name: "high"}, Value: 1000},
		"batch":   {ObjectMeta: metav1.ObjectMeta{Name: "batch"}, Value: 10, PreemptionPolicy: &never},
		"default": {ObjectMeta: metav1.ObjectMeta{Name: "default"}, Value: 5, GlobalDefault: true},
	}
	cases := []struct {
		name       string
		classes    PriorityClasses
		pod        func(*corev1.Pod)
		wantClass  string
		want       int32
		wantPolicy corev1.PreemptionPolicy
		wantErr    bool
	}{
		{"ZeroWithoutLookup", nil, nil, "", 0, corev1.PreemptLowerPriority, false},
		{"SystemClassWithoutLookup", nil, func(p *corev1.Pod) { p.Spec.PriorityClassName = "system-node-critical" }, "system-node-critical", 2000001000, corev1.PreemptLowerPriority, false},
		{"UnknownClassWithoutLookup", nil, func(p *corev1.Pod) { p.Spec.PriorityClassName = "high" }, "", 0, "", true},
		{"GlobalDefault", classes, nil, "default", 5, corev1.PreemptLowerPriority, false},
		{"NamedClass", classes, func(p *corev1.Pod) { p.Spec.PriorityClassName = "high" }, "high", 1000, corev1.PreemptLowerPriority, false},
		{"ClassPreemptionPolicy", classes, func(p *corev1.Pod) { p.Spec.PriorityClassName = "batch" }, "batch", 10, corev1.PreemptNever, false},
		{"RejectsMissingClass", classes, func(p *corev1.Pod) { p.Spec.PriorityClassName = "nope" }, "", 0, "", true},
		{"RejectsOwnPriority", classes, func(p *corev1.Pod) {
			p.Spec.PriorityClassName = "high"
			p.Spec.Priority = ptrTo(int32(7))
		}, "", 0, "", true},
		{"AcceptsMatchingPriority", classes, func(p *corev1.Pod) {
			p.Spec.PriorityClassName = "high"
			p.Spec.Priority = ptrTo(int32(1000))
		}, "high", 1000, corev1.PreemptLowerPriority, false},
		{"RejectsOwnPreemptionPolicy", classes, func(p *corev1.Pod) {
			p.Spec.PriorityClassName = "batch"
			p.Spec.PreemptionPolicy = ptrTo(corev1.PreemptLowerPriority)
		}, "", 0, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Resources(Config{PriorityClasses: tc.classes})[0]
			pod := basicPod()
			if tc.pod != nil {
				tc.pod(pod)
			}
			err := r.BeforeCreate(context.Background(), pod)
			if tc.wantErr {
				if !apierrors.IsForbidden(err) {
					t.Fatalf("err = %v, want 403 Forbidden", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := struct {
				Class  string
				Value  int32
				Policy corev1.PreemptionPolicy
			}{pod.Spec.PriorityClassName, *pod.Spec.Priority, *pod.Spec.PreemptionPolicy}
			want := struct {
				Class  string
				Value  int32
				Policy corev1.PreemptionPolicy
			}{tc.wantClass, tc.want, tc.wantPolicy}
			if got != want {
				t.Errorf("priority = %+v, want %+v", got, want)
			}
		})
	}
}

type brokenPriorityClasses struct{}

func (brokenPriorityClasses) Get(context.Context, string) (*schedulingv1.PriorityClass, error) {
	return nil, errors.New("cache not synced")
}

func (brokenPriorityClasses) GlobalDefault(context.Context) (*schedulingv1.PriorityClass, error) {
	return nil, errors.New("cache not synced")
}

func TestPodPriorityAdmission_LookupErrorIsInternal(t *testing.T) {
	r := Resources(Config{PriorityClasses: brokenPriorityClasses{}})[0]
	for _, class := range []string{"", "high"} {
		pod := basicPod()
		pod.Spec.PriorityClassName = class
		if err := r.BeforeCreate(context.Background(), pod); !apierrors.IsInternalError(err) {
			t.Errorf("class %q: err = %v, want 500", class, err)
		}
	}
}
