package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// start runs the binary's run with args and returns its banner.
func start(t *testing.T, args ...string) banner {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		go io.Copy(io.Discard, pr)
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	var b banner
	if err := json.NewDecoder(pr).Decode(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRunDemoServesTheAPIAndAdmin(t *testing.T) {
	b := start(t, "-demo", "-actions", "2000", "-now", "2026-04-15T12:00:00Z")
	if len(b.Accounts) != 2 || b.Accounts[0].SID != DemoBrandSID || b.Accounts[0].Token != DemoBrandToken || b.Accounts[1].Persona != "partner" {
		t.Fatalf("banner %+v", b)
	}
	if b.Accounts[0].Counts["Actions"] != 2000 || b.Accounts[1].Counts["Actions"] != 1000 {
		t.Errorf("counts %v %v", b.Accounts[0].Counts, b.Accounts[1].Counts)
	}
	req, _ := http.NewRequest("GET", "http://"+b.Addr+"/Advertisers/"+DemoBrandSID+"/CompanyInformation.json", nil)
	req.SetBasicAuth(DemoBrandSID, DemoBrandToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Date") != "Wed, 15 Apr 2026 12:00:00 GMT" {
		t.Errorf("API: %d Date %q", resp.StatusCode, resp.Header.Get("Date"))
	}
	resp, err = http.Post("http://"+b.Addr+"/_sim/clock/advance?d=1h", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	var clock map[string]time.Time
	_ = json.NewDecoder(resp.Body).Decode(&clock)
	resp.Body.Close()
	if !clock["now"].Equal(time.Date(2026, 4, 15, 13, 0, 0, 0, time.UTC)) {
		t.Errorf("advance: %v", clock)
	}
}

func TestRunAccountsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.json")
	file := `[{"sid":"IRfile1","token":"tok","persona":"partner","seed":5,"campaigns":2,"actions":50,"promo_codes":3,"timezone":"America/New_York","history_days":30}]`
	if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	b := start(t, "-accounts", path)
	if len(b.Accounts) != 1 || b.Accounts[0].SID != "IRfile1" || b.Accounts[0].Counts["Actions"] != 50 || b.Accounts[0].Counts["Campaigns"] != 2 {
		t.Fatalf("banner %+v", b)
	}
	if b.Accounts[0].Token != "" {
		t.Error("a token from the accounts file was printed")
	}
}

func TestRunRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-now", "yesterday"}, {"-accounts", "/does/not/exist"}, {"extra"}} {
		if err := run(t.Context(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("run(%v) succeeded", args)
		}
	}
}
