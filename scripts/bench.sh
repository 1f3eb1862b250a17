#!/usr/bin/env bash
# bench.sh — `make bench`: throughput, memory, API-call efficiency and the
# many-accounts cycle of the syncer, against the simulator (bin/impactsim) and
# the local ClickHouse (scripts/clickhouse.sh), each next to a baseline
# measured in the same run, because this machine is shared and noisy. Prints
# one table and writes bench/results/latest.json. `make bench` builds and
# starts ClickHouse first; the Go micro-benchmarks run at the end.
#
#   1. Throughput: `syncer backfill --from <3 years ago>` of one brand account
#      holding BENCH_ACTIONS actions into an empty database, for two shapes:
#      BENCH_CAMPAIGNS campaigns over 3 years, and 1 campaign whose 44-day
#      windows hold ~60,000 actions (three 20,000-action pages); against the
#      same pages downloaded to disk by a plain HTTP client (bin/benchbaseline
#      download) plus the same rows inserted by `clickhouse-client ... FORMAT
#      JSONEachRow` in 100,000-row blocks. Target: syncer / (download +
#      insert) <= 1.0 for both. Each side runs BENCH_REPEAT times,
#      interleaved; the best time of each side is compared. Right after each
#      backfill every table (with FINAL) and view must answer a read of all
#      its columns.
#   2. Memory: peak RSS (GNU time) of those backfills and of the same shapes
#      with BENCH_PLATEAU_ACTIONS actions. Targets: < 128 MiB, and the larger
#      within 5 % of BENCH_ACTIONS.
#   3. API efficiency: requests of the backfill (EventDate only, since --from is
#      given; and, with BENCH_FULL_REACH=1, of the backfill without --from,
#      which reads through all three date filters) against the fewest pages
#      the date rules allow (45-day windows per campaign, 20,000 actions a
#      page); requests of an incremental run when nothing changed against its
#      minimum (one per catalog entity, three per campaign), on an account of
#      BENCH_SMALL_ACTIONS actions.
#   4. Many accounts: BENCH_ACCOUNTS small accounts behind BENCH_LATENCY of
#      simulated latency; one steady-state `syncer sync` cycle (watermarks
#      seeded as a sync BENCH_CYCLE_AGE ago would leave them) against
#      total requests × latency / SYNCER_CONCURRENCY. Target: <= 1.3.
#
# Environment (defaults in brackets): BENCH_ACTIONS [1000000]
# BENCH_SMALL_ACTIONS [100000] BENCH_CAMPAIGNS [8] BENCH_REPEAT [2]
# BENCH_FULL_REACH [1] BENCH_ACCOUNTS [500] BENCH_LATENCY [50ms]
# BENCH_CYCLE_AGE [15m] BENCH_MICRO [1] BENCH_PLATEAU_ACTIONS [2000000; 0
# skips those two backfills] BENCH_PORT_BASE [0: simulators on any free
# port] CH_PORT [19000] BENCH_ONLY [all; many: section 4 alone, printed and
# written to bench/results/many.json] BENCH_SYNCER [bin/syncer: the syncer
# binary section 4 times, e.g. one built from another commit for an A/B]
# BENCH_MANY_DB [bench_many: section 4's database]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BENCH_ACTIONS=${BENCH_ACTIONS:-1000000}
BENCH_SMALL_ACTIONS=${BENCH_SMALL_ACTIONS:-100000}
BENCH_CAMPAIGNS=${BENCH_CAMPAIGNS:-8}
BENCH_REPEAT=${BENCH_REPEAT:-2}
BENCH_FULL_REACH=${BENCH_FULL_REACH:-1}
BENCH_ACCOUNTS=${BENCH_ACCOUNTS:-500}
BENCH_LATENCY=${BENCH_LATENCY:-50ms}
BENCH_CYCLE_AGE=${BENCH_CYCLE_AGE:-15m}
BENCH_MICRO=${BENCH_MICRO:-1}
BENCH_PLATEAU_ACTIONS=${BENCH_PLATEAU_ACTIONS:-2000000}
CH_PORT=${CH_PORT:-19000}
BENCH_ONLY=${BENCH_ONLY:-all}
BENCH_SYNCER=${BENCH_SYNCER:-bin/syncer}
case $BENCH_ONLY in all | many) ;; *) echo "bench: BENCH_ONLY=$BENCH_ONLY: want all or many" >&2; exit 2 ;; esac
BENCH_PORT_BASE=${BENCH_PORT_BASE:-0} # simulators on this port and the next (0: any free port)
CONCURRENCY=${SYNCER_CONCURRENCY:-4} # the syncer's default
PAGE=20000                           # the API's largest Actions PageSize, the syncer's default

OUT=bench/results
W=$OUT/work
rm -rf "$W"
mkdir -p "$W"
LOG=$W/bench.log
: > "$LOG"

