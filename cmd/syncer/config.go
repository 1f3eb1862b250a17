package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
	"github.com/impact-syncer/impact-syncer/internal/worker"
)

// Config is every setting of the syncer, read from the environment. The names
// are a public contract: config.example.env and the README's table list each
// with its default (TestConfigIsDocumented checks all three agree). Each
// field has an env tag (name and default, for envconfig) and a desc tag (what
// `syncer config` and the start-up log show).
type Config struct {
	ClickHouseAddr          string        `env:"CLICKHOUSE_ADDR, default=127.0.0.1:9000" desc:"native-protocol host:port (comma-separated for several)"`
	ClickHouseDatabase      string        `env:"CLICKHOUSE_DATABASE, default=impact" desc:"database holding every table"`
	ClickHouseUser          string        `env:"CLICKHOUSE_USER, default=default" desc:"ClickHouse user"`
	ClickHousePassword      syncer.Secret `env:"CLICKHOUSE_PASSWORD" desc:"ClickHouse password"`
	ClickHousePasswordFile  string        `env:"CLICKHOUSE_PASSWORD_FILE" desc:"file holding the password (Docker/Kubernetes secrets); not with CLICKHOUSE_PASSWORD"`
	ClickHouseSecure        bool          `env:"CLICKHOUSE_SECURE, default=false" desc:"TLS on the native protocol (ClickHouse Cloud; port 9440)"`
	ClickHouseCAFile        string        `env:"CLICKHOUSE_CA_FILE" desc:"PEM bundle to verify the server (system roots when empty)"`
	ClickHouseTLSServerName string        `env:"CLICKHOUSE_TLS_SERVER_NAME" desc:"name to verify when it differs from the address"`
	ClickHouseCluster       string        `env:"CLICKHOUSE_CLUSTER" desc:"cluster name from the server's remote_servers; empty for a single node"`
	ClickHouseReplicaPath   string        `env:"CLICKHOUSE_REPLICA_PATH, default=/clickhouse/tables/{shard}/{database}/{table}" desc:"ZooKeeper path of each replicated table (with CLICKHOUSE_CLUSTER)"`

	ImpactAPIURL     string `env:"IMPACT_API_URL, default=https://api.impact.com" desc:"base URL of the impact.com REST API"`
	IRVersionBrand   string `env:"IMPACT_IR_VERSION_BRAND, default=14" desc:"API version pinned per brand request (IR-Version)"`
	IRVersionPartner string `env:"IMPACT_IR_VERSION_PARTNER, default=16" desc:"API version pinned per partner request (IR-Version)"`

	EncryptionKey         syncer.Secret `env:"SYNCER_ENCRYPTION_KEY" desc:"base64 of 32 random bytes; encrypts every stored secret"`
	EncryptionKeyFile     string        `env:"SYNCER_ENCRYPTION_KEY_FILE" desc:"a file holding SYNCER_ENCRYPTION_KEY (Docker/Kubernetes secrets); not with it"`
	EncryptionOldKeys     syncer.Secret `env:"SYNCER_ENCRYPTION_OLD_KEYS" desc:"older keys still accepted for reading (comma-separated), for keys rotate"`
	EncryptionOldKeysFile string        `env:"SYNCER_ENCRYPTION_OLD_KEYS_FILE" desc:"a file holding SYNCER_ENCRYPTION_OLD_KEYS; not with it"`

	LogLevel string `env:"SYNCER_LOG_LEVEL, default=info" desc:"debug, info, warn or error"`

	OAuthAuthorizeURL     string        `env:"IMPACT_OAUTH_AUTHORIZE_URL, default=https://app.impact.com/oauth2/authorize" desc:"OAuth authorization endpoint"`
	OAuthTokenURL         string        `env:"IMPACT_OAUTH_TOKEN_URL, default=https://app.impact.com/oauth2/token" desc:"OAuth token endpoint"`
	OAuthClientID         string        `env:"IMPACT_OAUTH_CLIENT_ID" desc:"OAuth client id (OAuth is off when empty)"`
	OAuthClientSecret     syncer.Secret `env:"IMPACT_OAUTH_CLIENT_SECRET" desc:"OAuth client secret"`
	OAuthClientSecretFile string        `env:"IMPACT_OAUTH_CLIENT_SECRET_FILE" desc:"a file holding the OAuth client secret (read when IMPACT_OAUTH_CLIENT_SECRET is empty)"`
	OAuthRedirectURL      string        `env:"IMPACT_OAUTH_REDIRECT_URL, default=http://127.0.0.1:8080/oauth/callback" desc:"redirect URI registered with impact.com; connect and the worker serve it"`
	OAuthScopes           string        `env:"IMPACT_OAUTH_SCOPES, default=offline_access" desc:"space-separated OAuth scopes; must include offline_access"`
	OAuthRefreshIdle      time.Duration `env:"SYNCER_OAUTH_REFRESH_IDLE, default=720h" desc:"refresh an OAuth connection unused this long (impact.com expires them after 90 days)"`

	// NotifyWebhookURL receives a JSON POST when an account needs an
	// operator (a secret: Slack's webhook URLs carry their token).
	NotifyWebhookURL     syncer.Secret `env:"SYNCER_NOTIFY_WEBHOOK_URL" desc:"optional: a JSON POST (Slack-compatible text) when an account needs reconnecting, loses a permission or recovers"`
	NotifyWebhookURLFile string        `env:"SYNCER_NOTIFY_WEBHOOK_URL_FILE" desc:"a file holding SYNCER_NOTIFY_WEBHOOK_URL; not with it"`

	ScheduleActions string        `env:"SYNCER_SCHEDULE_ACTIONS, default=*/15 * * * *" desc:"cron schedule (UTC) for actions and action updates"`
	ScheduleCatalog string        `env:"SYNCER_SCHEDULE_CATALOG, default=0 * * * *" desc:"cron schedule (UTC) for company information, campaigns, media partners, promo codes"`
	Concurrency     int           `env:"SYNCER_CONCURRENCY, default=4" desc:"accounts synced at once"`
	HTTPAddr        string        `env:"SYNCER_HTTP_ADDR, default=:8080" desc:"health, readiness, metrics, status page, OAuth callback"`
	ShutdownTimeout time.Duration `env:"SYNCER_SHUTDOWN_TIMEOUT, default=30s" desc:"on SIGTERM, time for running syncs to commit"`
	StartSpread     time.Duration `env:"SYNCER_START_SPREAD, default=60s" desc:"scheduled passes start at a fixed per-account offset within this"`

	// A fleet of workers: ZooKeeper or ClickHouse Keeper (empty: one worker).
	KeeperAddr           string        `env:"SYNCER_KEEPER_ADDR" desc:"ZooKeeper / ClickHouse Keeper host:port list for a fleet of workers; empty for one worker"`
	KeeperRoot           string        `env:"SYNCER_KEEPER_ROOT" desc:"the fleet's path in the keeper (default /impact-syncer/<database>)"`
	KeeperSessionTimeout time.Duration `env:"SYNCER_KEEPER_SESSION_TIMEOUT, default=15s" desc:"a silent worker's locks and membership last this long"`

	Overlap          time.Duration `env:"SYNCER_OVERLAP, default=24h" desc:"how far incremental scans reach back before their watermark"`
	ClearingLookback time.Duration `env:"SYNCER_CLEARING_LOOKBACK, default=2160h" desc:"how far back the ClearedDate re-scan of locked actions reaches"`
	ClearingInterval time.Duration `env:"SYNCER_CLEARING_INTERVAL, default=6h" desc:"how often the ClearedDate re-scan runs"`
	BatchSize        int           `env:"SYNCER_BATCH_SIZE, default=2000" desc:"most decoded rows a run holds before they are sent to ClickHouse (bounds memory)"`
	InsertRows       int           `env:"SYNCER_INSERT_ROWS, default=100000" desc:"most rows one streamed INSERT carries before it is committed (ClickHouse holds them meanwhile)"`
	MergeParts       int           `env:"SYNCER_MERGE_PARTS, default=60" desc:"a run that wrote a month in several inserts merges the months it wrote when the table holds more active parts than this (a FINAL read on 18.16 needs ~1 MiB per column of every part); 0: always"`
	MemoryLimitMiB   int           `env:"SYNCER_MEMORY_LIMIT_MIB, default=100" desc:"soft memory limit of the Go runtime in MiB (0: none; GOMEMLIMIT, when set, wins)"`
	PageSizeActions  int           `env:"SYNCER_PAGE_SIZE_ACTIONS, default=20000" desc:"Actions/ActionUpdates page size (2000-20000)"`
	RequestTimeout   time.Duration `env:"SYNCER_REQUEST_TIMEOUT, default=2m" desc:"one HTTP request, body included"`
}

