package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"

	schedulingv1 "k8s.io/api/scheduling/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiff-sh/skiff/internal/registry"
)

// Defaults of Config, in the form flags take them.
const (
	// DefaultServiceCIDR is the Service cluster IP range when
	// Config.ServiceCIDR is unset (k3s uses the same range).
	DefaultServiceCIDR = "10.43.0.0/16"
	// DefaultNodePortRange is upstream's default --service-node-port-range.
	DefaultNodePortRange = "30000-32767"
)

// PriorityClasses finds the PriorityClass marked globalDefault, so that
// the priorityclasses resource can refuse a second one as upstream's
// Priority admission plugin does. Implementations read the API's
// PriorityClasses (usually from an informer cache) and must be safe for
// concurrent use. workload.PriorityClasses has the same method, so one
// implementation serves both packages.
type PriorityClasses interface {
	// GlobalDefault returns a class marked globalDefault, or nil when
	// there is none.
	GlobalDefault(ctx context.Context) (*schedulingv1.PriorityClass, error)
}

// Config tunes the resources. The zero value is ready to use: services
// get no cluster IPs or node ports (allocation is disabled), and nothing
// checks that only one PriorityClass is the global default.
type Config struct {
	// ServiceCIDR is the range Service cluster IPs are allocated from. The
	// zero value means DefaultServiceCIDR. It must hold between 4 and 2^20
	// addresses (IPv4 /12 to /30, IPv6 /108 to /126). Its first address
	// (10.43.0.1 by default) is never handed out at random: it belongs to
	// the "kubernetes" Service, which the server creates with that
	// clusterIP set explicitly.
	ServiceCIDR netip.Prefix

	// NodePortRange is the range of node ports for NodePort and
	// LoadBalancer Services. The zero value means DefaultNodePortRange.
	NodePortRange PortRange

	// Reservations stores which cluster IPs and node ports are taken,
	// shared by every API server of the cluster. Nil disables allocation:
	// services keep the clusterIP and nodePorts their clients send (still
	// checked against the ranges) and get none assigned. Tests of other
	// resources run this way.
	Reservations Reservations

	// PriorityClasses, when set, lets the priorityclasses resource refuse
	// a second globalDefault class. Nil skips that check.
	PriorityClasses PriorityClasses

	// Logger receives what hooks cannot return: failures to release an
	// allocation on rollback. Nil discards.
	Logger *slog.Logger
}

// PortRange is an inclusive range of ports, printed and parsed as
// "30000-32767".
type PortRange struct {
	First, Last int
}

