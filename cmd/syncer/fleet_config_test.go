package main

import (
	"strings"
	"testing"
	"time"
)

func TestKeeperConfig(t *testing.T) {
	base := Config{ClickHouseDatabase: "prod", KeeperSessionTimeout: 15 * time.Second}
	if r := base.keeperRoot(); r != "/impact-syncer/prod" {
		t.Errorf("default root %q; want it derived from the database", r)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string // "" = valid
	}{
		{"no keeper", func(c *Config) {}, ""},
		{"ensemble", func(c *Config) { c.KeeperAddr = "zk1:2181, zk2:2181,zk3:2181" }, ""},
		{"own root", func(c *Config) { c.KeeperRoot = "/syncers/eu-1" }, ""},
		{"no port", func(c *Config) { c.KeeperAddr = "zk1" }, `SYNCER_KEEPER_ADDR "zk1"`},
		{"relative root", func(c *Config) { c.KeeperRoot = "syncers" }, "SYNCER_KEEPER_ROOT"},
		{"trailing slash", func(c *Config) { c.KeeperRoot = "/syncers/" }, "SYNCER_KEEPER_ROOT"},
		{"short session", func(c *Config) { c.KeeperSessionTimeout = 500 * time.Millisecond }, "SYNCER_KEEPER_SESSION_TIMEOUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			var msgs []string
			for _, err := range c.keeperProblems() {
				msgs = append(msgs, err.Error())
			}
			got := strings.Join(msgs, "; ")
			if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
				t.Errorf("problems %q; want %q", got, tc.want)
			}
		})
	}
	if got := (Config{KeeperAddr: " a:1 ,, b:2 "}).KeeperAddrs(); strings.Join(got, "|") != "a:1|b:2" {
		t.Errorf("addresses %q", got)
	}
}
