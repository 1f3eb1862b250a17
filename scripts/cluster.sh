#!/usr/bin/env bash
# cluster.sh runs a private ClickHouse cluster on loopback for the cluster tests
# and for trying `CLICKHOUSE_CLUSTER` by hand: one ZooKeeper (scripts/zookeeper.sh)
# and two clickhouse-server processes (scripts/clickhouse.sh, each with its own
# dir and ports plus a config.d/cluster.xml written here). The same two servers
# are described twice in remote_servers:
#
#   syncer_replicated   1 shard  x 2 replicas (node 1 and node 2 hold the same data)
#   syncer_sharded      2 shards x 1 replica  (node 1 is shard 1, node 2 is shard 2)
#
# Whatever is missing (zookeeper and a Java runtime, clickhouse-server and
# clickhouse-client, openssl) is installed with apt-get first.
#
# Node 1 also serves the native protocol over TLS, with a certificate signed by
# a CA this script makes with openssl (ca.pem; the certificate names localhost,
# 127.0.0.1 and ch1.cluster.test). Both nodes know a user `syncer` whose
# password is in $CLUSTER_DIR/password.
#
#   scripts/cluster.sh start         start ZooKeeper and both nodes, wait until all answer (idempotent)
#   scripts/cluster.sh stop          stop both nodes and ZooKeeper
#   scripts/cluster.sh start-node N  start node N (1 or 2) again, wait until it answers
#   scripts/cluster.sh stop-node N   stop node N gracefully
#   scripts/cluster.sh kill-node N   SIGKILL node N (a crash)
#   scripts/cluster.sh pid-node N    print node N's pid (exit 3 if not running)
#   scripts/cluster.sh zk VERB       scripts/zookeeper.sh VERB for the cluster's ZooKeeper (start, wait, stop, kill, ...)
#   scripts/cluster.sh env           print the variables a syncer needs for this cluster
#
# Environment (defaults in brackets):
#   CLUSTER_DIR     [<repo>/.cluster]  everything: ZooKeeper, both nodes, the CA and certificates
#   CLUSTER_PORT_1  [19101]            node 1 native port   (http 19111, interserver 19121, TLS 19141)
#   CLUSTER_PORT_2  [19102]            node 2 native port   (http 19112, interserver 19122)
#   CLUSTER_TLS_PORT [19141]           node 1 native TLS port
#   CLUSTER_ZK_PORT [19181]            ZooKeeper client port
#   CLUSTER_DDL_TIMEOUT [10]           seconds an ON CLUSTER statement waits for a host that is down
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER_DIR=${CLUSTER_DIR:-$ROOT/.cluster}
P1=${CLUSTER_PORT_1:-19101}
P2=${CLUSTER_PORT_2:-19102}
TLS_PORT=${CLUSTER_TLS_PORT:-19141}
ZK_PORT=${CLUSTER_ZK_PORT:-19181}
HTTP1=$((P1 + 10)) HTTP2=$((P2 + 10))
IS1=$((P1 + 20)) IS2=$((P2 + 20))

say() { printf 'cluster: %s\n' "$*"; }
die() { printf 'cluster: error: %s\n' "$*" >&2; exit 1; }

