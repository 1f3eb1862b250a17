#!/usr/bin/env bash
# clickhouse.sh runs a private ClickHouse server for tests and local development:
# its own config, data and logs under $CH_DIR, listening on 127.0.0.1 only, so it
# never collides with another server on the machine.
#
#   scripts/clickhouse.sh install   install clickhouse-server and clickhouse-client with apt-get if missing
#   scripts/clickhouse.sh start     install if needed, write the config, start in the background (idempotent)
#   scripts/clickhouse.sh wait      wait until the server answers SELECT 1 (timeout $CH_WAIT_TIMEOUT s)
#   scripts/clickhouse.sh stop      stop gracefully (SIGTERM), then SIGKILL after $CH_STOP_TIMEOUT s
#   scripts/clickhouse.sh status    say whether it runs; exit 0 if it answers, 3 if not
#
# Environment (defaults in brackets):
#   CH_DIR           [<repo>/.clickhouse]  config, data, tmp, logs and the pid file
#   CH_PORT          [19000]               native protocol port (what the Go code and tests use)
#   CH_HTTP_PORT     [18123]               HTTP port (not used by the project; ClickHouse wants one)
#   CH_WAIT_TIMEOUT  [60]                  seconds `wait` waits
#   CH_STOP_TIMEOUT  [30]                  seconds `stop` waits before SIGKILL
#
# Tests connect with CLICKHOUSE_ADDR=127.0.0.1:$CH_PORT (the default of internal/chtest).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CH_DIR=${CH_DIR:-$ROOT/.clickhouse}
CH_PORT=${CH_PORT:-19000}
CH_HTTP_PORT=${CH_HTTP_PORT:-18123}
CH_WAIT_TIMEOUT=${CH_WAIT_TIMEOUT:-60}
CH_STOP_TIMEOUT=${CH_STOP_TIMEOUT:-30}

PID_FILE=$CH_DIR/clickhouse-server.pid
CONFIG=$CH_DIR/config.xml
LOG=$CH_DIR/log/clickhouse-server.log
ERR_LOG=$CH_DIR/log/clickhouse-server.err.log
STDOUT_LOG=$CH_DIR/log/stdout.log

say() { printf 'clickhouse: %s\n' "$*"; }
die() { printf 'clickhouse: error: %s\n' "$*" >&2; exit 1; }

server_bin() {
	local b
	for b in "$(command -v clickhouse-server 2>/dev/null || true)" /usr/sbin/clickhouse-server /usr/bin/clickhouse-server; do
		if [[ -n $b && -x $b ]]; then
			echo "$b"
			return 0
		fi
	done
	return 1
}

client_bin() {
	command -v clickhouse-client 2>/dev/null || { [[ -x /usr/bin/clickhouse-client ]] && echo /usr/bin/clickhouse-client; }
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
	if server_bin >/dev/null && client_bin >/dev/null; then
		say "installed: $(server_bin), $(client_bin)"
		return 0
	fi
	command -v apt-get >/dev/null 2>&1 || die "clickhouse-server is missing and apt-get is not available; install ClickHouse yourself"
	say "installing clickhouse-server and clickhouse-client with apt-get"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y clickhouse-server clickhouse-client
	server_bin >/dev/null || die "apt-get finished but clickhouse-server is still missing"
	client_bin >/dev/null || die "apt-get finished but clickhouse-client is still missing"
	say "installed: $(server_bin)"
}

# answers reports whether a server answers SELECT 1 on the native port.
answers() {
	local client
	client=$(client_bin) || return 1
	"$client" --host 127.0.0.1 --port "$CH_PORT" -q 'SELECT 1' >/dev/null 2>&1
}

# our_pid prints the pid from the pid file when that process is alive and is
# the server started with our config (a recycled pid is not ours).
our_pid() {
	[[ -f $PID_FILE ]] || return 1
	local pid
	pid=$(<"$PID_FILE")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	if [[ -r /proc/$pid/cmdline ]]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$CONFIG" || return 1
	fi
	echo "$pid"
}

