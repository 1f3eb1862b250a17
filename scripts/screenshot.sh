#!/usr/bin/env bash
# screenshot.sh renders the worker's status page in headless Chromium (Debian's
# chromium package, installed with apt-get when missing).
#
#   scripts/screenshot.sh install             install chromium with apt-get if missing
#   scripts/screenshot.sh shot URL OUT.png    screenshot URL at 1280x900 into OUT.png
#   scripts/screenshot.sh dom URL             print the rendered DOM of URL
#   scripts/screenshot.sh status-page [OUT]   the whole demo (what `make screenshot` runs): start the
#                                             simulator, migrate a fresh database on the local
#                                             ClickHouse, register four accounts, sync, start the
#                                             worker, let it find one revoked token, screenshot /
#                                             into OUT (default docs/status-page.png), stop both
#
# Environment (defaults in brackets):
#   CLICKHOUSE_ADDR      [127.0.0.1:19000]      the local ClickHouse (scripts/clickhouse.sh)
#   SCREENSHOT_DATABASE  [impact_screenshot]    dropped and re-created by status-page
#   SCREENSHOT_SIM_ADDR  [127.0.0.1:18188]      the simulator's address
#   SCREENSHOT_HTTP_ADDR [127.0.0.1:18189]      the worker's HTTP address
#   SYNCER, IMPACTSIM    [bin/syncer, bin/impactsim] the binaries (make build)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf 'screenshot: %s\n' "$*"; }
die() { printf 'screenshot: error: %s\n' "$*" >&2; exit 1; }

chromium_bin() {
	local b
	for b in chromium chromium-browser; do
		if command -v "$b" >/dev/null 2>&1; then
			command -v "$b"
			return 0
		fi
	done
	return 1
}

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

cmd_install() {
	if chromium_bin >/dev/null; then
		say "installed: $(chromium_bin)"
		return 0
	fi
	command -v apt-get >/dev/null 2>&1 || die "chromium is missing and apt-get is not available; install Chromium yourself"
	say "installing chromium with apt-get"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
	chromium_bin >/dev/null || die "apt-get finished but chromium is still missing"
	say "installed: $(chromium_bin)"
}

# chromium_run runs headless chromium with a throw-away profile and no
# network chatter of its own.
chromium_run() {
	local profile status=0
	profile=$(mktemp -d)
	"$(chromium_bin)" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
		--disable-background-networking --disable-component-update --disable-sync --no-first-run \
		--hide-scrollbars --user-data-dir="$profile" "$@" || status=$?
	rm -rf "$profile"
	return $status
}

cmd_shot() {
	local url=${1:?usage: screenshot.sh shot URL OUT.png} out=${2:?usage: screenshot.sh shot URL OUT.png}
	cmd_install >/dev/null
	mkdir -p "$(dirname "$out")"
	out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
	chromium_run --screenshot="$out" --window-size=1280,900 "$url" 2>/dev/null
	[[ -s $out ]] || die "chromium wrote no screenshot to $out"
	say "wrote $out"
}

cmd_dom() {
	local url=${1:?usage: screenshot.sh dom URL}
	cmd_install >/dev/null
	chromium_run --dump-dom --window-size=1280,900 "$url" 2>/dev/null
}