as_root() {
	if [[ $(id -u) -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) to run: $*"
	fi
}

# need_openssl installs openssl with apt-get if missing (it makes the CA and certificates).
need_openssl() {
	command -v openssl >/dev/null 2>&1 && return 0
	command -v apt-get >/dev/null 2>&1 || die "openssl is missing and apt-get is not available; install openssl yourself"
	say "installing openssl with apt-get"
	as_root apt-get update
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y openssl
	command -v openssl >/dev/null 2>&1 || die "apt-get finished but openssl is still missing"
}

port_of() { if [[ $1 == 1 ]]; then echo "$P1"; else echo "$P2"; fi; }
http_of() { if [[ $1 == 1 ]]; then echo "$HTTP1"; else echo "$HTTP2"; fi; }
is_of() { if [[ $1 == 1 ]]; then echo "$IS1"; else echo "$IS2"; fi; }

zk() { ZK_DIR=$CLUSTER_DIR/zookeeper ZK_PORT=$ZK_PORT "$ROOT/scripts/zookeeper.sh" "$@"; }
node() {
	local n=$1
	shift
	CH_DIR=$CLUSTER_DIR/node$n CH_PORT=$(port_of "$n") CH_HTTP_PORT=$(http_of "$n") "$ROOT/scripts/clickhouse.sh" "$@"
}

# make_certs writes a CA and a server certificate for node 1 (once).
make_certs() {
	local d=$CLUSTER_DIR/tls
	[[ -f $d/server.pem && -f $d/ca.pem && -f $d/dhparam.pem ]] && return 0
	need_openssl
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=impact-syncer test CA' \
		-keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -subj '/CN=ch1.cluster.test' -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
	printf 'subjectAltName=DNS:localhost,DNS:ch1.cluster.test,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/ext.cnf"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
		-extfile "$d/ext.cnf" -out "$d/server.pem" 2>/dev/null
	# A second CA that signed nothing here: the "wrong CA" of the tests.
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=some other CA' \
		-keyout "$d/other-ca.key" -out "$d/other-ca.pem" 2>/dev/null
	# ClickHouse 18.16 loads Diffie-Hellman parameters when named; small ones are enough for a test.
	openssl dhparam -out "$d/dhparam.pem" 1024 2>/dev/null
	chmod 600 "$d"/*.key
}

password() {
	[[ -f $CLUSTER_DIR/password ]] || { mkdir -p "$CLUSTER_DIR" && openssl rand -hex 16 >"$CLUSTER_DIR/password"; }
	cat "$CLUSTER_DIR/password"
}

# write_node_config N writes node N's config.d and users.d (clickhouse.sh
# writes config.xml and users.xml; the server merges these over them).
write_node_config() {
	local n=$1 dir=$CLUSTER_DIR/node$1 shard2 tls=''
	shard2=$n
	mkdir -p "$dir/config.d" "$dir/users.d"
	if [[ $n == 1 ]]; then
		tls="<tcp_port_secure>$TLS_PORT</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>$CLUSTER_DIR/tls/server.pem</certificateFile>
            <privateKeyFile>$CLUSTER_DIR/tls/server.key</privateKeyFile>
            <dhParamsFile>$CLUSTER_DIR/tls/dhparam.pem</dhParamsFile>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>"
	fi
	cat >"$dir/config.d/cluster.xml" <<EOF
<?xml version="1.0"?>
<!-- Written by scripts/cluster.sh; rewritten on every start. -->
<yandex>
    <interserver_http_port>$(is_of "$n")</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    $tls
    <remote_servers>
        <syncer_replicated>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>$P1</port></replica>
                <replica><host>127.0.0.1</host><port>$P2</port></replica>
            </shard>
        </syncer_replicated>
        <syncer_sharded>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>$P1</port></replica>
            </shard>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>$P2</port></replica>
            </shard>
        </syncer_sharded>
    </remote_servers>
    <zookeeper>
        <node><host>127.0.0.1</host><port>$ZK_PORT</port></node>
        <session_timeout_ms>6000</session_timeout_ms>
        <operation_timeout_ms>3000</operation_timeout_ms>
    </zookeeper>
    <!-- shard and replica name this node in syncer_replicated; sharded_shard
         names its shard in syncer_sharded (use a replica path with
         {sharded_shard} there, see docs/deployment.md). -->
    <macros>
        <shard>01</shard>
        <replica>r$n</replica>
        <sharded_shard>0$shard2</sharded_shard>
    </macros>
    <!-- Replicated tables made readonly by a lost ZooKeeper session retry
         every few seconds instead of every minute (the default). -->
    <merge_tree>
        <zookeeper_session_expiration_check_period>3</zookeeper_session_expiration_check_period>
    </merge_tree>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>
</yandex>
EOF
	cat >"$dir/users.d/syncer.xml" <<EOF
<?xml version="1.0"?>
<!-- Written by scripts/cluster.sh: user syncer with the password in $CLUSTER_DIR/password. -->
<yandex>
    <profiles>
        <default>
            <!-- an ON CLUSTER statement waits this long for a host that is down (default 180 s) -->
            <distributed_ddl_task_timeout>${CLUSTER_DDL_TIMEOUT:-10}</distributed_ddl_task_timeout>
        </default>
    </profiles>
    <users>
        <syncer>
            <password>$(password)</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </syncer>
    </users>
</yandex>
EOF
}

start_node() {
	local n=$1
	write_node_config "$n"
	node "$n" start
	node "$n" wait
}

cmd_start() {
	need_openssl
	mkdir -p "$CLUSTER_DIR"
	make_certs
	zk start
	zk wait
	"$ROOT/scripts/clickhouse.sh" install >/dev/null
	start_node 1
	start_node 2
	say "ready: nodes 127.0.0.1:$P1 (TLS :$TLS_PORT) and 127.0.0.1:$P2, ZooKeeper 127.0.0.1:$ZK_PORT"
}

cmd_stop() {
	CH_STOP_TIMEOUT=${CH_STOP_TIMEOUT:-10} node 1 stop || true
	CH_STOP_TIMEOUT=${CH_STOP_TIMEOUT:-10} node 2 stop || true
	zk stop || true
}

node_pid() {
	local f=$CLUSTER_DIR/node$1/clickhouse-server.pid pid
	[[ -f $f ]] || return 3
	pid=$(<"$f")
	[[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 3
	echo "$pid"
}

cmd_kill_node() {
	local pid
	if pid=$(node_pid "$1"); then
		kill -KILL "$pid"
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		say "node $1 (pid $pid) killed"
	fi
	rm -f "$CLUSTER_DIR/node$1/clickhouse-server.pid"
}

cmd_env() {
	cat <<EOF
CLICKHOUSE_ADDR=127.0.0.1:$P1,127.0.0.1:$P2
CLICKHOUSE_CLUSTER=syncer_replicated
CLICKHOUSE_USER=syncer
CLICKHOUSE_PASSWORD_FILE=$CLUSTER_DIR/password
# TLS (node 1 only): CLICKHOUSE_ADDR=127.0.0.1:$TLS_PORT CLICKHOUSE_SECURE=true CLICKHOUSE_CA_FILE=$CLUSTER_DIR/tls/ca.pem
EOF
}

node_arg() { [[ ${1:-} == 1 || ${1:-} == 2 ]] || die "want node 1 or 2"; }

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
start-node) node_arg "${2:-}" && start_node "$2" ;;
stop-node) node_arg "${2:-}" && node "$2" stop ;;
kill-node) node_arg "${2:-}" && cmd_kill_node "$2" ;;
pid-node) node_arg "${2:-}" && { node_pid "$2" || exit 3; } ;;
zk) shift && zk "$@" ;;
env) cmd_env ;;
-h | --help | help) sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//' ;;
*)
	sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//' >&2
	exit 2
	;;
esac
