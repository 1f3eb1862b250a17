// Package keeper coordinates a fleet of workers through ZooKeeper or
// ClickHouse Keeper (same protocol), with github.com/go-zookeeper/zk:
//
//   - the account lock is ZooKeeper's lock recipe (an ephemeral sequential
//     node under <root>/locks/<account>; the lowest holds it), behind
//     syncer.Locker like the ClickHouse lease in load;
//   - live workers register ephemeral nodes under <root>/members, and each
//     takes the accounts it owns by rendezvous hashing with bounded loads
//     over them (Assign, Share).
//
// Everything ephemeral belongs to the process's session: a process that
// dies or loses the ensemble for longer than the session timeout loses its
// locks and membership. A process that merely loses its connection cannot
// know whether its session will survive, so it treats its locks as lost at
// once (Lock.Lost) and owns no account until a session is back.
package keeper

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

var (
	_ syncer.Locker       = (*Keeper)(nil)
	_ syncer.HolderLister = (*Keeper)(nil)
)

// Options say where the ensemble is and who this process is.
type Options struct {
	Addrs          []string // host:port of ZooKeeper or ClickHouse Keeper
	Root           string   // e.g. /impact-syncer/<database>; created if missing
	SessionTimeout time.Duration
	// Name is this process's member node name: unique in the fleet, no
	// slash (e.g. host-pid). Holder is how it is shown (the lock data).
	Name, Holder string
	// HTTPAddr is stored in the member node, for operators.
	HTTPAddr string
	Logger   *zap.Logger
}

// ErrNoSession is returned while the keeper session is lost: nothing can
// be locked, and no account is this worker's.
var ErrNoSession = errors.New("no keeper session (ZooKeeper unreachable or the session expired)")

// Keeper is one session with the ensemble.
type Keeper struct {
	opts Options
	conn *zk.Conn
	log  *zap.Logger
	acl  []zk.ACL

	mu         sync.Mutex
	session    int64         // the live session, 0 while there is none
	lost       chan struct{} // closed when the session of the moment is lost
	lostAt     time.Time
	lostReason string
	member     bool            // registration wanted (Join, not yet Leave)
	stale      map[string]bool // lock nodes to delete once a session is back
	sessions   chan struct{}   // closed and replaced on every change of session state
	closed     bool
	done       chan struct{}
}