// envLookup is where the configuration comes from: the process environment
// as kelseyhightower/envconfig reads it (osEnv) in the program, a map
// (mapEnv) in tests. The process environment is never changed.
type envLookup func(name string) (string, bool)

// osEnv reads every variable Config declares with envconfig, each into a
// string, so that no mistyped value can stop the read (envconfig stops at
// the first value it cannot parse): loadConfig parses them and lists every
// problem at once.
func osEnv() envLookup {
	set := settings()
	fields := make([]reflect.StructField, len(set))
	for i, s := range set {
		fields[i] = reflect.StructField{Name: fmt.Sprintf("V%d", i), Type: reflect.TypeOf(""),
			Tag: reflect.StructTag(fmt.Sprintf("envconfig:%q", s.Name))}
	}
	raw := reflect.New(reflect.StructOf(fields))
	vals := make(map[string]string, len(set))
	if err := envconfig.Process("", raw.Interface()); err != nil {
		// Reading into strings fails only on a malformed tag, which
		// TestConfigIsDocumented would have caught.
		panic("configuration: " + err.Error())
	}
	for i, s := range set {
		vals[s.Name] = raw.Elem().Field(i).String()
	}
	return mapEnv(vals)
}

// mapEnv looks the variables up in m.
func mapEnv(m map[string]string) envLookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// loadConfig reads the configuration through lookup and validates it,
// reporting every problem at once. A variable set to the empty string counts
// as unset: its default applies (config.example.env lists empty values). A
// mistyped number, duration or boolean is reported and read as its default,
// so that the other problems are found too.
func loadConfig(lookup envLookup) (Config, error) {
	errs, bad := typeProblems(lookup)
	var c Config
	v := reflect.ValueOf(&c).Elem()
	for _, s := range settings() {
		val, ok := lookup(s.Name)
		if !ok || val == "" || bad[s.Name] {
			val = s.Default
		}
		if val == "" {
			continue
		}
		f := v.Field(s.field)
		switch {
		case f.Type() == reflect.TypeOf(time.Duration(0)):
			d, _ := time.ParseDuration(strings.TrimSpace(val)) // checked by typeProblems
			f.SetInt(int64(d))
		case f.Kind() == reflect.Int:
			n, _ := strconv.Atoi(strings.TrimSpace(val))
			f.SetInt(int64(n))
		case f.Kind() == reflect.Bool:
			b, _ := strconv.ParseBool(strings.TrimSpace(val))
			f.SetBool(b)
		case f.Kind() == reflect.String:
			f.SetString(val)
		default:
			return c, fmt.Errorf("configuration: %s: unsupported field type %s", s.Name, f.Type())
		}
	}
	if c.ClickHousePasswordFile != "" {
		if c.ClickHousePassword != "" {
			errs = append(errs, errors.New("CLICKHOUSE_PASSWORD and CLICKHOUSE_PASSWORD_FILE are both set: keep one"))
		} else if b, err := os.ReadFile(c.ClickHousePasswordFile); err != nil {
			errs = append(errs, fmt.Errorf("CLICKHOUSE_PASSWORD_FILE: %w", err))
		} else {
			// A secret file usually ends with a newline; the password does not.
			c.ClickHousePassword = syncer.Secret(strings.TrimRight(string(b), "\r\n"))
		}
	}
	if c.OAuthClientSecret == "" && c.OAuthClientSecretFile != "" {
		b, err := os.ReadFile(c.OAuthClientSecretFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("IMPACT_OAUTH_CLIENT_SECRET_FILE: %w", err))
		} else {
			c.OAuthClientSecret = syncer.Secret(strings.TrimSpace(string(b)))
		}
	}
	for _, f := range []struct {
		name  string
		value *syncer.Secret
		path  string
	}{
		{"SYNCER_ENCRYPTION_KEY", &c.EncryptionKey, c.EncryptionKeyFile},
		{"SYNCER_ENCRYPTION_OLD_KEYS", &c.EncryptionOldKeys, c.EncryptionOldKeysFile},
		{"SYNCER_NOTIFY_WEBHOOK_URL", &c.NotifyWebhookURL, c.NotifyWebhookURLFile},
	} {
		if err := secretFile(f.name, f.value, f.path); err != nil {
			errs = append(errs, err)
		}
	}
	return c, joinProblems(append(errs, c.problems()...))
}

