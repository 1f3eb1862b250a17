#!/usr/bin/env bash
# demo.sh — the main job end to end, on this machine: the impact.com simulator
# (bin/impactsim) and the local ClickHouse (scripts/clickhouse.sh) stand in for
# the real services. It migrates a fresh database, registers a demo brand and a
# demo partner account, runs one sync, and shows what landed next to what the
# simulator holds, plus an attribution query. `make demo` builds and starts
# everything first.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CH_PORT=${CH_PORT:-19000}
SIM_ADDR=${SIM_ADDR:-127.0.0.1:18088}
DB=${DEMO_DATABASE:-impact_demo}
mkdir -p .demo

need() {
	command -v "$1" >/dev/null 2>&1 && return
	echo "demo: installing $1 (apt-get)"
	if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null
	else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null; fi
}
need curl
need jq

ch() { clickhouse-client --port "$CH_PORT" --database "$DB" "$@"; }

# a demo encryption key, kept so later runs can read what earlier ones stored
[ -s .demo/encryption.key ] || head -c 32 /dev/urandom | base64 > .demo/encryption.key

export CLICKHOUSE_ADDR=127.0.0.1:$CH_PORT
export CLICKHOUSE_DATABASE=$DB
export IMPACT_API_URL=http://$SIM_ADDR
export SYNCER_ENCRYPTION_KEY=$(cat .demo/encryption.key)
export SYNCER_LOG_LEVEL=${SYNCER_LOG_LEVEL:-warn}

echo "== starting the impact.com simulator on $SIM_ADDR"
./bin/impactsim -addr "$SIM_ADDR" -demo > .demo/impactsim.json 2> .demo/impactsim.log &
SIM_PID=$!
trap 'kill $SIM_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	curl -fsS "http://$SIM_ADDR/_sim/accounts" > .demo/sim-accounts.json 2>/dev/null && break
	kill -0 $SIM_PID 2>/dev/null || { cat .demo/impactsim.log; echo "demo: the simulator did not start"; exit 1; }
	sleep 0.1
done

echo "== fresh database $DB"
clickhouse-client --port "$CH_PORT" -q "DROP DATABASE IF EXISTS $DB"
./bin/syncer migrate

echo "== registering the demo accounts (tokens go through standard input)"
echo demo-brand-token-not-a-secret | ./bin/syncer accounts add --id demo-brand --persona brand --sid IRDemoBrand0000000000000000000001 --token-stdin
echo demo-partner-token-not-a-secret | ./bin/syncer accounts add --id demo-partner --persona partner --sid IRDemoPartner00000000000000000001 --token-stdin
./bin/syncer accounts list

echo "== syncing"
./bin/syncer sync

echo
echo "== what landed, next to what the simulator holds"
mismatch=0
printf '%-14s %-20s %12s %12s\n' ACCOUNT TABLE CLICKHOUSE SIMULATOR
for acct in demo-brand:IRDemoBrand0000000000000000000001 demo-partner:IRDemoPartner00000000000000000001; do
	id=${acct%%:*} sid=${acct#*:}
	for pair in company_information: campaigns:Campaigns media_partners:MediaPartners promo_codes:PromoCodes actions:Actions action_updates:ActionUpdates; do
		table=${pair%%:*} key=${pair#*:}
		present=""
		case $table in company_information|campaigns|media_partners|promo_codes) present="AND is_present = 1";; esac
		got=$(ch -q "SELECT count() FROM $table FINAL WHERE account_id = '$id' $present")
		if [ -z "$key" ]; then want=1; else want=$(jq -r --arg sid "$sid" --arg k "$key" '.[] | select(.sid == $sid) | .counts[$k]' .demo/sim-accounts.json); fi
		mark=""; [ "$got" = "$want" ] || { mark="  <-- differs"; mismatch=1; }
		printf '%-14s %-20s %12s %12s%s\n' "$id" "$table" "$got" "$want" "$mark"
	done
done

echo
echo "== attribution: payout and sale amount per campaign and state (demo-brand)"
ch --format PrettyCompact -q "
SELECT campaign_name AS campaign, state, count() AS actions, round(sum(amount), 2) AS sale_amount, round(sum(payout), 2) AS payout
FROM actions FINAL
WHERE account_id = 'demo-brand'
GROUP BY campaign_name, state
ORDER BY campaign_name, state"

echo
./bin/syncer status --account demo-brand
echo
echo "Query it yourself:  clickhouse-client --port $CH_PORT --database $DB"
echo "  e.g.  SELECT state, count(), sum(payout) FROM actions FINAL GROUP BY state"
echo "Stop the local ClickHouse with: make clickhouse-stop"
if [ "$mismatch" != 0 ]; then
	echo "demo: ClickHouse and the simulator disagree (see above)" >&2
	exit 1
fi
