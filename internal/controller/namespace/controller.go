package namespace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Discovery lists the namespaced resources the API serves, in their
// preferred versions; discovery.DiscoveryInterface is one. The controller
// asks on every pass, so it should not cache for long.
type Discovery interface {
	ServerPreferredNamespacedResources() ([]*metav1.APIResourceList, error)
}

// Config configures a Controller. Client, Metadata and Informers are
// required.
type Config struct {
	// Client reads namespaces and pods and writes namespace status and
	// finalize.
	Client kubernetes.Interface
	// Metadata lists and deletes the content of any kind.
	Metadata metadata.Interface
	// Discovery finds the kinds to delete. Nil is Client.Discovery().
	Discovery Discovery
	// Informers provides the namespace cache; the caller starts it after
	// New.
	Informers informers.SharedInformerFactory
	// Logger receives the controller's logs. Nil discards them.
	Logger *slog.Logger
	// Clock is the time source. Nil is the real clock.
	Clock clock.WithTicker
	// Workers is how many namespaces are emptied at once. Zero is 10.
	Workers int
	// RecheckAfter is how long to wait before looking again at content
	// that is going away without a better estimate (finalizers, kinds
	// other than pods). Zero is 2s.
	RecheckAfter time.Duration
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Workers == 0 {
		c.Workers = 10
	}
	if c.RecheckAfter == 0 {
		c.RecheckAfter = 2 * time.Second
	}
	if c.Discovery == nil && c.Client != nil {
		c.Discovery = c.Client.Discovery()
	}
}

func (c *Config) validate() error {
	switch {
	case c.Client == nil:
		return errors.New("client is required")
	case c.Metadata == nil:
		return errors.New("metadata client is required")
	case c.Informers == nil:
		return errors.New("informers are required")
	case c.Workers < 0:
		return fmt.Errorf("workers %d is negative", c.Workers)
	case c.RecheckAfter < 0:
		return fmt.Errorf("recheck interval %v is negative", c.RecheckAfter)
	}
	return nil
}

// Controller is the namespace controller.
type Controller struct {
	cfg    Config
	client kubernetes.Interface
	log    *slog.Logger
	clock  clock.WithTicker

	lister corelisters.NamespaceLister
	synced cache.InformerSynced
	queue  workqueue.TypedRateLimitingInterface[string]
}

// New builds a Controller and registers its informer and handlers. It
// does not call the API.
func New(cfg Config) (*Controller, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("namespace controller config: %w", err)
	}
	inf := cfg.Informers.Core().V1().Namespaces()
	c := &Controller{
		cfg:    cfg,
		client: cfg.Client,
		log:    cfg.Logger,
		clock:  cfg.Clock,
		lister: inf.Lister(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			// Upstream's pace: namespace deletion is not urgent, and
			// failures are often other controllers' finalizers.
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](5*time.Millisecond, 60*time.Second),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "namespace", Clock: cfg.Clock},
		),
	}
	enqueue := func(obj any) {
		if ns, ok := obj.(*corev1.Namespace); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	reg, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, cur any) { enqueue(cur) },
	})
	if err != nil {
		return nil, fmt.Errorf("namespace informer: %w", err)
	}
	c.synced = reg.HasSynced
	return c, nil
}

// Run waits for the cache, then empties deleting namespaces with
// Config.Workers workers until ctx is done, and returns nil once they have
// stopped. Run may be called once.
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("namespace controller: cache did not sync")
	}
	c.log.Info("started", "workers", c.cfg.Workers)
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	c.queue.ShutDown()
	wg.Wait()
	return nil
}

func (c *Controller) processNext(ctx context.Context) bool {
	name, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(name)
	again, err := c.sync(ctx, name)
	switch {
	case err != nil:
		c.log.Info("namespace deletion failed; retrying", "namespace", name, "err", err)
		c.queue.AddRateLimited(name)
	case again > 0:
		c.queue.Forget(name)
		c.queue.AddAfter(name, again)
	default:
		c.queue.Forget(name)
	}
	return true
}

// sync works on the namespace name. It returns how long to wait before
// looking again when content is still going away, or an error to retry.
func (c *Controller) sync(ctx context.Context, name string) (time.Duration, error) {
	if _, err := c.lister.Get(name); apierrors.IsNotFound(err) {
		return 0, nil
	}
	// The cache may lag behind our own finalize; ask the API.
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("namespace %s: %w", name, err)
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, corev1.FinalizerKubernetes) {
		return 0, nil
	}
	again, err := c.deleteContent(ctx, ns)
	if err != nil || again > 0 {
		return again, err
	}
	ns.Spec.Finalizers = slices.DeleteFunc(slices.Clone(ns.Spec.Finalizers), func(f corev1.FinalizerName) bool { return f == corev1.FinalizerKubernetes })
	if _, err := c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return 0, fmt.Errorf("namespace %s: finalize: %w", name, err)
	}
	c.log.Info("namespace emptied", "namespace", name)
	return 0, nil
}