say() { printf '%s bench: %s\n' "$(date -u +%H:%M:%S)" "$*" | tee -a "$LOG" >&2; }
die() { say "error: $*"; exit 1; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
need_pkg() { # command, Debian package
	command -v "$1" >/dev/null 2>&1 && return
	say "installing $2 (apt-get)"
	as_root apt-get update -qq >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need_pkg jq jq
need_pkg curl curl
[ -x /usr/bin/time ] || { need_pkg /usr/bin/time time; }
[ -x /usr/bin/time ] || die "GNU time (/usr/bin/time) is needed for peak RSS"
for b in bin/syncer bin/impactsim; do [ -x $b ] || die "$b missing: run make build (make bench does)"; done
go build -o bin/benchbaseline ./cmd/benchbaseline
command -v clickhouse-client >/dev/null || die "clickhouse-client missing: make clickhouse"
clickhouse-client --port "$CH_PORT" -q "SELECT 1" >/dev/null || die "no ClickHouse on port $CH_PORT: make clickhouse"

ch() { clickhouse-client --port "$CH_PORT" "$@"; }
calc() { awk "BEGIN { printf \"%.6g\", $* }"; }

export CLICKHOUSE_ADDR=127.0.0.1:$CH_PORT
export SYNCER_ENCRYPTION_KEY
SYNCER_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
DBS=()
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for d in "${DBS[@]}"; do ch -q "DROP DATABASE IF EXISTS $d" 2>/dev/null || true; done
	rm -rf "$W/pages" "$W/rows.json"
}
trap cleanup EXIT

fresh_db() { # name: a new empty, migrated database
	DBS+=("$1")
	ch -q "DROP DATABASE IF EXISTS $1"
	CLICKHOUSE_DATABASE=$1 bin/syncer migrate >>"$LOG" 2>&1 || die "migrate $1 failed (see $LOG)"
}

SIM_N=0
start_sim() { # name accounts-file [flags...]: starts bin/impactsim, sets SIM_URL
	local name=$1 file=$2 port=0
	shift 2
	[ "$BENCH_PORT_BASE" -gt 0 ] && port=$((BENCH_PORT_BASE + SIM_N))
	SIM_N=$((SIM_N + 1))
	bin/impactsim -addr 127.0.0.1:$port -accounts "$file" -now "$NOW" "$@" >"$W/sim-$name.json" 2>"$W/sim-$name.log" &
	PIDS+=($!)
	local pid=$!
	local addr
	for _ in $(seq 1 600); do
		addr=$(jq -r '.addr // empty' "$W/sim-$name.json" 2>/dev/null || true)
		if [ -n "$addr" ]; then # (jq 1.6 -e succeeds on an empty file)
			SIM_URL=http://$addr
			return
		fi
		kill -0 "$pid" 2>/dev/null || die "simulator $name did not start: $(cat "$W/sim-$name.log")"
		sleep 0.2
	done
	die "simulator $name did not start within 120s"
}

sim_requests() { # url [sid]: requests the simulator counted (one account, or all)
	if [ -n "${2:-}" ]; then curl -fsS "$1/_sim/stats?sid=$2" | jq .requests; else curl -fsS "$1/_sim/stats" | jq .requests; fi
}

# timed label cmd...: runs cmd under GNU time; sets T_WALL (s), T_RSS (MiB)
timed() {
	local label=$1
	shift
	local start end
	start=$(date +%s.%N)
	/usr/bin/time -v -o "$W/$label.time" "$@" >"$W/$label.out" 2>"$W/$label.err" || {
		cat "$W/$label.out" "$W/$label.err" >>"$LOG"
		die "$label failed (see $W/$label.out, $W/$label.err)"
	}
	end=$(date +%s.%N)
	T_WALL=$(calc "$end - $start")
	T_RSS=$(awk -F': ' '/Maximum resident set size/ { printf "%.1f", $2 / 1024 }' "$W/$label.time")
}

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
FROM=$(date -u -d "$NOW - 1094 days" +%Y-%m-%d) # inside the API's 3-year reach
HISTORY_DAYS=1090
# one campaign whose 44-day windows hold three 20,000-action pages at
# BENCH_ACTIONS (~60,000 actions a window)
ONE_HISTORY_DAYS=$(((BENCH_ACTIONS * 44 + 59000 - 1) / 59000))
[ "$ONE_HISTORY_DAYS" -gt "$HISTORY_DAYS" ] && ONE_HISTORY_DAYS=$HISTORY_DAYS
BIG_SID=IRBenchBig00000000000000000000001
ONE_SID=IRBenchOne00000000000000000000001
SMALL_SID=IRBenchSmall000000000000000000001
HUGE_SID=IRBenchHuge000000000000000000001
HUGEONE_SID=IRBenchHugeOne0000000000000000001
TOKEN=bench-token-not-a-secret
say "start: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)

if [ "$BENCH_ONLY" = all ]; then # sections 1 to 3
jq -n --arg big "$BIG_SID" --arg one "$ONE_SID" --arg small "$SMALL_SID" --arg tok "$TOKEN" \
	--argjson n "$BENCH_ACTIONS" --argjson m "$BENCH_SMALL_ACTIONS" --argjson c "$BENCH_CAMPAIGNS" --argjson h $HISTORY_DAYS \
	--argjson oh "$ONE_HISTORY_DAYS" --arg huge "$HUGE_SID" --arg hugeone "$HUGEONE_SID" --argjson p "$BENCH_PLATEAU_ACTIONS" \
	'[{sid: $big, token: $tok, persona: "brand", seed: 7, campaigns: $c, actions: $n, media_partners: 200, promo_codes: 20, history_days: $h},
	  {sid: $one, token: $tok, persona: "brand", seed: 8, campaigns: 1, actions: $n, media_partners: 200, promo_codes: 20, history_days: $oh},
	  {sid: $small, token: $tok, persona: "brand", seed: 7, campaigns: $c, actions: $m, media_partners: 200, promo_codes: 20, history_days: $h}]
	 + if $p > 0 then [{sid: $huge, token: $tok, persona: "brand", seed: 7, campaigns: $c, actions: $p, media_partners: 200, promo_codes: 20, history_days: $h},
	   {sid: $hugeone, token: $tok, persona: "brand", seed: 8, campaigns: 1, actions: $p, media_partners: 200, promo_codes: 20, history_days: $h}] else [] end' \
	>"$W/accounts.json"
