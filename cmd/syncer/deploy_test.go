package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestHealthcheck(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("ok\n"))
	}))
	defer up.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	down := "http://" + freeAddr(t) // nothing listens there

	for _, tc := range []struct {
		name string
		args []string
		env  string
		ok   bool
	}{
		{"answering", []string{"--url", up.URL}, "", true},
		{"from SYNCER_HTTP_ADDR", nil, strings.TrimPrefix(up.URL, "http://"), true},
		{"wildcard host means this machine", nil, ":" + up.URL[strings.LastIndex(up.URL, ":")+1:], true},
		{"5xx", []string{"--url", failing.URL}, "", false},
		{"nothing listening", []string{"--url", down, "--timeout", "2s"}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SYNCER_HTTP_ADDR", tc.env)
			var out, errOut bytes.Buffer
			err := run(t.Context(), append([]string{"healthcheck"}, tc.args...), strings.NewReader(""), &out, &errOut)
			if (err == nil) != tc.ok {
				t.Errorf("healthcheck %v: err = %v, want ok=%v", tc.args, err, tc.ok)
			}
		})
	}
}

func TestWorkerURL(t *testing.T) {
	for addr, want := range map[string]string{
		"":               "http://127.0.0.1:8080",
		":8080":          "http://127.0.0.1:8080",
		"0.0.0.0:9090":   "http://127.0.0.1:9090",
		"[::]:9090":      "http://127.0.0.1:9090",
		"127.0.0.1:8081": "http://127.0.0.1:8081",
		"10.1.2.3:80":    "http://10.1.2.3:80",
	} {
		if got := workerURL(addr); got != want {
			t.Errorf("workerURL(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestSecretFiles: every secret can come from a file named by NAME_FILE; both
// at once, an unreadable or an empty file are configuration problems.
func TestSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := newKeyB64()
	for _, v := range []string{"SYNCER_ENCRYPTION_KEY", "SYNCER_ENCRYPTION_OLD_KEYS", "CLICKHOUSE_PASSWORD",
		"IMPACT_OAUTH_CLIENT_SECRET", "SYNCER_NOTIFY_WEBHOOK_URL"} {
		t.Setenv(v, "")
		t.Setenv(v+"_FILE", "")
	}
	t.Setenv("SYNCER_ENCRYPTION_KEY_FILE", write("key", key+"\n"))
	t.Setenv("SYNCER_ENCRYPTION_OLD_KEYS_FILE", write("old", newKeyB64()+"\n"))
	t.Setenv("CLICKHOUSE_PASSWORD_FILE", write("chpw", "pa55word\n"))
	t.Setenv("IMPACT_OAUTH_CLIENT_SECRET_FILE", write("client", "client-secret"))
	t.Setenv("SYNCER_NOTIFY_WEBHOOK_URL_FILE", write("hook", "https://hooks.example/T000/B000/XXXX\n"))
	c, err := loadConfig(osEnv())
	if err != nil {
		t.Fatal(err)
	}
	if c.EncryptionKey.Reveal() != key || c.ClickHousePassword.Reveal() != "pa55word" ||
		c.OAuthClientSecret.Reveal() != "client-secret" || c.NotifyWebhookURL.Reveal() != "https://hooks.example/T000/B000/XXXX" ||
		c.EncryptionOldKeys == "" {
		t.Errorf("secrets not read from their files: %+v", c)
	}

	t.Setenv("CLICKHOUSE_PASSWORD", "also-set")
	t.Setenv("SYNCER_ENCRYPTION_KEY_FILE", filepath.Join(dir, "missing"))
	t.Setenv("SYNCER_NOTIFY_WEBHOOK_URL_FILE", write("empty", "\n"))
	_, err = loadConfig(osEnv())
	for _, want := range []string{"CLICKHOUSE_PASSWORD and CLICKHOUSE_PASSWORD_FILE are both set", "SYNCER_ENCRYPTION_KEY_FILE:",
		"SYNCER_NOTIFY_WEBHOOK_URL_FILE:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "also-set") {
		t.Errorf("a secret is echoed in the error: %v", err)
	}

	t.Setenv("IMPACT_AUTH_TOKEN", "")
	t.Setenv("IMPACT_AUTH_TOKEN_FILE", write("token", "tok-from-file\n"))
	if tok, err := readToken(false, strings.NewReader("")); err != nil || tok.Reveal() != "tok-from-file" {
		t.Errorf("IMPACT_AUTH_TOKEN_FILE: %q, %v", tok.Reveal(), err)
	}
}

// dockerExcluded reports whether .dockerignore's patterns keep path (relative,
// slash-separated) out of the build context, as Docker matches them: from the
// context's root, a pattern matching a directory covers what is inside, the
// last matching pattern decides and "!" re-includes.
func dockerExcluded(patterns []string, path string) bool {
	excluded := false
	for _, p := range patterns {
		neg := strings.HasPrefix(p, "!")
		p = strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(p, "!"), "/"), "/")
		parts := strings.Split(path, "/")
		for i := 1; i <= len(parts); i++ {
			prefix := strings.Join(parts[:i], "/")
			if ok, _ := filepath.Match(p, prefix); ok {
				excluded = !neg
				break
			}
		}
	}
	return excluded
}

func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	for _, p := range []string{".env", ".env.production", ".clickhouse/data/store/x.bin", "bin/syncer", ".git/HEAD",
		"secrets/encryption_key", ".demo/sim.log", "bench/results/latest.json"} {
		if !dockerExcluded(patterns, p) {
			t.Errorf("%s would be sent to the Docker builder", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd/syncer/main.go", "schema/0001_accounts.sql", "internal/load/db.go", "config.example.env"} {
		if dockerExcluded(patterns, p) {
			t.Errorf("%s is excluded but the build needs it", p)
		}
	}
}

// TestComposeAndDockerfile: the compose file publishes only on 127.0.0.1,
// reads secrets from files, and both use the healthcheck command.
func TestComposeAndDockerfile(t *testing.T) {
	compose, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	published := regexp.MustCompile(`(?m)^\s+- "([^"]+)"\s*$`).FindAllStringSubmatch(string(compose), -1)
	inPorts := false
	for _, l := range strings.Split(string(compose), "\n") {
		trimmed := strings.TrimSpace(l)
		switch {
		case trimmed == "ports:":
			inPorts = true
		case inPorts && strings.HasPrefix(trimmed, "- "):
			if !strings.HasPrefix(strings.Trim(strings.TrimPrefix(trimmed, "- "), `"'`), "127.0.0.1:") {
				t.Errorf("docker-compose.yml publishes %s beyond 127.0.0.1", trimmed)
			}
		default:
			inPorts = false
		}
	}
	if len(published) == 0 {
		t.Errorf("no published port found")
	}
	for _, want := range []string{"SYNCER_ENCRYPTION_KEY_FILE", `"healthcheck"`, "connect --worker"} {
		if !strings.Contains(string(compose), want) {
			t.Errorf("docker-compose.yml lacks %s", want)
		}
	}
	df, err := os.ReadFile(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^HEALTHCHECK .*"healthcheck"\]`).Match(df) {
		t.Errorf("the Dockerfile has no HEALTHCHECK running syncer healthcheck")
	}
}
