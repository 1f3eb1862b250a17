#!/usr/bin/env bash
# cycle200.sh — measures one full sync cycle over many simulated accounts:
# the first (full-reach) pass and the next (incremental) pass, each timed with
# peak memory. This is the pass the worker runs on every schedule tick.
#   N=200 scripts/cycle200.sh      (needs bin/ built and the local ClickHouse: make build clickhouse)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
N=${N:-200}
CH_PORT=${CH_PORT:-19000}
SIM_ADDR=${SIM_ADDR:-127.0.0.1:18089}
DB=impact_cycle
work=$(mktemp -d)
trap 'kill $SIM_PID 2>/dev/null || true; rm -rf "$work"' EXIT

{
	echo "["
	for i in $(seq 1 "$N"); do
		persona=brand; [ $((i % 4)) = 0 ] && persona=partner
		sep=","; [ "$i" = "$N" ] && sep=""
		printf '{"sid":"IRCYCLE%025d","token":"tok-%d","persona":"%s","seed":%d,"campaigns":2,"actions":500,"media_partners":10,"promo_codes":5}%s\n' "$i" "$i" "$persona" "$i" "$sep"
	done
	echo "]"
} > "$work/accounts.json"

./bin/impactsim -addr "$SIM_ADDR" -accounts "$work/accounts.json" > /dev/null 2> "$work/sim.log" &
SIM_PID=$!
for _ in $(seq 1 100); do curl -fsS "http://$SIM_ADDR/_sim/accounts" >/dev/null 2>&1 && break; sleep 0.1; done

export CLICKHOUSE_ADDR=127.0.0.1:$CH_PORT CLICKHOUSE_DATABASE=$DB IMPACT_API_URL=http://$SIM_ADDR SYNCER_LOG_LEVEL=error
export SYNCER_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
clickhouse-client --port "$CH_PORT" -q "DROP DATABASE IF EXISTS $DB"
./bin/syncer migrate >/dev/null
for i in $(seq 1 "$N"); do
	persona=brand; [ $((i % 4)) = 0 ] && persona=partner
	echo "tok-$i" | ./bin/syncer accounts add --id "acct-$i" --persona $persona --sid "$(printf 'IRCYCLE%025d' "$i")" --token-stdin >/dev/null
done
for pass in first incremental; do
	/usr/bin/time -f "%e %M" -o "$work/time" ./bin/syncer sync > "$work/out" || { tail "$work/out"; exit 1; }
	read -r secs kb < "$work/time"
	rows=$(clickhouse-client --port "$CH_PORT" -q "SELECT sum(rows), sum(requests) FROM $DB.sync_runs FINAL WHERE started_at >= now() - toIntervalSecond(ceil($secs) + 5)")
	printf '%s pass over %d accounts (concurrency %s): %ss, peak RSS %d MiB, rows and requests: %s\n' \
		"$pass" "$N" "${SYNCER_CONCURRENCY:-4}" "$secs" $((kb / 1024)) "$rows"
done
clickhouse-client --port "$CH_PORT" -q "DROP DATABASE IF EXISTS $DB"
