package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The ClickHouse connection variables of issue 13: a password file is read
// (its trailing newline dropped) and never shown; every mistake is listed.
func TestConfigClickHouseConnection(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("s3cr3t-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("defaults", func(t *testing.T) {
		c, err := loadConfig(osEnv())
		if err != nil {
			t.Fatal(err)
		}
		if c.ClickHouseSecure || c.ClickHouseCAFile != "" || c.ClickHouseCluster != "" ||
			c.ClickHouseReplicaPath != "/clickhouse/tables/{shard}/{database}/{table}" {
			t.Errorf("defaults: %+v", c)
		}
	})
	t.Run("password file and TLS", func(t *testing.T) {
		t.Setenv("CLICKHOUSE_PASSWORD_FILE", pw)
		t.Setenv("CLICKHOUSE_SECURE", "true")
		t.Setenv("CLICKHOUSE_CA_FILE", ca)
		t.Setenv("CLICKHOUSE_TLS_SERVER_NAME", "ch.example.com")
		t.Setenv("CLICKHOUSE_CLUSTER", "prod")
		c, err := loadConfig(osEnv())
		if err != nil {
			t.Fatal(err)
		}
		if c.ClickHousePassword.Reveal() != "s3cr3t-from-file" {
			t.Errorf("password from the file: %d chars", len(c.ClickHousePassword.Reveal()))
		}
		if !c.ClickHouseSecure || c.ClickHouseCluster != "prod" || c.ClickHouseTLSServerName != "ch.example.com" {
			t.Errorf("read %+v", c)
		}
		var logged strings.Builder
		for _, f := range c.fields() {
			logged.WriteString(f.Key + "=" + f.String + " ")
			if f.Interface != nil {
				if s, ok := f.Interface.(interface{ String() string }); ok {
					logged.WriteString(s.String())
				}
			}
		}
		if strings.Contains(logged.String(), "s3cr3t") {
			t.Errorf("the start-up fields show the password: %s", logged.String())
		}
	})
	t.Run("every mistake at once", func(t *testing.T) {
		t.Setenv("CLICKHOUSE_PASSWORD", "inline-s3cr3t")
		t.Setenv("CLICKHOUSE_PASSWORD_FILE", pw)
		t.Setenv("CLICKHOUSE_SECURE", "yes please")
		t.Setenv("CLICKHOUSE_CA_FILE", notPEM)
		t.Setenv("CLICKHOUSE_CLUSTER", "my cluster")
		t.Setenv("CLICKHOUSE_REPLICA_PATH", "/clickhouse/tables/{shard}/{database}")
		_, err := loadConfig(osEnv())
		if err == nil {
			t.Fatal("want a configuration error")
		}
		for _, want := range []string{"CLICKHOUSE_PASSWORD and CLICKHOUSE_PASSWORD_FILE", "CLICKHOUSE_SECURE \"yes please\"",
			"need CLICKHOUSE_SECURE=true", "CLICKHOUSE_CA_FILE " + notPEM, "CLICKHOUSE_CLUSTER", "CLICKHOUSE_REPLICA_PATH"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not say %q:\n%v", want, err)
			}
		}
		if strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("the error shows a password: %v", err)
		}
	})
}

// Every CLICKHOUSE_ variable of Config is in config.example.env and in the
// README's configuration table.
func TestConfigClickHouseVariablesDocumented(t *testing.T) {
	example, err := os.ReadFile("../../config.example.env")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeOf(Config{})
	for i := 0; i < typ.NumField(); i++ {
		name := typ.Field(i).Tag.Get("envconfig")
		if !strings.HasPrefix(name, "CLICKHOUSE_") {
			continue
		}
		if !strings.Contains(string(example), "\n"+name+"=") {
			t.Errorf("config.example.env lacks %s", name)
		}
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("the README's configuration table lacks %s", name)
		}
	}
}
