//lint:file-ignore SA1019 prometheus.NewGoCollector and NewProcessCollector are replaced in the metrics rework (issue 16)

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/impact-syncer/impact-syncer/internal/extract"
	"github.com/impact-syncer/impact-syncer/internal/load"
	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// metricPrefix starts every metric of the worker's own, so that it is
// recognisable in a Prometheus shared with other jobs.
const metricPrefix = "impact_syncer_"

// metrics are the worker's Prometheus metrics, served on /metrics. Every
// label value is bounded: account ids are the operator's, entities, scans,
// statuses and endpoint groups are fixed sets. Field names impact.com sends
// go to the log (and raw), never to a label.
type metrics struct {
	reg *prometheus.Registry
	now func() time.Time

	rows            *prometheus.CounterVec
	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	rateWaits       *prometheus.CounterVec
	runs            *prometheus.CounterVec
	runDuration     *prometheus.HistogramVec
	lastSuccess     *prometheus.GaugeVec
	lastRunFailed   *prometheus.GaugeVec
	accounts        *prometheus.GaugeVec
	accountStatus   *prometheus.GaugeVec
	missingPerms    *prometheus.GaugeVec
	skipped         *prometheus.CounterVec
	unknownFields   *prometheus.CounterVec
	insertDuration  *prometheus.HistogramVec
	chRetries       prometheus.Counter
	oauthFailures   *prometheus.CounterVec
	inFlight        prometheus.Gauge
	notifications   *prometheus.CounterVec
	marks           *watermarkLag

	mu    sync.Mutex
	known map[string]bool // account ids that have series
}

// perAccount are the vectors with an account_id label: their series go
// when the account does.
func (m *metrics) perAccount() []interface {
	DeletePartialMatch(prometheus.Labels) int
} {
	return []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.rows, m.rateWaits, m.lastSuccess, m.lastRunFailed, m.accountStatus, m.missingPerms}
}

// OAuth refresh failure reasons (a fixed set).
const (
	oauthInvalidGrant = "invalid_grant" // the connection is gone: reconnect
	oauthRefused      = "refused"       // another error answer (a wrong client secret, ...)
	oauthUnavailable  = "unavailable"   // no answer, or a 5xx
)