say "generating 2 × $BENCH_ACTIONS + $BENCH_SMALL_ACTIONS + 2 × $BENCH_PLATEAU_ACTIONS actions in the simulator"
start_sim sim "$W/accounts.json"
SIM=$SIM_URL

add_account() { # db id sid
	echo "$TOKEN" | CLICKHOUSE_DATABASE=$1 IMPACT_API_URL=$SIM bin/syncer accounts add --id "$2" --persona brand --sid "$3" --token-stdin >>"$LOG" 2>&1 ||
		die "accounts add $2 failed (see $LOG)"
}

# backfill db id sid label [args...]: times one backfill; sets T_WALL, T_RSS, REQS
backfill() {
	local db=$1 id=$2 sid=$3 label=$4
	shift 4
	local before
	before=$(sim_requests "$SIM" "$sid")
	timed "$label" env CLICKHOUSE_DATABASE="$db" IMPACT_API_URL="$SIM" bin/syncer backfill --account "$id" --entities actions "$@"
	REQS=$(($(sim_requests "$SIM" "$sid") - before))
}

# final_reads db id: right after loading, every table (with FINAL) and view
# must answer a read of all its columns within the server's memory limit;
# sets FINAL_OK (true/false), FINAL_PARTS (active parts of actions)
final_reads() {
	local db=$1 id=$2 t engine q
	FINAL_OK=true
	FINAL_PARTS=$(ch -q "SELECT count() FROM system.parts WHERE database = '$db' AND table = 'actions' AND active")
	while read -r t engine; do
		q="SELECT * FROM $db.\`$t\`"
		case $engine in Replacing*) q="$q FINAL" ;; esac
		case $t in actions | action_updates | actions_current) q="$q WHERE account_id = '$id'" ;; esac
		if ! ch -q "$q FORMAT Null" >>"$LOG" 2>&1; then
			say "  FAILED: $q"
			FINAL_OK=false
		fi
	done < <(ch -q "SELECT name, engine FROM system.tables WHERE database = '$db' ORDER BY name" --format TSV)
}

