package core_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func basicService() *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: newUID()},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
		},
	}
}

func TestServiceValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*corev1.Service)
		want   []fieldErr
	}{
		{"ValidService", func(*corev1.Service) {}, nil},
		{"ValidRequestedClusterIP", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.10" }, nil},
		{"ValidHeadlessWithoutPorts", func(s *corev1.Service) { s.Spec.ClusterIP = "None"; s.Spec.Ports = nil }, nil},
		{"ValidNodePort", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort; s.Spec.Ports[0].NodePort = 30080 }, nil},
		{"ValidExternalNameWithTrailingDot", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com."
			s.Spec.Ports = nil
		}, nil},
		{"ValidNamedTargetPort", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("http") }, nil},
		{"RejectsNoPorts", func(s *corev1.Service) { s.Spec.Ports = nil }, []fieldErr{required("spec.ports")}},
		{"RejectsPortZero", func(s *corev1.Service) { s.Spec.Ports[0].Port = 0; s.Spec.Ports[0].TargetPort = intstr.FromInt32(80) },
			[]fieldErr{invalid("spec.ports[0].port")}},
		{"RejectsPortTooLarge", func(s *corev1.Service) {
			s.Spec.Ports[0].Port = 65536
			s.Spec.Ports[0].TargetPort = intstr.FromInt32(80)
		},
			[]fieldErr{invalid("spec.ports[0].port")}},
		{"RejectsTargetPortTooLarge", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromInt32(70000) },
			[]fieldErr{invalid("spec.ports[0].targetPort")}},
		{"RejectsBadTargetPortName", func(s *corev1.Service) { s.Spec.Ports[0].TargetPort = intstr.FromString("not_a_name") },
			[]fieldErr{invalid("spec.ports[0].targetPort")}},
		{"RejectsUnknownProtocol", func(s *corev1.Service) { s.Spec.Ports[0].Protocol = "ICMP" }, []fieldErr{notSupported("spec.ports[0].protocol")}},
		{"RequiresPortNamesWhenSeveral", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Port: 80}, {Name: "https", Port: 443}}
		}, []fieldErr{required("spec.ports[0].name")}},
		{"RejectsDuplicatePortNames", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "http", Port: 8080}}
		}, []fieldErr{duplicate("spec.ports[1].name")}},
		{"RejectsBadPortName", func(s *corev1.Service) { s.Spec.Ports[0].Name = "HTTP" }, []fieldErr{invalid("spec.ports[0].name")}},
		{"RejectsDuplicatePortAndProtocol", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "b", Port: 80}}
		}, []fieldErr{duplicate("spec.ports[1]")}},
		{"AllowsSamePortOtherProtocol", func(s *corev1.Service) {
			s.Spec.Ports = []corev1.ServicePort{{Name: "dns", Port: 53}, {Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP}}
		}, nil},
		{"RejectsDuplicateNodePort", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80, NodePort: 30080}, {Name: "b", Port: 81, NodePort: 30080}}
		}, []fieldErr{duplicate("spec.ports[1].nodePort")}},
		{"RejectsNodePortOnClusterIP", func(s *corev1.Service) { s.Spec.Ports[0].NodePort = 30080 }, []fieldErr{forbidden("spec.ports[0].nodePort")}},
		{"RejectsBadAppProtocol", func(s *corev1.Service) { s.Spec.Ports[0].AppProtocol = ptrTo("not a name") },
			[]fieldErr{invalid("spec.ports[0].appProtocol")}},
		{"RejectsUnknownType", func(s *corev1.Service) { s.Spec.Type = "Magic" }, []fieldErr{notSupported("spec.type")}},
		{"RejectsBadClusterIP", func(s *corev1.Service) { s.Spec.ClusterIP = "10.43.0.300" }, []fieldErr{invalid("spec.clusterIPs[0]")}},
		{"RejectsNonCanonicalClusterIP", func(s *corev1.Service) { s.Spec.ClusterIP = "010.43.0.10" }, []fieldErr{invalid("spec.clusterIPs[0]")}},
		{"RejectsClusterIPsMismatch", func(s *corev1.Service) {
			s.Spec.ClusterIP = "10.43.0.10"
			s.Spec.ClusterIPs = []string{"10.43.0.11"}
		}, []fieldErr{invalid("spec.clusterIPs")}},
		{"RejectsClusterIPsWithoutClusterIP", func(s *corev1.Service) { s.Spec.ClusterIPs = []string{"10.43.0.11"} },
			[]fieldErr{invalid("spec.clusterIPs")}},
		{"RejectsNoneWithSecondIP", func(s *corev1.Service) {
			s.Spec.ClusterIP = "None"
			s.Spec.ClusterIPs = []string{"None", "10.43.0.1"}
		}, []fieldErr{invalid("spec.clusterIPs")}},
		{"RejectsTwoIPsOfOneFamily", func(s *corev1.Service) {
			s.Spec.ClusterIP = "10.43.0.10"
			s.Spec.ClusterIPs = []string{"10.43.0.10", "10.43.0.11"}
			s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicyPreferDualStack)
		}, []fieldErr{invalid("spec.clusterIPs")}},
		{"RejectsSecondFamilyOnSingleStackCluster", func(s *corev1.Service) {
			s.Spec.ClusterIP = "10.43.0.10"
			s.Spec.ClusterIPs = []string{"10.43.0.10", "fd00::10"}
			s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicyPreferDualStack)
		}, []fieldErr{invalid("spec.clusterIPs[1]")}},
		{"RejectsRequireDualStack", func(s *corev1.Service) { s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicyRequireDualStack) },
			[]fieldErr{invalid("spec.ipFamilyPolicy")}},
		{"RejectsUnconfiguredFamily", func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol} },
			[]fieldErr{invalid("spec.ipFamilies[0]")}},
		{"RejectsIPOfWrongFamily", func(s *corev1.Service) {
			s.Spec.ClusterIP = "fd00::10"
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
		}, []fieldErr{invalid("spec.clusterIPs[0]")}},
		{"RejectsUnknownFamily", func(s *corev1.Service) { s.Spec.IPFamilies = []corev1.IPFamily{"IPv5"} }, []fieldErr{notSupported("spec.ipFamilies[0]")}},
		{"RejectsUnknownFamilyPolicy", func(s *corev1.Service) { s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicy("Sometimes")) },
			[]fieldErr{notSupported("spec.ipFamilyPolicy")}},
		{"RejectsHeadlessNodePort", func(s *corev1.Service) { s.Spec.ClusterIP = "None"; s.Spec.Type = corev1.ServiceTypeNodePort },
			[]fieldErr{invalid("spec.clusterIPs[0]")}},
		{"RequiresExternalName", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName }, []fieldErr{required("spec.externalName")}},
		{"RejectsBadExternalName", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "Not_A_Host"
		}, []fieldErr{invalid("spec.externalName")}},
		{"RejectsClusterIPOnExternalName", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
			s.Spec.ClusterIP = "10.43.0.10"
		}, []fieldErr{forbidden("spec.clusterIPs")}},
		{"RejectsFamiliesOnExternalName", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
			s.Spec.IPFamilyPolicy = ptrTo(corev1.IPFamilyPolicySingleStack)
		}, []fieldErr{forbidden("spec.ipFamilies"), forbidden("spec.ipFamilyPolicy")}},
		{"RejectsBadSelectorLabel", func(s *corev1.Service) { s.Spec.Selector = map[string]string{"app": "not valid"} },
			[]fieldErr{invalid("spec.selector")}},
		{"RejectsUnknownSessionAffinity", func(s *corev1.Service) { s.Spec.SessionAffinity = "Sticky" }, []fieldErr{notSupported("spec.sessionAffinity")}},
		{"RejectsAffinityTimeoutTooLong", func(s *corev1.Service) {
			s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo(int32(86401))}}
		}, []fieldErr{invalid("spec.sessionAffinityConfig.clientIP.timeoutSeconds")}},
		{"RejectsLoopbackExternalIP", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"127.0.0.1"} }, []fieldErr{invalid("spec.externalIPs[0]")}},
		{"RejectsBadExternalIP", func(s *corev1.Service) { s.Spec.ExternalIPs = []string{"example.com"} }, []fieldErr{invalid("spec.externalIPs[0]")}},
		{"RejectsSourceRangesOffLoadBalancer", func(s *corev1.Service) { s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/8"} },
			[]fieldErr{forbidden("spec.LoadBalancerSourceRanges")}},
		{"RejectsBadSourceRange", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerSourceRanges = []string{"10.0.0.0/33"}
		}, []fieldErr{invalid("spec.LoadBalancerSourceRanges[0]")}},
		{"RejectsBadSourceRangeAnnotation", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Annotations = map[string]string{"service.beta.kubernetes.io/load-balancer-source-ranges": "10.0.0.0/8, bogus"}
		}, []fieldErr{invalid("metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]")}},
		{"RejectsAllocateNodePortsOffLoadBalancer", func(s *corev1.Service) { s.Spec.AllocateLoadBalancerNodePorts = ptrTo(false) },
			[]fieldErr{forbidden("spec.allocateLoadBalancerNodePorts")}},
		{"RejectsLoadBalancerClassOffLoadBalancer", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptrTo("example.com/lb") },
			[]fieldErr{forbidden("spec.loadBalancerClass")}},
		{"RejectsBadLoadBalancerClass", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerClass = ptrTo("not a class")
		}, []fieldErr{invalid("spec.loadBalancerClass")}},
		{"RejectsExternalTrafficPolicyOnInternalService", func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}, []fieldErr{invalid("spec.externalTrafficPolicy")}},
		{"RejectsUnknownExternalTrafficPolicy", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeNodePort
			s.Spec.ExternalTrafficPolicy = "Nearest"
		}, []fieldErr{notSupported("spec.externalTrafficPolicy")}},
		{"RejectsHealthCheckPortWithoutLocalPolicy", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.HealthCheckNodePort = 30100
		}, []fieldErr{invalid("spec.healthCheckNodePort")}},
		{"RejectsUnknownInternalTrafficPolicy", func(s *corev1.Service) {
			s.Spec.InternalTrafficPolicy = ptrTo(corev1.ServiceInternalTrafficPolicy("Nearby"))
		}, []fieldErr{notSupported("spec.internalTrafficPolicy")}},
		{"RejectsUnknownTrafficDistribution", func(s *corev1.Service) { s.Spec.TrafficDistribution = ptrTo("Anywhere") },
			[]fieldErr{notSupported("spec.trafficDistribution")}},
		{"AllowsPreferSameNode", func(s *corev1.Service) {
			s.Spec.TrafficDistribution = ptrTo(corev1.ServiceTrafficDistributionPreferSameNode)
		}, nil},
		{"RejectsTopologyAnnotationMismatch", func(s *corev1.Service) {
			s.Annotations = map[string]string{"service.kubernetes.io/topology-mode": "Auto", "service.kubernetes.io/topology-aware-hints": "Disabled"}
		}, []fieldErr{invalid("metadata.annotations[service.kubernetes.io/topology-mode]")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			svc := basicService()
			tc.mutate(svc)
			wantErrs(t, create(t, lookup(t, "/services"), svc), tc.want...)
		})
	}
}

