package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// Config is every setting of the syncer, read from the environment. The names
// are a public contract: config.example.env lists each with its default.
type Config struct {
	ClickHouseAddr     string        `envconfig:"CLICKHOUSE_ADDR" default:"127.0.0.1:9000"`
	ClickHouseDatabase string        `envconfig:"CLICKHOUSE_DATABASE" default:"impact"`
	ClickHouseUser     string        `envconfig:"CLICKHOUSE_USER" default:"default"`
	ClickHousePassword syncer.Secret `envconfig:"CLICKHOUSE_PASSWORD"`

	ImpactAPIURL     string `envconfig:"IMPACT_API_URL" default:"https://api.impact.com"`
	IRVersionBrand   string `envconfig:"IMPACT_IR_VERSION_BRAND" default:"14"`
	IRVersionPartner string `envconfig:"IMPACT_IR_VERSION_PARTNER" default:"16"`

	EncryptionKey     syncer.Secret `envconfig:"SYNCER_ENCRYPTION_KEY"`
	EncryptionOldKeys syncer.Secret `envconfig:"SYNCER_ENCRYPTION_OLD_KEYS"`

	LogLevel string `envconfig:"SYNCER_LOG_LEVEL" default:"info"`

	OAuthAuthorizeURL     string        `envconfig:"IMPACT_OAUTH_AUTHORIZE_URL" default:"https://app.impact.com/oauth2/authorize"`
	OAuthTokenURL         string        `envconfig:"IMPACT_OAUTH_TOKEN_URL" default:"https://app.impact.com/oauth2/token"`
	OAuthClientID         string        `envconfig:"IMPACT_OAUTH_CLIENT_ID"`
	OAuthClientSecret     syncer.Secret `envconfig:"IMPACT_OAUTH_CLIENT_SECRET"`
	OAuthClientSecretFile string        `envconfig:"IMPACT_OAUTH_CLIENT_SECRET_FILE"`
	OAuthRedirectURL      string        `envconfig:"IMPACT_OAUTH_REDIRECT_URL" default:"http://127.0.0.1:8080/oauth/callback"`
	OAuthScopes           string        `envconfig:"IMPACT_OAUTH_SCOPES" default:"offline_access"`
	OAuthRefreshIdle      time.Duration `envconfig:"SYNCER_OAUTH_REFRESH_IDLE" default:"720h"`

	ScheduleActions string        `envconfig:"SYNCER_SCHEDULE_ACTIONS" default:"*/15 * * * *"`
	ScheduleCatalog string        `envconfig:"SYNCER_SCHEDULE_CATALOG" default:"0 * * * *"`
	Concurrency     int           `envconfig:"SYNCER_CONCURRENCY" default:"4"`
	HTTPAddr        string        `envconfig:"SYNCER_HTTP_ADDR" default:":8080"`
	ShutdownTimeout time.Duration `envconfig:"SYNCER_SHUTDOWN_TIMEOUT" default:"30s"`
	StartSpread     time.Duration `envconfig:"SYNCER_START_SPREAD" default:"60s"`

	Overlap          time.Duration `envconfig:"SYNCER_OVERLAP" default:"24h"`
	ClearingLookback time.Duration `envconfig:"SYNCER_CLEARING_LOOKBACK" default:"2160h"`
	ClearingInterval time.Duration `envconfig:"SYNCER_CLEARING_INTERVAL" default:"6h"`
	BatchSize        int           `envconfig:"SYNCER_BATCH_SIZE" default:"2000"`
	InsertRows       int           `envconfig:"SYNCER_INSERT_ROWS" default:"100000"`
	MemoryLimitMiB   int           `envconfig:"SYNCER_MEMORY_LIMIT_MIB" default:"100"`
	PageSizeActions  int           `envconfig:"SYNCER_PAGE_SIZE_ACTIONS" default:"20000"`
	RequestTimeout   time.Duration `envconfig:"SYNCER_REQUEST_TIMEOUT" default:"2m"`
}

// loadConfig reads the environment and validates it, reporting every problem
// at once.
func loadConfig() (Config, error) {
	// envconfig stops at the first value it cannot parse; check the typed
	// variables first so that a bad number or duration is reported together
	// with every other problem.
	errs, bad := typeProblems()
	for name, v := range bad { // read the others with these at their defaults
		os.Unsetenv(name)
		defer os.Setenv(name, v)
	}
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return c, fmt.Errorf("configuration: %w", err)
	}
	if c.OAuthClientSecret == "" && c.OAuthClientSecretFile != "" {
		b, err := os.ReadFile(c.OAuthClientSecretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("IMPACT_OAUTH_CLIENT_SECRET_FILE: %w", err))
		} else {
			c.OAuthClientSecret = syncer.Secret(strings.TrimSpace(string(b)))
		}
	}
	return c, joinProblems(append(errs, c.problems()...))
}

// typeProblems parses every set variable of a number or duration field,
// returning the problems and the variables (with their values) that failed.
func typeProblems() ([]error, map[string]string) {
	var errs []error
	bad := map[string]string{}
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := f.Tag.Get("envconfig")
		v, set := os.LookupEnv(name)
		if !set {
			continue
		}
		switch {
		case f.Type == reflect.TypeOf(time.Duration(0)):
			if _, err := time.ParseDuration(strings.TrimSpace(v)); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want a duration such as 30s, 15m or 24h", name, v))
				bad[name] = v
			}
		case f.Type.Kind() == reflect.Int:
			if _, err := strconv.Atoi(strings.TrimSpace(v)); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want a whole number", name, v))
				bad[name] = v
			}
		}
	}
	return errs, bad
}