# wait_http waits until URL answers (any status), up to $2 seconds.
wait_http() {
	local url=$1 timeout=$2 i
	for ((i = 0; i < timeout * 5; i++)); do
		if curl -s -o /dev/null "$url"; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

cmd_status_page() {
	local out=${1:-$ROOT/docs/status-page.png}
	local syncer=${SYNCER:-$ROOT/bin/syncer} impactsim=${IMPACTSIM:-$ROOT/bin/impactsim}
	local sim_addr=${SCREENSHOT_SIM_ADDR:-127.0.0.1:18188} http_addr=${SCREENSHOT_HTTP_ADDR:-127.0.0.1:18189}
	[[ -x $syncer && -x $impactsim ]] || die "build the binaries first: make build"
	command -v curl >/dev/null 2>&1 || die "curl is needed"
	cmd_install

	work=$(mktemp -d)
	sim_pid="" worker_pid=""
	cleanup() {
		[[ -n $worker_pid ]] && kill "$worker_pid" 2>/dev/null && wait "$worker_pid" 2>/dev/null || true
		[[ -n $sim_pid ]] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null || true
		rm -rf "$work"
	}
	trap cleanup EXIT

	export CLICKHOUSE_ADDR=${CLICKHOUSE_ADDR:-127.0.0.1:19000}
	export CLICKHOUSE_DATABASE=${SCREENSHOT_DATABASE:-impact_screenshot}
	export IMPACT_API_URL=http://$sim_addr
	export SYNCER_ENCRYPTION_KEY
	SYNCER_ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)
	export SYNCER_LOG_LEVEL=warn SYNCER_HTTP_ADDR=$http_addr SYNCER_START_SPREAD=0s
	export SYNCER_SCHEDULE_ACTIONS='@every 5s' SYNCER_SCHEDULE_CATALOG='@every 5s'
	unset IMPACT_OAUTH_CLIENT_ID IMPACT_AUTH_TOKEN

	# Four accounts; globex's token is reset between the first sync and the
	# worker (the simulator restarts with another token), so the page shows
	# an account that needs reconnecting and its failed run.
	accounts() {
		cat <<-EOF
		[
		  {"sid": "IRScreenBrand00000000000000000001", "token": "screenshot-northwind-token", "persona": "brand", "seed": 1, "campaigns": 4, "actions": 3000, "media_partners": 30, "promo_codes": 12},
		  {"sid": "IRScreenPartner000000000000000001", "token": "screenshot-trailhead-token", "persona": "partner", "seed": 2, "campaigns": 3, "actions": 1500, "promo_codes": 8},
		  {"sid": "IRScreenBrand00000000000000000002", "token": "$1", "persona": "brand", "seed": 3, "campaigns": 2, "actions": 800, "media_partners": 10, "promo_codes": 4},
		  {"sid": "IRScreenBrand00000000000000000003", "token": "screenshot-initech-token", "persona": "brand", "seed": 4, "campaigns": 1, "actions": 300, "media_partners": 5, "promo_codes": 2}
		]
		EOF
	}
	start_sim() {
		accounts "$1" >"$work/accounts.json"
		"$impactsim" -addr "$sim_addr" -accounts "$work/accounts.json" >"$work/sim.out" 2>"$work/sim.err" &
		sim_pid=$!
		wait_http "http://$sim_addr/_sim/clock" 30 || { cat "$work/sim.err" >&2; die "the simulator did not start on $sim_addr"; }
	}

	say "simulator on $sim_addr; database $CLICKHOUSE_DATABASE on $CLICKHOUSE_ADDR"
	start_sim screenshot-globex-token
	local client
	client=$(command -v clickhouse-client) || die "clickhouse-client is missing (make clickhouse)"
	"$client" --host "${CLICKHOUSE_ADDR%:*}" --port "${CLICKHOUSE_ADDR##*:}" -q "DROP DATABASE IF EXISTS \`$CLICKHOUSE_DATABASE\`"
	"$syncer" migrate >/dev/null
	echo screenshot-northwind-token | "$syncer" accounts add --id northwind --persona brand --sid IRScreenBrand00000000000000000001 --token-stdin >/dev/null
	echo screenshot-trailhead-token | "$syncer" accounts add --id trailhead --persona partner --sid IRScreenPartner000000000000000001 --token-stdin >/dev/null
	echo screenshot-globex-token | "$syncer" accounts add --id globex --persona brand --sid IRScreenBrand00000000000000000002 --token-stdin >/dev/null
	echo screenshot-initech-token | "$syncer" accounts add --id initech --persona brand --sid IRScreenBrand00000000000000000003 --token-stdin >/dev/null
	"$syncer" accounts disable initech >/dev/null
	say "first sync"
	"$syncer" sync >/dev/null

	say "globex's token is reset in impact.com; starting the worker on $http_addr"
	kill "$sim_pid" && wait "$sim_pid" 2>/dev/null || true
	start_sim screenshot-globex-token-after-reset
	"$syncer" run >"$work/worker.out" 2>"$work/worker.err" &
	worker_pid=$!
	wait_http "http://$http_addr/healthz" 60 || { cat "$work/worker.err" >&2; die "the worker did not start on $http_addr"; }
	local i
	for ((i = 0; i < 60; i++)); do
		if curl -s "http://$http_addr/" | grep -q 'data-status="needs_reconnect"'; then
			break
		fi
		sleep 1
	done
	sleep 6 # one more scheduled pass so the healthy accounts show fresh runs
	cmd_shot "http://$http_addr/" "$out"
}

case ${1:-} in
install) cmd_install ;;
shot) shift; cmd_shot "$@" ;;
dom) shift; cmd_dom "$@" ;;
status-page) shift; cmd_status_page "$@" ;;
*)
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
