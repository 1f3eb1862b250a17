package main

import (
	"bufio"
	"bytes"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// documentedOutsideConfig are variables the documentation lists that are not
// settings of the Config struct: read by one command only.
var documentedOutsideConfig = map[string]bool{
	"IMPACT_AUTH_TOKEN": true, // accounts add / set-token, never logged or stored as configuration
}

// TestConfigIsDocumented keeps the Config struct, config.example.env and the
// README's configuration table in step: the same variables, the same
// defaults, and a description for each. A variable added to one and not the
// others fails here.
func TestConfigIsDocumented(t *testing.T) {
	structDefaults := map[string]string{}
	ct := reflect.TypeOf(Config{})
	for _, s := range settings() {
		f := ct.Field(s.field)
		if f.Tag.Get("envconfig") != "" || f.Tag.Get("default") != "" {
			t.Errorf("Config.%s has an envconfig/default tag; settings() reads env:\"NAME, default=…\"", f.Name)
		}
		if s.Name == "" {
			t.Errorf("Config.%s has no env tag", f.Name)
			continue
		}
		if s.Desc == "" {
			t.Errorf("%s (Config.%s) has no desc tag", s.Name, f.Name)
		}
		if _, dup := structDefaults[s.Name]; dup {
			t.Errorf("%s is declared twice", s.Name)
		}
		structDefaults[s.Name] = s.Default
	}

	example, commented := exampleEnv(t)
	readme := readmeTable(t)

	for name, def := range structDefaults {
		if v, ok := example[name]; !ok {
			t.Errorf("%s: missing from config.example.env (as %s=%s)", name, name, def)
		} else if v != def {
			t.Errorf("%s: config.example.env says %q, the default is %q", name, v, def)
		}
		cell, ok := readme[name]
		switch {
		case !ok:
			t.Errorf("%s: missing from the README's configuration table", name)
		case def != "" && cell != "`"+def+"`":
			t.Errorf("%s: the README's default is %q, want `%s`", name, cell, def)
		case def == "" && strings.Contains(cell, "`"):
			t.Errorf("%s: the README gives the default %q, but it has none", name, cell)
		}
	}
	for name := range example {
		if _, ok := structDefaults[name]; !ok {
			t.Errorf("config.example.env sets %s, which Config does not read", name)
		}
	}
	for name := range readme {
		if _, ok := structDefaults[name]; !ok && !documentedOutsideConfig[name] {
			t.Errorf("the README documents %s, which Config does not read", name)
		}
	}
	for name := range documentedOutsideConfig {
		if _, ok := readme[name]; !ok {
			t.Errorf("%s: missing from the README's configuration table", name)
		}
		if !commented[name] {
			t.Errorf("%s: config.example.env should list it, commented out", name)
		}
	}
}

// exampleEnv parses config.example.env: NAME=value lines, and the names of
// commented-out ones (# NAME=).
func exampleEnv(t *testing.T) (set map[string]string, commented map[string]bool) {
	t.Helper()
	b, err := os.ReadFile("../../config.example.env")
	if err != nil {
		t.Fatal(err)
	}
	set, commented = map[string]string{}, map[string]bool{}
	line := regexp.MustCompile(`^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$`)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		m := line.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		switch {
		case m == nil:
		case m[1] != "":
			commented[m[2]] = true
		default:
			if _, dup := set[m[2]]; dup {
				t.Errorf("config.example.env sets %s twice", m[2])
			}
			set[m[2]] = m[3]
		}
	}
	return set, commented
}

