package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Errors SetUp and Mounts wrap, with the pod and volume concerned. Check
// them with errors.Is.
var (
	// ErrUnsupported: the pod uses a volume kind (persistentVolumeClaim,
	// csi, ephemeral, image ...) or an option (medium HugePages, block
	// devices) this node does not provide.
	ErrUnsupported = errors.New("unsupported volume")
	// ErrInvalid: the pod's volumes are inconsistent: a mount names no
	// volume, a path leaves its volume, a hostPath is not of its type,
	// a subPath escapes the volume through a symlink.
	ErrInvalid = errors.New("invalid volume")
	// ErrNotFound: a ConfigMap, Secret, key or container that a volume
	// needs does not exist and the volume does not say it is optional.
	ErrNotFound = errors.New("volume source not found")
)

// SetUpError is the error SetUp returns when a volume cannot be set up:
// the volume and the cause. Its text names the pod; VolumeName and
// Unwrap let a caller say it the way upstream's kubelet does
// ("MountVolume.SetUp failed for volume "config" : configmap "app" not
// found").
type SetUpError struct {
	Pod    string // namespace/name
	Volume string
	Err    error
}

func (e *SetUpError) Error() string {
	return fmt.Sprintf("pod %s: volume %q: %v", e.Pod, e.Volume, e.Err)
}

// VolumeName is the name of the volume in the pod's spec.
func (e *SetUpError) VolumeName() string { return e.Volume }

func (e *SetUpError) Unwrap() error { return e.Err }

// notFoundError is an ErrNotFound whose text is upstream's own, such as
// `configmap "app" not found`, without ErrNotFound's words in front.
type notFoundError struct{ msg string }

func (e *notFoundError) Error() string        { return e.msg }
func (e *notFoundError) Is(target error) bool { return target == ErrNotFound }

// Plugin directory names under pods/<uid>/volumes, as the kubelet names
// them.
const (
	pluginEmptyDir  = "kubernetes.io~empty-dir"
	pluginConfigMap = "kubernetes.io~configmap"
	pluginSecret    = "kubernetes.io~secret"
	pluginDownward  = "kubernetes.io~downward-api"
	pluginProjected = "kubernetes.io~projected"
)

