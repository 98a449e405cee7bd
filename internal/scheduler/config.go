package scheduler

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/skiff-sh/skiff/internal/scheduler/framework"
	"github.com/skiff-sh/skiff/internal/scheduler/plugins"
)

// DefaultSchedulerName is the name pods ask for in spec.schedulerName by
// default, and the source of the scheduler's events.
const DefaultSchedulerName = "default-scheduler"

// Config configures a Scheduler. Only RESTConfig (or Client) is required;
// every other zero value means upstream's default.
type Config struct {
	// RESTConfig reaches the API server. The scheduler builds its own
	// clients from a copy: protobuf, and QPS and Burst below; one for
	// scheduling, one for events, one for leader election, so that a busy
	// scheduler never starves its lease renewals.
	RESTConfig *rest.Config
	// Client is used for everything when RESTConfig is nil (tests).
	Client kubernetes.Interface

	// SchedulerName is the spec.schedulerName of the pods this scheduler
	// takes; "" means "default-scheduler".
	SchedulerName string

	// LeaderElection makes several schedulers safe: only the holder of
	// the lease schedules.
	LeaderElection LeaderElection

	// Parallelism is how many goroutines filter and score nodes; 0 means
	// 16.
	Parallelism int
	// PercentageOfNodesToScore bounds how many feasible nodes a cycle
	// looks for before scoring, as a percentage of all nodes (at least
	// 100 nodes). 0 is adaptive, as upstream: 50% less 1% per 125 nodes,
	// at least 5%. 100 looks at every node.
	PercentageOfNodesToScore int32

	// MaxInFlightBindings bounds the bindings waiting for the API
	// server; when they are all in flight the next cycle waits. 0 means
	// 64. Unbounded, a fast scheduler floods the API server with
	// thousands of writes at once, and they time out in etcd.
	MaxInFlightBindings int

	// QPS and Burst limit the scheduling client made from RESTConfig;
	// 0 means 1000 and 2000. The events client has the same limits (a
	// bucket of its own); the leader election client has its own small
	// limit.
	QPS   float32
	Burst int

	// PodInitialBackoff and PodMaxBackoff bound the retry backoff of a
	// pod; 0 means 1 s and 10 s.
	PodInitialBackoff time.Duration
	PodMaxBackoff     time.Duration
	// PodMaxInUnschedulable is how long an unschedulable pod waits for a
	// helpful event before it is retried anyway; 0 means 5 minutes.
	PodMaxInUnschedulable time.Duration

	// Registry and Plugins choose the plugins; nil means
	// plugins.NewRegistry() and plugins.Default().
	Registry framework.Registry
	Plugins  []framework.PluginRef

	// Clock tells the time to the queue and the plugins; nil is the real
	// clock. (Leader election uses client-go's own real clock.)
	Clock clock.WithTicker
	// Rand breaks ties between equally scored nodes; nil seeds one from
	// the clock. Only the scheduling goroutine uses it.
	Rand *rand.Rand
	// Logger receives the scheduler's logs; nil discards them.
	Logger *slog.Logger
}

// LeaderElection configures the lease. The zero value campaigns for the
// coordination.k8s.io Lease kube-system/kube-scheduler, as upstream.
type LeaderElection struct {
	// Disabled makes the scheduler schedule without a lease (a single
	// scheduler, tests).
	Disabled bool
	// Namespace and Name of the Lease; "" means kube-system and
	// kube-scheduler.
	Namespace string
	Name      string
	// Identity of this candidate; "" means <hostname>_<uuid>.
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's; 0
	// means 15 s, 10 s and 2 s.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

func (c *Config) validate() error {
	if c.RESTConfig == nil && c.Client == nil {
		return errors.New("scheduler: neither a REST config nor a client given")
	}
	if c.SchedulerName == "" {
		c.SchedulerName = DefaultSchedulerName
	}
	if c.Parallelism == 0 {
		c.Parallelism = framework.DefaultParallelism
	}
	if c.Parallelism < 0 {
		return fmt.Errorf("scheduler: parallelism %d must be positive", c.Parallelism)
	}
	if c.PercentageOfNodesToScore < 0 || c.PercentageOfNodesToScore > 100 {
		return fmt.Errorf("scheduler: percentage of nodes to score %d not in [0, 100]", c.PercentageOfNodesToScore)
	}
	if c.MaxInFlightBindings == 0 {
		c.MaxInFlightBindings = 64
	}
	if c.MaxInFlightBindings < 0 {
		return fmt.Errorf("scheduler: max in-flight bindings %d must be positive", c.MaxInFlightBindings)
	}
	if c.QPS == 0 {
		c.QPS = 1000
	}
	if c.Burst == 0 {
		c.Burst = 2000
	}
	if c.QPS < 0 || c.Burst < 0 {
		return fmt.Errorf("scheduler: QPS %v and burst %d must be positive", c.QPS, c.Burst)
	}
	if c.PodInitialBackoff < 0 || c.PodMaxBackoff < 0 || c.PodMaxInUnschedulable < 0 {
		return errors.New("scheduler: backoffs must not be negative")
	}
	if c.Registry == nil {
		c.Registry = plugins.NewRegistry()
	}
	if c.Plugins == nil {
		c.Plugins = plugins.Default()
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Rand == nil {
		seed := uint64(c.Clock.Now().UnixNano())
		c.Rand = rand.New(rand.NewPCG(seed, seed>>1|1))
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c.LeaderElection.validate()
}

func (l *LeaderElection) validate() error {
	if l.Namespace == "" {
		l.Namespace = "kube-system"
	}
	if l.Name == "" {
		l.Name = "kube-scheduler"
	}
	if l.Identity == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("scheduler: leader election identity: %w", err)
		}
		l.Identity = host + "_" + string(uuid.NewUUID())
	}
	if l.LeaseDuration == 0 {
		l.LeaseDuration = 15 * time.Second
	}
	if l.RenewDeadline == 0 {
		l.RenewDeadline = 10 * time.Second
	}
	if l.RetryPeriod == 0 {
		l.RetryPeriod = 2 * time.Second
	}
	if l.Disabled {
		return nil
	}
	if l.LeaseDuration <= l.RenewDeadline || l.RenewDeadline <= l.RetryPeriod || l.RetryPeriod <= 0 {
		return fmt.Errorf("scheduler: leader election needs lease duration (%v) > renew deadline (%v) > retry period (%v) > 0", l.LeaseDuration, l.RenewDeadline, l.RetryPeriod)
	}
	return nil
}
