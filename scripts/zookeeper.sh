#!/usr/bin/env bash
# zookeeper.sh runs a private standalone ZooKeeper (Debian's package, 3.8) for
# tests and local development: its own config, data and logs under $ZK_DIR,
# listening on 127.0.0.1:$ZK_PORT only. Several can run at once with different
# ZK_DIR and ZK_PORT (the cluster tests and the fleet tests each start their own,
# and stop them by pid).
#
#   scripts/zookeeper.sh install   install Debian's zookeeper (and a Java runtime) with apt-get if missing
#   scripts/zookeeper.sh start     install if needed, write the config, start in the background (idempotent)
#   scripts/zookeeper.sh wait      wait until the server answers `ruok` with `imok` (timeout $ZK_WAIT_TIMEOUT s)
#   scripts/zookeeper.sh stop      stop (SIGTERM, then SIGKILL after $ZK_STOP_TIMEOUT s)
#   scripts/zookeeper.sh kill      SIGKILL at once (a crash, for fault tests)
#   scripts/zookeeper.sh status    exit 0 if it answers, 3 if not
#   scripts/zookeeper.sh pid       print the server's pid (exit 3 if not running)
#
# Environment (defaults in brackets):
#   ZK_DIR           [<repo>/.zookeeper]   config, data, logs and the pid file
#   ZK_PORT          [19181]               client port
#   ZK_WAIT_TIMEOUT  [60]                  seconds `wait` waits
#   ZK_STOP_TIMEOUT  [20]                  seconds `stop` waits before SIGKILL
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ZK_DIR=${ZK_DIR:-$ROOT/.zookeeper}
ZK_PORT=${ZK_PORT:-19181}
ZK_WAIT_TIMEOUT=${ZK_WAIT_TIMEOUT:-60}
ZK_STOP_TIMEOUT=${ZK_STOP_TIMEOUT:-20}
ZK_JAR=/usr/share/java/zookeeper.jar

PID_FILE=$ZK_DIR/zookeeper.pid
CONFIG=$ZK_DIR/zoo.cfg
LOG=$ZK_DIR/zookeeper.log

say() { printf 'zookeeper: %s\n' "$*"; }
die() { printf 'zookeeper: error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

installed() { [[ -f $ZK_JAR ]] && command -v java >/dev/null 2>&1; }

cmd_install() {
	if installed; then
		say "installed: $ZK_JAR"
		return 0
	fi
	command -v apt-get >/dev/null 2>&1 || die "zookeeper is missing and apt-get is not available; install ZooKeeper 3.x yourself"
	say "installing zookeeper with apt-get"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y zookeeper
	installed || die "apt-get finished but $ZK_JAR or java is still missing"
}

# ask sends a four-letter word to the client port and prints the answer.
ask() {
	timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$ZK_PORT"' && printf "%s" "$1" >&3 && cat <&3' _ "$1" 2>/dev/null || true
}

answers() { [[ $(ask ruok) == imok ]]; }

our_pid() {
	local pid
	[[ -f $PID_FILE ]] || return 1
	pid=$(cat "$PID_FILE")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
	# A recycled pid is not ours: the process must be the server of our config.
	if [[ -r /proc/$pid/cmdline ]]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONFIG" || return 1
	fi
	echo "$pid"
}

write_config() {
	mkdir -p "$ZK_DIR/data"
	# A short tick lets tests use session timeouts of a few seconds
	# (ZooKeeper allows 2 to 20 ticks unless min/maxSessionTimeout say otherwise).
	cat >"$CONFIG" <<CFG
# Written by scripts/zookeeper.sh: standalone, loopback only.
tickTime=500
initLimit=10
syncLimit=5
dataDir=$ZK_DIR/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
minSessionTimeout=1000
maxSessionTimeout=60000
maxClientCnxns=200
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr,cons
autopurge.purgeInterval=1
CFG
}

cmd_start() {
	local pid
	if pid=$(our_pid); then
		say "already running (pid $pid, port $ZK_PORT)"
		return 0
	fi
	rm -f "$PID_FILE"
	if answers; then
		# Never reuse it: tests stop and kill "their" ZooKeeper, and a server
		# started elsewhere (say, left behind by a killed test run) would
		# survive that and make the test see a keeper that never went away.
		die "a ZooKeeper not started from $ZK_DIR already answers on 127.0.0.1:$ZK_PORT: stop it, or choose another ZK_PORT"
	fi
	installed || cmd_install
	write_config
	say "starting ZooKeeper (127.0.0.1:$ZK_PORT, dir $ZK_DIR)"
	# The manifest of Debian's zookeeper.jar names its dependencies; the log4j
	# configuration of the package writes to zookeeper.log.dir.
	(cd "$ZK_DIR" && exec setsid java -Xmx256m -Dzookeeper.log.dir="$ZK_DIR" -Dzookeeper.root.logger=INFO,ROLLINGFILE \
		-Dlog4j.configuration=file:/etc/zookeeper/conf/log4j.properties \
		-cp "/etc/zookeeper/conf:$ZK_JAR" org.apache.zookeeper.server.ZooKeeperServerMain "$CONFIG" >>"$LOG" 2>&1 </dev/null) &
	pid=$!
	echo "$pid" >"$PID_FILE"
	sleep 0.3
	if ! kill -0 "$pid" 2>/dev/null; then
		rm -f "$PID_FILE"
		tail -n 20 "$LOG" >&2 || true
		die "server exited right after start; see $LOG"
	fi
	say "started (pid $pid); run: $0 wait"
}

cmd_wait() {
	local deadline=$((SECONDS + ZK_WAIT_TIMEOUT))
	while ! answers; do
		if [[ -f $PID_FILE ]] && ! our_pid >/dev/null; then
			tail -n 20 "$LOG" >&2 || true
			die "the server started by this script is no longer running; see $LOG"
		fi
		((SECONDS < deadline)) || die "no answer on 127.0.0.1:$ZK_PORT after ${ZK_WAIT_TIMEOUT}s; see $LOG"
		sleep 0.3
	done
	say "ready on 127.0.0.1:$ZK_PORT"
}

cmd_stop() {
	local pid
	if ! pid=$(our_pid); then
		rm -f "$PID_FILE"
		say "not running (no live server started from $ZK_DIR)"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + ZK_STOP_TIMEOUT))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.2
	done
	rm -f "$PID_FILE"
	say "stopped"
}

cmd_kill() {
	local pid
	if pid=$(our_pid); then
		kill -KILL "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	fi
	rm -f "$PID_FILE"
	say "killed"
}

cmd_status() {
	if answers; then
		say "answering on 127.0.0.1:$ZK_PORT"
		return 0
	fi
	say "not answering on 127.0.0.1:$ZK_PORT"
	return 3
}

cmd_pid() {
	our_pid || exit 3
}

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
wait) cmd_wait ;;
stop) cmd_stop ;;
kill) cmd_kill ;;
status) cmd_status ;;
pid) cmd_pid ;;
-h | --help | help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