// Config configures a Manager. RootDir is required; the zero value of
// every other field is usable.
type Config struct {
	// RootDir is the node agent's state directory: a pod's volumes live
	// under RootDir/pods/<uid>/volumes/<plugin>/<name>, its subPath
	// bind mounts under RootDir/pods/<uid>/volume-subpaths. Required,
	// absolute.
	RootDir string
	// Client reads ConfigMaps and Secrets and requests service-account
	// tokens. Nil: pods with such volumes fail SetUp with ErrUnsupported.
	Client kubernetes.Interface
	// Allocatable returns the node's allocatable resources; a
	// resourceFieldRef on a limit the container does not set reports it,
	// as the kubelet does. Nil: such a limit reads as 0.
	Allocatable func() v1.ResourceList
	// SecretsOnDisk writes secret and projected volumes to plain
	// directories instead of a tmpfs each. Only for tests that run
	// without the privilege to mount.
	SecretsOnDisk bool
	// Clock drives token refresh (default: the real clock).
	Clock clock.WithTicker
	// Logger gets the manager's logs (default: discarded).
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.RootDir == "" {
		return errors.New("volume manager: Config.RootDir is required")
	}
	if !filepath.IsAbs(c.RootDir) {
		return fmt.Errorf("volume manager: Config.RootDir %q is not absolute", c.RootDir)
	}
	if c.Clock == nil {
		c.Clock = clock.RealClock{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Manager sets up, keeps up to date and tears down the volumes of the
// pods on this node. It is safe for concurrent use; calls for one pod are
// serialised.
type Manager struct {
	cfg   Config
	log   *slog.Logger
	clock clock.WithTicker
	queue workqueue.TypedRateLimitingInterface[types.UID]
	locks podLocks
	// wake tells the refresh loop that token expiries changed.
	wake chan struct{}

	mu sync.Mutex // guards the fields below
	// runCtx is Run's context once Run started; watches start under it.
	runCtx context.Context
	// pods is the last pod SetUp saw, by UID, for resyncs.
	pods map[types.UID]*podState
	// watches keeps one watch per ConfigMap or Secret that a pod's
	// volumes read.
	watches map[objectKey]*objectWatch
	// tokens caches service-account tokens by pod, volume and path.
	tokens map[tokenKey]*token
}

type podState struct {
	pod  *v1.Pod
	refs map[objectKey]bool
}

// New checks cfg and returns a Manager. Volumes are set up without Run;
// keeping them up to date (ConfigMap and Secret changes, token refresh)
// needs Run.
func New(cfg Config) (*Manager, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Manager{
		cfg:     cfg,
		log:     cfg.Logger,
		clock:   cfg.Clock,
		queue:   workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[types.UID]()),
		locks:   podLocks{m: map[types.UID]*podLock{}},
		wake:    make(chan struct{}, 1),
		pods:    map[types.UID]*podState{},
		watches: map[objectKey]*objectWatch{},
		tokens:  map[tokenKey]*token{},
	}, nil
}

// Run keeps API-data volumes up to date until ctx ends: it rewrites them
// when a ConfigMap or Secret they read changes and when a projected
// service-account token reaches 80% of its lifetime (or 24 hours). It
// returns when ctx ends. Call it once.
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	m.runCtx = ctx
	for key, w := range m.watches {
		m.startWatchLocked(key, w)
	}
	m.mu.Unlock()
	go func() {
		<-ctx.Done()
		m.queue.ShutDown()
	}()
	go m.refreshLoop(ctx)
	for m.processNext(ctx) {
	}
}

func (m *Manager) processNext(ctx context.Context) bool {
	uid, quit := m.queue.Get()
	if quit {
		return false
	}
	defer m.queue.Done(uid)
	m.mu.Lock()
	st := m.pods[uid]
	m.mu.Unlock()
	if st == nil {
		m.queue.Forget(uid)
		return true
	}
	if err := m.resync(ctx, uid); err != nil {
		m.log.Warn("cannot update volumes", "pod", st.pod.Namespace+"/"+st.pod.Name, "err", err)
		m.queue.AddRateLimited(uid)
		return true
	}
	m.queue.Forget(uid)
	return true
}

// PodDir is where the pod's volumes and subPath mounts live.
func (m *Manager) PodDir(uid types.UID) string {
	return filepath.Join(m.cfg.RootDir, "pods", string(uid))
}

func (m *Manager) volumeDir(uid types.UID, plugin, name string) string {
	return filepath.Join(m.PodDir(uid), "volumes", plugin, name)
}

// SetUp makes every volume of pod ready on this node: directories for
// emptyDir (a tmpfs for medium Memory), checks for hostPath, and the
// files of configMap, secret, downwardAPI and projected volumes. It is
// idempotent, and cheap when nothing changed: call it again when the pod
// changes (labels and annotations feed downwardAPI files). The manager
// keeps a copy of pod to rewrite its API-data volumes when their sources
// change (see Run), until TearDown. A volume that cannot be set up fails
// it with a *SetUpError, which wraps ErrUnsupported, ErrInvalid or
// ErrNotFound when one applies; the volumes before the failing one stay
// set up.
func (m *Manager) SetUp(ctx context.Context, pod *v1.Pod) error {
	if pod == nil || pod.UID == "" {
		return fmt.Errorf("%w: pod without a UID", ErrInvalid)
	}
	unlock := m.locks.lock(pod.UID)
	defer unlock()
	return m.setUpLocked(ctx, pod)
}

// resync sets up a tracked pod's volumes again, unless TearDown forgot
// the pod since it was queued.
func (m *Manager) resync(ctx context.Context, uid types.UID) error {
	unlock := m.locks.lock(uid)
	defer unlock()
	m.mu.Lock()
	st := m.pods[uid]
	m.mu.Unlock()
	if st == nil {
		return nil
	}
	return m.setUpLocked(ctx, st.pod)
}

// setUpLocked is SetUp with the pod's lock held.
func (m *Manager) setUpLocked(ctx context.Context, pod *v1.Pod) error {
	refs := referencedObjects(pod)
	m.track(pod, refs)
	fsGroup := podFSGroup(pod)
	for i := range pod.Spec.Volumes {
		vol := &pod.Spec.Volumes[i]
		if err := m.setUpVolume(ctx, pod, vol, fsGroup); err != nil {
			return &SetUpError{Pod: pod.Namespace + "/" + pod.Name, Volume: vol.Name, Err: err}
		}
	}
	return nil
}

func podFSGroup(pod *v1.Pod) *ownership {
	if sc := pod.Spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		return &ownership{GID: *sc.FSGroup}
	}
	return nil
}

