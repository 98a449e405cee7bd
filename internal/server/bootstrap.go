package server

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiff-sh/skiff/internal/registry/core"
)

// systemNamespaces exist in every cluster.
var systemNamespaces = []string{metav1.NamespaceDefault, metav1.NamespaceSystem, metav1.NamespacePublic, corev1.NamespaceNodeLease}

// loopbackClient is an admin client of this server over loopback.
func (s *Server) loopbackClient() (kubernetes.Interface, error) {
	cfg := &rest.Config{
		Host: s.url,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   s.bundle.CA.CertPEM(),
			CertData: s.bundle.Admin.CertPEM,
			KeyData:  s.bundle.Admin.KeyPEM,
		},
		QPS:       -1,
		UserAgent: "skiff-server",
	}
	return kubernetes.NewForConfig(cfg)
}

// bootstrap creates the cluster's built-in objects through the API, as
// upstream's bootstrap controllers do: the system namespaces, the built-in
// priority classes, and the kubernetes Service with endpoints pointing at
// this server.
func (s *Server) bootstrap(ctx context.Context) error {
	c, err := s.loopbackClient()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, name := range systemNamespaces {
		_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{FieldManager: "skiff-bootstrap"})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("bootstrap namespace %s: %w", name, err)
		}
	}
	for _, pc := range core.SystemPriorityClasses() {
		_, err := c.SchedulingV1().PriorityClasses().Create(ctx, pc, metav1.CreateOptions{FieldManager: "skiff-bootstrap"})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("bootstrap priority class %s: %w", pc.Name, err)
		}
	}
	if err := s.reconcileKubernetesService(ctx, c); err != nil {
		// Upstream too refuses a loopback endpoint; the cluster works
		// without it, so it is worth a warning, not a failed start.
		if !apierrors.IsInvalid(err) {
			return err
		}
		s.log.Warn("the kubernetes Service has no endpoints", "err", err)
	}
	return nil
}

// reconcileKubernetesService makes default/kubernetes exist and its
// Endpoints and EndpointSlice point at this server.
func (s *Server) reconcileKubernetesService(ctx context.Context, c kubernetes.Interface) error {
	port := int32(s.cfg.HTTPSPort)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name:      "kubernetes",
			Namespace: metav1.NamespaceDefault,
			Labels:    map[string]string{"component": "apiserver", "provider": "kubernetes"},
		},
		Spec: corev1.ServiceSpec{
			Type:            corev1.ServiceTypeClusterIP,
			ClusterIP:       firstServiceIP(s.cfg.ServiceCIDR).String(),
			SessionAffinity: corev1.ServiceAffinityNone,
			Ports: []corev1.ServicePort{{
				Name: "https", Protocol: corev1.ProtocolTCP, Port: 443, TargetPort: intstr.FromInt32(port),
			}},
		},
	}
	// Look before creating: a create of the existing Service would fail on
	// its cluster IP (taken, 422) before it could fail as a duplicate.
	if _, err := c.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := c.CoreV1().Services(metav1.NamespaceDefault).Create(ctx, svc, metav1.CreateOptions{FieldManager: "skiff-bootstrap"}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("bootstrap kubernetes service: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("bootstrap kubernetes service: %w", err)
	}
	ip := s.cfg.AdvertiseAddress.String()
	subsets := []corev1.EndpointSubset{{
		Addresses: []corev1.EndpointAddress{{IP: ip}},
		Ports:     []corev1.EndpointPort{{Name: "https", Port: port, Protocol: corev1.ProtocolTCP}},
	}}
	eps := c.CoreV1().Endpoints(metav1.NamespaceDefault)
	cur, err := eps.Get(ctx, "kubernetes", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = eps.Create(ctx, &corev1.Endpoints{
			ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: metav1.NamespaceDefault, Labels: map[string]string{"endpointslice.kubernetes.io/skip-mirror": "true"}},
			Subsets:    subsets,
		}, metav1.CreateOptions{FieldManager: "skiff-bootstrap"})
	case err == nil && !equality.Semantic.DeepEqual(cur.Subsets, subsets):
		cur.Subsets = subsets
		_, err = eps.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "skiff-bootstrap"})
	}
	if err != nil {
		return fmt.Errorf("bootstrap kubernetes endpoints: %w", err)
	}

	ready := true
	name, proto := "https", corev1.ProtocolTCP
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: "kubernetes", Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{discoveryv1.LabelServiceName: "kubernetes"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}},
	}
	if s.cfg.AdvertiseAddress.To4() == nil {
		slice.AddressType = discoveryv1.AddressTypeIPv6
	}
	slices := c.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault)
	curSlice, err := slices.Get(ctx, "kubernetes", metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = slices.Create(ctx, slice, metav1.CreateOptions{FieldManager: "skiff-bootstrap"})
	case err == nil && (!equality.Semantic.DeepEqual(curSlice.Endpoints, slice.Endpoints) || !equality.Semantic.DeepEqual(curSlice.Ports, slice.Ports)):
		curSlice.Endpoints, curSlice.Ports, curSlice.AddressType = slice.Endpoints, slice.Ports, slice.AddressType
		_, err = slices.Update(ctx, curSlice, metav1.UpdateOptions{FieldManager: "skiff-bootstrap"})
	}
	if err != nil {
		return fmt.Errorf("bootstrap kubernetes endpointslice: %w", err)
	}
	return nil
}

// reconcileLoop keeps the built-in objects in place (someone may delete
// the kubernetes Service or its endpoints), every 10 seconds.
func (s *Server) reconcileLoop(ctx context.Context) {
	c, err := s.loopbackClient()
	if err != nil {
		return
	}
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := s.reconcileKubernetesService(rctx, c); err != nil && ctx.Err() == nil && !apierrors.IsInvalid(err) {
			s.log.Warn("reconcile kubernetes service", "err", err)
		}
		cancel()
	}
}
