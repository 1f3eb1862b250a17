package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

func cmdHealthcheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("healthcheck", `Exits 0 when the worker's /healthz answers 200, 1 otherwise: the container's
HEALTHCHECK (the runtime image has no curl). The worker is found on
SYNCER_HTTP_ADDR (a wildcard host means this machine); needs no other
configuration and no ClickHouse.`, stdout)
	target := fs.String("url", "", "the worker's base `URL` (default from SYNCER_HTTP_ADDR)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	base := *target
	if base == "" {
		base = workerURL(os.Getenv("SYNCER_HTTP_ADDR"))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/healthz", nil)
	if err != nil {
		return usageError("healthcheck: %v", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s/healthz answered %s", base, resp.Status)
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// workerURL is the base URL of a worker listening on addr (SYNCER_HTTP_ADDR,
// default :8080), as seen from the same machine.
func workerURL(addr string) string {
	if addr == "" {
		addr = ":8080"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