func TestServiceDefaults_TypeDependent(t *testing.T) {
	r := lookup(t, "/services")
	t.Run("ExternalIPsMakeClusterIPExternallyAccessible", func(t *testing.T) {
		svc := basicService()
		svc.Spec.ExternalIPs = []string{"192.0.2.10"}
		if errs := create(t, r, svc); len(errs) != 0 {
			t.Fatal(errs)
		}
		if svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyCluster {
			t.Errorf("externalTrafficPolicy = %q, want Cluster", svc.Spec.ExternalTrafficPolicy)
		}
	})
	t.Run("NoneAffinityDropsConfig", func(t *testing.T) {
		svc := basicService()
		svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptrTo(int32(10))}}
		if errs := create(t, r, svc); len(errs) != 0 {
			t.Fatal(errs)
		}
		if svc.Spec.SessionAffinityConfig != nil {
			t.Errorf("sessionAffinityConfig = %v, want nil", svc.Spec.SessionAffinityConfig)
		}
	})
	t.Run("CreateClearsStatus", func(t *testing.T) {
		svc := basicService()
		svc.Spec.Type = corev1.ServiceTypeLoadBalancer
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}
		create(t, r, svc)
		if len(svc.Status.LoadBalancer.Ingress) != 0 {
			t.Errorf("status kept on create: %v", svc.Status)
		}
	})
	t.Run("ClusterIPSetsClusterIPs", func(t *testing.T) {
		svc := basicService()
		svc.Spec.ClusterIP = "10.43.0.10"
		create(t, r, svc)
		if len(svc.Spec.ClusterIPs) != 1 || svc.Spec.ClusterIPs[0] != "10.43.0.10" {
			t.Errorf("clusterIPs = %v", svc.Spec.ClusterIPs)
		}
	})
}

