package printers

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Node role labels: node-role.kubernetes.io/<role> (any value) and the
// older kubernetes.io/role=<role>.
const (
	nodeRolePrefix = "node-role.kubernetes.io/"
	legacyNodeRole = "kubernetes.io/role"
)

func nodeTable(c clock) *Table {
	info := corev1.NodeSystemInfo{}.SwaggerDoc()
	addresses := corev1.NodeStatus{}.SwaggerDoc()["addresses"]
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Status", "string", "The status of the node"),
			column("Roles", "string", "The roles of the node"),
			ageColumn(),
			column("Version", "string", info["kubeletVersion"]),
			wideColumn("Internal-IP", "string", addresses),
			wideColumn("External-IP", "string", addresses),
			wideColumn("OS-Image", "string", info["osImage"]),
			wideColumn("Kernel-Version", "string", info["kernelVersion"]),
			wideColumn("Container-Runtime", "string", info["containerRuntimeVersion"]),
		},
		Row: cellsOf(func(node *corev1.Node) []interface{} {
			// Upstream shows the Ready condition only; the last one listed
			// wins.
			var status []string
			var readyCond *corev1.NodeCondition
			for i := range node.Status.Conditions {
				if node.Status.Conditions[i].Type == corev1.NodeReady {
					readyCond = &node.Status.Conditions[i]
				}
			}
			switch {
			case readyCond == nil:
				status = append(status, "Unknown")
			case readyCond.Status == corev1.ConditionTrue:
				status = append(status, string(corev1.NodeReady))
			default:
				status = append(status, "Not"+string(corev1.NodeReady))
			}
			if node.Spec.Unschedulable {
				status = append(status, "SchedulingDisabled")
			}
			roles := strings.Join(nodeRoles(node), ",")
			if roles == "" {
				roles = none
			}
			ni := node.Status.NodeInfo
			return []interface{}{
				node.Name,
				strings.Join(status, ","),
				roles,
				c.since(node.CreationTimestamp),
				ni.KubeletVersion,
				nodeAddress(node, corev1.NodeInternalIP),
				nodeAddress(node, corev1.NodeExternalIP),
				orUnknown(ni.OSImage),
				orUnknown(ni.KernelVersion),
				orUnknown(ni.ContainerRuntimeVersion),
			}
		}),
	}
}

// nodeRoles returns the node's roles, sorted and without duplicates.
func nodeRoles(node *corev1.Node) []string {
	seen := make(map[string]bool)
	var roles []string
	add := func(r string) {
		if r != "" && !seen[r] {
			seen[r] = true
			roles = append(roles, r)
		}
	}
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, nodeRolePrefix):
			add(strings.TrimPrefix(k, nodeRolePrefix))
		case k == legacyNodeRole:
			add(v)
		}
	}
	sort.Strings(roles)
	return roles
}

// nodeAddress returns the node's first address of type t, or "<none>".
func nodeAddress(node *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range node.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return none
}

func orUnknown(s string) string {
	if s == "" {
		return unknown
	}
	return s
}

func namespaceTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Status", "string", "The status of the namespace"),
			ageColumn(),
		},
		Row: cellsOf(func(ns *corev1.Namespace) []interface{} {
			return []interface{}{ns.Name, string(ns.Status.Phase), c.since(ns.CreationTimestamp)}
		}),
	}
}

func serviceTable(c clock) *Table {
	doc := corev1.ServiceSpec{}.SwaggerDoc()
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Type", "string", doc["type"]),
			column("Cluster-IP", "string", doc["clusterIP"]),
			column("External-IP", "string", doc["externalIPs"]),
			column("Port(s)", "string", doc["ports"]),
			ageColumn(),
			wideColumn("Selector", "string", doc["selector"]),
		},
		Row: cellsOf(func(svc *corev1.Service) []interface{} {
			clusterIP := none
			switch {
			case len(svc.Spec.ClusterIPs) > 0:
				clusterIP = svc.Spec.ClusterIPs[0]
			case svc.Spec.ClusterIP != "":
				// Not yet normalized into clusterIPs.
				clusterIP = svc.Spec.ClusterIP
			}
			ports := servicePorts(svc.Spec.Ports)
			if ports == "" {
				ports = none
			}
			return []interface{}{
				svc.Name,
				string(svc.Spec.Type),
				clusterIP,
				serviceExternalIP(svc),
				ports,
				c.since(svc.CreationTimestamp),
				labels.FormatLabels(svc.Spec.Selector),
			}
		}),
	}
}

