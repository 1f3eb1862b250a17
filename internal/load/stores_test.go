package load_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/chtest"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

func TestAccountStore(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	s := load.NewAccountStore(db)

	if _, err := s.Account(ctx, "nope"); !errors.Is(err, syncer.ErrNotFound) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown account: %v; want ErrNotFound naming the id", err)
	}
	for name, err := range map[string]error{
		"Secret":        func() error { _, err := s.Secret(ctx, "nope"); return err }(),
		"SetSecret":     s.SetSecret(ctx, "nope", syncer.SealedSecret{}),
		"SetStatus":     s.SetStatus(ctx, "nope", syncer.StatusDisabled, "", nil),
		"DeleteAccount": s.DeleteAccount(ctx, "nope"),
	} {
		if !errors.Is(err, syncer.ErrNotFound) {
			t.Errorf("%s of unknown account: %v; want ErrNotFound", name, err)
		}
	}

	created := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	a := syncer.Account{ID: "acc1", Persona: syncer.Brand, SID: "IRabc", AuthKind: syncer.AuthBasic,
		Status: syncer.StatusActive, CreatedAt: created}
	secret := syncer.SealedSecret{KeyID: "k1", Ciphertext: []byte{0, 1, 2, 0xff, 'x'}}
	if err := s.PutAccount(ctx, a, secret); err != nil {
		t.Fatal(err)
	}
	if err := s.PutAccount(ctx, syncer.Account{ID: "acc0", Persona: syncer.Partner, AuthKind: syncer.AuthOAuth}, syncer.SealedSecret{KeyID: "k1"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Account(ctx, "acc1")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "acc1" || got.Persona != syncer.Brand || got.SID != "IRabc" || got.AuthKind != syncer.AuthBasic ||
		got.Status != syncer.StatusActive || !got.CreatedAt.Equal(created) || got.UpdatedAt.IsZero() || got.StatusAt.IsZero() {
		t.Fatalf("round trip: %+v", got)
	}
	sec, err := s.Secret(ctx, "acc1")
	if err != nil || sec.KeyID != "k1" || !bytes.Equal(sec.Ciphertext, secret.Ciphertext) {
		t.Fatalf("secret: %+v %v", sec, err)
	}

	missing := []string{"Promo Codes → Retrieve promo codes"}
	if err := s.SetStatus(ctx, "acc1", syncer.StatusNeedsReconnect, "401 on Campaigns", missing); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Account(ctx, "acc1")
	if got.Status != syncer.StatusNeedsReconnect || got.StatusReason != "401 on Campaigns" || !slices.Equal(got.MissingPermissions, missing) ||
		got.SID != "IRabc" || !got.CreatedAt.Equal(created) {
		t.Fatalf("after SetStatus: %+v", got)
	}
	if sec, _ := s.Secret(ctx, "acc1"); !bytes.Equal(sec.Ciphertext, secret.Ciphertext) {
		t.Fatal("SetStatus changed the secret")
	}

	rotated := syncer.SealedSecret{KeyID: "k2", Ciphertext: []byte("new")}
	if err := s.SetSecret(ctx, "acc1", rotated); err != nil {
		t.Fatal(err)
	}
	if sec, _ := s.Secret(ctx, "acc1"); sec.KeyID != "k2" || string(sec.Ciphertext) != "new" {
		t.Fatalf("after SetSecret: %+v", sec)
	}
	if got, _ := s.Account(ctx, "acc1"); got.Status != syncer.StatusNeedsReconnect {
		t.Fatalf("SetSecret changed the status: %+v", got)
	}

	// Many quick updates: the last one wins (versions strictly increase).
	for _, st := range []syncer.Status{syncer.StatusDisabled, syncer.StatusActive, syncer.StatusDisabled, syncer.StatusActive} {
		if err := s.SetStatus(ctx, "acc1", st, string(st), nil); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := s.Account(ctx, "acc1"); got.Status != syncer.StatusActive || got.MissingPermissions != nil {
		t.Fatalf("after quick updates: %+v", got)
	}

	all, err := s.Accounts(ctx)
	if err != nil || len(all) != 2 || all[0].ID != "acc0" || all[1].ID != "acc1" {
		t.Fatalf("Accounts = %+v, %v", all, err)
	}

	if err := s.DeleteAccount(ctx, "acc1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Account(ctx, "acc1"); !errors.Is(err, syncer.ErrNotFound) {
		t.Fatalf("deleted account: %v", err)
	}
	if _, err := s.Secret(ctx, "acc1"); !errors.Is(err, syncer.ErrNotFound) {
		t.Fatalf("deleted account's secret: %v", err)
	}
	if all, _ := s.Accounts(ctx); len(all) != 1 || all[0].ID != "acc0" {
		t.Fatalf("Accounts after delete = %+v", all)
	}
	if n := count(t, db, "SELECT count() FROM accounts FINAL WHERE id = 'acc1' AND secret_ciphertext = ''"); n != 1 {
		t.Fatal("tombstone still holds the secret")
	}

	// Re-registering a deleted account works.
	if err := s.PutAccount(ctx, a, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Account(ctx, "acc1"); err != nil {
		t.Fatal(err)
	}
}

func TestStateStore(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	s := load.NewStateStore(db)
	k := syncer.WatermarkKey{AccountID: "acc", Entity: syncer.Actions, CampaignID: "1234", Scan: "updated"}

	if wm, ok, err := s.Watermark(ctx, k); err != nil || ok || !wm.IsZero() {
		t.Fatalf("empty: %v %v %v", wm, ok, err)
	}
	w1 := time.Date(2024, 5, 1, 10, 0, 0, 999_000_000, time.UTC)
	if err := s.SetWatermark(ctx, k, w1); err != nil {
		t.Fatal(err)
	}
	if wm, ok, err := s.Watermark(ctx, k); err != nil || !ok || !wm.Equal(w1.Truncate(time.Second)) {
		t.Fatalf("after set: %v %v %v; want %v (second precision)", wm, ok, err, w1.Truncate(time.Second))
	}
	// Each set replaces the previous one, even with an earlier time.
	for i, w := range []time.Time{w1.Add(time.Hour), w1.Add(2 * time.Hour), w1.Add(-time.Hour)} {
		if err := s.SetWatermark(ctx, k, w); err != nil {
			t.Fatal(err)
		}
		if wm, _, _ := s.Watermark(ctx, k); !wm.Equal(w.Truncate(time.Second)) {
			t.Fatalf("set %d: got %v, want %v", i, wm, w)
		}
	}
	// Keys are independent.
	for _, other := range []syncer.WatermarkKey{
		{AccountID: "acc", Entity: syncer.Actions, CampaignID: "", Scan: "updated"},
		{AccountID: "acc", Entity: syncer.Actions, CampaignID: "1234", Scan: "locking"},
		{AccountID: "acc", Entity: syncer.ActionUpdates, CampaignID: "1234", Scan: "updated"},
		{AccountID: "acc2", Entity: syncer.Actions, CampaignID: "1234", Scan: "updated"},
	} {
		if _, ok, _ := s.Watermark(ctx, other); ok {
			t.Errorf("%+v has a watermark", other)
		}
	}
}

func TestRunStore(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	s := load.NewRunStore(db)
	start := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

	running := syncer.Run{ID: "r1", AccountID: "acc", Entity: syncer.Actions, Kind: syncer.RunIncremental,
		StartedAt: start, Status: syncer.RunRunning}
	if err := s.RecordRun(ctx, running); err != nil {
		t.Fatal(err)
	}
	done := running
	done.Status, done.FinishedAt, done.Rows, done.Requests, done.RateLimitWaits, done.Windows = syncer.RunSucceeded, start.Add(time.Minute), 1234, 56, 2, 7
	if err := s.RecordRun(ctx, done); err != nil {
		t.Fatal(err)
	}
	runs, err := s.Runs(ctx, "acc", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0] != done {
		t.Fatalf("Runs = %+v; want [%+v]", runs, done)
	}
	if runs[0].FinishedAt.IsZero() {
		t.Fatal("finished_at lost")
	}

	// A running run reads back with a zero FinishedAt.
	r2 := syncer.Run{ID: "r2", AccountID: "acc", Entity: syncer.Campaigns, Kind: syncer.RunBackfill, StartedAt: start.Add(time.Hour), Status: syncer.RunRunning}
	r3 := syncer.Run{ID: "r3", AccountID: "acc", Entity: syncer.PromoCodes, Kind: syncer.RunIncremental, StartedAt: start.AddDate(0, 1, 0),
		FinishedAt: start.AddDate(0, 1, 0).Add(time.Second), Status: syncer.RunFailed, Error: "impact.com denied PromoCodes (403)"}
	for _, r := range []syncer.Run{r2, r3, {ID: "x", AccountID: "other", Entity: syncer.Actions, StartedAt: start, Status: syncer.RunSkipped}} {
		if err := s.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	runs, err = s.Runs(ctx, "acc", 0)
	if err != nil || len(runs) != 3 || runs[0] != r3 || runs[1] != r2 || runs[2] != done {
		t.Fatalf("Runs = %+v, %v; want r3, r2, r1", runs, err)
	}
	if runs, _ := s.Runs(ctx, "acc", 2); len(runs) != 2 || runs[0].ID != "r3" {
		t.Fatalf("limit 2: %+v", runs)
	}
	if err := s.RecordRun(ctx, syncer.Run{AccountID: "acc"}); err == nil {
		t.Fatal("run without id: want an error")
	}
}

// clock is a settable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLeases(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	clk := &clock{t: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)}
	s := load.NewLeaseStore(db, clk.Now)
	s.Settle = 10 * time.Millisecond

	a, err := s.Acquire(ctx, "acc", "daemon@host-1", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if a.Holder != "daemon@host-1" || !a.ExpiresAt.Equal(clk.Now().Add(10*time.Minute)) {
		t.Fatalf("lease %+v", a)
	}

	_, err = s.Acquire(ctx, "acc", "backfill@laptop", time.Minute)
	var held *syncer.LockHeldError
	if !errors.As(err, &held) || held.Holder != "daemon@host-1" || held.AccountID != "acc" || !held.Expires.Equal(a.ExpiresAt) || !held.Since.Equal(a.AcquiredAt) {
		t.Fatalf("second holder: %v; want *LeaseHeldError naming daemon@host-1", err)
	}
	if !strings.Contains(err.Error(), "daemon@host-1") || !strings.Contains(err.Error(), "acc") {
		t.Fatalf("message %q does not name the holder and account", err)
	}
	t.Log(err)

	// Another account is free; the holder may acquire again (extends).
	if _, err := s.Acquire(ctx, "acc2", "backfill@laptop", time.Minute); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	again, err := s.Acquire(ctx, "acc", "daemon@host-1", 10*time.Minute)
	if err != nil || !again.AcquiredAt.Equal(a.AcquiredAt) || !again.ExpiresAt.Equal(clk.Now().Add(10*time.Minute)) {
		t.Fatalf("re-acquire by holder: %+v %v", again, err)
	}

	// Renew extends.
	clk.Add(5 * time.Minute)
	a, err = s.Renew(ctx, again, 10*time.Minute)
	if err != nil || !a.ExpiresAt.Equal(clk.Now().Add(10*time.Minute)) {
		t.Fatalf("renew: %+v %v", a, err)
	}

	// Expiry lets another take it; the old holder's Renew then fails.
	clk.Add(11 * time.Minute)
	b, err := s.Acquire(ctx, "acc", "backfill@laptop", 10*time.Minute)
	if err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if _, err := s.Renew(ctx, a, 10*time.Minute); !errors.As(err, &held) || held.Holder != "backfill@laptop" {
		t.Fatalf("renew by the old holder: %v; want LeaseHeldError naming backfill@laptop", err)
	}
	// Releasing a lease one no longer holds does nothing.
	if err := s.Release(ctx, a); err != nil {
		t.Fatal(err)
	}
	if cur, _, _ := s.Current(ctx, "acc"); cur.Holder != "backfill@laptop" {
		t.Fatalf("stale release freed the lease: %+v", cur)
	}

	// Release frees it at once.
	if err := s.Release(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire(ctx, "acc", "daemon@host-1", 10*time.Minute); err != nil {
		t.Fatalf("after release: %v", err)
	}

	// Concurrent acquirers: exactly one wins.
	clk.Add(time.Hour)
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for _, h := range []string{"w1", "w2", "w3", "w4"} {
		wg.Go(func() {
			s := load.NewLeaseStore(db, clk.Now)
			if _, err := s.Acquire(ctx, "acc3", h, time.Minute); err == nil {
				mu.Lock()
				won++
				mu.Unlock()
			} else if !errors.As(err, new(*syncer.LockHeldError)) {
				t.Errorf("%s: %v", h, err)
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Fatalf("%d concurrent acquirers won; want 1", won)
	}
}

// TestLeaseLock: the lease as a syncer.Locker. A second holder is refused
// with the holder's name; a lease taken over once it expired closes the
// first holder's Lost channel at its next renewal; a holder HolderGone says
// is dead is taken over at once; Holders shows the live holders.
func TestLeaseLock(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	clk := &clock{t: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)}
	s := load.NewLeaseStore(db, clk.Now)
	s.Settle = 10 * time.Millisecond
	s.TTL = 3 * time.Second // renewed every second

	lk, err := s.Lock(ctx, "acc", "worker-1")
	if err != nil {
		t.Fatal(err)
	}
	var held *syncer.LockHeldError
	if _, err := s.Lock(ctx, "acc", "worker-2"); !errors.As(err, &held) || held.Holder != "worker-1" {
		t.Fatalf("second holder: %v; want *syncer.LockHeldError naming worker-1", err)
	}
	if h, err := s.Holders(ctx); err != nil || h["acc"] != "worker-1" {
		t.Fatalf("holders %v %v", h, err)
	}
	// worker-1 stalls past its expiry (by the lease clock); worker-2 takes it.
	clk.Add(time.Minute)
	other := load.NewLeaseStore(db, clk.Now)
	other.Settle = 10 * time.Millisecond
	if _, err := other.Acquire(ctx, "acc", "worker-2", time.Hour); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lk.Lost():
	case <-time.After(30 * time.Second):
		t.Fatal("the first holder's lock was not marked lost after the lease was taken")
	}
	lk.Unlock() // must not free worker-2's lease
	if h, _ := s.Holders(ctx); h["acc"] != "worker-2" {
		t.Fatalf("after the loser's Unlock: holders %v", h)
	}

	// a dead holder's lease is taken over without waiting for its expiry
	s.HolderGone = func(h string) bool { return h == "worker-2" }
	lk2, err := s.Lock(ctx, "acc", "worker-3")
	if err != nil {
		t.Fatalf("takeover from a dead holder: %v", err)
	}
	lk2.Unlock()
	if h, _ := s.Holders(ctx); h["acc"] != "" {
		t.Fatalf("after Unlock: holders %v", h)
	}
}

// TestAcquireMany: the leases of several accounts in one acquire. An
// account another holder has is refused with its holder while the others
// are taken; the holder's own lease is extended; an expired lease is taken
// over and its former holder's renewal fails; two holders acquiring
// overlapping accounts at once never both win one; LockMany takes over the
// lease of a holder HolderGone says is dead.
func TestAcquireMany(t *testing.T) {
	db := chtest.New(t)
	ctx := t.Context()
	clk := &clock{t: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)}
	s := load.NewLeaseStore(db, clk.Now)
	s.Settle = 10 * time.Millisecond

	first, err := s.Acquire(ctx, "b", "other", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	leases, errs := s.AcquireMany(ctx, []string{"a", "b", "c"}, "me", 10*time.Minute)
	var held *syncer.LockHeldError
	if errs[0] != nil || errs[2] != nil || leases[0].Holder != "me" || leases[2].Holder != "me" {
		t.Fatalf("free accounts: %+v %v", leases, errs)
	}
	if !errors.As(errs[1], &held) || held.Holder != "other" || held.AccountID != "b" || !held.Since.Equal(first.AcquiredAt) {
		t.Fatalf("account held by another: %v; want *syncer.LockHeldError naming other", errs[1])
	}
	if !leases[0].ExpiresAt.Equal(clk.Now().Add(10*time.Minute)) || leases[1] != (load.Lease{}) {
		t.Fatalf("leases %+v", leases)
	}
	if cur, _, _ := s.Current(ctx, "b"); cur.Holder != "other" {
		t.Fatalf("the held lease changed: %+v", cur)
	}

	// the holder's own leases are extended, keeping their start
	clk.Add(time.Minute)
	again, errs := s.AcquireMany(ctx, []string{"a", "c"}, "me", 10*time.Minute)
	if errs[0] != nil || errs[1] != nil || !again[0].AcquiredAt.Equal(leases[0].AcquiredAt) || !again[1].ExpiresAt.Equal(clk.Now().Add(10*time.Minute)) {
		t.Fatalf("re-acquire: %+v %v", again, errs)
	}

	// other's lease of b expires: taken; other's renewal then fails
	clk.Add(10 * time.Minute)
	taken, errs := s.AcquireMany(ctx, []string{"b"}, "me", 10*time.Minute)
	if errs[0] != nil || taken[0].Holder != "me" {
		t.Fatalf("after expiry: %+v %v", taken, errs)
	}
	if _, err := s.Renew(ctx, first, 10*time.Minute); !errors.As(err, &held) || held.Holder != "me" {
		t.Fatalf("renewal by the former holder: %v; want *syncer.LockHeldError naming me", err)
	}

	// two holders at once over overlapping accounts: each account has one winner
	clk.Add(time.Hour)
	ids := []string{"x1", "x2", "x3", "x4"}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := map[string][]string{}
	for _, h := range []string{"w1", "w2"} {
		wg.Go(func() {
			// the default settle time: a shorter one lets both win when
			// the machine is busy (the race the settle time is there for)
			st := load.NewLeaseStore(db, clk.Now)
			_, errs := st.AcquireMany(ctx, ids, h, time.Minute)
			mu.Lock()
			defer mu.Unlock()
			for i, err := range errs {
				if err == nil {
					won[ids[i]] = append(won[ids[i]], h)
				} else if !errors.As(err, new(*syncer.LockHeldError)) {
					t.Errorf("%s %s: %v", h, ids[i], err)
				}
			}
		})
	}
	wg.Wait()
	for _, id := range ids {
		if len(won[id]) != 1 {
			t.Errorf("%s won by %v; want exactly one holder", id, won[id])
		}
	}

	// LockMany: a dead holder's lease is taken over; the locks release
	if _, err := s.Acquire(ctx, "d", "dead", time.Hour); err != nil {
		t.Fatal(err)
	}
	s.HolderGone = func(h string) bool { return h == "dead" }
	locks, errs := s.LockMany(ctx, []string{"d", "e"}, "me")
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("LockMany: %v", errs)
	}
	if h, _ := s.Holders(ctx); h["d"] != "me" || h["e"] != "me" {
		t.Fatalf("holders %v", h)
	}
	for _, lk := range locks {
		lk.Unlock()
	}
	if h, _ := s.Holders(ctx); h["d"] != "" || h["e"] != "" {
		t.Fatalf("after Unlock: holders %v", h)
	}
}