// storedService returns svc as the REST layer stores it: created through
// the hooks with cluster IP and node ports filled in by hand.
func storedService(t *testing.T, mutate func(*corev1.Service)) *corev1.Service {
	t.Helper()
	svc := basicService()
	svc.Spec.ClusterIP = "10.43.7.7"
	mutate(svc)
	if errs := create(t, lookup(t, "/services"), svc); len(errs) != 0 {
		t.Fatalf("stored fixture invalid: %v", errs)
	}
	svc.ResourceVersion = "5"
	return svc
}

func TestServiceValidateUpdate(t *testing.T) {
	nodePort := func(s *corev1.Service) {
		s.Spec.Type = corev1.ServiceTypeNodePort
		s.Spec.Ports[0].NodePort = 30080
	}
	cases := []struct {
		name   string
		stored func(*corev1.Service)
		mutate func(*corev1.Service)
		want   []fieldErr
		check  func(*testing.T, *corev1.Service)
	}{
		{"ResubmittedManifestKeepsAllocatedValues", nodePort, func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "", nil
			s.Spec.Ports[0].NodePort = 0
		}, nil, func(t *testing.T, s *corev1.Service) {
			if s.Spec.ClusterIP != "10.43.7.7" || s.Spec.Ports[0].NodePort != 30080 {
				t.Errorf("clusterIP %q, nodePort %d: allocated values not kept", s.Spec.ClusterIP, s.Spec.Ports[0].NodePort)
			}
		}},
		{"RejectsClusterIPChange", func(*corev1.Service) {}, func(s *corev1.Service) {
			s.Spec.ClusterIP, s.Spec.ClusterIPs = "10.43.7.8", nil
		}, []fieldErr{invalid("spec.clusterIPs[0]")}, nil},
		{"AllowsChangeToExternalName", func(*corev1.Service) {}, func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeExternalName
			s.Spec.ExternalName = "db.example.com"
		}, nil, func(t *testing.T, s *corev1.Service) {
			if s.Spec.ClusterIP != "" || s.Spec.ClusterIPs != nil || s.Spec.IPFamilies != nil || s.Spec.IPFamilyPolicy != nil {
				t.Errorf("ExternalName kept cluster IP fields: %+v", s.Spec)
			}
		}},
		{"TypeChangeToClusterIPDropsNodePorts", nodePort, func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		}, nil, func(t *testing.T, s *corev1.Service) {
			if s.Spec.Ports[0].NodePort != 0 || s.Spec.ExternalTrafficPolicy != "" {
				t.Errorf("nodePort %d, externalTrafficPolicy %q kept", s.Spec.Ports[0].NodePort, s.Spec.ExternalTrafficPolicy)
			}
		}},
		{"RejectsNewNodePortOnChangeToClusterIP", nodePort, func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.Ports[0].NodePort = 30081
		}, []fieldErr{forbidden("spec.ports[0].nodePort")}, nil},
		{"RejectsIPFamilyChange", func(*corev1.Service) {}, func(s *corev1.Service) {
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
		}, []fieldErr{invalid("spec.ipFamilies[0]"), invalid("spec.clusterIPs[0]")}, nil},
		{"RejectsLoadBalancerClassChange", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.LoadBalancerClass = ptrTo("example.com/a")
		}, func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptrTo("example.com/b") },
			[]fieldErr{invalid("spec.loadBalancerClass")}, nil},
		{"RejectsHealthCheckPortChange", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 30100
		}, func(s *corev1.Service) { s.Spec.HealthCheckNodePort = 30101 },
			[]fieldErr{forbidden("spec.healthCheckNodePort")}, nil},
		{"LoadBalancerStatusClearedOnTypeChange", func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeLoadBalancer
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}
		}, func(s *corev1.Service) {
			s.Spec.Type = corev1.ServiceTypeClusterIP
			s.Spec.AllocateLoadBalancerNodePorts = nil
			s.Spec.ExternalTrafficPolicy = ""
		}, nil, func(t *testing.T, s *corev1.Service) {
			if len(s.Status.LoadBalancer.Ingress) != 0 {
				t.Errorf("load balancer status kept: %v", s.Status.LoadBalancer)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := storedService(t, tc.stored)
			if tc.name == "LoadBalancerStatusClearedOnTypeChange" {
				old.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.1", IPMode: ptrTo(corev1.LoadBalancerIPModeVIP)}}
			}
			svc := old.DeepCopy()
			tc.mutate(svc)
			wantErrs(t, update(t, lookup(t, "/services"), svc, old), tc.want...)
			if tc.check != nil {
				tc.check(t, svc)
			}
		})
	}
}