# ---- 1 and 2: throughput and memory, for two shapes ------------------------
# shape name sid: BENCH_REPEAT interleaved rounds of the syncer's backfill,
# the baseline download and the baseline insert; sets S_* results
shape() {
	local name=$1 sid=$2 rep n
	local sync_t=() sync_rss=() dl_t=() ins_t=()
	S_ROWS_EXPORTED=0
	fresh_db bench_base
	for rep in $(seq 1 "$BENCH_REPEAT"); do
		say "throughput $name $rep/$BENCH_REPEAT: syncer backfill of $BENCH_ACTIONS actions"
		fresh_db bench_tp
		add_account bench_tp "$name" "$sid"
		backfill bench_tp "$name" "$sid" "backfill-$name-$rep" --from "$FROM"
		sync_t+=("$T_WALL")
		sync_rss+=("$T_RSS")
		S_REQS=$REQS
		n=$(ch -q "SELECT count() FROM bench_tp.actions FINAL")
		[ "$n" = "$BENCH_ACTIONS" ] || die "backfill stored $n actions, want $BENCH_ACTIONS"
		final_reads bench_tp "$name"
		S_FINAL_OK=$FINAL_OK S_PARTS=$FINAL_PARTS
		say "  syncer: ${T_WALL}s, peak RSS ${T_RSS} MiB, $REQS requests, $FINAL_PARTS parts, FINAL reads answer: $FINAL_OK"

		if [ "$S_ROWS_EXPORTED" = 0 ]; then
			say "  exporting the backfilled rows as JSONEachRow for the insert baseline (not timed)"
			# part by part (a part per month), as the baseline inserts them
			ch -q "SELECT * FROM bench_tp.actions FORMAT JSONEachRow" >"$W/rows.json"
			S_ROWS_EXPORTED=$(wc -l <"$W/rows.json")
			# the minimum requests for these windows, from the stored EventDates
			TO_TS=$(date -u -d "$NOW" +%s)
			FROM_TS=$(date -u -d "$FROM" +%s)
			WINDOWS=$(((TO_TS - FROM_TS + 45 * 86400 - 1) / (45 * 86400)))
			CAMPS=$(ch -q "SELECT uniqExact(campaign_id) FROM bench_tp.actions")
			EXTRA=$(ch -q "SELECT toUInt64(sum(ceil(n / $PAGE) - 1)) FROM (SELECT count() AS n FROM bench_tp.actions FINAL
				WHERE toUInt32(event_date) BETWEEN $FROM_TS AND $TO_TS GROUP BY campaign_id, intDiv(toUInt32(event_date) - $FROM_TS, 45 * 86400))")
			S_MIN=$((1 + CAMPS * WINDOWS + EXTRA)) # the campaign list, then the pages
		fi

		say "throughput $name $rep/$BENCH_REPEAT: baseline download (plain HTTP client to disk)"
		rm -rf "$W/pages"
		BENCH_TOKEN=$TOKEN bin/benchbaseline download -url "$SIM" -sid "$sid" -from "$FROM" -out "$W/pages" >"$W/download-$name-$rep.json" 2>>"$LOG" ||
			die "baseline download failed (see $LOG)"
		dl_t+=("$(jq .seconds "$W/download-$name-$rep.json")")
		S_DL_REQS=$(jq .requests "$W/download-$name-$rep.json")
		S_DL_BYTES=$(jq .bytes "$W/download-$name-$rep.json")
		rm -rf "$W/pages"
		say "  download: ${dl_t[-1]}s, $S_DL_REQS requests, $S_DL_BYTES bytes"

		say "throughput $name $rep/$BENCH_REPEAT: baseline insert (clickhouse-client FORMAT JSONEachRow)"
		ch -q "TRUNCATE TABLE bench_base.actions"
		# clickhouse-client's default block (1,048,576 rows of ~2.5 KB) exceeds the
		# server's per-query memory limit here; 100,000 rows is within the
		# recommended batch size
		timed "insert-$name-$rep" sh -c "clickhouse-client --port $CH_PORT --max_insert_block_size 100000 -q 'INSERT INTO bench_base.actions FORMAT JSONEachRow' < $W/rows.json"
		ins_t+=("$T_WALL")
		n=$(ch -q "SELECT count() FROM bench_base.actions")
		[ "$n" = "$S_ROWS_EXPORTED" ] || die "baseline insert stored $n rows, want $S_ROWS_EXPORTED"
		S_BASE_PARTS=$(ch -q "SELECT count() FROM system.parts WHERE database = 'bench_base' AND table = 'actions' AND active")
		say "  insert: ${T_WALL}s, $S_BASE_PARTS parts"
	done
	rm -f "$W/rows.json"
	S_SYNC_T=$(printf '%s\n' "${sync_t[@]}" | jq -s .)
	S_DL_T=$(printf '%s\n' "${dl_t[@]}" | jq -s .)
	S_INS_T=$(printf '%s\n' "${ins_t[@]}" | jq -s .)
	S_RSS_RUNS=$(printf '%s\n' "${sync_rss[@]}" | jq -s .)
	S_SYNC_BEST=$(min_of "${sync_t[@]}")
	S_DL_BEST=$(min_of "${dl_t[@]}")
	S_INS_BEST=$(min_of "${ins_t[@]}")
	S_RSS=$(max_of "${sync_rss[@]}")
	S_RATIO=$(calc "$S_SYNC_BEST / ($S_DL_BEST + $S_INS_BEST)")
	S_ROWS_PER_S=$(calc "$BENCH_ACTIONS / $S_SYNC_BEST")
}
min_of() { printf '%s\n' "$@" | sort -g | head -1; }
max_of() { printf '%s\n' "$@" | sort -g | tail -1; }

# shape_json name: the S_* results as JSON
shape_json() {
	jq -n --arg name "$1" --argjson sync_t "$S_SYNC_T" --argjson dl_t "$S_DL_T" --argjson ins_t "$S_INS_T" --argjson rss_runs "$S_RSS_RUNS" \
		--argjson sync_best "$S_SYNC_BEST" --argjson dl_best "$S_DL_BEST" --argjson ins_best "$S_INS_BEST" --argjson ratio "$S_RATIO" \
		--argjson rows_per_s "$S_ROWS_PER_S" --argjson reqs "$S_REQS" --argjson min "$S_MIN" --argjson dl_reqs "$S_DL_REQS" \
		--argjson dl_bytes "$S_DL_BYTES" --argjson rss "$S_RSS" --argjson parts "$S_PARTS" --argjson base_parts "$S_BASE_PARTS" \
		--argjson final_ok "$S_FINAL_OK" \
		'{shape: $name, syncer_seconds: $sync_t, download_seconds: $dl_t, insert_seconds: $ins_t,
		  syncer_best_seconds: $sync_best, download_best_seconds: $dl_best, insert_best_seconds: $ins_best,
		  ratio_syncer_to_download_plus_insert: $ratio, target: "<= 1.0", met: ($ratio <= 1), rows_per_second: $rows_per_s,
		  api_requests: $reqs, minimum_requests: $min, download_requests: $dl_reqs, download_bytes: $dl_bytes,
		  peak_rss_mib: $rss, peak_rss_runs_mib: $rss_runs, parts_after_backfill: $parts, baseline_parts: $base_parts,
		  final_reads_answer: $final_ok}'
}