// newMetrics registers every metric; ping, when set, is called on each
// scrape for impact_syncer_clickhouse_up.
func newMetrics(ping func(context.Context) error) *metrics {
	n := func(s string) string { return metricPrefix + s }
	m := &metrics{
		reg: prometheus.NewRegistry(),
		now: time.Now,
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: n("rows_loaded_total"), Help: "Rows ClickHouse acknowledged, counted as each insert commits.",
		}, []string{"account_id", "entity"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: n("api_requests_total"), Help: "impact.com API responses by status code (0: no response).",
		}, []string{"entity", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: n("api_request_duration_seconds"), Help: "impact.com API request latency (to the response headers) by endpoint group.",
			Buckets: prometheus.ExponentialBuckets(0.025, 2.5, 10),
		}, []string{"endpoint"}),
		rateWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: n("rate_limit_waits_total"), Help: "Waits for impact.com's rate limit (429 or pacing).",
		}, []string{"account_id"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: n("runs_total"), Help: "Entity runs by outcome.",
		}, []string{"entity", "outcome"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: n("run_duration_seconds"), Help: "Duration of entity runs.",
			Buckets: prometheus.ExponentialBuckets(0.05, 3, 12),
		}, []string{"entity"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: n("last_success_timestamp_seconds"),
			Help: "Unix time the last successful run per account and entity finished (read from sync_runs at start).",
		}, []string{"account_id", "entity"}),
		lastRunFailed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: n("last_run_failed"), Help: "1 when the latest run of the account's entity in this process did not succeed.",
		}, []string{"account_id", "entity"}),
		accounts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: n("accounts"), Help: "Registered accounts by status.",
		}, []string{"status"}),
		accountStatus: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: n("account_status"), Help: "1 for the account's current status (active, needs_reconnect, disabled).",
		}, []string{"account_id", "status"}),
		missingPerms: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: n("account_missing_permissions"), Help: "Permissions the account's credentials lack (named in syncer status).",
		}, []string{"account_id"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: n("accounts_skipped_total"), Help: "Scheduled account passes skipped, by account status.",
		}, []string{"status"}),
		unknownFields: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: n("unknown_fields_total"),
			Help: "Field names impact.com sent that no column maps, per entity (each name is logged once and kept in raw).",
		}, []string{"entity"}),
		insertDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: n("clickhouse_insert_duration_seconds"), Help: "Latency of the inserts of entity rows, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 11),
		}, []string{"entity"}),
		chRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: n("clickhouse_retries_total"), Help: "ClickHouse writes repeated after a failure whose outcome was unknown.",
		}),
		oauthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: n("oauth_refresh_failures_total"),
			Help: "Failed OAuth token refreshes: invalid_grant (reconnect needed), refused, unavailable.",
		}, []string{"reason"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: n("passes_in_flight"), Help: "Account passes running now.",
		}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: n("notifications_total"), Help: "Webhook notifications (SYNCER_NOTIFY_WEBHOOK_URL): sent, failed (gave up), dropped.",
		}, []string{"outcome"}),
		known: map[string]bool{},
	}
	m.marks = newWatermarkLag(n("watermark_lag_seconds"), m.now)
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: n("build_info"), Help: "Always 1; the labels name the build.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(version, runtime.Version()).Set(1)
	m.reg.MustRegister(m.rows, m.requests, m.requestDuration, m.rateWaits, m.runs, m.runDuration, m.lastSuccess,
		m.lastRunFailed, m.accounts, m.accountStatus, m.missingPerms, m.skipped, m.unknownFields, m.insertDuration,
		m.chRetries, m.oauthFailures, m.inFlight, m.notifications, m.marks, buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if ping != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: n("clickhouse_up"), Help: "1 when ClickHouse answered a ping during this scrape.",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if ping(ctx) != nil {
				return 0
			}
			return 1
		}))
	}
	// series that alerts and the dashboard read exist from the start
	for _, r := range []string{oauthInvalidGrant, oauthRefused, oauthUnavailable} {
		m.oauthFailures.WithLabelValues(r)
	}
	for _, o := range []string{"sent", "failed", "dropped"} {
		m.notifications.WithLabelValues(o)
	}
	for _, e := range syncer.AllEntities {
		m.unknownFields.WithLabelValues(string(e))
		for _, o := range []syncer.RunStatus{syncer.RunSucceeded, syncer.RunFailed} {
			m.runs.WithLabelValues(string(e), string(o))
		}
	}
	for _, s := range []syncer.Status{syncer.StatusActive, syncer.StatusNeedsReconnect, syncer.StatusDisabled} {
		m.skipped.WithLabelValues(string(s))
		m.accounts.WithLabelValues(string(s))
	}
	return m
}

// seed reads what a restarted worker must report before its first run: the
// last success per account and entity from sync_runs, and the incremental
// watermarks from sync_state.
func (m *metrics) seed(ctx context.Context, runs *load.RunStore, state *load.StateStore, accts []syncer.Account) error {
	m.accountStatuses(accts)
	live := map[string]bool{}
	for _, a := range accts {
		live[a.ID] = true
	}
	last, err := runs.LastSuccesses(ctx)
	if err != nil {
		return err
	}
	for k, t := range last {
		if live[k.AccountID] {
			m.lastSuccess.WithLabelValues(k.AccountID, string(k.Entity)).Set(float64(t.Unix()))
		}
	}
	marks, err := state.IncrementalWatermarks(ctx)
	if err != nil {
		return err
	}
	for k, t := range marks {
		if live[k.AccountID] {
			m.marks.set(k, t)
		}
	}
	return nil
}

