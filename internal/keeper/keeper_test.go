package keeper

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/zktest"
)

// zkPort is this package's private ZooKeeper (the fleet test in cmd/syncer
// uses 19282; the cluster tests 19100-19199).
const zkPort = 19281

func connect(t *testing.T, zk *zktest.Server, root, name string, timeout time.Duration) *Keeper {
	t.Helper()
	k, err := Connect(t.Context(), Options{Addrs: []string{zk.Addr}, Root: root, SessionTimeout: timeout,
		Name: name, Holder: "test " + name, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return k
}

func TestKeeper(t *testing.T) {
	zk := zktest.Start(t, zkPort)
	root := fmt.Sprintf("/impact-syncer-test/%d", time.Now().UnixNano())

	t.Run("lock is exclusive and names its holder", func(t *testing.T) {
		a := connect(t, zk, root, "a", 4*time.Second)
		b := connect(t, zk, root, "b", 4*time.Second)
		la, err := a.Lock(t.Context(), "acc", "worker a")
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Lock(t.Context(), "acc", "worker b")
		var held *syncer.LockHeldError
		if !errors.As(err, &held) || held.Holder != "worker a" || held.AccountID != "acc" {
			t.Fatalf("second locker: %v; want *syncer.LockHeldError naming worker a", err)
		}
		if h, err := b.Holders(t.Context()); err != nil || h["acc"] != "worker a" {
			t.Fatalf("holders %v %v", h, err)
		}
		la.Unlock()
		lb, err := b.Lock(t.Context(), "acc", "worker b")
		if err != nil {
			t.Fatalf("after unlock: %v", err)
		}
		lb.Unlock()

		// many lockers hammering one account: never two holders at once
		ks := []*Keeper{a, b, connect(t, zk, root, "c", 4*time.Second)}
		var holding, most, won atomic.Int32
		var wg sync.WaitGroup
		for i := range 9 {
			k := ks[i%3]
			wg.Go(func() {
				for range 15 {
					l, err := k.Lock(t.Context(), "hot", fmt.Sprintf("locker %d", i))
					if err != nil {
						if !errors.As(err, new(*syncer.LockHeldError)) {
							t.Error(err)
						}
						continue
					}
					won.Add(1)
					n := holding.Add(1)
					for {
						m := most.Load()
						if n <= m || most.CompareAndSwap(m, n) {
							break
						}
					}
					time.Sleep(2 * time.Millisecond)
					holding.Add(-1)
					l.Unlock()
				}
			})
		}
		wg.Wait()
		if most.Load() != 1 || won.Load() == 0 {
			t.Fatalf("at most %d holders at once, %d acquisitions; want 1 at a time and some", most.Load(), won.Load())
		}
		t.Logf("%d acquisitions of 135 attempts, never two at once", won.Load())
	})

	t.Run("rendezvous split moves only the leaver's share", func(t *testing.T) {
		sub := root + "/split"
		names := []string{"w1", "w2", "w3"}
		ks := map[string]*Keeper{}
		for _, n := range names {
			ks[n] = connect(t, zk, sub, n, 4*time.Second)
			if err := ks[n].Join(); err != nil {
				t.Fatal(err)
			}
		}
		var accts []syncer.Account
		for i := range 300 {
			accts = append(accts, syncer.Account{ID: fmt.Sprintf("acct-%03d", i)})
		}
		share := func(n string) []string {
			got, err := ks[n].Share(t.Context(), accts)
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(got))
			for i, a := range got {
				ids[i] = a.ID
			}
			return ids
		}
		before := map[string][]string{}
		seen := map[string]string{}
		for _, n := range names {
			before[n] = share(n)
			if p := len(before[n]) * 100 / len(accts); p < 20 || p > 46 {
				t.Errorf("%s owns %d%% of the accounts", n, p)
			}
			for _, id := range before[n] {
				if o, dup := seen[id]; dup {
					t.Errorf("%s owned by %s and %s", id, o, n)
				}
				seen[id] = n
			}
		}
		if len(seen) != len(accts) {
			t.Fatalf("%d of %d accounts owned", len(seen), len(accts))
		}
		ks["w2"].Leave()
		after := map[string][]string{"w1": share("w1"), "w3": share("w3")}
		if len(after["w1"])+len(after["w3"]) != len(accts) {
			t.Errorf("after w2 left: %d + %d accounts owned of %d", len(after["w1"]), len(after["w3"]), len(accts))
		}
		moved := 0
		for _, n := range []string{"w1", "w3"} {
			for _, id := range before[n] {
				if !slices.Contains(after[n], id) {
					moved++
				}
			}
		}
		t.Logf("w2 left: %d of its %d accounts moved to the others, and %d of the survivors' %d", len(before["w2"]),
			len(before["w2"]), moved, len(accts)-len(before["w2"]))
		if moved > len(accts)/20 {
			t.Errorf("%d of the survivors' accounts moved when w2 left; want at most %d", moved, len(accts)/20)
		}
		if _, err := ks["w2"].Share(t.Context(), accts); err == nil {
			t.Error("a worker that left still gets a share")
		}
	})

	t.Run("session loss marks locks lost and recovers", func(t *testing.T) {
		sub := root + "/loss"
		a := connect(t, zk, sub, "a", 3*time.Second)
		if err := a.Join(); err != nil {
			t.Fatal(err)
		}
		l, err := a.Lock(t.Context(), "acc", "worker a")
		if err != nil {
			t.Fatal(err)
		}
		zk.Stop()
		select {
		case <-l.Lost():
		case <-time.After(30 * time.Second):
			t.Fatal("lock not marked lost after ZooKeeper stopped")
		}
		if ok, _, reason := a.Live(); ok || reason == "" {
			t.Errorf("Live() = %v %q with ZooKeeper stopped", ok, reason)
		}
		if _, err := a.Share(t.Context(), []syncer.Account{{ID: "acc"}}); !errors.Is(err, ErrNoSession) {
			t.Errorf("share without a session: %v", err)
		}
		if _, err := a.Lock(t.Context(), "other", "worker a"); !errors.Is(err, ErrNoSession) {
			t.Errorf("lock without a session: %v", err)
		}
		l.Unlock()                  // cannot reach the ensemble: retried once the session is back
		time.Sleep(4 * time.Second) // past the session timeout
		zk.Restart()
		b := connect(t, zk, sub, "b", 3*time.Second)
		deadline := time.Now().Add(60 * time.Second)
		for {
			lb, err := b.Lock(t.Context(), "acc", "worker b")
			if err == nil {
				lb.Unlock()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the lock of the lost session never came free: %v", err)
			}
			time.Sleep(200 * time.Millisecond)
		}
		for {
			ok, _, _ := a.Live()
			got, err := a.Share(t.Context(), []syncer.Account{{ID: "acc"}})
			if ok && err == nil && got != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a did not get a session and a share back: live %v, %v", ok, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

func TestAssignIsBalancedAndStable(t *testing.T) {
	for _, n := range []int{30, 300, 1000} {
		var ids []string
		for i := range n {
			ids = append(ids, fmt.Sprintf("acct-%d", i))
		}
		for trial := range 20 {
			members := []string{fmt.Sprintf("host-%d-1", trial), fmt.Sprintf("host-%d-2", trial), fmt.Sprintf("host-%d-3", trial), fmt.Sprintf("host-%d-4", trial)}
			before := Assign(ids, members)
			limit := (n*11 + 39) / 40 // ceil(1.1 × n / 4)
			load := map[string]int{}
			for _, id := range ids {
				load[before[id]]++
			}
			for _, m := range members {
				if load[m] > limit || load[m] < n-3*limit {
					t.Fatalf("n=%d: %s owns %d; want %d..%d", n, m, load[m], n-3*limit, limit)
				}
			}
			shuffled := []string{members[2], members[0], members[3], members[1]}
			again := Assign(ids, shuffled)
			survivors := slices.DeleteFunc(slices.Clone(members), func(m string) bool { return m == members[2] })
			after := Assign(ids, survivors)
			moved := 0
			for _, id := range ids {
				if again[id] != before[id] {
					t.Fatalf("%s: the owner depends on the members' order", id)
				}
				if before[id] != members[2] && after[id] != before[id] {
					moved++
				}
				if after[id] == members[2] || after[id] == "" {
					t.Fatalf("%s owned by %q after its owner left", id, after[id])
				}
			}
			if moved > n/10+4 {
				t.Errorf("n=%d: %d accounts of the survivors moved when one of 4 members left", n, moved)
			}
		}
	}
	if len(Assign([]string{"x"}, nil)) != 0 {
		t.Error("no members, yet an owner")
	}
}