shape "big" "$BIG_SID"
BIG_JSON=$(shape_json "$BENCH_CAMPAIGNS campaigns")
TP_RATIO=$S_RATIO SYNC_BEST=$S_SYNC_BEST DL_BEST=$S_DL_BEST INS_BEST=$S_INS_BEST ROWS_PER_S=$S_ROWS_PER_S RSS_BIG=$S_RSS
BF_REQS=$S_REQS BF_MIN=$S_MIN BIG_PARTS=$S_PARTS BIG_BASE_PARTS=$S_BASE_PARTS BIG_FINAL=$S_FINAL_OK
shape "one" "$ONE_SID"
ONE_JSON=$(shape_json "1 campaign, ~3 pages a window")
ONE_RATIO=$S_RATIO ONE_SYNC_BEST=$S_SYNC_BEST ONE_DL_BEST=$S_DL_BEST ONE_INS_BEST=$S_INS_BEST ONE_ROWS_PER_S=$S_ROWS_PER_S RSS_ONE=$S_RSS
ONE_REQS=$S_REQS ONE_PARTS=$S_PARTS ONE_BASE_PARTS=$S_BASE_PARTS ONE_FINAL=$S_FINAL_OK

HUGE_RSS=null HUGE_T=null HUGE_GROWTH=null HUGEONE_RSS=null HUGEONE_T=null HUGEONE_GROWTH=null
if [ "$BENCH_PLATEAU_ACTIONS" -gt 0 ]; then
	say "memory: the backfill of $BENCH_PLATEAU_ACTIONS actions, $BENCH_CAMPAIGNS campaigns"
	fresh_db bench_huge
	add_account bench_huge huge $HUGE_SID
	backfill bench_huge huge $HUGE_SID backfill-huge --from "$FROM"
	HUGE_RSS=$T_RSS HUGE_T=$T_WALL
	HUGE_GROWTH=$(calc "($HUGE_RSS / $RSS_BIG - 1) * 100")
	say "  ${T_WALL}s, peak RSS ${T_RSS} MiB, $REQS requests"
	ch -q "DROP DATABASE IF EXISTS bench_huge"
	say "memory: the backfill of $BENCH_PLATEAU_ACTIONS actions, 1 campaign"
	fresh_db bench_huge
	add_account bench_huge hugeone $HUGEONE_SID
	backfill bench_huge hugeone $HUGEONE_SID backfill-hugeone --from "$FROM"
	HUGEONE_RSS=$T_RSS HUGEONE_T=$T_WALL
	HUGEONE_GROWTH=$(calc "($HUGEONE_RSS / $RSS_ONE - 1) * 100")
	say "  ${T_WALL}s, peak RSS ${T_RSS} MiB, $REQS requests"
	ch -q "DROP DATABASE IF EXISTS bench_huge"
fi

# ---- 3: API efficiency ----------------------------------------------------
FULL_REQS=null FULL_MIN=null FULL_T=null FULL_RSS=null FULL_ROWS=null
if [ "$BENCH_FULL_REACH" = 1 ]; then
	say "API efficiency: backfill without --from (all three date filters over the 3-year reach)"
	fresh_db bench_full
	add_account bench_full big $BIG_SID
	backfill bench_full big $BIG_SID backfill-full
	FULL_REQS=$REQS FULL_T=$T_WALL FULL_RSS=$T_RSS
	FULL_ROWS=$(awk '$1 == "big" { print $4 }' "$W/backfill-full.out")
	# windows of the reach (3×365 days less 5 minutes) per filter: the same
	# count for the three; pages over 20,000 per 45-day window add requests.
	# LastUpdated is not stored; creation_date stands for it (they differ only
	# for modified or reversed actions).
	TO_TS=$(date -u -d "$NOW" +%s)
	REACH_TS=$((TO_TS - 3 * 365 * 86400 + 300))
	FW=$(((TO_TS - REACH_TS + 45 * 86400 - 1) / (45 * 86400)))
	CAMPS=$(ch -q "SELECT uniqExact(campaign_id) FROM bench_full.actions")
	extra() { ch -q "SELECT toUInt64(sum(ceil(n / $PAGE) - 1)) FROM (SELECT count() AS n FROM bench_full.actions FINAL
		WHERE toUInt32($1) BETWEEN $REACH_TS AND $TO_TS GROUP BY campaign_id, intDiv(toUInt32($1) - $REACH_TS, 45 * 86400))"; }
	FULL_MIN=$((1 + 3 * CAMPS * FW + $(extra event_date) + $(extra creation_date) + $(extra locking_date)))
	say "  ${FULL_T}s, $FULL_ROWS rows read, $FULL_REQS requests (minimum $FULL_MIN), peak RSS $FULL_RSS MiB"
fi

say "API efficiency: an incremental run when nothing changed ($BENCH_SMALL_ACTIONS-action account)"
fresh_db bench_idle
add_account bench_idle small $SMALL_SID
before=$(sim_requests "$SIM" $SMALL_SID)
timed first-sync env CLICKHOUSE_DATABASE=bench_idle IMPACT_API_URL="$SIM" bin/syncer sync --account small
FIRST_REQS=$(($(sim_requests "$SIM" $SMALL_SID) - before))
FIRST_T=$T_WALL
before=$(sim_requests "$SIM" $SMALL_SID)
timed idle-sync env CLICKHOUSE_DATABASE=bench_idle IMPACT_API_URL="$SIM" bin/syncer sync --account small
IDLE_REQS=$(($(sim_requests "$SIM" $SMALL_SID) - before))
IDLE_T=$T_WALL
IDLE_MIN=$((4 + 3 * BENCH_CAMPAIGNS)) # company information, campaigns, media partners, promo codes; 3 sweeps a campaign
say "  first sync ${FIRST_T}s, $FIRST_REQS requests; idle run ${IDLE_T}s, $IDLE_REQS requests (minimum $IDLE_MIN)"
kill "${PIDS[0]}" 2>/dev/null || true
fi # sections 1 to 3