func (m *metrics) response(_ syncer.Account, e syncer.Entity, status int) {
	m.requests.WithLabelValues(string(e), strconv.Itoa(status)).Inc()
}

// unknownField counts a field name new to this process; the API client has
// logged the name.
func (m *metrics) unknownField(e syncer.Entity, _ string) {
	m.unknownFields.WithLabelValues(string(e)).Inc()
}

// result records a finished pass. Rows are not counted here: they were, as
// each insert committed (meteredWriter).
func (m *metrics) result(res syncer.AccountResult) {
	for _, r := range res.Runs {
		m.runs.WithLabelValues(string(r.Entity), string(r.Status)).Inc()
		if r.Status == syncer.RunSkipped {
			continue
		}
		m.runDuration.WithLabelValues(string(r.Entity)).Observe(r.FinishedAt.Sub(r.StartedAt).Seconds())
		m.rateWaits.WithLabelValues(r.AccountID).Add(float64(r.RateLimitWaits))
		failed := 0.0
		if r.Status == syncer.RunSucceeded {
			m.lastSuccess.WithLabelValues(r.AccountID, string(r.Entity)).Set(float64(r.FinishedAt.Unix()))
		} else {
			failed = 1
		}
		m.lastRunFailed.WithLabelValues(r.AccountID, string(r.Entity)).Set(failed)
	}
}

// accountStatuses sets the per-status counts and per-account gauges from the
// current list of accounts, and deletes every series of an account no
// longer registered.
func (m *metrics) accountStatuses(accts []syncer.Account) {
	counts := map[syncer.Status]int{syncer.StatusActive: 0, syncer.StatusNeedsReconnect: 0, syncer.StatusDisabled: 0}
	live := map[string]bool{}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range accts {
		s := a.Status
		if s == "" {
			s = syncer.StatusActive
		}
		counts[s]++
		live[a.ID] = true
		m.known[a.ID] = true
		m.accountStatus.DeletePartialMatch(prometheus.Labels{"account_id": a.ID})
		m.accountStatus.WithLabelValues(a.ID, string(s)).Set(1)
		m.missingPerms.WithLabelValues(a.ID).Set(float64(len(a.MissingPermissions)))
	}
	for s, n := range counts {
		m.accounts.WithLabelValues(string(s)).Set(float64(n))
	}
	for id := range m.known {
		if live[id] {
			continue
		}
		for _, v := range m.perAccount() {
			v.DeletePartialMatch(prometheus.Labels{"account_id": id})
		}
		m.marks.forget(id)
		delete(m.known, id)
	}
}

// committed counts rows ClickHouse acknowledged.
func (m *metrics) committed(accountID string, e syncer.Entity, n int, took time.Duration) {
	m.rows.WithLabelValues(accountID, string(e)).Add(float64(n))
	m.insertDuration.WithLabelValues(string(e)).Observe(took.Seconds())
}

// watermarkLag is impact_syncer_watermark_lag_seconds{account_id, entity}:
// how far the oldest incremental watermark (last-updated and locking-date
// scans, every campaign) of the account's entity is behind now, computed on
// each scrape.
type watermarkLag struct {
	desc *prometheus.Desc
	now  func() time.Time
	mu   sync.Mutex
	at   map[load.AccountEntity]map[syncer.WatermarkKey]time.Time
}

func newWatermarkLag(name string, now func() time.Time) *watermarkLag {
	return &watermarkLag{now: now, at: map[load.AccountEntity]map[syncer.WatermarkKey]time.Time{},
		desc: prometheus.NewDesc(name,
			"Seconds the oldest incremental watermark (every campaign, last-updated and locking-date scans) of the account's entity is behind now.",
			[]string{"account_id", "entity"}, nil)}
}