// Connect opens the session and waits for it (until ctx ends), then
// creates the root nodes.
func Connect(ctx context.Context, opts Options) (*Keeper, error) {
	if len(opts.Addrs) == 0 {
		return nil, errors.New("keeper: no address")
	}
	if !strings.HasPrefix(opts.Root, "/") || strings.HasSuffix(opts.Root, "/") || strings.Contains(opts.Root, "//") {
		return nil, fmt.Errorf("keeper: root %q: want an absolute path such as /impact-syncer/impact", opts.Root)
	}
	if opts.Name == "" || strings.Contains(opts.Name, "/") {
		return nil, fmt.Errorf("keeper: member name %q: want a non-empty name without slashes", opts.Name)
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	k := &Keeper{opts: opts, log: opts.Logger, acl: zk.WorldACL(zk.PermAll), lost: make(chan struct{}),
		stale: map[string]bool{}, sessions: make(chan struct{}), done: make(chan struct{})}
	close(k.lost) // no session yet
	k.lostAt, k.lostReason = time.Now(), "connecting"
	conn, events, err := zk.Connect(opts.Addrs, opts.SessionTimeout,
		zk.WithLogger(zapPrintf{k.log}), zk.WithLogInfo(false))
	if err != nil {
		return nil, fmt.Errorf("keeper %s: %w", strings.Join(opts.Addrs, ","), err)
	}
	k.conn = conn
	go k.watch(events)
	if err := k.waitSession(ctx); err != nil {
		k.Close()
		return nil, fmt.Errorf("keeper %s: %w", strings.Join(opts.Addrs, ","), err)
	}
	for _, p := range []string{opts.Root + "/locks", opts.Root + "/members"} {
		if err := k.mkdirs(p); err != nil {
			k.Close()
			return nil, err
		}
	}
	return k, nil
}

// waitSession waits for a live session or for ctx.
func (k *Keeper) waitSession(ctx context.Context) error {
	for {
		k.mu.Lock()
		live, changed := k.session != 0, k.sessions
		k.mu.Unlock()
		if live {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no session: %w", ctx.Err())
		case <-changed:
		}
	}
}

// zapPrintf routes the client's log lines to zap at debug level.
type zapPrintf struct{ log *zap.Logger }

func (z zapPrintf) Printf(format string, a ...any) {
	z.log.Debug("zookeeper: " + fmt.Sprintf(format, a...))
}

// watch follows the session's state.
func (k *Keeper) watch(events <-chan zk.Event) {
	defer close(k.done)
	for ev := range events {
		if ev.Type != zk.EventSession {
			continue
		}
		switch ev.State {
		case zk.StateHasSession:
			k.mu.Lock()
			id := k.conn.SessionID()
			fresh := k.session != id
			k.session = id
			select {
			case <-k.lost:
				k.lost = make(chan struct{})
			default:
			}
			k.changed()
			k.mu.Unlock()
			k.log.Info("keeper session established", zap.Int64("session", id), zap.Bool("new_session", fresh))
			go k.restore()
		case zk.StateDisconnected, zk.StateExpired, zk.StateAuthFailed:
			k.mu.Lock()
			had := k.session != 0 && !k.closed
			k.session = 0
			select {
			case <-k.lost:
			default:
				close(k.lost)
				k.lostAt = time.Now()
				k.lostReason = ev.State.String()
			}
			k.changed()
			k.mu.Unlock()
			if had {
				k.log.Warn("keeper session lost: passes stop at their next window boundary; no account is this worker's until it is back",
					zap.String("state", ev.State.String()))
			}
		}
	}
}

func (k *Keeper) changed() {
	close(k.sessions)
	k.sessions = make(chan struct{})
}

// restore, once a session is back, deletes lock nodes that could not be
// deleted while it was away and registers the member again.
func (k *Keeper) restore() {
	k.mu.Lock()
	stale := make([]string, 0, len(k.stale))
	for p := range k.stale {
		stale = append(stale, p)
	}
	member := k.member
	k.mu.Unlock()
	for _, p := range stale {
		if err := k.conn.Delete(p, -1); err == nil || errors.Is(err, zk.ErrNoNode) {
			k.mu.Lock()
			delete(k.stale, p)
			k.mu.Unlock()
		}
	}
	if member {
		if err := k.register(); err != nil {
			k.log.Warn("could not register as a fleet member yet", zap.Error(err))
		}
	}
}

// Live reports whether the session is up, and if not since when and why.
func (k *Keeper) Live() (ok bool, since time.Time, reason string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.session != 0, k.lostAt, k.lostReason
}

// Close ends the session: the ensemble deletes this process's locks and
// member node at once.
func (k *Keeper) Close() {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return
	}
	k.closed = true
	k.mu.Unlock()
	k.conn.Close()
	<-k.done
}

func (k *Keeper) mkdirs(p string) error {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := ""
	for _, part := range parts {
		cur += "/" + part
		if _, err := k.conn.Create(cur, nil, 0, k.acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("keeper: create %s: %w", cur, err)
		}
	}
	return nil
}

// ---- the lock recipe ----

// lockPrefix names lock nodes; the ensemble appends a 10-digit sequence.
const lockPrefix = "lock-"

func seqOf(node string) (int64, bool) {
	i := strings.LastIndex(node, lockPrefix)
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(node[i+len(lockPrefix):], 10, 64)
	return n, err == nil
}

// sortedLocks returns the lock nodes of a directory, lowest sequence first.
func sortedLocks(children []string) []string {
	out := slices.DeleteFunc(slices.Clone(children), func(c string) bool { _, ok := seqOf(c); return !ok })
	sort.Slice(out, func(i, j int) bool {
		a, _ := seqOf(out[i])
		b, _ := seqOf(out[j])
		return a < b
	})
	return out
}

func (k *Keeper) lockDir(accountID string) string { return k.opts.Root + "/locks/" + accountID }