# ---- 4: many accounts -----------------------------------------------------
MANY_DB=${BENCH_MANY_DB:-bench_many}
say "many accounts: $BENCH_ACCOUNTS accounts behind $BENCH_LATENCY of latency"
jq -n --argjson n "$BENCH_ACCOUNTS" --arg tok "$TOKEN" '[range(1; $n + 1) as $i |
	if $i % 5 == 0 then {sid: ("IRBenchManyP" + ($i | tostring)), token: $tok, persona: "partner", seed: $i, campaigns: 2, actions: 100, promo_codes: 5, history_days: 30}
	else {sid: ("IRBenchManyB" + ($i | tostring)), token: $tok, persona: "brand", seed: $i, campaigns: 2, actions: 200, media_partners: 10, promo_codes: 5, history_days: 30} end]' \
	>"$W/many.json"
start_sim many "$W/many.json"
MANY=$SIM_URL MANY_PID=${PIDS[-1]}
DBS+=($MANY_DB)
ch -q "DROP DATABASE IF EXISTS $MANY_DB"
CLICKHOUSE_DATABASE=$MANY_DB "$BENCH_SYNCER" migrate >>"$LOG" 2>&1 || die "migrate $MANY_DB failed (see $LOG)"
CLICKHOUSE_DATABASE=$MANY_DB bin/benchbaseline seed -url "$MANY" -accounts "$W/many.json" -age "$BENCH_CYCLE_AGE" >"$W/seed.json" 2>>"$LOG" ||
	die "seeding the accounts failed (see $LOG)"
curl -fsS -X POST "$MANY/_sim/latency?d=$BENCH_LATENCY" >/dev/null
LAT_S=$(calc "$(echo "$BENCH_LATENCY" | sed 's/ms$//') / 1000")
before=$(sim_requests "$MANY")
timed many-cycle env CLICKHOUSE_DATABASE=$MANY_DB IMPACT_API_URL="$MANY" "$BENCH_SYNCER" sync
MANY_REQS=$(($(sim_requests "$MANY") - before))
MANY_T=$T_WALL
MANY_RSS=$T_RSS
MANY_429=$(curl -fsS "$MANY/_sim/stats" | jq '.by_status["429"] // 0')
MANY_MIN=$(jq .idle_minimum_requests "$W/seed.json")
[ "$MANY_REQS" = "$MANY_MIN" ] || say "  note: $MANY_REQS requests, the seeded accounts' minimum is $MANY_MIN (benchbaseline seed's scans out of date?)"
MANY_IDEAL=$(calc "$MANY_REQS * $LAT_S / $CONCURRENCY")
MANY_RATIO=$(calc "$MANY_T / $MANY_IDEAL")
say "  cycle ${MANY_T}s, $MANY_REQS requests, ideal ${MANY_IDEAL}s, peak RSS $MANY_RSS MiB"
kill "$MANY_PID" 2>/dev/null || true
if [ "$BENCH_ONLY" = many ]; then
	jq -n --arg at "$NOW" --arg syncer "$BENCH_SYNCER" --argjson cores "$(nproc)" --argjson load_start "$LOAD_START" \
		--argjson load_end "$(cut -d' ' -f1 /proc/loadavg)" \
		--argjson accounts "$BENCH_ACCOUNTS" --arg latency "$BENCH_LATENCY" --argjson conc "$CONCURRENCY" \
		--argjson many_t "$MANY_T" --argjson many_reqs "$MANY_REQS" --argjson many_ideal "$MANY_IDEAL" --argjson many_ratio "$MANY_RATIO" \
		--argjson many_rss "$MANY_RSS" --argjson many_429 "$MANY_429" --argjson many_min "$MANY_MIN" \
		'{run: {at: $at, syncer: $syncer, cores: $cores, load_avg_start: $load_start, load_avg_end: $load_end},
		  many_accounts: {accounts: $accounts, latency: $latency, concurrency: $conc, cycle_seconds: $many_t, requests: $many_reqs, minimum_requests: $many_min,
		    ideal_seconds: $many_ideal, ratio: $many_ratio, target: "<= 1.3", met: ($many_ratio <= 1.3), peak_rss_mib: $many_rss, responses_429: $many_429}}' \
		>"$OUT/many.json"
	say "many accounts ($BENCH_SYNCER): cycle $(printf %.2f "$MANY_T") s, ideal $(printf %.2f "$MANY_IDEAL") s, ratio $(printf %.2f "$MANY_RATIO") (target <= 1.3), load $LOAD_START → $(cut -d' ' -f1 /proc/loadavg); JSON: $OUT/many.json"
	exit 0
fi

