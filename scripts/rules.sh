#!/usr/bin/env bash
# rules.sh checks and unit-tests the Prometheus alerting rules in deploy/prometheus
# with promtool (from Debian's prometheus package, installed with apt-get if missing).
#
#   scripts/rules.sh    promtool check rules, check config, test rules
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT/deploy/prometheus"

if ! command -v promtool >/dev/null 2>&1; then
	echo "rules: promtool missing; installing Debian's prometheus package"
	if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq
	# the package's service is not started in a container; it is not needed
	$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
	command -v promtool >/dev/null 2>&1 || { echo "rules: promtool still missing after apt-get" >&2; exit 1; }
fi
promtool check rules alerts.yml
promtool check config prometheus.yml
promtool test rules alerts_test.yml
