#!/usr/bin/env bash
# The servers jobsched's tests and distributed mode need, on 127.0.0.1, without systemd.
#
#   scripts/services.sh start [server…]   install what is missing (apt), start the servers (mariadb,
#                                 zookeeper, kafka; default all), wait until each answers
#   scripts/services.sh stop [server…]    stop the servers (default all) this script started
#   scripts/services.sh status    say what runs
#   scripts/services.sh env       print the connection settings as shell lines:
#                                 eval "$(scripts/services.sh env)"
#
# Idempotent: a server already running (started by this script, or answering with its credentials) is reused.
# State (data directories, sockets, pid files, logs) lives in $JOBSCHED_SERVICES_DIR (default .services/ in
# the checkout, or /var/tmp/jobsched-services-<id> when the checkout is not reachable by other users).
#
# Servers: MariaDB (the MySQL store), ZooKeeper (coordination), a Kafka-protocol broker (Tansu: dispatch).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)

# True if every directory from / down to $1 lets other users through (the servers run as their own
# users, e.g. mysql, and must reach their data directories).
others_can_reach() {
    local d=$1
    while [[ -n $d && $d != / ]]; do
        [[ -e $d ]] || { d=$(dirname "$d"); continue; }
        case $(stat -c %A "$d") in
        *x | *t) ;;
        *) return 1 ;;
        esac
        d=$(dirname "$d")
    done
}

# State lives in the checkout (.services/) unless the checkout is private (a clone in a mktemp
# directory): then under /var/tmp, one directory per checkout.
if [[ -n ${JOBSCHED_SERVICES_DIR:-} ]]; then
    STATE=$JOBSCHED_SERVICES_DIR
elif others_can_reach "$ROOT"; then
    STATE=$ROOT/.services
else
    STATE=/var/tmp/jobsched-services-$(printf %s "$ROOT" | cksum | cut -d' ' -f1)
fi
MYSQL_PORT=${JOBSCHED_MYSQL_PORT:-3306}
MYSQL_USER=jobsched
MYSQL_PASSWORD=jobsched
MYSQL_DB=jobsched

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Waits until "$@" succeeds, polling every 0.1 s for at most $1 seconds (never a fixed sleep).
wait_for() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            die "$what did not become ready within ${secs}s"
        fi
        sleep 0.1
    done
}

# Stops the daemon whose pid file is $2 (TERM, then KILL after 30 s) and removes the pid file.
stop_pidfile() {
    local what=$1 pidfile=$2
    [[ -f $pidfile ]] || return 0
    log "stopping $what"
    start-stop-daemon --stop --oknodo --pidfile "$pidfile" --retry TERM/30/KILL/5 >/dev/null || true
    rm -f "$pidfile"
}

# shellcheck source=apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

# ---------------------------------------------------------------- MariaDB

MYSQL_DIR=$STATE/mariadb
MYSQL_SOCK=$MYSQL_DIR/mysqld.sock

mysql_ours_running() { [[ -S $MYSQL_SOCK ]] && mariadb-admin --socket="$MYSQL_SOCK" -uroot ping >/dev/null 2>&1; }

