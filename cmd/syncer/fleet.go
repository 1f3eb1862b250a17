package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/keeper"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// A fleet: with SYNCER_KEEPER_ADDR, every process on the database takes
// the account lock from ZooKeeper (or ClickHouse Keeper), and `syncer run`
// replicas split the accounts by rendezvous hashing over the live members.
// Without it, the ClickHouse lease is the account lock and one `syncer run`
// per database holds the single-worker lease (a second is refused).

// KeeperAddrs splits SYNCER_KEEPER_ADDR.
func (c Config) KeeperAddrs() []string {
	var out []string
	for _, a := range strings.Split(c.KeeperAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// keeperRoot is SYNCER_KEEPER_ROOT, by default derived from the database so
// that two deployments on one ensemble never meet.
func (c Config) keeperRoot() string {
	if c.KeeperRoot != "" {
		return c.KeeperRoot
	}
	return "/impact-syncer/" + c.ClickHouseDatabase
}

var keeperRootPattern = regexp.MustCompile(`^(/[A-Za-z0-9._-]+)+$`)

func (c Config) keeperProblems() []error {
	var errs []error
	for _, a := range c.KeeperAddrs() {
		if _, port, ok := strings.Cut(a, ":"); !ok || port == "" {
			errs = append(errs, fmt.Errorf("SYNCER_KEEPER_ADDR %q: want host:port (comma-separated for an ensemble)", a))
		}
	}
	if r := c.keeperRoot(); !keeperRootPattern.MatchString(r) {
		errs = append(errs, fmt.Errorf("SYNCER_KEEPER_ROOT %q: want an absolute path of letters, digits, '.', '_' and '-', such as /impact-syncer/prod", r))
	}
	if c.KeeperSessionTimeout < time.Second || c.KeeperSessionTimeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("SYNCER_KEEPER_SESSION_TIMEOUT %s: want 1s to 10m (the server bounds it too; ZooKeeper's default is 4s to 40s)", c.KeeperSessionTimeout))
	}
	return errs
}

// memberName names this process in the fleet: host and pid, which are
// unique across containers (different hosts) and processes of one host.
func memberName() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r == '/' || r <= ' ' {
			return '_'
		}
		return r
	}, host)
	return host + "-" + strconv.Itoa(os.Getpid())
}

// openKeeper connects to the keeper when SYNCER_KEEPER_ADDR is set; the
// app's locker is then the ZooKeeper lock. It waits for a session up to
// twice the session timeout (at least 10 s).
func (a *app) openKeeper(ctx context.Context, role string) error {
	if a.cfg.KeeperAddr == "" {
		return nil
	}
	wait := max(2*a.cfg.KeeperSessionTimeout, 10*time.Second)
	cctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	k, err := keeper.Connect(cctx, keeper.Options{
		Addrs: a.cfg.KeeperAddrs(), Root: a.cfg.keeperRoot(), SessionTimeout: a.cfg.KeeperSessionTimeout,
		Name: memberName(), Holder: holderName(role), HTTPAddr: a.cfg.HTTPAddr, Logger: a.log,
	})
	if err != nil {
		return fmt.Errorf("SYNCER_KEEPER_ADDR: %w", err)
	}
	a.keeper = k
	return nil
}

// holders returns who holds which account now, from the account lock in
// use ("" map on error: the callers show nothing then).
func (a *app) holders(ctx context.Context) map[string]string {
	h, err := a.locker().(syncer.HolderLister).Holders(ctx)
	if err != nil {
		a.log.Warn("could not read the account locks", zap.Error(err))
		return map[string]string{}
	}
	return h
}

// soloLeaseID is the lease row of the single worker of a database without
// a keeper; account ids cannot contain '~'.
const soloLeaseID = "~worker"

// soloLease keeps a worker without a keeper alone on its database. While
// it is not held (lost with ClickHouse, taken by another), the worker runs
// no pass and is not ready; each tick tries to take it back.
type soloLease struct {
	leases *load.LeaseStore
	holder string
	log    *zap.Logger

	mu     sync.Mutex
	lk     syncer.Lock
	reason string
}

// take takes the lease; another live worker holding it is an error that
// names it.
func (s *soloLease) take(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeLocked(ctx)
}

func (s *soloLease) takeLocked(ctx context.Context) error {
	if s.lk != nil {
		select {
		case <-s.lk.Lost():
			s.lk.Unlock()
			s.lk = nil
		default:
			return nil
		}
	}
	lk, err := s.leases.Lock(ctx, soloLeaseID, s.holder)
	var held *syncer.LockHeldError
	if errors.As(err, &held) {
		s.reason = fmt.Sprintf("another `syncer run` works on this database: %s (since %s); run one worker per database, or a fleet with SYNCER_KEEPER_ADDR",
			held.Holder, held.Since.UTC().Format(time.RFC3339))
		return errors.New(s.reason)
	}
	if err != nil {
		s.reason = "the single-worker lease could not be taken: " + oneLine(err.Error())
		return err
	}
	s.lk, s.reason = lk, ""
	return nil
}