func TestServiceStatusUpdate(t *testing.T) {
	lb := func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeLoadBalancer }
	cases := []struct {
		name   string
		stored func(*corev1.Service)
		status corev1.ServiceStatus
		want   []fieldErr
	}{
		{"ValidIngressDefaultsIPMode", lb, corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}}}, nil},
		{"ValidHostname", lb, corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{Hostname: "lb.example.com"}}}}, nil},
		{"RejectsIngressOnClusterIP", func(*corev1.Service) {},
			corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.1"}}}},
			[]fieldErr{forbidden("status.loadBalancer.ingress")}},
		{"RejectsBadIngressIP", lb, corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "not-an-ip"}}}},
			[]fieldErr{invalid("status.loadBalancer.ingress[0].ip")}},
		{"RejectsIPAsHostname", lb, corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{Hostname: "192.0.2.1"}}}},
			[]fieldErr{invalid("status.loadBalancer.ingress[0].hostname")}},
		{"RejectsIPModeWithoutIP", lb, corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
			{Hostname: "lb.example.com", IPMode: ptrTo(corev1.LoadBalancerIPModeVIP)}}}},
			[]fieldErr{forbidden("status.loadBalancer.ingress[0].ipMode")}},
		{"RejectsUnknownIPMode", lb, corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{
			{IP: "192.0.2.1", IPMode: ptrTo(corev1.LoadBalancerIPMode("Tunnel"))}}}},
			[]fieldErr{notSupported("status.loadBalancer.ingress[0].ipMode")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := storedService(t, tc.stored)
			svc := old.DeepCopy()
			svc.Status = tc.status
			svc.Spec.Ports = nil // a status update cannot change the spec
			wantErrs(t, updateStatus(t, lookup(t, "/services"), svc, old), tc.want...)
		})
	}
}

func TestServiceSelectableFields(t *testing.T) {
	svc := storedService(t, func(*corev1.Service) {})
	got := lookup(t, "/services").SelectableFields(svc)
	if got["spec.clusterIP"] != "10.43.7.7" || got["spec.type"] != "ClusterIP" {
		t.Errorf("fields = %v", got)
	}
}

// TestServiceMessages pins upstream's wording where clients match it.
func TestServiceMessages(t *testing.T) {
	svc := basicService()
	svc.Spec.Ports = []corev1.ServicePort{{Name: "a", Port: 80}, {Name: "a", Port: 81}}
	errs := create(t, lookup(t, "/services"), svc)
	if len(errs) != 1 || !strings.Contains(errs.ToAggregate().Error(), `spec.ports[1].name: Duplicate value: "a"`) {
		t.Errorf("errors = %v", errs)
	}
}
