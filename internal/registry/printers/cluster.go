package printers

import (
	"strconv"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	discoveryv1beta1 "k8s.io/api/discovery/v1beta1"
	extensionsv1beta1 "k8s.io/api/extensions/v1beta1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	rbacv1beta1 "k8s.io/api/rbac/v1beta1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Annotations that mark the default StorageClass.
const (
	defaultClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	betaDefaultClassAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

func leaseTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Holder", "string", coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]),
			ageColumn(),
		},
		Row: cellsOf(func(l *coordinationv1.Lease) []interface{} {
			return []interface{}{l.Name, deref(l.Spec.HolderIdentity), c.since(l.CreationTimestamp)}
		}),
	}
}

func endpointSliceTable(c clock) *Table {
	doc := discoveryv1beta1.EndpointSlice{}.SwaggerDoc()
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("AddressType", "string", doc["addressType"]),
			column("Ports", "string", doc["ports"]),
			column("Endpoints", "string", doc["endpoints"]),
			ageColumn(),
		},
		Row: cellsOf(func(es *discoveryv1.EndpointSlice) []interface{} {
			const limit = 3
			ports := make([]string, 0, limit)
			for _, p := range es.Ports {
				if len(ports) == limit {
					break
				}
				switch {
				case p.Port != nil:
					ports = append(ports, strconv.Itoa(int(*p.Port)))
				case p.Name != nil:
					ports = append(ports, *p.Name)
				default:
					ports = append(ports, "*")
				}
			}
			addrs := make([]string, 0, limit)
			count := 0
			for _, ep := range es.Endpoints {
				for _, a := range ep.Addresses {
					if len(addrs) < limit {
						addrs = append(addrs, a)
					}
					count++
				}
			}
			return []interface{}{
				es.Name,
				string(es.AddressType),
				joinWithMore(ports, len(es.Ports), limit),
				joinWithMore(addrs, count, limit),
				c.since(es.CreationTimestamp),
			}
		}),
	}
}

func priorityClassTable(c clock) *Table {
	doc := schedulingv1.PriorityClass{}.SwaggerDoc()
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Value", "integer", doc["value"]),
			column("Global-Default", "boolean", doc["globalDefault"]),
			ageColumn(),
			column("PreemptionPolicy", "string", doc["preemptionPolicy"]),
		},
		Row: cellsOf(func(pc *schedulingv1.PriorityClass) []interface{} {
			policy := ""
			if pc.PreemptionPolicy != nil {
				policy = string(*pc.PreemptionPolicy)
			}
			return []interface{}{pc.Name, int64(pc.Value), pc.GlobalDefault, c.since(pc.CreationTimestamp), policy}
		}),
	}
}

// bindingColumns are the columns of a role binding table; what names the
// kind of binding in the descriptions ("roleBinding").
func bindingColumns(roleRef, what string) []metav1.TableColumnDefinition {
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Role", "string", roleRef),
		ageColumn(),
		wideColumn("Users", "string", "Users in the "+what),
		wideColumn("Groups", "string", "Groups in the "+what),
		wideColumn("ServiceAccounts", "string", "ServiceAccounts in the "+what),
	}
}

// bindingCells prints a role binding: ROLE as "Kind/name", then its
// users, groups and service accounts ("namespace/name").
func bindingCells(c clock, meta *metav1.ObjectMeta, ref rbacv1.RoleRef, subjects []rbacv1.Subject) []interface{} {
	var users, groups, sas []string
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.ServiceAccountKind:
			sas = append(sas, s.Namespace+"/"+s.Name)
		case rbacv1.UserKind:
			users = append(users, s.Name)
		case rbacv1.GroupKind:
			groups = append(groups, s.Name)
		}
	}
	return []interface{}{
		meta.Name,
		ref.Kind + "/" + ref.Name,
		c.since(meta.CreationTimestamp),
		strings.Join(users, ", "),
		strings.Join(groups, ", "),
		strings.Join(sas, ", "),
	}
}

func roleBindingTable(c clock) *Table {
	return &Table{
		Columns: bindingColumns(rbacv1beta1.RoleBinding{}.SwaggerDoc()["roleRef"], "roleBinding"),
		Row: cellsOf(func(b *rbacv1.RoleBinding) []interface{} {
			return bindingCells(c, &b.ObjectMeta, b.RoleRef, b.Subjects)
		}),
	}
}

func clusterRoleBindingTable(c clock) *Table {
	return &Table{
		Columns: bindingColumns(rbacv1beta1.ClusterRoleBinding{}.SwaggerDoc()["roleRef"], "clusterRoleBinding"),
		Row: cellsOf(func(b *rbacv1.ClusterRoleBinding) []interface{} {
			return bindingCells(c, &b.ObjectMeta, b.RoleRef, b.Subjects)
		}),
	}
}

func ingressTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Class", "string", "The name of the IngressClass resource that should be used for additional configuration"),
			column("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
			column("Address", "string", "Address is a list containing ingress points for the load-balancer"),
			column("Ports", "string", "Ports of TLS configurations that open"),
			ageColumn(),
		},
		Row: cellsOf(func(in *networkingv1.Ingress) []interface{} {
			class := none
			if in.Spec.IngressClassName != nil {
				class = *in.Spec.IngressClassName
			}
			addrs := make([]string, 0, len(in.Status.LoadBalancer.Ingress))
			for _, lb := range in.Status.LoadBalancer.Ingress {
				addrs = append(addrs, firstNonEmpty(lb.IP, lb.Hostname))
			}
			ports := "80"
			if len(in.Spec.TLS) > 0 {
				ports = "80, 443"
			}
			return []interface{}{
				in.Name,
				class,
				ingressHosts(in.Spec.Rules),
				strings.Join(sortedSet(addrs), ","),
				ports,
				c.since(in.CreationTimestamp),
			}
		}),
	}
}

// ingressHosts prints the first three hosts the rules name and, when rules
// follow them, how many rules there are beyond three; "*" when no rule
// names a host.
func ingressHosts(rules []networkingv1.IngressRule) string {
	const limit = 3
	var hosts []string
	more := false
	for _, r := range rules {
		if len(hosts) == limit {
			more = true
			break
		}
		if r.Host != "" {
			hosts = append(hosts, r.Host)
		}
	}
	if len(hosts) == 0 {
		return "*"
	}
	s := strings.Join(hosts, ",")
	if more {
		return s + " + " + strconv.Itoa(len(rules)-limit) + " more..."
	}
	return s
}

func ingressClassTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Controller", "string", "Controller that is responsible for handling this class"),
			column("Parameters", "string", "A reference to a resource with additional parameters"),
			ageColumn(),
		},
		Row: cellsOf(func(ic *networkingv1.IngressClass) []interface{} {
			params := none
			if p := ic.Spec.Parameters; p != nil {
				params = p.Kind
				if p.APIGroup != nil {
					params += "." + *p.APIGroup
				}
				params += "/" + p.Name
			}
			return []interface{}{ic.Name, ic.Spec.Controller, params, c.since(ic.CreationTimestamp)}
		}),
	}
}

func networkPolicyTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Pod-Selector", "string", extensionsv1beta1.NetworkPolicySpec{}.SwaggerDoc()["podSelector"]),
			ageColumn(),
		},
		Row: cellsOf(func(np *networkingv1.NetworkPolicy) []interface{} {
			return []interface{}{np.Name, metav1.FormatLabelSelector(&np.Spec.PodSelector), c.since(np.CreationTimestamp)}
		}),
	}
}

func storageClassTable(c clock) *Table {
	doc := storagev1.StorageClass{}.SwaggerDoc()
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Provisioner", "string", doc["provisioner"]),
			column("ReclaimPolicy", "string", doc["reclaimPolicy"]),
			column("VolumeBindingMode", "string", doc["volumeBindingMode"]),
			column("AllowVolumeExpansion", "string", doc["allowVolumeExpansion"]),
			ageColumn(),
		},
		Row: cellsOf(func(sc *storagev1.StorageClass) []interface{} {
			name := sc.Name
			if sc.Annotations[defaultClassAnnotation] == "true" || sc.Annotations[betaDefaultClassAnnotation] == "true" {
				name += " (default)"
			}
			reclaim := string(corev1.PersistentVolumeReclaimDelete)
			if sc.ReclaimPolicy != nil {
				reclaim = string(*sc.ReclaimPolicy)
			}
			binding := string(storagev1.VolumeBindingImmediate)
			if sc.VolumeBindingMode != nil {
				binding = string(*sc.VolumeBindingMode)
			}
			return []interface{}{name, sc.Provisioner, reclaim, binding, deref(sc.AllowVolumeExpansion), c.since(sc.CreationTimestamp)}
		}),
	}
}

func podDisruptionBudgetTable(c clock) *Table {
	return &Table{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Min Available", "string", "The minimum number of pods that must be available."),
			column("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
			column("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."),
			ageColumn(),
		},
		Row: cellsOf(func(pdb *policyv1.PodDisruptionBudget) []interface{} {
			minAvailable, maxUnavailable := "N/A", "N/A"
			if pdb.Spec.MinAvailable != nil {
				minAvailable = pdb.Spec.MinAvailable.String()
			}
			if pdb.Spec.MaxUnavailable != nil {
				maxUnavailable = pdb.Spec.MaxUnavailable.String()
			}
			return []interface{}{pdb.Name, minAvailable, maxUnavailable, int64(pdb.Status.DisruptionsAllowed), c.since(pdb.CreationTimestamp)}
		}),
	}
}
