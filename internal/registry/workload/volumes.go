package workload

import (
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

const fileModeErrorMsg = "must be a number between 0 and 0777 (octal), both inclusive"

// volumeSourceCount counts the non-nil members of a VolumeSource.
func volumeSourceCount(src *corev1.VolumeSource) int {
	n := 0
	v := reflect.ValueOf(src).Elem()
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			n++
		}
	}
	return n
}

// validateVolumes checks the pod's volumes and returns them by name for
// the mount checks.
func validateVolumes(volumes []corev1.Volume, fldPath *field.Path) (map[string]corev1.VolumeSource, field.ErrorList) {
	var allErrs field.ErrorList
	byName := make(map[string]corev1.VolumeSource, len(volumes))
	for i := range volumes {
		v := &volumes[i]
		p := fldPath.Index(i)
		errs := validateVolumeSource(&v.VolumeSource, p)
		if v.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else {
			errs = append(errs, validateDNS1123Label(v.Name, p.Child("name"))...)
		}
		if _, dup := byName[v.Name]; dup {
			errs = append(errs, field.Duplicate(p.Child("name"), v.Name))
		}
		if len(errs) == 0 && v.Name != "" {
			byName[v.Name] = v.VolumeSource
		} else if v.Name != "" {
			// Still known to the mounts, so a broken volume is reported once.
			if _, dup := byName[v.Name]; !dup {
				byName[v.Name] = v.VolumeSource
			}
		}
		allErrs = append(allErrs, errs...)
	}
	return byName, allErrs
}

