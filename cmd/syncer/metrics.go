//lint:file-ignore SA1019 prometheus.NewGoCollector and NewProcessCollector are replaced in the metrics rework (issue 16)

package main

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// metrics are the worker's Prometheus metrics, served on /metrics.
type metrics struct {
	reg           *prometheus.Registry
	rows          *prometheus.CounterVec
	requests      *prometheus.CounterVec
	rateWaits     *prometheus.CounterVec
	runs          *prometheus.CounterVec
	runDuration   *prometheus.HistogramVec
	lastSuccess   *prometheus.GaugeVec
	accounts      *prometheus.GaugeVec
	skipped       *prometheus.CounterVec
	unknownFields *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncer_rows_loaded_total", Help: "Rows loaded into ClickHouse.",
		}, []string{"account_id", "entity"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncer_api_requests_total", Help: "impact.com API responses by status code (0: no response).",
		}, []string{"entity", "status"}),
		rateWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncer_rate_limit_waits_total", Help: "Waits for impact.com's rate limit (429 or pacing).",
		}, []string{"account_id"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncer_runs_total", Help: "Entity runs by outcome.",
		}, []string{"entity", "outcome"}),
		runDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "syncer_run_duration_seconds", Help: "Duration of entity runs.",
			Buckets: prometheus.ExponentialBuckets(0.05, 3, 12),
		}, []string{"entity"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "syncer_last_success_timestamp_seconds", Help: "Unix time of the last successful run per account and entity.",
		}, []string{"account_id", "entity"}),
		accounts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "syncer_accounts", Help: "Registered accounts by status.",
		}, []string{"status"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncer_accounts_skipped_total", Help: "Scheduled account passes skipped, by account status.",
		}, []string{"status"}),
		unknownFields: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "syncer_unknown_fields_total", Help: "Field names impact.com sent that no column maps (kept in raw).",
		}, []string{"entity", "field"}),
	}
	m.reg.MustRegister(m.rows, m.requests, m.rateWaits, m.runs, m.runDuration, m.lastSuccess, m.accounts, m.skipped,
		m.unknownFields, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) response(_ syncer.Account, e syncer.Entity, status int) {
	m.requests.WithLabelValues(string(e), strconv.Itoa(status)).Inc()
}

func (m *metrics) unknownField(e syncer.Entity, field string) {
	m.unknownFields.WithLabelValues(string(e), field).Inc()
}

func (m *metrics) result(res syncer.AccountResult) {
	for _, r := range res.Runs {
		m.runs.WithLabelValues(string(r.Entity), string(r.Status)).Inc()
		m.runDuration.WithLabelValues(string(r.Entity)).Observe(r.FinishedAt.Sub(r.StartedAt).Seconds())
		m.rows.WithLabelValues(r.AccountID, string(r.Entity)).Add(float64(r.Rows))
		m.rateWaits.WithLabelValues(r.AccountID).Add(float64(r.RateLimitWaits))
		if r.Status == syncer.RunSucceeded {
			m.lastSuccess.WithLabelValues(r.AccountID, string(r.Entity)).Set(float64(r.FinishedAt.Unix()))
		}
	}
}

func (m *metrics) accountStatuses(accts []syncer.Account) {
	counts := map[syncer.Status]int{syncer.StatusActive: 0, syncer.StatusNeedsReconnect: 0, syncer.StatusDisabled: 0}
	for _, a := range accts {
		s := a.Status
		if s == "" {
			s = syncer.StatusActive
		}
		counts[s]++
	}
	for s, n := range counts {
		m.accounts.WithLabelValues(string(s)).Set(float64(n))
	}
}