write_config() {
	mkdir -p "$CH_DIR"/{data,tmp,log,user_files,format_schemas}
	# ClickHouse 18.16 needs <path>, <tmp_path>, <users_config>, <mark_cache_size>
	# and a logger; <user_files_path> and <format_schema_path> keep it from
	# touching /var/lib/clickhouse. <yandex> is also accepted by modern servers.
	cat >"$CONFIG" <<EOF
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse.sh; edits are overwritten on every start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$LOG</log>
        <errorlog>$ERR_LOG</errorlog>
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$CH_PORT</tcp_port>
    <http_port>$CH_HTTP_PORT</http_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$CH_DIR/data/</path>
    <tmp_path>$CH_DIR/tmp/</tmp_path>
    <user_files_path>$CH_DIR/user_files/</user_files_path>
    <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
    <users_config>$CH_DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <builtin_dictionaries_reload_interval>3600</builtin_dictionaries_reload_interval>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
EOF
	cat >"$CH_DIR/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse.sh: user default, no password, loopback only. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

cmd_start() {
	local pid
	if pid=$(our_pid); then
		if answers; then
			say "already running (pid $pid, port $CH_PORT)"
		else
			say "already started (pid $pid), not answering yet; run: $0 wait"
		fi
		return 0
	fi
	rm -f "$PID_FILE"
	if answers; then
		say "a server not started by this script already answers on 127.0.0.1:$CH_PORT; using it"
		return 0
	fi
	server_bin >/dev/null || cmd_install
	local bin
	bin=$(server_bin)
	write_config
	say "starting $bin (native 127.0.0.1:$CH_PORT, http $CH_HTTP_PORT, dir $CH_DIR)"
	# The server runs in the foreground of its own session, so it outlives this
	# script and a Ctrl-C in the calling shell. ClickHouse 18.16 runs as root
	# without complaint; the data dir is owned by whoever runs this script.
	(cd "$CH_DIR" && exec setsid "$bin" --config-file="$CONFIG" >>"$STDOUT_LOG" 2>&1 </dev/null) &
	pid=$!
	echo "$pid" >"$PID_FILE"
	sleep 0.3
	if ! kill -0 "$pid" 2>/dev/null; then
		rm -f "$PID_FILE"
		tail -n 20 "$STDOUT_LOG" "$ERR_LOG" 2>/dev/null >&2 || true
		die "server exited right after start; see $ERR_LOG and $STDOUT_LOG"
	fi
	say "started (pid $pid); run: $0 wait"
}

cmd_wait() {
	local client
	client=$(client_bin) || die "clickhouse-client is missing; run: $0 install"
	local deadline=$((SECONDS + CH_WAIT_TIMEOUT))
	say "waiting for 127.0.0.1:$CH_PORT (up to ${CH_WAIT_TIMEOUT}s)"
	while ! answers; do
		if [[ -f $PID_FILE ]] && ! our_pid >/dev/null; then
			tail -n 20 "$ERR_LOG" 2>/dev/null >&2 || true
			die "the server started by this script is no longer running; see $ERR_LOG and $STDOUT_LOG"
		fi
		if ((SECONDS >= deadline)); then
			tail -n 20 "$ERR_LOG" 2>/dev/null >&2 || true
			die "no answer on 127.0.0.1:$CH_PORT after ${CH_WAIT_TIMEOUT}s; see $LOG and $ERR_LOG"
		fi
		sleep 0.5
	done
	say "ready: $("$client" --host 127.0.0.1 --port "$CH_PORT" -q 'SELECT version()') on 127.0.0.1:$CH_PORT"
}

cmd_stop() {
	local pid
	if ! pid=$(our_pid); then
		rm -f "$PID_FILE"
		say "not running (no live server started from $CH_DIR)"
		return 0
	fi
	say "stopping pid $pid"
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + CH_STOP_TIMEOUT))
	while kill -0 "$pid" 2>/dev/null; do
		if ((SECONDS >= deadline)); then
			say "still running after ${CH_STOP_TIMEOUT}s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.3
	done
	rm -f "$PID_FILE"
	say "stopped"
}

cmd_status() {
	local pid
	if pid=$(our_pid); then
		if answers; then
			say "running (pid $pid), answering on 127.0.0.1:$CH_PORT"
			return 0
		fi
		say "running (pid $pid) but not answering on 127.0.0.1:$CH_PORT"
		return 3
	fi
	if answers; then
		say "a server not started by this script answers on 127.0.0.1:$CH_PORT"
		return 0
	fi
	say "not running"
	return 3
}

usage() {
	sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
wait) cmd_wait ;;
stop) cmd_stop ;;
status) cmd_status ;;
-h | --help | help) usage ;;
*)
	usage >&2
	exit 2
	;;
esac