// Validate returns every configuration problem joined into one error.
func (c Config) Validate() error { return joinProblems(c.problems()) }

func joinProblems(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = "  - " + e.Error()
	}
	return errors.New("invalid configuration:\n" + strings.Join(msgs, "\n"))
}

// problems lists every configuration problem.
func (c Config) problems() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(c.Addrs()) == 0 {
		bad("CLICKHOUSE_ADDR is empty")
	}
	for _, a := range c.Addrs() {
		if !strings.Contains(a, ":") {
			bad("CLICKHOUSE_ADDR %q: want host:port", a)
		}
	}
	if c.ClickHouseDatabase == "" || strings.ContainsAny(c.ClickHouseDatabase, " `.;'\"") {
		bad("CLICKHOUSE_DATABASE %q: want a plain identifier", c.ClickHouseDatabase)
	}
	if u, err := url.Parse(c.ImpactAPIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("IMPACT_API_URL %q: want http(s)://host", c.ImpactAPIURL)
	}
	if c.EncryptionKey != "" {
		if b, err := base64.StdEncoding.DecodeString(c.EncryptionKey.Reveal()); err != nil || len(b) != 32 {
			bad("SYNCER_ENCRYPTION_KEY: want the base64 of 32 random bytes (openssl rand -base64 32)")
		}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		bad("SYNCER_LOG_LEVEL %q: want debug, info, warn or error", c.LogLevel)
	}
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor | cron.SecondOptional)
	if _, err := parser.Parse(c.ScheduleActions); err != nil {
		bad("SYNCER_SCHEDULE_ACTIONS %q: %v", c.ScheduleActions, err)
	}
	if _, err := parser.Parse(c.ScheduleCatalog); err != nil {
		bad("SYNCER_SCHEDULE_CATALOG %q: %v", c.ScheduleCatalog, err)
	}
	if c.Concurrency < 1 {
		bad("SYNCER_CONCURRENCY %d: want at least 1", c.Concurrency)
	}
	if c.ShutdownTimeout <= 0 {
		bad("SYNCER_SHUTDOWN_TIMEOUT %s: want a positive duration", c.ShutdownTimeout)
	}
	if c.StartSpread < 0 {
		bad("SYNCER_START_SPREAD %s: want zero or a positive duration", c.StartSpread)
	}
	if c.BatchSize < 1 {
		bad("SYNCER_BATCH_SIZE %d: want at least 1", c.BatchSize)
	}
	if c.MemoryLimitMiB < 0 {
		bad("SYNCER_MEMORY_LIMIT_MIB %d: want 0 (no limit) or more", c.MemoryLimitMiB)
	}
	if c.InsertRows < 1 {
		bad("SYNCER_INSERT_ROWS %d: want at least 1", c.InsertRows)
	}
	if c.PageSizeActions < 2000 || c.PageSizeActions > 20000 {
		bad("SYNCER_PAGE_SIZE_ACTIONS %d: impact.com accepts 2000 to 20000", c.PageSizeActions)
	}
	if c.Overlap < 0 || c.ClearingLookback <= 0 || c.ClearingInterval <= 0 {
		bad("SYNCER_OVERLAP, SYNCER_CLEARING_LOOKBACK and SYNCER_CLEARING_INTERVAL must be positive")
	}
	if c.OAuthRefreshIdle <= 0 || c.OAuthRefreshIdle >= 90*24*time.Hour {
		bad("SYNCER_OAUTH_REFRESH_IDLE %s: want a positive duration well under 90 days (2160h)", c.OAuthRefreshIdle)
	}
	return errs
}

// Addrs splits CLICKHOUSE_ADDR.
func (c Config) Addrs() []string {
	var out []string
	for _, a := range strings.Split(c.ClickHouseAddr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Scopes splits IMPACT_OAUTH_SCOPES (spaces or commas).
func (c Config) Scopes() []string {
	return strings.FieldsFunc(c.OAuthScopes, func(r rune) bool { return r == ' ' || r == ',' })
}

// fields renders the effective configuration for the start-up log line;
// secrets show as REDACTED.
func (c Config) fields() []zap.Field {
	return []zap.Field{
		zap.String("clickhouse_addr", c.ClickHouseAddr), zap.String("clickhouse_database", c.ClickHouseDatabase),
		zap.String("clickhouse_user", c.ClickHouseUser), zap.Stringer("clickhouse_password", c.ClickHousePassword),
		zap.String("impact_api_url", c.ImpactAPIURL), zap.Stringer("encryption_key", c.EncryptionKey),
		zap.String("log_level", c.LogLevel), zap.String("oauth_token_url", c.OAuthTokenURL),
		zap.String("oauth_client_id", c.OAuthClientID), zap.Stringer("oauth_client_secret", c.OAuthClientSecret),
		zap.String("schedule_actions", c.ScheduleActions), zap.String("schedule_catalog", c.ScheduleCatalog),
		zap.Int("concurrency", c.Concurrency), zap.String("http_addr", c.HTTPAddr),
		zap.Duration("shutdown_timeout", c.ShutdownTimeout), zap.Duration("overlap", c.Overlap),
	}
}