func (w *watermarkLag) set(k syncer.WatermarkKey, t time.Time) {
	if k.Scan != syncer.ScanUpdated && k.Scan != syncer.ScanLocking {
		return // backfills, the first sync's event scan and the clearing re-scan are not incremental cursors
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ae := load.AccountEntity{AccountID: k.AccountID, Entity: k.Entity}
	if w.at[ae] == nil {
		w.at[ae] = map[syncer.WatermarkKey]time.Time{}
	}
	w.at[ae][k] = t
}

func (w *watermarkLag) forget(accountID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ae := range w.at {
		if ae.AccountID == accountID {
			delete(w.at, ae)
		}
	}
}

func (w *watermarkLag) Describe(ch chan<- *prometheus.Desc) { ch <- w.desc }

func (w *watermarkLag) Collect(ch chan<- prometheus.Metric) {
	now := w.now()
	w.mu.Lock()
	defer w.mu.Unlock()
	for ae, marks := range w.at {
		var oldest time.Time
		for _, t := range marks {
			if oldest.IsZero() || t.Before(oldest) {
				oldest = t
			}
		}
		ch <- prometheus.MustNewConstMetric(w.desc, prometheus.GaugeValue, now.Sub(oldest).Seconds(), ae.AccountID, string(ae.Entity))
	}
}

var _ syncer.StreamWriter = meteredWriter{}

// meteredWriter counts entity rows as ClickHouse acknowledges each insert,
// and times the inserts. Embedding keeps the load.Writer's other methods
// (RaiseVersions), which the sync pass looks for.
type meteredWriter struct {
	*load.Writer
	m *metrics
}

func (w meteredWriter) Write(ctx context.Context, accountID string, e syncer.Entity, recs []syncer.Record) error {
	start := time.Now()
	err := w.Writer.Write(ctx, accountID, e, recs)
	if err == nil {
		w.m.committed(accountID, e, len(recs), time.Since(start))
	}
	return err
}

// WriteBatch meters the rows of a staged commit, per account stored.
func (w meteredWriter) WriteBatch(ctx context.Context, e syncer.Entity, batch []syncer.AccountRecords) []error {
	start := time.Now()
	errs := w.Writer.WriteBatch(ctx, e, batch)
	for i, b := range batch {
		if errs[i] == nil && len(b.Records) > 0 {
			w.m.committed(b.AccountID, e, len(b.Records), time.Since(start))
		}
	}
	return errs
}

// OpenInsert meters a streamed insert: its rows count once ClickHouse
// acknowledged them (at Commit), timed from the insert's opening.
func (w meteredWriter) OpenInsert(ctx context.Context, accountID string, e syncer.Entity) (syncer.Insert, error) {
	ins, err := w.Writer.OpenInsert(ctx, accountID, e)
	if err != nil {
		return nil, err
	}
	return &meteredInsert{Insert: ins, m: w.m, accountID: accountID, entity: e, start: time.Now()}, nil
}

// meteredInsert is a syncer.Insert whose Commit counts its rows.
type meteredInsert struct {
	syncer.Insert
	m         *metrics
	accountID string
	entity    syncer.Entity
	start     time.Time
}

func (i *meteredInsert) Commit() error {
	err := i.Insert.Commit()
	if err == nil {
		i.m.committed(i.accountID, i.entity, i.Rows(), time.Since(i.start))
	}
	return err
}

// meteredCatalog does the same for the catalog entities, refreshed whole.
type meteredCatalog struct {
	*load.CatalogWriter
	m *metrics
}

func (w meteredCatalog) ReplaceCatalog(ctx context.Context, accountID string, e syncer.Entity, recs []syncer.Record, seenAt time.Time) error {
	start := time.Now()
	err := w.CatalogWriter.ReplaceCatalog(ctx, accountID, e, recs, seenAt)
	if err == nil {
		w.m.committed(accountID, e, len(recs), time.Since(start))
	}
	return err
}

// ReplaceCatalogs meters the refreshes of a staged commit, per account stored.
func (w meteredCatalog) ReplaceCatalogs(ctx context.Context, e syncer.Entity, batch []syncer.CatalogRefresh) []error {
	start := time.Now()
	errs := w.CatalogWriter.ReplaceCatalogs(ctx, e, batch)
	for i, b := range batch {
		if errs[i] == nil {
			w.m.committed(b.AccountID, e, len(b.Records), time.Since(start))
		}
	}
	return errs
}

// meteredState follows the watermarks as they are stored.
type meteredState struct {
	*load.StateStore
	m *metrics
}

func (s meteredState) SetWatermark(ctx context.Context, k syncer.WatermarkKey, t time.Time) error {
	err := s.StateStore.SetWatermark(ctx, k, t)
	if err == nil {
		s.m.marks.set(k, t)
	}
	return err
}

func (s meteredState) SetWatermarks(ctx context.Context, marks map[syncer.WatermarkKey]time.Time) error {
	err := s.StateStore.SetWatermarks(ctx, marks)
	if err == nil {
		for k, t := range marks {
			s.m.marks.set(k, t)
		}
	}
	return err
}

// endpointGroup names the impact.com endpoint of a request path
// (/Advertisers/SID/Actions → Actions), from a fixed set.
func endpointGroup(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) >= 3 {
		for _, e := range syncer.AllEntities {
			if strings.EqualFold(strings.TrimSuffix(parts[2], ".json"), extract.Resource(e)) {
				return extract.Resource(e)
			}
		}
	}
	return "other"
}