// Share is the worker's Share without a keeper: every active account,
// while the lease is held.
func (s *soloLease) Share(ctx context.Context, active []syncer.Account) ([]syncer.Account, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.takeLocked(ctx); err != nil {
		s.log.Error("no pass runs: the single-worker lease is not held", zap.Error(err))
		return nil, err
	}
	return active, nil
}

// notReady says why the worker is not ready, or "".
func (s *soloLease) notReady() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lk == nil {
		return s.reason
	}
	select {
	case <-s.lk.Lost():
		return "the single-worker lease was lost (ClickHouse unreachable, or taken); retrying each tick"
	default:
		return ""
	}
}

func (s *soloLease) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lk != nil {
		s.lk.Unlock()
		s.lk = nil
	}
}

// fleetMetrics show the fleet on /metrics.
type fleetMetrics struct {
	members *prometheus.GaugeVec // 1 per live member
	owned   *prometheus.GaugeVec // accounts each member owns, as this worker computes it
	owner   *prometheus.GaugeVec // 1 per active account and its owner
}

func (m *metrics) addFleet(k *keeper.Keeper) *fleetMetrics {
	f := &fleetMetrics{
		members: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "fleet_member", Help: "Live workers of the fleet (1 per member; self=\"true\" for this one), as of the latest tick.",
		}, []string{"member", "self"}),
		owned: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "fleet_owned_accounts", Help: "Active accounts each live worker owns by rendezvous hashing, as of the latest tick.",
		}, []string{"member"}),
		owner: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricPrefix + "fleet_account_owner", Help: "The worker that owns each active account (1), as of the latest tick.",
		}, []string{"account_id", "member"}),
	}
	session := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: metricPrefix + "keeper_session_up", Help: "1 while the keeper session is live, 0 while it is lost (no pass runs then).",
	}, func() float64 {
		if ok, _, _ := k.Live(); ok {
			return 1
		}
		return 0
	})
	m.reg.MustRegister(f.members, f.owned, f.owner, session)
	return f
}

// fleetShare is the worker's Share with a keeper: the accounts this member
// owns, the fleet's view recorded in the metrics.
func (a *app) fleetShare(f *fleetMetrics) func(ctx context.Context, active []syncer.Account) ([]syncer.Account, error) {
	return func(ctx context.Context, active []syncer.Account) ([]syncer.Account, error) {
		mine, err := a.keeper.Share(ctx, active)
		if err != nil {
			return nil, err
		}
		members, err := a.keeper.Members(ctx)
		if err != nil {
			return mine, nil
		}
		names := make([]string, len(members))
		f.members.Reset()
		f.owned.Reset()
		f.owner.Reset()
		for i, m := range members {
			names[i] = m.Name
			f.members.WithLabelValues(m.Name, strconv.FormatBool(m.Name == a.keeper.Name())).Set(1)
			f.owned.WithLabelValues(m.Name).Set(0)
		}
		ids := make([]string, len(active))
		for i, acct := range active {
			ids[i] = acct.ID
		}
		for id, o := range keeper.Assign(ids, names) {
			f.owned.WithLabelValues(o).Inc()
			f.owner.WithLabelValues(id, o).Set(1)
		}
		a.log.Debug("fleet tick", zap.Strings("members", names), zap.Int("mine", len(mine)), zap.Int("active", len(active)))
		return mine, nil
	}
}

// notReady says why the worker is not ready as a fleet member or single
// worker, or "".
func (a *app) fleetNotReady() string {
	if a.keeper != nil {
		if ok, since, reason := a.keeper.Live(); !ok {
			return fmt.Sprintf("keeper session lost since %s (%s): no pass runs until it is back",
				since.UTC().Format(time.RFC3339), reason)
		}
	}
	if a.solo != nil {
		return a.solo.notReady()
	}
	return ""
}

// fleetLine describes the workers for the status page.
func (a *app) fleetLine(ctx context.Context) string {
	if a.keeper == nil {
		return "One worker per database (no keeper); accounts are locked with ClickHouse leases."
	}
	if why := a.fleetNotReady(); why != "" {
		return "Fleet: " + why
	}
	members, err := a.keeper.Members(ctx)
	if err != nil {
		return "Fleet: members unknown: " + oneLine(err.Error())
	}
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
		if m.Name == a.keeper.Name() {
			names[i] += " (this one)"
		}
	}
	return fmt.Sprintf("Fleet of %d live workers (%s): %s.", len(members), a.cfg.keeperRoot(), strings.Join(names, ", "))
}