mysql_tcp_works() {
    mariadb --protocol=tcp -h127.0.0.1 -P"$MYSQL_PORT" -u"$MYSQL_USER" -p"$MYSQL_PASSWORD" -e 'SELECT 1' >/dev/null 2>&1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

mysql_start() {
    apt_install mariadb-server mariadb-client
    if mysql_ours_running; then
        log "MariaDB already running (ours, port $MYSQL_PORT)"
    elif mysql_tcp_works; then
        log "MariaDB already running on port $MYSQL_PORT and our credentials work: reusing it"
        return 0
    else
        if port_busy "$MYSQL_PORT"; then
            die "port $MYSQL_PORT is taken by a server where user '$MYSQL_USER' cannot log in; set JOBSCHED_MYSQL_PORT"
        fi
        mkdir -p "$MYSQL_DIR"
        chmod 755 "$STATE"
        chown mysql:mysql "$MYSQL_DIR"
        if [[ ! -d $MYSQL_DIR/data/mysql ]]; then
            log "initialising a MariaDB data directory in $MYSQL_DIR/data"
            mariadb-install-db --user=mysql --datadir="$MYSQL_DIR/data" --skip-test-db \
                --auth-root-authentication-method=socket >"$MYSQL_DIR/install.log" 2>&1 ||
                die "mariadb-install-db failed: see $MYSQL_DIR/install.log"
        fi
        log "starting MariaDB on 127.0.0.1:$MYSQL_PORT"
        start-stop-daemon --start --oknodo --background --make-pidfile --pidfile "$MYSQL_DIR/ssd.pid" \
            --chuid mysql --exec /usr/sbin/mariadbd -- --no-defaults --datadir="$MYSQL_DIR/data" \
            --socket="$MYSQL_SOCK" --pid-file="$MYSQL_DIR/mysqld.pid" --port="$MYSQL_PORT" \
            --bind-address=127.0.0.1 --skip-name-resolve --log-error="$MYSQL_DIR/error.log" \
            --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
            --max-connections=500 --innodb-buffer-pool-size=256M
        wait_for 60 "MariaDB" mariadb-admin --socket="$MYSQL_SOCK" -uroot ping
    fi
    # The tests create a fresh database per test, so the user may create and drop databases.
    mariadb --socket="$MYSQL_SOCK" -uroot <<SQL
CREATE USER IF NOT EXISTS '$MYSQL_USER'@'127.0.0.1' IDENTIFIED BY '$MYSQL_PASSWORD';
GRANT ALL PRIVILEGES ON *.* TO '$MYSQL_USER'@'127.0.0.1';
CREATE DATABASE IF NOT EXISTS \`$MYSQL_DB\` CHARACTER SET utf8mb4;
SQL
    wait_for 10 "MariaDB (TCP login)" mysql_tcp_works
    log "MariaDB ready: mysql://$MYSQL_USER:***@127.0.0.1:$MYSQL_PORT/$MYSQL_DB"
}

mysql_stop() { stop_pidfile MariaDB "$MYSQL_DIR/ssd.pid"; }

mysql_status() {
    if mysql_ours_running; then
        echo "mariadb: running (ours) on 127.0.0.1:$MYSQL_PORT"
    elif mysql_tcp_works; then
        echo "mariadb: running (not started by this script) on 127.0.0.1:$MYSQL_PORT"
    else
        echo "mariadb: stopped"
    fi
}

mysql_env() {
    echo "export JOBSCHED_STORE=mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT/$MYSQL_DB"
    echo "export JOBSCHED_TEST_MYSQL=mysql://$MYSQL_USER:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT"
}

# ---------------------------------------------------------------- ZooKeeper

ZK_PORT=${JOBSCHED_ZK_PORT:-2181}
ZK_DIR=$STATE/zookeeper

zk_answers() {
    local reply
    reply=$(bash -c "exec 3<>/dev/tcp/127.0.0.1/$ZK_PORT && printf ruok >&3 && timeout 2 cat <&3" 2>/dev/null) ||
        return 1
    [[ $reply == imok ]]
}

zk_start() {
    apt_install zookeeper
    if zk_answers; then
        log "ZooKeeper already running on 127.0.0.1:$ZK_PORT: reusing it"
        return 0
    fi
    port_busy "$ZK_PORT" && die "port $ZK_PORT is taken by something that is not ZooKeeper; set JOBSCHED_ZK_PORT"
    mkdir -p "$ZK_DIR/data"
    cat >"$ZK_DIR/zoo.cfg" <<CFG
tickTime=500
initLimit=10
syncLimit=5
dataDir=$ZK_DIR/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr
maxSessionTimeout=60000
minSessionTimeout=1000
CFG
    log "starting ZooKeeper on 127.0.0.1:$ZK_PORT"
    local cp=/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar
    start-stop-daemon --start --background --make-pidfile --pidfile "$ZK_DIR/zk.pid" \
        --output "$ZK_DIR/zookeeper.log" --exec "$(command -v java)" -- -Xmx256m \
        -Dzookeeper.log.dir="$ZK_DIR" -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZK_DIR/zoo.cfg"
    wait_for 60 "ZooKeeper" zk_answers
    log "ZooKeeper ready: 127.0.0.1:$ZK_PORT"
}

zk_stop() { stop_pidfile ZooKeeper "$ZK_DIR/zk.pid"; }

zk_status() {
    if zk_answers; then echo "zookeeper: running on 127.0.0.1:$ZK_PORT"; else echo "zookeeper: stopped"; fi
}

zk_env() {
    echo "export JOBSCHED_ZOOKEEPER=127.0.0.1:$ZK_PORT"
    echo "export JOBSCHED_TEST_ZOOKEEPER=127.0.0.1:$ZK_PORT"
}

# ---------------------------------------------------------------- Kafka (Tansu, a Kafka-compatible broker)

KAFKA_PORT=${JOBSCHED_KAFKA_PORT:-9092}
KAFKA_DIR=$STATE/kafka
TANSU_VERSION=0.6.0

tansu_bin() { command -v tansu || { [[ -x $HOME/.cargo/bin/tansu ]] && echo "$HOME/.cargo/bin/tansu"; }; }

kafka_start() {
    if [[ -z $(tansu_bin) ]]; then
        # Not packaged in Debian; built from crates.io once (10-20 min on 2 cores) and reused.
        log "installing the Tansu broker $TANSU_VERSION (cargo install; takes a while once)"
        cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
            >"$STATE/tansu-install.log" 2>&1 || die "installing tansu failed: see $STATE/tansu-install.log"
    fi
    if port_busy "$KAFKA_PORT"; then
        log "a broker already listens on 127.0.0.1:$KAFKA_PORT: reusing it"
        return 0
    fi
    mkdir -p "$KAFKA_DIR"
    log "starting the Kafka broker (Tansu, SQLite storage) on 127.0.0.1:$KAFKA_PORT"
    # Tansu resolves sqlite:// paths against its working directory and reads a .env from it: run it in
    # its own directory.
    # start-stop-daemon detaches it from this script's file descriptors (a pipe left open would keep a
    # caller such as `services.sh start | tail` waiting).
    start-stop-daemon --start --background --make-pidfile --pidfile "$KAFKA_DIR/tansu.pid" \
        --chdir "$KAFKA_DIR" --output "$KAFKA_DIR/tansu.log" --exec "$(tansu_bin)" -- \
        broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine sqlite://tansu.db
    wait_for 60 "the Kafka broker" port_busy "$KAFKA_PORT"
    log "Kafka broker ready: 127.0.0.1:$KAFKA_PORT"
}

kafka_stop() { stop_pidfile "the Kafka broker" "$KAFKA_DIR/tansu.pid"; }

kafka_status() {
    if port_busy "$KAFKA_PORT"; then echo "kafka: running on 127.0.0.1:$KAFKA_PORT"; else echo "kafka: stopped"; fi
}

kafka_env() {
    echo "export JOBSCHED_KAFKA=127.0.0.1:$KAFKA_PORT"
    echo "export JOBSCHED_TEST_KAFKA=127.0.0.1:$KAFKA_PORT"
}

# ---------------------------------------------------------------- main

# The servers named after the command (mariadb, zookeeper, kafka), or all of them.
servers() {
    if (($# == 0)); then
        echo mariadb zookeeper kafka
        return
    fi
    for s in "$@"; do
        case $s in
        mariadb | zookeeper | kafka) echo "$s" ;;
        *) die "unknown server '$s' (expected mariadb, zookeeper or kafka)" ;;
        esac
    done
}

cmd=${1:-}
shift || true
case $cmd in
start)
    for s in $(servers "$@"); do
        case $s in
        mariadb) mysql_start ;;
        zookeeper) zk_start ;;
        kafka) kafka_start ;;
        esac
    done
    ;;
stop)
    # Only servers this script started (their pid files) are stopped.
    for s in $(servers "$@"); do
        case $s in
        mariadb) mysql_stop ;;
        zookeeper) zk_stop ;;
        kafka) kafka_stop ;;
        esac
    done
    ;;
status)
    mysql_status
    zk_status
    kafka_status
    ;;
env)
    echo "export JOBSCHED_SERVICES_STATE=$STATE"
    mysql_env
    zk_env
    kafka_env
    ;;
*)
    echo "usage: $0 start|stop [mariadb|zookeeper|kafka …] | status | env" >&2
    exit 2
    ;;
esac