// secretFile reads the secret name from the file at path (NAME_FILE), when
// path is set: not both, not an empty file. Surrounding white space (a
// trailing newline) is dropped.
func secretFile(name string, value *syncer.Secret, path string) error {
	if path == "" {
		return nil
	}
	if *value != "" {
		return fmt.Errorf("%s and %s_FILE are both set: keep one", name, name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%s_FILE: %w", name, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return fmt.Errorf("%s_FILE: %s is empty", name, path)
	}
	*value = syncer.Secret(s)
	return nil
}

// secretFromFile reads the secret NAME from the file the environment
// variable NAME_FILE names (IMPACT_AUTH_TOKEN_FILE, outside Config).
func secretFromFile(name string) (syncer.Secret, error) {
	var s syncer.Secret
	if v := os.Getenv(name); v != "" {
		s = syncer.Secret(v)
	}
	path := os.Getenv(name + "_FILE")
	if err := secretFile(name, &s, path); err != nil || path == "" {
		return "", err
	}
	return s, nil
}

// setting is one variable of Config as the tags declare it.
type setting struct {
	Name, Default, Desc string
	field               int // index in Config
}

// settings lists Config's variables in declaration order.
func settings() []setting {
	t := reflect.TypeOf(Config{})
	out := make([]setting, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("env"), ",")
		def := ""
		if d, ok := strings.CutPrefix(strings.TrimSpace(opts), "default="); ok {
			def = d
		}
		out = append(out, setting{Name: strings.TrimSpace(name), Default: def, Desc: f.Tag.Get("desc"), field: i})
	}
	return out
}

