// Package serviceaccount keeps the ServiceAccounts every namespace must
// have — "default", which pods use when they name none — as upstream's
// serviceaccount-controller does.
//
// The controller watches Namespaces and ServiceAccounts. A namespace is
// synced when it appears or changes, and again when one of the managed
// ServiceAccounts is deleted from it, so a deleted "default" comes back.
// A sync creates each missing ServiceAccount in an Active namespace;
// namespaces being deleted (phase Terminating) are left alone, and the
// API server's refusal to create in a terminating namespace is not an
// error.
//
// It creates no token Secrets: like upstream since 1.24, pods get
// short-lived projected tokens from the TokenRequest API instead.
package serviceaccount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// DefaultName is the ServiceAccount every namespace gets.
const DefaultName = "default"

// Config configures the controller. Client and Informers are required;
// every other zero value is a documented default.
type Config struct {
	// Client writes ServiceAccounts.
	Client kubernetes.Interface
	// Informers is the shared informer factory; the caller starts it after
	// New.
	Informers informers.SharedInformerFactory
	// Logger receives the controller's logs. Nil discards them.
	Logger *slog.Logger
	// Clock times retries. Nil is the real clock.
	Clock clock.WithTicker
	// Names are the ServiceAccounts every namespace gets. Nil means
	// ["default"]; an empty non-nil slice is an error (nothing to do).
	Names []string
	// Workers is how many namespaces are synced at once. Zero means 5.
	Workers int
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Names == nil {
		c.Names = []string{DefaultName}
	}
	if c.Workers == 0 {
		c.Workers = 5
	}
	return c
}

func (c Config) validate() error {
	if c.Client == nil {
		return errors.New("client is required")
	}
	if c.Informers == nil {
		return errors.New("informer factory is required")
	}
	if len(c.Names) == 0 {
		return errors.New("no ServiceAccount names to keep")
	}
	for _, n := range c.Names {
		if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
			return fmt.Errorf("ServiceAccount name %q: %s", n, msgs[0])
		}
	}
	if c.Workers < 0 {
		return fmt.Errorf("workers %d is negative", c.Workers)
	}
	return nil
}

// Controller creates the managed ServiceAccounts of every namespace.
type Controller struct {
	cfg      Config
	log      *slog.Logger
	client   kubernetes.Interface
	names    map[string]bool
	nsLister corelisters.NamespaceLister
	saLister corelisters.ServiceAccountLister
	synced   []cache.InformerSynced
	queue    workqueue.TypedRateLimitingInterface[string]
}

// New checks cfg and registers the controller's informers and event
// handlers. It does not call the API server.
func New(cfg Config) (*Controller, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("serviceaccount controller: %w", err)
	}
	nsInformer := cfg.Informers.Core().V1().Namespaces()
	saInformer := cfg.Informers.Core().V1().ServiceAccounts()
	c := &Controller{
		cfg:      cfg,
		log:      cfg.Logger,
		client:   cfg.Client,
		names:    map[string]bool{},
		nsLister: nsInformer.Lister(),
		saLister: saInformer.Lister(),
		synced:   []cache.InformerSynced{nsInformer.Informer().HasSynced, saInformer.Informer().HasSynced},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "serviceaccount", Clock: cfg.Clock},
		),
	}
	for _, n := range cfg.Names {
		c.names[n] = true
	}
	if _, err := nsInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    c.namespaceChanged,
		UpdateFunc: func(_, obj any) { c.namespaceChanged(obj) },
	}); err != nil {
		return nil, fmt.Errorf("serviceaccount controller: namespace handler: %w", err)
	}
	if _, err := saInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: c.serviceAccountDeleted,
	}); err != nil {
		return nil, fmt.Errorf("serviceaccount controller: serviceaccount handler: %w", err)
	}
	return c, nil
}

func (c *Controller) namespaceChanged(obj any) {
	if ns, ok := obj.(*corev1.Namespace); ok {
		c.queue.Add(ns.Name)
	}
}

func (c *Controller) serviceAccountDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	sa, ok := obj.(*corev1.ServiceAccount)
	if !ok || !c.names[sa.Name] {
		return
	}
	c.queue.Add(sa.Namespace)
}

// Run waits for the informer caches, then syncs namespaces with
// Config.Workers workers until ctx is done. It always returns nil (a
// failed write is logged and retried with backoff).
func (c *Controller) Run(ctx context.Context) error {
	defer c.queue.ShutDown()
	c.log.Info("starting")
	defer c.log.Info("stopped")
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	for range c.cfg.Workers {
		go wait.UntilWithContext(ctx, c.worker, time.Second)
	}
	<-ctx.Done()
	return nil
}

func (c *Controller) worker(ctx context.Context) {
	for c.processNext(ctx) {
	}
}

func (c *Controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	if err := c.sync(ctx, key); err != nil {
		c.log.Warn("sync failed; will retry", "namespace", key, "err", err)
		c.queue.AddRateLimited(key)
		return true
	}
	c.queue.Forget(key)
	return true
}

// sync creates the managed ServiceAccounts missing from namespace ns. It
// is idempotent; it returns an error only for failed writes worth a retry.
func (c *Controller) sync(ctx context.Context, ns string) error {
	namespace, err := c.nsLister.Get(ns)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("namespace %s: %w", ns, err)
	}
	if namespace.Status.Phase != corev1.NamespaceActive || namespace.DeletionTimestamp != nil {
		return nil
	}
	var errs []error
	for _, name := range c.cfg.Names {
		if _, err := c.saLister.ServiceAccounts(ns).Get(name); err == nil {
			continue
		} else if !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("serviceaccount %s/%s: %w", ns, name, err))
			continue
		}
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
		_, err := c.client.CoreV1().ServiceAccounts(ns).Create(ctx, sa, metav1.CreateOptions{})
		switch {
		case err == nil:
			c.log.Info("created serviceaccount", "namespace", ns, "name", name)
		case apierrors.IsAlreadyExists(err):
			// Created by someone else, or our cache lags: either way it exists.
		case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
			// Deleted since the cache saw it: nothing to keep.
			return nil
		default:
			errs = append(errs, fmt.Errorf("create serviceaccount %s/%s: %w", ns, name, err))
		}
	}
	return errors.Join(errs...)
}