// serviceExternalIP prints the EXTERNAL-IP cell: the external IPs, plus
// for load balancers their ingress points ("<pending>" until there are
// any), or the external name.
func serviceExternalIP(svc *corev1.Service) string {
	switch svc.Spec.Type {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(svc.Spec.ExternalIPs, ",")
		}
		return none
	case corev1.ServiceTypeLoadBalancer:
		lb := loadBalancerAddresses(svc.Status.LoadBalancer.Ingress)
		if len(svc.Spec.ExternalIPs) > 0 {
			return strings.Join(append(lb, svc.Spec.ExternalIPs...), ",")
		}
		if len(lb) > 0 {
			return strings.Join(lb, ",")
		}
		return pending
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return unknown
}

// loadBalancerAddresses returns the IP (else the hostname) of each ingress
// point, sorted and without duplicates.
func loadBalancerAddresses(ingress []corev1.LoadBalancerIngress) []string {
	addrs := make([]string, 0, len(ingress))
	for _, in := range ingress {
		addrs = append(addrs, firstNonEmpty(in.IP, in.Hostname))
	}
	return sortedSet(addrs)
}

// sortedSet sorts ss and drops duplicates and empty strings, in place.
func sortedSet(ss []string) []string {
	sort.Strings(ss)
	out := ss[:0]
	for i, s := range ss {
		if s == "" || (i > 0 && s == ss[i-1]) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// servicePorts prints ports as "80/TCP" or, with a node port,
// "80:30080/TCP", comma-separated.
func servicePorts(ports []corev1.ServicePort) string {
	pieces := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			pieces[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return strings.Join(pieces, ",")
}

func endpointsTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Endpoints", "string", corev1.Endpoints{}.SwaggerDoc()["subsets"]),
			ageColumn(),
		},
		Row: cellsOf(func(ep *corev1.Endpoints) []interface{} {
			return []interface{}{ep.Name, formatEndpoints(ep), c.since(ep.CreationTimestamp)}
		}),
	}
}

// formatEndpoints prints up to three "ip:port" pairs (or bare IPs for
// subsets without ports) and how many more there are.
func formatEndpoints(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return none
	}
	const limit = 3
	list := make([]string, 0, limit)
	count := 0
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) == limit {
					break
				}
				list = append(list, a.IP)
			}
			continue
		}
		for _, port := range ss.Ports {
			count += len(ss.Addresses)
			for _, a := range ss.Addresses {
				if len(list) == limit {
					break
				}
				list = append(list, net.JoinHostPort(a.IP, strconv.Itoa(int(port.Port))))
			}
		}
	}
	s := strings.Join(list, ",")
	if count > limit {
		return fmt.Sprintf("%s + %d more...", s, count-limit)
	}
	return s
}

func configMapTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Data", "string", corev1.ConfigMap{}.SwaggerDoc()["data"]),
			ageColumn(),
		},
		Row: cellsOf(func(cm *corev1.ConfigMap) []interface{} {
			return []interface{}{cm.Name, int64(len(cm.Data) + len(cm.BinaryData)), c.since(cm.CreationTimestamp)}
		}),
	}
}

func secretTable(c clock) *Table {
	doc := corev1.Secret{}.SwaggerDoc()
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Type", "string", doc["type"]),
			column("Data", "string", doc["data"]),
			ageColumn(),
		},
		Row: cellsOf(func(s *corev1.Secret) []interface{} {
			// stringData is merged into data on the way in; count its
			// keys as the stored secret will have them.
			n := len(s.Data)
			for k := range s.StringData {
				if _, dup := s.Data[k]; !dup {
					n++
				}
			}
			return []interface{}{s.Name, string(s.Type), int64(n), c.since(s.CreationTimestamp)}
		}),
	}
}

func serviceAccountTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Secrets", "string", corev1.ServiceAccount{}.SwaggerDoc()["secrets"]),
			ageColumn(),
		},
		Row: cellsOf(func(sa *corev1.ServiceAccount) []interface{} {
			return []interface{}{sa.Name, int64(len(sa.Secrets)), c.since(sa.CreationTimestamp)}
		}),
	}
}

func resourceQuotaTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
			column("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
			ageColumn(),
		},
		Row: cellsOf(func(q *corev1.ResourceQuota) []interface{} {
			names := make([]string, 0, len(q.Status.Hard))
			for name := range q.Status.Hard {
				names = append(names, string(name))
			}
			sort.Strings(names)
			var requests, limits []string
			for _, name := range names {
				used := q.Status.Used[corev1.ResourceName(name)]
				hard := q.Status.Hard[corev1.ResourceName(name)]
				s := fmt.Sprintf("%s: %s/%s", name, used.String(), hard.String())
				if prefix, _, ok := strings.Cut(name, "."); ok && prefix == "limits" {
					limits = append(limits, s)
				} else {
					requests = append(requests, s)
				}
			}
			return []interface{}{q.Name, strings.Join(requests, ", "), strings.Join(limits, ", "), c.since(q.CreationTimestamp)}
		}),
	}
}

func replicationControllerTable(c clock) *Table {
	spec := corev1.ReplicationControllerSpec{}.SwaggerDoc()
	status := corev1.ReplicationControllerStatus{}.SwaggerDoc()
	return &Table{
		Columns: append([]metav1.TableColumnDefinition{
			nameColumn(),
			column("Desired", "integer", spec["replicas"]),
			column("Current", "integer", status["replicas"]),
			column("Ready", "integer", status["readyReplicas"]),
			ageColumn(),
		}, append(containerColumns(),
			wideColumn("Selector", "string", spec["selector"]))...),
		Row: cellsOf(func(rc *corev1.ReplicationController) []interface{} {
			var containers []corev1.Container
			if rc.Spec.Template != nil {
				containers = rc.Spec.Template.Spec.Containers
			}
			names, images := containerCells(containers)
			return []interface{}{
				rc.Name,
				int64(deref(rc.Spec.Replicas)),
				int64(rc.Status.Replicas),
				int64(rc.Status.ReadyReplicas),
				c.since(rc.CreationTimestamp),
				names,
				images,
				labels.FormatLabels(rc.Spec.Selector),
			}
		}),
	}
}

func podTemplateTable() *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Containers", "string", containersDescription),
			column("Images", "string", imagesDescription),
			column("Pod Labels", "string", "The labels for the pod template."),
		},
		Row: cellsOf(func(pt *corev1.PodTemplate) []interface{} {
			names, images := containerCells(pt.Template.Spec.Containers)
			return []interface{}{pt.Name, names, images, labels.FormatLabels(pt.Template.Labels)}
		}),
	}
}