func validateVolumeSource(src *corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	n := 0
	one := func(set bool, name string, check func(*field.Path) field.ErrorList) {
		if !set {
			return
		}
		if n > 0 {
			allErrs = append(allErrs, field.Forbidden(fldPath.Child(name), "may not specify more than 1 volume type"))
			return
		}
		n++
		allErrs = append(allErrs, check(fldPath.Child(name))...)
	}
	one(src.EmptyDir != nil, "emptyDir", func(p *field.Path) field.ErrorList {
		if l := src.EmptyDir.SizeLimit; l != nil && l.Sign() < 0 {
			return field.ErrorList{field.Forbidden(p.Child("sizeLimit"), "SizeLimit field must be a valid resource quantity")}
		}
		return nil
	})
	one(src.HostPath != nil, "hostPath", func(p *field.Path) field.ErrorList {
		var errs field.ErrorList
		if src.HostPath.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		} else {
			errs = append(errs, validatePathNoBacksteps(src.HostPath.Path, p.Child("path"))...)
		}
		if t := src.HostPath.Type; t != nil {
			valid := []corev1.HostPathType{corev1.HostPathUnset, corev1.HostPathDirectoryOrCreate, corev1.HostPathDirectory,
				corev1.HostPathFileOrCreate, corev1.HostPathFile, corev1.HostPathSocket, corev1.HostPathCharDev, corev1.HostPathBlockDev}
			if !contains(valid, *t) {
				errs = append(errs, field.NotSupported(p.Child("type"), *t, valid))
			}
		}
		return errs
	})
	one(src.Secret != nil, "secret", func(p *field.Path) field.ErrorList {
		s := src.Secret
		var errs field.ErrorList
		if s.SecretName == "" {
			errs = append(errs, field.Required(p.Child("secretName"), ""))
		} else {
			for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(s.SecretName, false) {
				errs = append(errs, field.Invalid(p.Child("secretName"), s.SecretName, msg))
			}
		}
		errs = append(errs, validateFileMode(s.DefaultMode, p.Child("defaultMode"))...)
		return append(errs, validateKeyToPaths(s.Items, p.Child("items"))...)
	})
	one(src.ConfigMap != nil, "configMap", func(p *field.Path) field.ErrorList {
		c := src.ConfigMap
		var errs field.ErrorList
		if c.Name == "" {
			errs = append(errs, field.Required(p.Child("name"), ""))
		} else {
			for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(c.Name, false) {
				errs = append(errs, field.Invalid(p.Child("name"), c.Name, msg))
			}
		}
		errs = append(errs, validateFileMode(c.DefaultMode, p.Child("defaultMode"))...)
		return append(errs, validateKeyToPaths(c.Items, p.Child("items"))...)
	})
	one(src.PersistentVolumeClaim != nil, "persistentVolumeClaim", func(p *field.Path) field.ErrorList {
		if src.PersistentVolumeClaim.ClaimName == "" {
			return field.ErrorList{field.Required(p.Child("claimName"), "")}
		}
		return nil
	})
	one(src.DownwardAPI != nil, "downwardAPI", func(p *field.Path) field.ErrorList {
		errs := validateFileMode(src.DownwardAPI.DefaultMode, p.Child("defaultMode"))
		return append(errs, validateDownwardAPIFiles(src.DownwardAPI.Items, p)...)
	})
	one(src.Projected != nil, "projected", func(p *field.Path) field.ErrorList {
		return validateProjected(src.Projected, p)
	})
	one(src.NFS != nil, "nfs", func(p *field.Path) field.ErrorList {
		var errs field.ErrorList
		if src.NFS.Server == "" {
			errs = append(errs, field.Required(p.Child("server"), ""))
		}
		if src.NFS.Path == "" {
			errs = append(errs, field.Required(p.Child("path"), ""))
		} else if !strings.HasPrefix(src.NFS.Path, "/") {
			errs = append(errs, field.Invalid(p.Child("path"), src.NFS.Path, "must be an absolute path"))
		}
		return errs
	})
	one(src.CSI != nil, "csi", func(p *field.Path) field.ErrorList {
		if src.CSI.Driver == "" {
			return field.ErrorList{field.Required(p.Child("driver"), "")}
		}
		return validateDNS1123Subdomain(strings.ToLower(src.CSI.Driver), p.Child("driver"))
	})
	one(src.Ephemeral != nil, "ephemeral", func(p *field.Path) field.ErrorList {
		if src.Ephemeral.VolumeClaimTemplate == nil {
			return field.ErrorList{field.Required(p.Child("volumeClaimTemplate"), "")}
		}
		s := &src.Ephemeral.VolumeClaimTemplate.Spec
		if len(s.AccessModes) == 0 {
			return field.ErrorList{field.Required(p.Child("volumeClaimTemplate", "spec", "accessModes"), "at least 1 access mode is required")}
		}
		return nil
	})
	one(src.Image != nil, "image", func(p *field.Path) field.ErrorList {
		var errs field.ErrorList
		if src.Image.Reference == "" {
			errs = append(errs, field.Required(p.Child("reference"), "must be set"))
		}
		return append(errs, validateEnum(p.Child("pullPolicy"), src.Image.PullPolicy, pullPolicies)...)
	})
	// The remaining (mostly deprecated, in-tree) sources are counted so a
	// second source is reported, and accepted as they are.
	for _, other := range []struct {
		set  bool
		name string
	}{
		{src.GCEPersistentDisk != nil, "gcePersistentDisk"}, {src.AWSElasticBlockStore != nil, "awsElasticBlockStore"},
		{src.GitRepo != nil, "gitRepo"}, {src.ISCSI != nil, "iscsi"}, {src.Glusterfs != nil, "glusterfs"},
		{src.RBD != nil, "rbd"}, {src.FlexVolume != nil, "flexVolume"}, {src.Cinder != nil, "cinder"},
		{src.CephFS != nil, "cephfs"}, {src.Flocker != nil, "flocker"}, {src.FC != nil, "fc"},
		{src.AzureFile != nil, "azureFile"}, {src.VsphereVolume != nil, "vsphereVolume"}, {src.Quobyte != nil, "quobyte"},
		{src.AzureDisk != nil, "azureDisk"}, {src.PhotonPersistentDisk != nil, "photonPersistentDisk"},
		{src.PortworxVolume != nil, "portworxVolume"}, {src.ScaleIO != nil, "scaleIO"}, {src.StorageOS != nil, "storageos"},
	} {
		one(other.set, other.name, func(*field.Path) field.ErrorList { return nil })
	}
	if n == 0 {
		allErrs = append(allErrs, field.Required(fldPath, "must specify a volume type"))
	}
	return allErrs
}

func validateFileMode(mode *int32, fldPath *field.Path) field.ErrorList {
	if mode != nil && (*mode > 0o777 || *mode < 0) {
		return field.ErrorList{field.Invalid(fldPath, *mode, fileModeErrorMsg)}
	}
	return nil
}