func (m *Manager) setUpVolume(ctx context.Context, pod *v1.Pod, vol *v1.Volume, own *ownership) error {
	src := &vol.VolumeSource
	switch {
	case src.EmptyDir != nil:
		return m.setUpEmptyDir(pod, vol.Name, src.EmptyDir, own)
	case src.HostPath != nil:
		return checkHostPath(src.HostPath)
	case src.ConfigMap != nil, src.Secret != nil, src.DownwardAPI != nil, src.Projected != nil:
		plugin := apiDataPlugin(src)
		p, err := m.buildPayload(ctx, pod, vol)
		if err != nil {
			return err
		}
		dir := m.volumeDir(pod.UID, plugin, vol.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if (plugin == pluginSecret || plugin == pluginProjected) && !m.cfg.SecretsOnDisk {
			// Secrets and tokens never touch the disk, as in Kubernetes.
			if err := mountTmpfs(dir, "mode=0755"); err != nil {
				return err
			}
		}
		changed, err := writeAtomic(dir, p, own, m.clock.Now())
		if err != nil {
			return err
		}
		if changed {
			m.log.Debug("wrote volume", "pod", pod.Namespace+"/"+pod.Name, "volume", vol.Name, "files", len(p))
		}
		return nil
	}
	return fmt.Errorf("%w: %s volumes are not supported on this node", ErrUnsupported, volumeKind(src))
}

func apiDataPlugin(src *v1.VolumeSource) string {
	switch {
	case src.ConfigMap != nil:
		return pluginConfigMap
	case src.Secret != nil:
		return pluginSecret
	case src.DownwardAPI != nil:
		return pluginDownward
	}
	return pluginProjected
}

// volumeKind names the kind of a volume source for error messages.
func volumeKind(src *v1.VolumeSource) string {
	switch {
	case src.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim"
	case src.Ephemeral != nil:
		return "ephemeral"
	case src.CSI != nil:
		return "csi"
	case src.Image != nil:
		return "image"
	case src.NFS != nil:
		return "nfs"
	case src.ISCSI != nil:
		return "iscsi"
	case src.FC != nil:
		return "fc"
	}
	return "these"
}

// hostPathOf returns where vol lives on the host, and whether it is an
// API-data volume (always mounted read-only).
func (m *Manager) hostPathOf(pod *v1.Pod, vol *v1.Volume) (string, bool, error) {
	src := &vol.VolumeSource
	switch {
	case src.EmptyDir != nil:
		return m.volumeDir(pod.UID, pluginEmptyDir, vol.Name), false, nil
	case src.HostPath != nil:
		return filepath.Clean(src.HostPath.Path), false, nil
	case src.ConfigMap != nil, src.Secret != nil, src.DownwardAPI != nil, src.Projected != nil:
		return m.volumeDir(pod.UID, apiDataPlugin(src), vol.Name), true, nil
	}
	return "", false, fmt.Errorf("%w: %s volumes are not supported on this node", ErrUnsupported, volumeKind(src))
}

// track records pod for resyncs and makes sure every object it reads is
// watched; watches no longer needed are released.
func (m *Manager) track(pod *v1.Pod, refs map[objectKey]bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.pods[pod.UID]
	m.pods[pod.UID] = &podState{pod: pod.DeepCopy(), refs: refs}
	for key := range refs {
		if old != nil && old.refs[key] {
			continue
		}
		w := m.watches[key]
		if w == nil {
			w = &objectWatch{pods: map[types.UID]bool{}}
			m.watches[key] = w
			m.startWatchLocked(key, w)
		}
		w.pods[pod.UID] = true
	}
	if old != nil {
		for key := range old.refs {
			if !refs[key] {
				m.releaseLocked(key, pod.UID)
			}
		}
	}
}

// TearDown removes everything SetUp and Mounts made for the pod with this
// UID: it unmounts subPath binds and memory-backed emptyDirs, removes the
// volume directories and forgets the pod (its watches and tokens). It
// works from what is on disk, so it also cleans up pods from before a
// restart. It never removes anything below a mount point it failed to
// unmount (that could delete a hostPath's files); it returns an error
// instead, and a later call tries again. It is idempotent.
func (m *Manager) TearDown(ctx context.Context, uid types.UID) error {
	if uid == "" || filepath.Base(string(uid)) != string(uid) || string(uid) == ".." || string(uid) == "." {
		return fmt.Errorf("%w: bad pod UID %q", ErrInvalid, uid)
	}
	unlock := m.locks.lock(uid)
	defer unlock()
	m.forget(uid)
	dir := m.PodDir(uid)
	for _, sub := range []string{"volume-subpaths", "volumes"} {
		if err := removeUnmounted(filepath.Join(dir, sub)); err != nil {
			return fmt.Errorf("pod %s: tear down volumes: %w", uid, err)
		}
	}
	// The pod directory may hold other things (the kubelet's); it goes
	// only when empty.
	os.Remove(dir)
	return nil
}

func (m *Manager) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.pods[uid]; st != nil {
		for key := range st.refs {
			m.releaseLocked(key, uid)
		}
		delete(m.pods, uid)
	}
	for k := range m.tokens {
		if k.uid == uid {
			delete(m.tokens, k)
		}
	}
}

