package impactsim

import (
	"encoding/json"
	"net/http"
	"time"
)

// AdminHandler serves the unauthenticated simulator controls (meant for a
// loopback tool, never for the API port of a shared host):
//
//	GET  /_sim/accounts             sid, persona and entity counts as held now
//	GET  /_sim/clock                the simulator clock
//	POST /_sim/clock/advance?d=72h  move the clock forward (Go duration)
//	GET  /_sim/stats?sid=SID        request counters of one account
//	GET  /_sim/stats                request counters summed over every account
//	GET  /_sim/latency              the delay added to every API request
//	POST /_sim/latency?d=50ms       set that delay (Go duration; 0 for none)
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/accounts", func(w http.ResponseWriter, r *http.Request) {
		writeAdminJSON(w, http.StatusOK, s.Accounts())
	})
	mux.HandleFunc("GET /_sim/clock", func(w http.ResponseWriter, r *http.Request) {
		writeAdminJSON(w, http.StatusOK, map[string]time.Time{"now": s.clock.Now()})
	})
	mux.HandleFunc("POST /_sim/clock/advance", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil {
			writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "d must be a Go duration such as 72h"})
			return
		}
		writeAdminJSON(w, http.StatusOK, map[string]time.Time{"now": s.clock.Advance(d)})
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		sid := r.URL.Query().Get("sid")
		if sid == "" {
			writeAdminJSON(w, http.StatusOK, s.TotalStats())
			return
		}
		if s.account(sid) == nil {
			writeAdminJSON(w, http.StatusNotFound, map[string]string{"error": "unknown sid"})
			return
		}
		writeAdminJSON(w, http.StatusOK, s.Stats(sid))
	})
	mux.HandleFunc("GET /_sim/latency", func(w http.ResponseWriter, r *http.Request) {
		writeAdminJSON(w, http.StatusOK, map[string]string{"latency": s.Latency().String()})
	})
	mux.HandleFunc("POST /_sim/latency", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil || d < 0 {
			writeAdminJSON(w, http.StatusBadRequest, map[string]string{"error": "d must be a non-negative Go duration such as 50ms"})
			return
		}
		s.SetLatency(d)
		writeAdminJSON(w, http.StatusOK, map[string]string{"latency": s.Latency().String()})
	})
	return mux
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Mux serves the API and, under /_sim/, the admin endpoints.
func (s *Server) Mux() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/_sim/", s.AdminHandler())
	mux.Handle("/", s.Handler())
	return mux
}