// timedTransport observes each impact.com request's latency.
type timedTransport struct {
	base http.RoundTripper
	m    *metrics
}

func (t timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	t.m.requestDuration.WithLabelValues(endpointGroup(req.URL.Path)).Observe(time.Since(start).Seconds())
	return resp, err
}

// tokenFailureTransport counts failed answers of the OAuth token endpoint
// (the token manager's refreshes go through it). app.metrics is read at
// each request: it is set once the worker starts.
type tokenFailureTransport struct {
	base http.RoundTripper
	a    *app
}

func (t tokenFailureTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	m := t.a.metrics
	if m == nil {
		return resp, err
	}
	switch {
	case err != nil || resp.StatusCode >= 500:
		m.oauthFailures.WithLabelValues(oauthUnavailable).Inc()
	case resp.StatusCode >= 300:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		reason := oauthRefused
		if bytes.Contains(body, []byte("invalid_grant")) {
			reason = oauthInvalidGrant
		}
		m.oauthFailures.WithLabelValues(reason).Inc()
	}
	return resp, err
}

// retryCounter is a zap core that counts ClickHouse write retries from the
// load package's log, whatever the log level; app.metrics is read at each
// entry.
type retryCounter struct{ a *app }

func (r retryCounter) Enabled(l zapcore.Level) bool               { return l >= zapcore.WarnLevel }
func (r retryCounter) With([]zapcore.Field) zapcore.Core          { return r }
func (r retryCounter) Sync() error                                { return nil }
func (r retryCounter) Write(zapcore.Entry, []zapcore.Field) error { return nil }
func (r retryCounter) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Level == zapcore.WarnLevel && e.Message == load.RetryLogMessage {
		if m := r.a.metrics; m != nil {
			m.chRetries.Inc()
		}
	}
	return ce
}

// withRetryCounter tees log into a retryCounter.
func withRetryCounter(log *zap.Logger, a *app) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core { return zapcore.NewTee(c, retryCounter{a}) }))
}

// inFlightSyncer counts the passes running (impact_syncer_passes_in_flight).
type inFlightSyncer struct {
	svc *syncer.Syncer
	m   *metrics
}

func (s inFlightSyncer) SyncAccount(ctx context.Context, a syncer.Account, req syncer.Request) syncer.AccountResult {
	s.m.inFlight.Inc()
	defer s.m.inFlight.Dec()
	return s.svc.SyncAccount(ctx, a, req)
}