// readmeTable parses the README's configuration table: variable → default
// cell.
func readmeTable(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	if !ok {
		t.Fatal("README.md has no ## Configuration section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]string{}
	row := regexp.MustCompile("^\\| `([A-Z][A-Z0-9_]*)` \\|.*\\| ([^|]*) \\|$")
	for _, l := range strings.Split(section, "\n") {
		if strings.HasPrefix(l, "| `") {
			m := row.FindStringSubmatch(l)
			if m == nil {
				t.Errorf("README configuration row not one variable a row (| `NAME` | meaning | default |): %s", l)
				continue
			}
			rows[m[1]] = strings.TrimSpace(m[2])
		}
	}
	if len(rows) == 0 {
		t.Fatal("no variables in the README's configuration table")
	}
	return rows
}

func TestConfigDefaultsAndLookup(t *testing.T) {
	c, err := loadConfig(mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClickHouseAddr != "127.0.0.1:9000" || c.Concurrency != 4 || c.Overlap != 24*time.Hour ||
		c.ScheduleActions != "*/15 * * * *" || c.ClearingLookback != 2160*time.Hour {
		t.Errorf("defaults not applied: %+v", c)
	}
	c, err = loadConfig(mapEnv(map[string]string{
		"CLICKHOUSE_ADDR": "ch1:9000,ch2:9000", "SYNCER_CONCURRENCY": "9", "SYNCER_OVERLAP": "90m",
		"SYNCER_LOG_LEVEL": "", // empty is unset: the default applies
	}))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Addrs(), []string{"ch1:9000", "ch2:9000"}) || c.Concurrency != 9 || c.Overlap != 90*time.Minute || c.LogLevel != "info" {
		t.Errorf("lookup not applied: %+v", c)
	}
}

// Every problem is reported at once, a mistyped number or duration among
// them, and reading never changes the process environment.
func TestConfigListsEveryProblemWithoutTouchingTheEnvironment(t *testing.T) {
	t.Setenv("SYNCER_BATCH_SIZE", "many") // in the process environment, not in the lookup
	before := os.Environ()
	_, err := loadConfig(mapEnv(map[string]string{
		"SYNCER_ENCRYPTION_KEY": "short", "SYNCER_LOG_LEVEL": "loud", "SYNCER_CONCURRENCY": "0",
		"SYNCER_OVERLAP": "soon", "SYNCER_PAGE_SIZE_ACTIONS": "lots", "SYNCER_SCHEDULE_ACTIONS": "every minute",
	}))
	if err == nil {
		t.Fatal("want a configuration error")
	}
	for _, want := range []string{"SYNCER_ENCRYPTION_KEY", "SYNCER_LOG_LEVEL", "SYNCER_CONCURRENCY", "SYNCER_OVERLAP",
		"SYNCER_PAGE_SIZE_ACTIONS", "SYNCER_SCHEDULE_ACTIONS"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "SYNCER_BATCH_SIZE") {
		t.Errorf("the process environment was read instead of the lookup:\n%v", err)
	}
	if strings.Contains(err.Error(), "short") {
		t.Errorf("the error echoes the key value: %v", err)
	}
	if after := os.Environ(); !slices.Equal(before, after) {
		t.Errorf("loadConfig changed the process environment")
	}
}

func TestConfigCommandPrintsEffectiveValuesSecretsRedacted(t *testing.T) {
	t.Setenv("CLICKHOUSE_PASSWORD", "hunter2-password")
	t.Setenv("IMPACT_OAUTH_CLIENT_SECRET", "client-secret-value")
	t.Setenv("SYNCER_ENCRYPTION_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=")
	t.Setenv("SYNCER_CONCURRENCY", "7")
	var out, errOut bytes.Buffer
	if err := run(t.Context(), []string{"config"}, strings.NewReader(""), &out, &errOut); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, secret := range []string{"hunter2-password", "client-secret-value", "c2VjcmV0"} {
		if strings.Contains(s, secret) {
			t.Errorf("syncer config prints a secret (%s):\n%s", secret, s)
		}
	}
	for _, want := range []string{"CLICKHOUSE_PASSWORD=REDACTED\n", "IMPACT_OAUTH_CLIENT_SECRET=REDACTED\n",
		"SYNCER_ENCRYPTION_KEY=REDACTED\n", "SYNCER_CONCURRENCY=7\n", "SYNCER_SCHEDULE_CATALOG=0 * * * *\n",
		"SYNCER_OAUTH_REFRESH_IDLE=720h\n", "# accounts synced at once\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("syncer config output lacks %q:\n%s", want, s)
		}
	}
	n := 0
	for _, line := range strings.Split(s, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") && strings.Contains(line, "=") {
			n++
		}
	}
	if n != len(settings()) {
		t.Errorf("syncer config printed %d variables, want %d", n, len(settings()))
	}
}
