# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# redis.sh: a real redis-server for the fleet tests (t_fleet.sh), sourced
# after lib.sh and servers.sh: started on 127.0.0.1 in the foreground (no
# daemon, nothing saved), registered for the exit cleanup and stopped by
# pid, and redis-cli bounded (5 s) with the server's password, if any.
# Sets REDIS_PORT, REDIS_PID; REDIS_USER/REDIS_PASS are what stp_redis
# authenticates with (REDIS_PASS empty: no AUTH), REDIS_DB the database it
# selects (default 0).

REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
REDIS_PORT=
REDIS_PID=
REDIS_USER=
REDIS_PASS=
REDIS_DB=${REDIS_DB:-0}

# stp_redis_need: skip (77) unless redis-server and redis-cli are installed.
stp_redis_need() {
    if [ ! -x "$REDIS_SERVER" ]; then
        echo "SKIP: no $REDIS_SERVER (Debian: apt-get install redis-server)" >&2
        exit 77
    fi
    stp_need redis-cli
}

# stp_redis ARGS...: redis-cli against the test's server (REDIS_PORT) and
# database (REDIS_DB), with REDIS_USER/REDIS_PASS when set, bounded (5 s).
# Its output as redis-cli's.
stp_redis() {
    local auth=()
    if [ -n "$REDIS_PASS" ]; then
        auth=(--no-auth-warning -a "$REDIS_PASS")
        if [ -n "$REDIS_USER" ]; then
            auth+=(--user "$REDIS_USER")
        fi
    fi
    timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" -n "$REDIS_DB" "${auth[@]}" "$@"
}

# _stp_redis_up: the server answers PING (or it exited: stop waiting).
_stp_redis_up() {
    ! stp_alive "$REDIS_PID" ||
        { [ "$(stp_redis ping 2>/dev/null)" = PONG ] &&
            stp_port_owned "$REDIS_PORT" "$REDIS_PID"; }
}

# stp_redis_start DIR PORT [ARGS...]: redis-server on 127.0.0.1:PORT (0: a
# free port, another one if a parallel test took it first, 3 tries), its
# files in DIR (DIR/redis.log: its output), ARGS appended to its command
# line (--requirepass PASS sets REDIS_PASS, and REDIS_USER is cleared). A
# given PORT is not changed (a restart on the port the hosts know). Waits
# (10 s) for PONG; sets REDIS_PORT and REDIS_PID (registered).
stp_redis_start() {
    local dir=$1 want=$2 try a prev=
    shift 2
    REDIS_USER=
    REDIS_PASS=
    for a in "$@"; do
        if [ "$prev" = --requirepass ]; then
            REDIS_PASS=$a
        fi
        prev=$a
    done
    mkdir -p "$dir"
    for ((try = 1; try <= 3; try++)); do
        if [ "$want" = 0 ]; then
            REDIS_PORT=$(stp_free_port)
        else
            REDIS_PORT=$want
        fi
        "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save '' \
            --appendonly no --daemonize no --dir "$dir" --logfile '' "$@" \
            </dev/null >>"$dir/redis.log" 2>&1 &
        REDIS_PID=$!
        stp_register_pid "$REDIS_PID"
        STP_WAIT=10 stp_wait_for _stp_redis_up || true
        if stp_alive "$REDIS_PID" && [ "$(stp_redis ping 2>/dev/null)" = PONG ]; then
            echo "redis-server $REDIS_PID listens on 127.0.0.1:$REDIS_PORT" >&2
            export REDIS_PORT REDIS_PID
            return 0
        fi
        _stp_show "$dir/redis.log"
        stp_stop_pid "$REDIS_PID"
        stp_forget_pid "$REDIS_PID"
        [ "$want" = 0 ] || break
        echo "redis-server did not come up on port $REDIS_PORT (try $try)" >&2
    done
    stp_fail "redis-server did not start (port $REDIS_PORT)"
}

_stp_redis_port_free() {
    [ -z "$(stp_port_pids "$REDIS_PORT")" ]
}

# stp_redis_kill: SIGKILL to the server (a crash: nothing is said to its
# clients), then waits (bounded) until nothing listens on its port.
stp_redis_kill() {
    kill -KILL "$REDIS_PID" 2>/dev/null || true
    wait "$REDIS_PID" 2>/dev/null || true
    stp_forget_pid "$REDIS_PID"
    stp_wait_for _stp_redis_port_free ||
        stp_fail "port $REDIS_PORT still listened on after redis-server was killed"
    echo "redis-server $REDIS_PID killed" >&2
}

# stp_redis_stop: SIGTERM (SIGKILL after 3 s) to the server, by pid.
stp_redis_stop() {
    stp_stop_pid "$REDIS_PID"
    stp_forget_pid "$REDIS_PID"
}

# stp_redis_set_file KEY FILE [ARGS...]: SET KEY to the bytes of FILE,
# exactly (binary safe), with ARGS after the value (say, PX 4000).
stp_redis_set_file() {
    local key=$1 file=$2
    shift 2
    [ "$(stp_redis -X val SET "$key" val "$@" <"$file")" = OK ] ||
        stp_fail "redis SET $key from $file failed"
}

# stp_redis_get_file KEY FILE: FILE holds the value of KEY, exactly (empty
# when the key does not exist); returns 1 when it does not.
stp_redis_get_file() {
    local n
    n=$(stp_redis STRLEN "$1") || return 1
    # --raw prints the value and a newline
    stp_redis --raw GET "$1" | head -c "$n" >"$2" || return 1
    [ "$n" -gt 0 ]
}