// Lock takes the account's lock without waiting: it adds its ephemeral
// sequential node and holds the lock if that node is the lowest; otherwise
// it removes its node and returns *syncer.LockHeldError naming the holder.
// Without a session it returns ErrNoSession.
func (k *Keeper) Lock(ctx context.Context, accountID, holder string) (syncer.Lock, error) {
	if accountID == "" || strings.Contains(accountID, "/") {
		return nil, fmt.Errorf("keeper: account id %q cannot name a lock", accountID)
	}
	k.mu.Lock()
	live, lost := k.session != 0, k.lost
	k.mu.Unlock()
	if !live {
		return nil, fmt.Errorf("lock account %s: %w", accountID, ErrNoSession)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir := k.lockDir(accountID)
	data, _ := json.Marshal(lockData{Holder: holder, Member: k.opts.Name, Since: time.Now().UTC()})
	path, err := k.conn.CreateProtectedEphemeralSequential(dir+"/"+lockPrefix, data, k.acl)
	if errors.Is(err, zk.ErrNoNode) { // the account's first lock
		if err := k.mkdirs(dir); err != nil {
			return nil, err
		}
		path, err = k.conn.CreateProtectedEphemeralSequential(dir+"/"+lockPrefix, data, k.acl)
	}
	if err != nil {
		return nil, fmt.Errorf("lock account %s: %w", accountID, err)
	}
	mine := path[strings.LastIndex(path, "/")+1:]
	children, _, err := k.conn.Children(dir)
	if err != nil {
		k.dropNode(path)
		return nil, fmt.Errorf("lock account %s: %w", accountID, err)
	}
	locks := sortedLocks(children)
	if len(locks) == 0 || locks[0] != mine {
		k.dropNode(path)
		held := &syncer.LockHeldError{AccountID: accountID, Holder: "another process"}
		if len(locks) > 0 {
			if d, ok := k.readLock(dir + "/" + locks[0]); ok {
				held.Holder, held.Since = d.Holder, d.Since
			}
		}
		return nil, held
	}
	exists, _, deleted, err := k.conn.ExistsW(path)
	if err != nil || !exists {
		k.dropNode(path)
		return nil, fmt.Errorf("lock account %s: watching the lock node: %v", accountID, err)
	}
	l := &lock{k: k, path: path, lost: make(chan struct{}), unlock: make(chan struct{}), done: make(chan struct{})}
	go l.follow(lost, deleted, accountID)
	return l, nil
}

// lockData is what a lock node holds.
type lockData struct {
	Holder string    `json:"holder"`
	Member string    `json:"member"`
	Since  time.Time `json:"since"`
}

func (k *Keeper) readLock(path string) (lockData, bool) {
	b, _, err := k.conn.Get(path)
	if err != nil {
		return lockData{}, false
	}
	var d lockData
	if json.Unmarshal(b, &d) != nil {
		return lockData{Holder: string(b)}, true
	}
	return d, true
}

// dropNode deletes a lock node, or remembers it for when a session is back.
func (k *Keeper) dropNode(path string) {
	err := k.conn.Delete(path, -1)
	if err == nil || errors.Is(err, zk.ErrNoNode) {
		return
	}
	k.log.Warn("could not delete a lock node; retrying once the session is back", zap.String("node", path), zap.Error(err))
	k.mu.Lock()
	k.stale[path] = true
	k.mu.Unlock()
}

// lock is a held account lock.
type lock struct {
	k      *Keeper
	path   string
	lost   chan struct{}
	unlock chan struct{}
	done   chan struct{}
	once   sync.Once
}

func (l *lock) Lost() <-chan struct{} { return l.lost }

// follow closes lost when the session is lost or the node goes away.
func (l *lock) follow(session <-chan struct{}, node <-chan zk.Event, accountID string) {
	defer close(l.done)
	select {
	case <-l.unlock:
		return
	case <-session:
		l.k.log.Warn("account lock lost with the keeper session; the pass stops at the next window boundary", zap.String("account_id", accountID))
	case ev := <-node:
		l.k.log.Warn("account lock node changed or went away; the pass stops at the next window boundary",
			zap.String("account_id", accountID), zap.String("event", ev.Type.String()))
	}
	close(l.lost)
}

func (l *lock) Unlock() {
	l.once.Do(func() {
		close(l.unlock)
		<-l.done
		l.k.dropNode(l.path)
	})
}

// Holders returns, per account, the holder of its lock now.
func (k *Keeper) Holders(ctx context.Context) (map[string]string, error) {
	accts, _, err := k.conn.Children(k.opts.Root + "/locks")
	if err != nil {
		return nil, fmt.Errorf("keeper: list locks: %w", err)
	}
	out := map[string]string{}
	for _, a := range accts {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		children, _, err := k.conn.Children(k.lockDir(a))
		if err != nil {
			continue
		}
		if locks := sortedLocks(children); len(locks) > 0 {
			if d, ok := k.readLock(k.lockDir(a) + "/" + locks[0]); ok {
				out[a] = d.Holder
			}
		}
	}
	return out, nil
}

// ---- membership and the split ----

// Member is a live worker of the fleet.
type Member struct {
	Name     string    `json:"name"`
	Holder   string    `json:"holder"`
	HTTPAddr string    `json:"http_addr,omitempty"`
	Since    time.Time `json:"since"`
}

func (k *Keeper) memberPath() string { return k.opts.Root + "/members/" + k.opts.Name }

// Join registers this process as a live member (again after every new
// session, until Leave).
func (k *Keeper) Join() error {
	k.mu.Lock()
	k.member = true
	k.mu.Unlock()
	return k.register()
}

func (k *Keeper) register() error {
	data, _ := json.Marshal(Member{Name: k.opts.Name, Holder: k.opts.Holder, HTTPAddr: k.opts.HTTPAddr, Since: time.Now().UTC()})
	_, err := k.conn.Create(k.memberPath(), data, zk.FlagEphemeral, k.acl)
	if errors.Is(err, zk.ErrNodeExists) {
		_, st, gerr := k.conn.Get(k.memberPath())
		if gerr != nil {
			return fmt.Errorf("keeper: member %s: %w", k.opts.Name, gerr)
		}
		if st.EphemeralOwner != k.conn.SessionID() {
			return fmt.Errorf("keeper: member name %s is taken by another live session (a twin process, or this one's previous life until its session times out)", k.opts.Name)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("keeper: register member %s: %w", k.opts.Name, err)
	}
	k.log.Info("registered as a fleet member", zap.String("member", k.opts.Name))
	return nil
}

// Leave removes this process from the members at once, so that the others
// take its accounts at their next tick (its locks stay until Unlock).
func (k *Keeper) Leave() {
	k.mu.Lock()
	k.member = false
	k.mu.Unlock()
	if err := k.conn.Delete(k.memberPath(), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		k.log.Warn("could not leave the fleet; the session's end will", zap.Error(err))
	}
}

// Members lists the live members, by name.
func (k *Keeper) Members(ctx context.Context) ([]Member, error) {
	names, _, err := k.conn.Children(k.opts.Root + "/members")
	if err != nil {
		return nil, fmt.Errorf("keeper: list members: %w", err)
	}
	sort.Strings(names)
	out := make([]Member, 0, len(names))
	for _, n := range names {
		m := Member{Name: n}
		if b, _, err := k.conn.Get(k.opts.Root + "/members/" + n); err == nil {
			_ = json.Unmarshal(b, &m)
			m.Name = n
		}
		out = append(out, m)
	}
	return out, ctx.Err()
}

// Name is this process's member name.
func (k *Keeper) Name() string { return k.opts.Name }

// Balance bounds a member's share: no member owns more than
// ceil(Balance × accounts / members) accounts.
const Balance = 1.1

// weight is the rendezvous score of a member for an account.
func weight(member, accountID string) uint64 {
	h := sha256.Sum256([]byte(member + "\x00" + accountID))
	return binary.BigEndian.Uint64(h[:8])
}

// Assign gives every account an owner among members by rendezvous
// (highest-random-weight) hashing with bounded loads: taking the accounts
// in id order, each goes to the member with the highest score for it that
// has fewer than ceil(Balance × accounts / members) accounts. Every worker
// computes the same answer from the same lists. Pure rendezvous hashing
// would move only a leaving member's accounts, but with a few dozen
// accounts it leaves one worker with twice another's share; the bound
// evens the split at the price of moving a few more accounts when a member
// comes or goes (in the tests: at most 4 of the 20 accounts of the two
// survivors of 30 accounts, 5 of 200 with 300).
func Assign(accountIDs, members []string) map[string]string {
	out := make(map[string]string, len(accountIDs))
	if len(members) == 0 {
		return out
	}
	ids := slices.Clone(accountIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	limit := int(math.Ceil(Balance * float64(len(ids)) / float64(len(members))))
	load := make(map[string]int, len(members))
	ranked := slices.Clone(members)
	for _, id := range ids {
		sort.Slice(ranked, func(i, j int) bool {
			wi, wj := weight(ranked[i], id), weight(ranked[j], id)
			if wi != wj {
				return wi > wj
			}
			return ranked[i] < ranked[j]
		})
		for _, m := range ranked {
			if load[m] < limit {
				load[m]++
				out[id] = m
				break
			}
		}
	}
	return out
}

// Share returns the accounts this member owns among active, by Assign over
// the live members. Without a session, or while this process is not
// registered, it returns an error: nothing is known to be ours.
func (k *Keeper) Share(ctx context.Context, active []syncer.Account) ([]syncer.Account, error) {
	k.mu.Lock()
	live, member := k.session != 0, k.member
	k.mu.Unlock()
	if !live {
		return nil, ErrNoSession
	}
	if member {
		if err := k.register(); err != nil {
			return nil, err
		}
	}
	members, err := k.Members(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
	}
	if !slices.Contains(names, k.opts.Name) {
		return nil, fmt.Errorf("keeper: %s is not a registered member", k.opts.Name)
	}
	ids := make([]string, len(active))
	for i, a := range active {
		ids[i] = a.ID
	}
	owners := Assign(ids, names)
	var out []syncer.Account
	for _, a := range active {
		if owners[a.ID] == k.opts.Name {
			out = append(out, a)
		}
	}
	return out, nil
}
