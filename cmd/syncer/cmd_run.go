package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/webhook"
	"github.com/impact-syncer/impact-syncer/internal/worker"
)

// newWorker builds the scheduler and fan-out over svc; schedules may be nil
// (syncer sync uses RunOnce only).
// share, when set, picks this worker's accounts on each tick.
func (a *app) newWorker(svc *syncer.Syncer, schedules []worker.Schedule,
	share func(context.Context, []syncer.Account) ([]syncer.Account, error)) (*worker.Worker, error) {
	cfg := worker.Config{
		Syncer: svc, Accounts: a.accounts, Runs: a.runs, Logger: a.log, NewRunID: newRunID,
		Schedules: schedules, Concurrency: a.cfg.Concurrency, StartSpread: a.cfg.StartSpread, Share: share,
	}
	if m := a.metrics; m != nil {
		cfg.Syncer = inFlightSyncer{svc: svc, m: m}
		cfg.OnAccounts = func(accts []syncer.Account) {
			m.accountStatuses(accts)
			if a.watch != nil {
				a.watch.Observe(accts, true)
			}
		}
		cfg.OnSkipped = func(acct syncer.Account) { m.skipped.WithLabelValues(string(acct.Status)).Inc() }
		cfg.OnResult = func(res syncer.AccountResult) {
			m.result(res)
			if a.watch != nil { // the pass may have flagged the account or found a permission missing
				if fresh, err := a.accounts.Account(context.Background(), res.Account.ID); err == nil {
					a.watch.Observe([]syncer.Account{fresh}, false)
				}
			}
		}
	}
	return worker.New(cfg)
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run", `The long-lived worker: applies pending migrations, then syncs every active
account on two cron schedules (SYNCER_SCHEDULE_ACTIONS, SYNCER_SCHEDULE_CATALOG),
serves /healthz, /readyz, /metrics, the status page and the OAuth callback on
SYNCER_HTTP_ADDR, and shuts down gracefully on SIGTERM or SIGINT.`, stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return withApp(ctx, stderr, needs{}, func(a *app) error { return a.runWorker(ctx) })
}

// runWorker is the worker of syncer run, on an open app, until ctx ends and
// the shutdown is done.
func (a *app) runWorker(ctx context.Context) error {
	a.log.Info("starting worker", append(a.cfg.fields(), zap.String("version", version))...)
	applied, err := a.db.Migrate(ctx)
	if err != nil {
		return fmt.Errorf("applying migrations: %w", err)
	}
	if len(applied) > 0 {
		a.log.Info("applied migrations", zap.Strings("migrations", applied))
	}
	a.metrics = newMetrics(a.db.Ping)
	accts, err := a.accounts.Accounts(ctx)
	if err == nil {
		err = a.metrics.seed(ctx, a.runs, a.state, accts)
	}
	if err != nil {
		return fmt.Errorf("reading the last runs and watermarks for the metrics: %w", err)
	}
	if a.cfg.NotifyWebhookURL != "" {
		n, err := webhook.New(webhook.Options{URL: a.cfg.NotifyWebhookURL.Reveal(), Logger: a.log,
			OnResult: func(outcome string) { a.metrics.notifications.WithLabelValues(outcome).Inc() }})
		if err != nil {
			return err
		}
		defer n.Close(5 * time.Second)
		a.watch = webhook.NewWatch(n.Notify, a.log, time.Now)
		a.watch.Observe(accts, true)
	}
	holder := holderName("syncer run")
	var share func(context.Context, []syncer.Account) ([]syncer.Account, error)
	if err := a.openKeeper(ctx, "syncer run"); err != nil {
		return err
	}
	if a.keeper != nil {
		share = a.fleetShare(a.metrics.addFleet(a.keeper))
		if err := a.keeper.Join(); err != nil {
			a.log.Warn("not a fleet member yet; retried every tick", zap.Error(err))
		}
		a.log.Info("fleet member", zap.String("member", a.keeper.Name()), zap.String("keeper_root", a.cfg.keeperRoot()))
	} else {
		// One worker per database without a keeper: a second is refused.
		a.solo = &soloLease{leases: a.leases, holder: holder, log: a.log}
		if err := a.solo.take(ctx); err != nil {
			return fmt.Errorf("refusing to start: %w", err)
		}
		defer a.solo.release()
		share = a.solo.Share
	}

	// Background work (idle OAuth refreshes) runs on hard, which outlives
	// ctx (the signal) until the worker has stopped.
	hard, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHard()
	w, err := a.newWorker(a.syncer(holder), []worker.Schedule{
		{Name: "SYNCER_SCHEDULE_ACTIONS", Spec: a.cfg.ScheduleActions, Entities: syncer.ActivityEntities},
		{Name: "SYNCER_SCHEDULE_CATALOG", Spec: a.cfg.ScheduleCatalog, Entities: syncer.CatalogEntities},
	}, share)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("SYNCER_HTTP_ADDR %s: %w", a.cfg.HTTPAddr, err)
	}
	srv := &http.Server{Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", zap.Error(err))
		}
	}()
	a.log.Info("worker ready", zap.String("http_addr", ln.Addr().String()))
	if err := w.Start(hard); err != nil {
		return err
	}
	if a.oauthIdle != nil {
		go a.oauthIdle(hard)
	}

	<-ctx.Done()
	a.log.Info("shutdown requested: no new syncs; waiting for running ones to commit", zap.Duration("timeout", a.cfg.ShutdownTimeout))
	if a.keeper != nil {
		// The others take this worker's accounts at their next tick; its
		// locks go when its passes end (and with the session, at exit).
		a.keeper.Leave()
	}
	graceful := true
	soft, cancelSoft := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancelSoft()
	if err := w.Stop(soft); err != nil {
		a.log.Warn("shutdown timeout reached; cancelling the passes still running")
		graceful = false
		_ = w.StopAndCancel(context.Background())
	}
	cancelHard()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	if graceful {
		a.log.Info("worker stopped")
	} else {
		a.log.Warn("worker stopped; passes cut short will resume from their last committed window")
	}
	return nil
}

// routes is the worker's HTTP surface.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if why := a.fleetNotReady(); why != "" {
			http.Error(w, "not ready: "+why, http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := a.db.Ping(ctx); err != nil {
			http.Error(w, "not ready: ClickHouse unreachable", http.StatusServiceUnavailable)
			return
		}
		ok, err := a.db.SchemaCurrent(ctx)
		if err != nil || !ok {
			http.Error(w, "not ready: schema not current", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if a.metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	}
	if a.callback != nil {
		mux.Handle(a.callbackPath(), a.callback)
		mux.HandleFunc("GET /oauth/start", a.oauthStart)
	}
	mux.HandleFunc("GET /{$}", a.statusPage)
	return mux
}

// oauthStart begins an OAuth connection from the worker, whose callback path
// then completes it: GET /oauth/start?account=ID&persona=brand&sid=SID
// redirects the browser to impact.com's consent page. Only requests from
// this machine (loopback) may start one.
func (a *app) oauthStart(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		http.Error(w, "connections can only be started from the worker's own machine", http.StatusForbidden)
		return
	}
	q := r.URL.Query()
	id, sid := q.Get("account"), q.Get("sid")
	persona, err := syncer.ParsePersona(q.Get("persona"))
	if err != nil || checkAccountID(id) != nil || sid == "" {
		http.Error(w, "want ?account=ID&persona=brand|partner&sid=ACCOUNT_SID", http.StatusBadRequest)
		return
	}
	u, err := a.connector.Begin(id, persona, sid)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}