# ---- Go micro-benchmarks --------------------------------------------------
MICRO='{}'
if [ "$BENCH_MICRO" = 1 ]; then
	say "Go micro-benchmarks (-benchmem, best of 3)"
	micro() { # package benchmark
		go test -run '^$' -bench "^$2\$" -benchmem -count 3 "./$1" 2>&1 | tee -a "$LOG" |
			awk -v name="$2" '$1 ~ "^"name {
				for (i = 2; i <= NF; i++) { if ($i == "ns/op") ns = $(i-1); if ($i == "B/op") b = $(i-1); if ($i == "allocs/op") a = $(i-1) }
				if (best == "" || ns + 0 < best + 0) { best = ns; bb = b; ba = a } }
				END { printf "{\"ns_per_op\": %s, \"bytes_per_op\": %s, \"allocs_per_op\": %s}", best, bb, ba }'
	}
	DEC=$(micro internal/extract BenchmarkDecodeActionsPage20000)
	BLD=$(micro internal/load BenchmarkBuildBatch)
	MICRO=$(jq -n --argjson d "$DEC" --argjson b "$BLD" '{decode_actions_page_20000: $d, build_batch_10000: $b}')
fi

# ---- report ---------------------------------------------------------------
LOAD_END=$(cut -d' ' -f1 /proc/loadavg)
pass() { awk "BEGIN { print ($1) ? \"yes\" : \"MISSED\" }"; }
BF_RATIO=$(calc "$BF_REQS / $BF_MIN")
IDLE_RATIO=$(calc "$IDLE_REQS / $IDLE_MIN")
FULL_RATIO=null
[ "$FULL_REQS" != null ] && FULL_RATIO=$(calc "$FULL_REQS / $FULL_MIN")
MEM_MET=$(awk -v a="$RSS_BIG" -v b="$RSS_ONE" -v c="$HUGE_RSS" -v d="$HUGEONE_RSS" -v g="$HUGE_GROWTH" -v h="$HUGEONE_GROWTH" \
	'BEGIN { ok = a < 128 && b < 128; if (c != "null") ok = ok && c < 128 && d < 128 && g < 5 && h < 5; print ok ? "true" : "false" }')

jq -n \
	--arg at "$NOW" --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
	--arg go "$(go env GOVERSION)" --arg ch "$(ch -q 'SELECT version()')" \
	--argjson cores "$(nproc)" --argjson load_start "$LOAD_START" --argjson load_end "$LOAD_END" \
	--argjson actions "$BENCH_ACTIONS" --argjson camps "$BENCH_CAMPAIGNS" --arg from "$FROM" --argjson repeat "$BENCH_REPEAT" \
	--argjson big "$BIG_JSON" --argjson one "$ONE_JSON" \
	--argjson rss_big "$RSS_BIG" --argjson rss_one "$RSS_ONE" --argjson mem_met "$MEM_MET" \
	--argjson bf_reqs "$BF_REQS" --argjson bf_min "$BF_MIN" --argjson bf_ratio "$BF_RATIO" \
	--argjson full_reqs "$FULL_REQS" --argjson full_min "$FULL_MIN" --argjson full_ratio "$FULL_RATIO" \
	--argjson full_t "$FULL_T" --argjson full_rss "$FULL_RSS" --argjson full_rows "$FULL_ROWS" \
	--argjson first_reqs "$FIRST_REQS" --argjson first_t "$FIRST_T" \
	--argjson idle_reqs "$IDLE_REQS" --argjson idle_min "$IDLE_MIN" --argjson idle_ratio "$IDLE_RATIO" --argjson idle_t "$IDLE_T" \
	--argjson accounts "$BENCH_ACCOUNTS" --arg latency "$BENCH_LATENCY" --argjson conc "$CONCURRENCY" \
	--argjson many_t "$MANY_T" --argjson many_reqs "$MANY_REQS" --argjson many_ideal "$MANY_IDEAL" --argjson many_ratio "$MANY_RATIO" \
	--argjson many_rss "$MANY_RSS" --argjson many_429 "$MANY_429" --argjson many_min "$MANY_MIN" --argjson micro "$MICRO" \
	--argjson huge "$BENCH_PLATEAU_ACTIONS" --argjson huge_rss "$HUGE_RSS" --argjson huge_t "$HUGE_T" --argjson huge_growth "$HUGE_GROWTH" \
	--argjson hugeone_rss "$HUGEONE_RSS" --argjson hugeone_t "$HUGEONE_T" --argjson hugeone_growth "$HUGEONE_GROWTH" \
	'{
	  run: {at: $at, commit: $commit, go: $go, clickhouse: $ch, cores: $cores, load_avg_start: $load_start, load_avg_end: $load_end, repeat: $repeat},
	  throughput: {actions: $actions, from: $from, shapes: [$big, $one], target: "<= 1.0 for both shapes",
	    met: ($big.met and $one.met)},
	  memory: {actions: $actions, peak_rss_mib: {campaigns_8: $rss_big, campaign_1: $rss_one},
	    larger: {actions: $huge, campaigns_8: {peak_rss_mib: $huge_rss, seconds: $huge_t, growth_percent: $huge_growth},
	      campaign_1: {peak_rss_mib: $hugeone_rss, seconds: $hugeone_t, growth_percent: $hugeone_growth}},
	    target: "< 128 MiB at both sizes and shapes, the larger within 5 %", met: $mem_met},
	  final_reads_after_backfill: {campaigns_8: $big.final_reads_answer, campaign_1: $one.final_reads_answer},
	  api: {backfill_event_date: {requests: $bf_reqs, minimum: $bf_min, ratio: $bf_ratio},
	    backfill_full_reach_three_filters: {requests: $full_reqs, minimum: $full_min, ratio: $full_ratio, seconds: $full_t, rows_read: $full_rows, peak_rss_mib: $full_rss},
	    first_incremental_sync: {requests: $first_reqs, seconds: $first_t},
	    idle_incremental: {requests: $idle_reqs, minimum: $idle_min, ratio: $idle_ratio, seconds: $idle_t}},
	  many_accounts: {accounts: $accounts, latency: $latency, concurrency: $conc, cycle_seconds: $many_t, requests: $many_reqs, minimum_requests: $many_min,
	    ideal_seconds: $many_ideal, ratio: $many_ratio, target: "<= 1.3", met: ($many_ratio <= 1.3), peak_rss_mib: $many_rss, responses_429: $many_429},
	  micro: $micro
	}' >"$OUT/latest.json"