// PodsOnDisk returns the UIDs of the pods that have a directory under
// RootDir/pods, so that a kubelet starting up can tear down those it no
// longer runs. The caller owns the slice.
func (m *Manager) PodsOnDisk() ([]types.UID, error) {
	entries, err := os.ReadDir(filepath.Join(m.cfg.RootDir, "pods"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pod dirs: %w", err)
	}
	var out []types.UID
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, types.UID(e.Name()))
		}
	}
	return out, nil
}

// podLocks serialises work on one pod.
type podLocks struct {
	mu sync.Mutex // guards m
	m  map[types.UID]*podLock
}

type podLock struct {
	mu    sync.Mutex
	users int
}

func (l *podLocks) lock(uid types.UID) func() {
	l.mu.Lock()
	pl := l.m[uid]
	if pl == nil {
		pl = &podLock{}
		l.m[uid] = pl
	}
	pl.users++
	l.mu.Unlock()
	pl.mu.Lock()
	return func() {
		pl.mu.Unlock()
		l.mu.Lock()
		pl.users--
		if pl.users == 0 {
			delete(l.m, uid)
		}
		l.mu.Unlock()
	}
}

// refreshLoop wakes up when the earliest token is due for refresh and
// queues the pods whose tokens are due.
func (m *Manager) refreshLoop(ctx context.Context) {
	for {
		next, ok := m.nextRefresh()
		var timerC <-chan time.Time
		var timer clock.Timer
		if ok {
			d := next.Sub(m.clock.Now())
			if d < 0 {
				d = 0
			}
			timer = m.clock.NewTimer(d)
			timerC = timer.C()
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return
		case <-m.wake:
		case <-timerC:
			for _, uid := range m.dueTokens() {
				m.queue.Add(uid)
			}
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (m *Manager) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}
