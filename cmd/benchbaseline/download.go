package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/impact-syncer/impact-syncer/internal/syncer"
)

// cmdDownload is the baseline for the backfill's extraction: a plain HTTP
// client that requests the same Actions pages the syncer's backfill reads
// (same campaigns, same date windows, same page size, @nextpageuri followed)
// and writes each body to disk as it arrives. No decoding, no retries.
func cmdDownload(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("download", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8088", "API base URL (the simulator)")
	sid := fs.String("sid", "", "brand Account SID")
	from := fs.String("from", "", "start, a date or RFC 3339 time (default: the API's 3-year reach)")
	to := fs.String("to", "", "end, RFC 3339 (default: the API's clock from the Date header)")
	filters := fs.String("filters", "event", "comma-separated date filters: event, updated, locking")
	pageSize := fs.Int("page-size", 20000, "Actions PageSize")
	out := fs.String("out", "", "directory for the page bodies (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	token := os.Getenv("BENCH_TOKEN")
	if *sid == "" || *out == "" || token == "" {
		return fmt.Errorf("download: -sid, -out and BENCH_TOKEN in the environment are required")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	d := &downloader{ctx: ctx, base: strings.TrimRight(*base, "/"), sid: *sid, token: token, dir: *out,
		http: &http.Client{Timeout: 5 * time.Minute}}
	start := time.Now()

	camps, serverNow, err := d.campaigns()
	if err != nil {
		return err
	}
	end := serverNow
	if *to != "" {
		if end, err = time.Parse(time.RFC3339, *to); err != nil {
			return fmt.Errorf("-to: %w", err)
		}
	}
	reach := serverNow.Add(-syncer.MaxReach)
	begin := reach
	if *from != "" {
		if begin, err = parseWhen(*from); err != nil {
			return fmt.Errorf("-from: %w", err)
		}
		if begin.Before(reach) {
			begin = reach
		}
	}
	windows := 0
	for _, f := range strings.Split(*filters, ",") {
		startKey, endKey, err := filterParams(strings.TrimSpace(f))
		if err != nil {
			return err
		}
		for _, c := range camps {
			for _, w := range syncer.ChunkWindows(begin, end, syncer.MaxWindow) {
				windows++
				v := url.Values{}
				v.Set("CampaignId", c)
				v.Set(startKey, w.Start.UTC().Format("2006-01-02T15:04:05Z"))
				v.Set(endKey, w.End.UTC().Format("2006-01-02T15:04:05Z"))
				v.Set("PageSize", strconv.Itoa(*pageSize))
				next := d.base + "/Advertisers/" + url.PathEscape(d.sid) + "/Actions?" + v.Encode()
				for next != "" {
					head, err := d.get(next)
					if err != nil {
						return err
					}
					next = ""
					if uri := nextPageURI(head); uri != "" {
						next = d.base + uri
					}
				}
			}
		}
	}
	return json.NewEncoder(stdout).Encode(map[string]any{
		"requests": d.requests, "bytes": d.bytes, "seconds": time.Since(start).Seconds(),
		"campaigns": len(camps), "windows": windows,
		"from": begin.UTC().Format(time.RFC3339), "to": end.UTC().Format(time.RFC3339),
	})
}

func filterParams(f string) (string, string, error) {
	switch f {
	case "event":
		return "ActionDateStart", "ActionDateEnd", nil
	case "updated":
		return "StartDate", "EndDate", nil
	case "locking":
		return "LockingDateStart", "LockingDateEnd", nil
	}
	return "", "", fmt.Errorf("unknown date filter %q (want event, updated or locking)", f)
}

// parseWhen parses a date (its start) or an RFC 3339 time.
func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	return time.Parse("2006-01-02", s)
}

type downloader struct {
	ctx       context.Context
	base, sid string
	token     string
	dir       string
	http      *http.Client
	requests  int
	bytes     int64
}

// get requests u, streams the body to the next file and returns its first
// bytes (where the "@" envelope sits) and the response's Date.
func (d *downloader) get(u string) ([]byte, error) {
	head, _, err := d.getDated(u)
	return head, err
}

func (d *downloader) getDated(u string) ([]byte, time.Time, error) {
	req, err := http.NewRequestWithContext(d.ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, time.Time{}, err
	}
	req.SetBasicAuth(d.sid, d.token)
	req.Header.Set("Accept", "application/json")
	d.requests++
	resp, err := d.http.Do(req)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, time.Time{}, fmt.Errorf("GET %s: %s: %s", req.URL.Path, resp.Status, b)
	}
	f, err := os.Create(filepath.Join(d.dir, fmt.Sprintf("page-%06d.json", d.requests)))
	if err != nil {
		return nil, time.Time{}, err
	}
	head := &headBuffer{max: 8 << 10}
	n, err := io.Copy(io.MultiWriter(f, head), resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	d.bytes += n
	date, _ := http.ParseTime(resp.Header.Get("Date"))
	return head.b, date, nil
}

// campaigns lists the brand's campaign ids (one page of up to 1000, as the
// syncer asks) and returns the API's clock.
func (d *downloader) campaigns() ([]string, time.Time, error) {
	u := d.base + "/Advertisers/" + url.PathEscape(d.sid) + "/Campaigns?PageSize=1000"
	_, date, err := d.getDated(u)
	if err != nil {
		return nil, time.Time{}, err
	}
	body, err := os.ReadFile(filepath.Join(d.dir, fmt.Sprintf("page-%06d.json", d.requests)))
	if err != nil {
		return nil, time.Time{}, err
	}
	var page struct {
		Campaigns []struct {
			ID json.RawMessage `json:"Id"`
		}
		Next string `json:"@nextpageuri"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, time.Time{}, fmt.Errorf("campaigns: %w", err)
	}
	if page.Next != "" {
		return nil, time.Time{}, fmt.Errorf("campaigns: more than one page; the baseline reads one")
	}
	ids := make([]string, len(page.Campaigns))
	for i, c := range page.Campaigns {
		ids[i] = strings.Trim(string(c.ID), `"`)
	}
	if date.IsZero() {
		date = time.Now()
	}
	return ids, date.UTC(), nil
}

// nextPageURI finds "@nextpageuri" in the head of a page.
func nextPageURI(head []byte) string {
	key := []byte(`"@nextpageuri":"`)
	i := bytes.Index(head, key)
	if i < 0 {
		return ""
	}
	rest := head[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return strings.ReplaceAll(string(rest[:j]), `\/`, "/")
}

// headBuffer keeps the first max bytes written to it.
type headBuffer struct {
	b   []byte
	max int
}

func (h *headBuffer) Write(p []byte) (int, error) {
	if room := h.max - len(h.b); room > 0 {
		h.b = append(h.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