// typeProblems parses every set variable of a number or duration field,
// returning the problems and the names of the variables that failed.
func typeProblems(lookup envLookup) ([]error, map[string]bool) {
	var errs []error
	bad := map[string]bool{}
	t := reflect.TypeOf(Config{})
	for _, s := range settings() {
		v, set := lookup(s.Name)
		if !set || v == "" {
			continue
		}
		f := t.Field(s.field)
		switch {
		case f.Type == reflect.TypeOf(time.Duration(0)):
			if _, err := time.ParseDuration(strings.TrimSpace(v)); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want a duration such as 30s, 15m or 24h", s.Name, v))
				bad[s.Name] = true
			}
		case f.Type.Kind() == reflect.Int:
			if _, err := strconv.Atoi(strings.TrimSpace(v)); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want a whole number", s.Name, v))
				bad[s.Name] = true
			}
		case f.Type.Kind() == reflect.Bool:
			if _, err := strconv.ParseBool(strings.TrimSpace(v)); err != nil {
				errs = append(errs, fmt.Errorf("%s %q: want true or false", s.Name, v))
				bad[s.Name] = true
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
	if c.ClickHouseCAFile != "" || c.ClickHouseTLSServerName != "" {
		if !c.ClickHouseSecure {
			bad("CLICKHOUSE_CA_FILE and CLICKHOUSE_TLS_SERVER_NAME need CLICKHOUSE_SECURE=true")
		}
	}
	if c.ClickHouseCAFile != "" {
		if b, err := os.ReadFile(c.ClickHouseCAFile); err != nil {
			bad("CLICKHOUSE_CA_FILE: %v", err)
		} else if !strings.Contains(string(b), "-----BEGIN CERTIFICATE-----") {
			bad("CLICKHOUSE_CA_FILE %s: want a PEM bundle of CA certificates", c.ClickHouseCAFile)
		}
	}
	if c.ClickHouseCluster != "" && strings.ContainsAny(c.ClickHouseCluster, " `'\"") {
		bad("CLICKHOUSE_CLUSTER %q: want a cluster name from the server's remote_servers", c.ClickHouseCluster)
	}
	if !strings.Contains(c.ClickHouseReplicaPath, "{table}") || !strings.HasPrefix(c.ClickHouseReplicaPath, "/") {
		bad("CLICKHOUSE_REPLICA_PATH %q: want a ZooKeeper path starting with / that holds {table} (and usually {shard} and {database})", c.ClickHouseReplicaPath)
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
	if _, err := worker.ScheduleParser.Parse(c.ScheduleActions); err != nil {
		bad("SYNCER_SCHEDULE_ACTIONS %q: %v", c.ScheduleActions, err)
	}
	if _, err := worker.ScheduleParser.Parse(c.ScheduleCatalog); err != nil {
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
	errs = append(errs, c.keeperProblems()...)
	if c.BatchSize < 1 {
		bad("SYNCER_BATCH_SIZE %d: want at least 1", c.BatchSize)
	}
	if c.MemoryLimitMiB < 0 {
		bad("SYNCER_MEMORY_LIMIT_MIB %d: want 0 (no limit) or more", c.MemoryLimitMiB)
	}
	if c.MergeParts < 0 {
		bad("SYNCER_MERGE_PARTS %d: want 0 or more", c.MergeParts)
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
	if h := c.NotifyWebhookURL.Reveal(); h != "" {
		if u, err := url.Parse(h); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("SYNCER_NOTIFY_WEBHOOK_URL: want an http(s) URL (the value is not shown: it is a secret)")
		}
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

// effective lists every variable with its value, secrets REDACTED (empty
// when unset), in declaration order.
func (c Config) effective() []struct{ Name, Value string } {
	v := reflect.ValueOf(c)
	var out []struct{ Name, Value string }
	for _, s := range settings() {
		f := v.Field(s.field)
		val := fmt.Sprint(f.Interface()) // a syncer.Secret prints REDACTED
		if f.Type() == reflect.TypeOf(time.Duration(0)) {
			val = formatDuration(time.Duration(f.Int()))
		}
		out = append(out, struct{ Name, Value string }{s.Name, val})
	}
	return out
}

// formatDuration writes a duration as config.example.env does: 720h, 30s,
// 2m, not 720h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	for _, zero := range []string{"0s", "0m"} {
		if strings.HasSuffix(s, "m"+zero) || strings.HasSuffix(s, "h"+zero) {
			s = strings.TrimSuffix(s, zero)
		}
	}
	return s
}

// fields renders the effective configuration for the start-up log line;
// secrets show as REDACTED.
func (c Config) fields() []zap.Field {
	var fs []zap.Field
	for _, e := range c.effective() {
		fs = append(fs, zap.String(strings.ToLower(e.Name), e.Value))
	}
	return fs
}

// cmdConfig prints the effective configuration, one variable a line in the
// form config.example.env uses, each under its description; secrets show as
// REDACTED. An invalid configuration is printed too, then reported.
func cmdConfig(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("config", "Prints the effective configuration (defaults applied; secrets REDACTED), then any problem with it.", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(osEnv())
	set := settings()
	for i, e := range c.effective() {
		fmt.Fprintf(stdout, "# %s\n%s=%s\n", set[i].Desc, e.Name, e.Value)
	}
	return err
}