// ParsePortRange parses "first-last" (or a single port) as a PortRange.
func ParsePortRange(s string) (PortRange, error) {
	first, last, found := strings.Cut(strings.TrimSpace(s), "-")
	if !found {
		last = first
	}
	a, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	b, err := strconv.Atoi(strings.TrimSpace(last))
	if err != nil {
		return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	r := PortRange{First: a, Last: b}
	if err := r.validate(); err != nil {
		return PortRange{}, fmt.Errorf("port range %q: %w", s, err)
	}
	return r, nil
}

// String returns "first-last", the form upstream prints in errors.
func (r PortRange) String() string { return fmt.Sprintf("%d-%d", r.First, r.Last) }

// Contains reports whether port is in the range.
func (r PortRange) Contains(port int) bool { return port >= r.First && port <= r.Last }

func (r PortRange) validate() error {
	if r.First < 1 || r.Last > 65535 || r.First > r.Last {
		return fmt.Errorf("must be first-last with 1 <= first <= last <= 65535, not %d-%d", r.First, r.Last)
	}
	return nil
}

// withDefaults returns c with the zero fields set to their defaults.
func (c Config) withDefaults() Config {
	if !c.ServiceCIDR.IsValid() {
		c.ServiceCIDR = netip.MustParsePrefix(DefaultServiceCIDR)
	}
	if c.NodePortRange == (PortRange{}) {
		c.NodePortRange = PortRange{First: 30000, Last: 32767}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// Validate reports whether c (after defaults) can be used: the service
// CIDR must be a network address of a usable size and the node port
// range well formed.
func (c Config) Validate() error {
	return c.withDefaults().validate()
}

func (c Config) validate() error {
	var errs []error
	p := c.ServiceCIDR
	hostBits := p.Addr().BitLen() - p.Bits()
	switch {
	case p.Addr().Is4In6():
		errs = append(errs, fmt.Errorf("service CIDR %s: must not be an IPv4-mapped IPv6 range", p))
	case p.Masked() != p:
		errs = append(errs, fmt.Errorf("service CIDR %s: must be a network address (%s)", p, p.Masked()))
	case hostBits < 2 || hostBits > maxServiceHostBits:
		errs = append(errs, fmt.Errorf("service CIDR %s: must have between 2 and %d host bits, has %d", p, maxServiceHostBits, hostBits))
	}
	if err := c.NodePortRange.validate(); err != nil {
		errs = append(errs, fmt.Errorf("node port range: %w", err))
	}
	return errors.Join(errs...)
}

// maxServiceHostBits bounds the service CIDR as upstream does (/12 for
// IPv4, /108 for IPv6), which keeps a full scan of the range cheap.
const maxServiceHostBits = 20

// Resources returns the rules of every resource in this package, each a
// new value the caller owns:
//
//	core/v1                       namespaces, nodes, services, endpoints,
//	                              configmaps, secrets, serviceaccounts,
//	                              events, limitranges, resourcequotas
//	events.k8s.io/v1              events
//	coordination.k8s.io/v1        leases
//	discovery.k8s.io/v1           endpointslices
//	scheduling.k8s.io/v1          priorityclasses
//	rbac.authorization.k8s.io/v1  roles, clusterroles, rolebindings,
//	                              clusterrolebindings
//
// Table is left nil for the caller to fill from internal/registry/printers.
// Resources panics, like regexp.MustCompile, when cfg does not pass
// Validate: a bad CIDR is a programming or flag error to catch at start.
func Resources(cfg Config) []*registry.Resource {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		panic(fmt.Sprintf("registry/core: invalid config: %v", err))
	}
	b := &builder{cfg: cfg, log: cfg.Logger.WithGroup("registry.core")}
	b.alloc = newAllocator(cfg.Reservations, cfg.ServiceCIDR, cfg.NodePortRange, b.log)
	return []*registry.Resource{
		b.namespaces(),
		b.nodes(),
		b.services(),
		b.endpoints(),
		b.configMaps(),
		b.secrets(),
		b.serviceAccounts(),
		b.events(),
		b.limitRanges(),
		b.resourceQuotas(),
		b.eventsV1(),
		b.leases(),
		b.endpointSlices(),
		b.priorityClasses(),
		b.roles(),
		b.clusterRoles(),
		b.roleBindings(),
		b.clusterRoleBindings(),
	}
}

// builder builds the resources of one Config.
type builder struct {
	cfg   Config
	log   *slog.Logger
	alloc *allocator
}

// Name validators for Resource.NameValidation, as upstream picks them.
var (
	nameIsDNSLabel     = apimachineryvalidation.NameIsDNSLabel
	nameIsDNS1035Label = apimachineryvalidation.NameIsDNS1035Label
	nameIsPathSegment  = path.ValidatePathSegmentName
)

// Shared messages.
const (
	isNegativeErrorMsg     = apimachineryvalidation.IsNegativeErrorMsg
	fieldImmutableErrorMsg = apimachineryvalidation.FieldImmutableErrorMsg
	immutableWhenSetMsg    = "field is immutable when `immutable` is set"
)

func ptrTo[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// validateImmutable is upstream's ValidateImmutableField.
func validateImmutable(newVal, oldVal any, fldPath *field.Path) field.ErrorList {
	return apimachineryvalidation.ValidateImmutableField(newVal, oldVal, fldPath)
}

// invalidMsgs turns the messages of a content check into Invalid errors.
func invalidMsgs(fldPath *field.Path, value any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(fldPath, value, msg))
	}
	return errs
}