func persistentVolumeTable(c clock) *Table {
	spec := corev1.PersistentVolumeSpec{}.SwaggerDoc()
	status := corev1.PersistentVolumeStatus{}.SwaggerDoc()
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Capacity", "string", spec["capacity"]),
			column("Access Modes", "string", spec["accessModes"]),
			column("Reclaim Policy", "string", spec["persistentVolumeReclaimPolicy"]),
			column("Status", "string", status["phase"]),
			column("Claim", "string", spec["claimRef"]),
			column("StorageClass", "string", "StorageClass of the pv"),
			column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pv"),
			column("Reason", "string", status["reason"]),
			ageColumn(),
			wideColumn("VolumeMode", "string", spec["volumeMode"]),
		},
		Row: cellsOf(func(pv *corev1.PersistentVolume) []interface{} {
			claim := ""
			if ref := pv.Spec.ClaimRef; ref != nil {
				claim = ref.Namespace + "/" + ref.Name
			}
			capacity := pv.Spec.Capacity[corev1.ResourceStorage]
			phase := string(pv.Status.Phase)
			if pv.DeletionTimestamp != nil {
				phase = "Terminating"
			}
			class := pv.Spec.StorageClassName
			if beta, ok := pv.Annotations[corev1.BetaStorageClassAnnotation]; ok {
				class = beta
			}
			volumeMode := unset
			if pv.Spec.VolumeMode != nil {
				volumeMode = string(*pv.Spec.VolumeMode)
			}
			attrClass := unset
			if pv.Spec.VolumeAttributesClassName != nil {
				attrClass = *pv.Spec.VolumeAttributesClassName
			}
			return []interface{}{
				pv.Name,
				capacity.String(),
				accessModes(pv.Spec.AccessModes),
				string(pv.Spec.PersistentVolumeReclaimPolicy),
				phase,
				claim,
				class,
				attrClass,
				pv.Status.Reason,
				c.since(pv.CreationTimestamp),
				volumeMode,
			}
		}),
	}
}

func persistentVolumeClaimTable(c clock) *Table {
	spec := corev1.PersistentVolumeClaimSpec{}.SwaggerDoc()
	status := corev1.PersistentVolumeClaimStatus{}.SwaggerDoc()
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Status", "string", status["phase"]),
			column("Volume", "string", spec["volumeName"]),
			column("Capacity", "string", status["capacity"]),
			column("Access Modes", "string", status["accessModes"]),
			column("StorageClass", "string", "StorageClass of the pvc"),
			column("VolumeAttributesClass", "string", "VolumeAttributesClass of the pvc"),
			ageColumn(),
			wideColumn("VolumeMode", "string", spec["volumeMode"]),
		},
		Row: cellsOf(func(pvc *corev1.PersistentVolumeClaim) []interface{} {
			phase := string(pvc.Status.Phase)
			if pvc.DeletionTimestamp != nil {
				phase = "Terminating"
			}
			// Capacity and access modes are those of the bound volume.
			capacity, modes := "", ""
			if pvc.Spec.VolumeName != "" {
				modes = accessModes(pvc.Status.AccessModes)
				q := pvc.Status.Capacity[corev1.ResourceStorage]
				capacity = q.String()
			}
			class := deref(pvc.Spec.StorageClassName)
			if beta, ok := pvc.Annotations[corev1.BetaStorageClassAnnotation]; ok {
				class = beta
			}
			volumeMode := unset
			if pvc.Spec.VolumeMode != nil {
				volumeMode = string(*pvc.Spec.VolumeMode)
			}
			attrClass := unset
			if pvc.Spec.VolumeAttributesClassName != nil {
				attrClass = *pvc.Spec.VolumeAttributesClassName
			}
			return []interface{}{
				pvc.Name,
				phase,
				pvc.Spec.VolumeName,
				capacity,
				modes,
				class,
				attrClass,
				c.since(pvc.CreationTimestamp),
				volumeMode,
			}
		}),
	}
}

// accessModes prints access modes in upstream's fixed order
// (RWO,ROX,RWX,RWOP), each once.
func accessModes(modes []corev1.PersistentVolumeAccessMode) string {
	has := make(map[corev1.PersistentVolumeAccessMode]bool, len(modes))
	for _, m := range modes {
		has[m] = true
	}
	var out []string
	for _, m := range []struct {
		mode  corev1.PersistentVolumeAccessMode
		short string
	}{
		{corev1.ReadWriteOnce, "RWO"},
		{corev1.ReadOnlyMany, "ROX"},
		{corev1.ReadWriteMany, "RWX"},
		{corev1.ReadWriteOncePod, "RWOP"},
	} {
		if has[m.mode] {
			out = append(out, m.short)
		}
	}
	return strings.Join(out, ",")
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