row() { printf '| %-46s | %-46s | %-36s | %-7s |\n' "$@"; }
f2() { printf '%.2f' "$1"; }
{
	echo
	echo "impact-syncer benchmarks — $NOW, $(nproc) cores, load $LOAD_START → $LOAD_END, commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
	echo
	row "measure" "syncer" "baseline / minimum / target" "met"
	row "----------------------------------------------" "----------------------------------------------" "------------------------------------" "-------"
	row "1 backfill of $BENCH_ACTIONS actions, $BENCH_CAMPAIGNS campaigns (best of $BENCH_REPEAT)" "$(f2 "$SYNC_BEST") s, $(printf %.0f "$ROWS_PER_S") rows/s, $BF_REQS requests, $BIG_PARTS parts" "download $(f2 "$DL_BEST") s + insert $(f2 "$INS_BEST") s ($BIG_BASE_PARTS parts)" ""
	row "  syncer / (download + insert)" "$(f2 "$TP_RATIO")" "<= 1.0" "$(pass "$TP_RATIO <= 1")"
	row "1 backfill of $BENCH_ACTIONS actions, 1 campaign (best of $BENCH_REPEAT)" "$(f2 "$ONE_SYNC_BEST") s, $(printf %.0f "$ONE_ROWS_PER_S") rows/s, $ONE_REQS requests, $ONE_PARTS parts" "download $(f2 "$ONE_DL_BEST") s + insert $(f2 "$ONE_INS_BEST") s ($ONE_BASE_PARTS parts)" ""
	row "  syncer / (download + insert)" "$(f2 "$ONE_RATIO")" "<= 1.0" "$(pass "$ONE_RATIO <= 1")"
	row "2 peak RSS, $BENCH_ACTIONS actions (8 / 1 campaigns)" "$RSS_BIG / $RSS_ONE MiB" "< 128 MiB" "$(pass "$RSS_BIG < 128 && $RSS_ONE < 128")"
	if [ "$HUGE_RSS" != null ]; then
		row "  peak RSS, $BENCH_PLATEAU_ACTIONS actions (8 / 1 campaigns)" "$HUGE_RSS / $HUGEONE_RSS MiB ($(f2 "$HUGE_T") / $(f2 "$HUGEONE_T") s)" "< 128 MiB" "$(pass "$HUGE_RSS < 128 && $HUGEONE_RSS < 128")"
		row "  growth from $BENCH_ACTIONS" "$(printf %+.1f "$HUGE_GROWTH") % / $(printf %+.1f "$HUGEONE_GROWTH") %" "< 5 %" "$(pass "$HUGE_GROWTH < 5 && $HUGEONE_GROWTH < 5")"
	fi
	row "  every table (FINAL) and view answers after it" "$BIG_FINAL / $ONE_FINAL" "true" "$(pass "\"$BIG_FINAL\" == \"true\" && \"$ONE_FINAL\" == \"true\"")"
	row "3 requests, backfill --from (EventDate)" "$BF_REQS" "minimum $BF_MIN" "$(f2 "$BF_RATIO")×"
	[ "$FULL_REQS" != null ] && row "  backfill without --from (3 filters)" "$FULL_REQS ($(f2 "$FULL_T") s, $FULL_ROWS rows read)" "minimum $FULL_MIN" "$(f2 "$FULL_RATIO")×"
	row "  incremental run, nothing changed" "$IDLE_REQS ($(f2 "$IDLE_T") s)" "minimum $IDLE_MIN" "$(f2 "$IDLE_RATIO")×"
	row "4 cycle, $BENCH_ACCOUNTS accounts, $BENCH_LATENCY latency" "$(f2 "$MANY_T") s, $MANY_REQS requests, $MANY_429 × 429" "ideal $(f2 "$MANY_IDEAL") s (concurrency $CONCURRENCY)" ""
	row "  cycle / ideal" "$(f2 "$MANY_RATIO")" "<= 1.3" "$(pass "$MANY_RATIO <= 1.3")"
	if [ "$BENCH_MICRO" = 1 ]; then
		row "decode a 20,000-action page" "$(jq -r '"\(.ns_per_op / 1e6 | floor) ms, \(.bytes_per_op / 1048576 | floor) MiB, \(.allocs_per_op) allocs"' <<<"$DEC")" "" ""
		row "build a 10,000-row insert" "$(jq -r '"\(.ns_per_op / 1e6 | floor) ms, \(.bytes_per_op / 1048576 | floor) MiB, \(.allocs_per_op) allocs"' <<<"$BLD")" "" ""
	fi
	echo
	echo "JSON: $OUT/latest.json; logs: $W"
} | tee "$OUT/latest.txt"