func validateKeyToPaths(items []corev1.KeyToPath, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, kp := range items {
		p := fldPath.Index(i)
		if kp.Key == "" {
			allErrs = append(allErrs, field.Required(p.Child("key"), ""))
		}
		if kp.Path == "" {
			allErrs = append(allErrs, field.Required(p.Child("path"), ""))
		}
		allErrs = append(allErrs, validateLocalNonReservedPath(kp.Path, p.Child("path"))...)
		allErrs = append(allErrs, validateFileMode(kp.Mode, p.Child("mode"))...)
	}
	return allErrs
}

// validateLocalNonReservedPath: a local descending path that does not
// start with "..", which the atomic writer reserves.
func validateLocalNonReservedPath(p string, fldPath *field.Path) field.ErrorList {
	allErrs := validateLocalDescendingPath(p, fldPath)
	if strings.HasPrefix(p, "..") {
		allErrs = append(allErrs, field.Invalid(fldPath, p, "must not start with '..'"))
	}
	return allErrs
}

var volumeFieldPaths = []string{
	"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid",
}

func validateDownwardAPIFiles(files []corev1.DownwardAPIVolumeFile, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	for i, f := range files {
		p := fldPath.Child("items").Index(i)
		if f.Path == "" {
			allErrs = append(allErrs, field.Required(p.Child("path"), ""))
		}
		allErrs = append(allErrs, validateLocalNonReservedPath(f.Path, p.Child("path"))...)
		allErrs = append(allErrs, validateFileMode(f.Mode, p.Child("mode"))...)
		switch {
		case f.FieldRef != nil && f.ResourceFieldRef != nil:
			allErrs = append(allErrs, field.Invalid(p, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
		case f.FieldRef != nil:
			allErrs = append(allErrs, validateObjectFieldSelector(f.FieldRef, volumeFieldPaths, p.Child("fieldRef"))...)
		case f.ResourceFieldRef != nil:
			allErrs = append(allErrs, validateResourceFieldSelector(f.ResourceFieldRef, true, p.Child("resourceFieldRef"))...)
		default:
			allErrs = append(allErrs, field.Required(p, "one of fieldRef and resourceFieldRef is required"))
		}
	}
	return allErrs
}

func validateProjected(pr *corev1.ProjectedVolumeSource, fldPath *field.Path) field.ErrorList {
	allErrs := validateFileMode(pr.DefaultMode, fldPath.Child("defaultMode"))
	paths := map[string]bool{}
	addPath := func(p string, fp *field.Path) {
		if paths[p] {
			allErrs = append(allErrs, field.Invalid(fp, p, "conflicting duplicate paths"))
		}
		paths[p] = true
	}
	for i, s := range pr.Sources {
		sp := fldPath.Child("sources").Index(i)
		n := 0
		if s.Secret != nil {
			n++
			p := sp.Child("secret")
			if s.Secret.Name == "" {
				allErrs = append(allErrs, field.Required(p.Child("name"), ""))
			}
			allErrs = append(allErrs, validateKeyToPaths(s.Secret.Items, p.Child("items"))...)
			for j, kp := range s.Secret.Items {
				addPath(kp.Path, p.Child("items").Index(j).Child("path"))
			}
		}
		if s.ConfigMap != nil {
			n++
			p := sp.Child("configMap")
			if s.ConfigMap.Name == "" {
				allErrs = append(allErrs, field.Required(p.Child("name"), ""))
			}
			allErrs = append(allErrs, validateKeyToPaths(s.ConfigMap.Items, p.Child("items"))...)
			for j, kp := range s.ConfigMap.Items {
				addPath(kp.Path, p.Child("items").Index(j).Child("path"))
			}
		}
		if s.DownwardAPI != nil {
			n++
			p := sp.Child("downwardAPI")
			allErrs = append(allErrs, validateDownwardAPIFiles(s.DownwardAPI.Items, p)...)
			for j, f := range s.DownwardAPI.Items {
				addPath(f.Path, p.Child("items").Index(j).Child("path"))
			}
		}
		if t := s.ServiceAccountToken; t != nil {
			n++
			p := sp.Child("serviceAccountToken")
			if t.ExpirationSeconds != nil {
				if *t.ExpirationSeconds < 10*60 {
					allErrs = append(allErrs, field.Invalid(p.Child("expirationSeconds"), *t.ExpirationSeconds, "may not specify a duration less than 10 minutes"))
				} else if *t.ExpirationSeconds > 1<<32 {
					allErrs = append(allErrs, field.Invalid(p.Child("expirationSeconds"), *t.ExpirationSeconds, "may not specify a duration larger than 2^32 seconds"))
				}
			}
			if t.Path == "" {
				allErrs = append(allErrs, field.Required(p.Child("path"), ""))
			}
			addPath(t.Path, p.Child("path"))
		}
		if s.ClusterTrustBundle != nil {
			n++
			if s.ClusterTrustBundle.Path == "" {
				allErrs = append(allErrs, field.Required(sp.Child("clusterTrustBundle", "path"), ""))
			}
			addPath(s.ClusterTrustBundle.Path, sp.Child("clusterTrustBundle", "path"))
		}
		if s.PodCertificate != nil {
			n++
		}
		if n > 1 {
			allErrs = append(allErrs, field.Forbidden(sp, "may not specify more than 1 volume type per source"))
		}
	}
	return allErrs
}

// validateVolumeMounts checks a container's mounts against the pod's
// volumes.
func validateVolumeMounts(c *corev1.Container, volumes map[string]corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	mountPaths := map[string]bool{}
	devNames, devPaths := map[string]bool{}, map[string]bool{}
	for _, d := range c.VolumeDevices {
		devNames[d.Name], devPaths[d.DevicePath] = true, true
	}
	for i, m := range c.VolumeMounts {
		p := fldPath.Index(i)
		if m.Name == "" {
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		}
		src, known := volumes[m.Name]
		if !known {
			allErrs = append(allErrs, field.NotFound(p.Child("name"), m.Name))
		}
		if m.MountPath == "" {
			allErrs = append(allErrs, field.Required(p.Child("mountPath"), ""))
		}
		if mountPaths[m.MountPath] {
			allErrs = append(allErrs, field.Invalid(p.Child("mountPath"), m.MountPath, "must be unique"))
		}
		mountPaths[m.MountPath] = true
		if devNames[m.Name] {
			allErrs = append(allErrs, field.Invalid(p.Child("name"), m.Name, "must not already exist in volumeDevices"))
		}
		if devPaths[m.MountPath] {
			allErrs = append(allErrs, field.Invalid(p.Child("mountPath"), m.MountPath, "must not already exist as a path in volumeDevices"))
		}
		if known && src.Image != nil {
			if m.SubPath != "" {
				allErrs = append(allErrs, field.Invalid(p.Child("subPath"), m.SubPath, "not allowed in image volume sources"))
			}
			if m.SubPathExpr != "" {
				allErrs = append(allErrs, field.Invalid(p.Child("subPathExpr"), m.SubPathExpr, "not allowed in image volume sources"))
			}
		}
		if m.SubPath != "" {
			allErrs = append(allErrs, validateLocalDescendingPath(m.SubPath, fldPath.Child("subPath"))...)
		}
		if m.SubPathExpr != "" {
			if m.SubPath != "" {
				allErrs = append(allErrs, field.Invalid(p.Child("subPathExpr"), m.SubPathExpr, "subPathExpr and subPath are mutually exclusive"))
			}
			allErrs = append(allErrs, validateLocalDescendingPath(m.SubPathExpr, fldPath.Child("subPathExpr"))...)
		}
		if m.MountPropagation != nil {
			allErrs = append(allErrs, validateMountPropagation(*m.MountPropagation, c, fldPath.Child("mountPropagation"))...)
		}
		allErrs = append(allErrs, validateRecursiveReadOnly(m, fldPath.Child("recursiveReadOnly"))...)
	}
	return allErrs
}

func validateMountPropagation(mode corev1.MountPropagationMode, c *corev1.Container, fldPath *field.Path) field.ErrorList {
	valid := []corev1.MountPropagationMode{corev1.MountPropagationBidirectional, corev1.MountPropagationHostToContainer, corev1.MountPropagationNone}
	if !contains(valid, mode) {
		return field.ErrorList{field.NotSupported(fldPath, mode, valid)}
	}
	if c == nil {
		// Volume devices and ephemeral containers: no privileged check.
		return nil
	}
	privileged := c.SecurityContext != nil && c.SecurityContext.Privileged != nil && *c.SecurityContext.Privileged
	if mode == corev1.MountPropagationBidirectional && !privileged {
		return field.ErrorList{field.Forbidden(fldPath, "Bidirectional mount propagation is available only to privileged containers")}
	}
	return nil
}

func validateRecursiveReadOnly(m corev1.VolumeMount, fldPath *field.Path) field.ErrorList {
	if m.RecursiveReadOnly == nil {
		return nil
	}
	var allErrs field.ErrorList
	switch *m.RecursiveReadOnly {
	case corev1.RecursiveReadOnlyDisabled:
	case corev1.RecursiveReadOnlyEnabled, corev1.RecursiveReadOnlyIfPossible:
		if !m.ReadOnly {
			allErrs = append(allErrs, field.Forbidden(fldPath, "may only be specified when readOnly is true"))
		}
		if m.MountPropagation != nil && *m.MountPropagation != corev1.MountPropagationNone {
			allErrs = append(allErrs, field.Forbidden(fldPath, "may only be specified when mountPropagation is None or not specified"))
		}
	default:
		valid := []corev1.RecursiveReadOnlyMode{corev1.RecursiveReadOnlyDisabled, corev1.RecursiveReadOnlyIfPossible, corev1.RecursiveReadOnlyEnabled}
		allErrs = append(allErrs, field.NotSupported(fldPath, *m.RecursiveReadOnly, valid))
	}
	return allErrs
}

func validateVolumeDevices(c *corev1.Container, volumes map[string]corev1.VolumeSource, fldPath *field.Path) field.ErrorList {
	var allErrs field.ErrorList
	names, paths := map[string]bool{}, map[string]bool{}
	mountNames, mountPaths := map[string]bool{}, map[string]bool{}
	for _, m := range c.VolumeMounts {
		mountNames[m.Name], mountPaths[m.MountPath] = true, true
	}
	for i, d := range c.VolumeDevices {
		p := fldPath.Index(i)
		src, known := volumes[d.Name]
		if d.Name == "" {
			allErrs = append(allErrs, field.Required(p.Child("name"), ""))
		}
		if names[d.Name] {
			allErrs = append(allErrs, field.Invalid(p.Child("name"), d.Name, "must be unique"))
		}
		if known && src.PersistentVolumeClaim == nil && src.Ephemeral == nil {
			allErrs = append(allErrs, field.Invalid(p.Child("name"), d.Name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
		}
		if !known {
			allErrs = append(allErrs, field.NotFound(p.Child("name"), d.Name))
		}
		if d.DevicePath == "" {
			allErrs = append(allErrs, field.Required(p.Child("devicePath"), ""))
		}
		if paths[d.DevicePath] {
			allErrs = append(allErrs, field.Invalid(p.Child("devicePath"), d.DevicePath, "must be unique"))
		}
		if d.DevicePath != "" && len(validatePathNoBacksteps(d.DevicePath, p)) > 0 {
			allErrs = append(allErrs, field.Invalid(p.Child("devicePath"), d.DevicePath, "can not contain backsteps ('..')"))
		} else {
			paths[d.DevicePath] = true
		}
		if mountNames[d.Name] {
			allErrs = append(allErrs, field.Invalid(p.Child("name"), d.Name, "must not already exist in volumeMounts"))
		}
		if mountPaths[d.DevicePath] {
			allErrs = append(allErrs, field.Invalid(p.Child("devicePath"), d.DevicePath, "must not already exist as a path in volumeMounts"))
		}
		if d.Name != "" {
			names[d.Name] = true
		}
	}
	return allErrs
}

// validateVolumeClaimTemplateName is used by StatefulSets, whose claim
// templates provide volumes by name.
func validateVolumeClaimTemplateName(name string, fldPath *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(fldPath, "")}
	}
	var allErrs field.ErrorList
	for _, msg := range validation.IsDNS1123Subdomain(name) {
		allErrs = append(allErrs, field.Invalid(fldPath, name, msg))
	}
	return allErrs
}
