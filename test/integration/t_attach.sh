#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_attach.sh [fork|fleetfork]: an application that links libocspstaple.so
# and calls ocspstaple_attach() (no openssl.cnf, no LD_PRELOAD) staples
# verified responses; its own counters agree with what the client saw.
# Attaching starts no thread. With `fork`, the application forks after
# attaching, as a prefork server does, and the child serves from 4 threads:
# its own refresher staples, with one request. With `fleetfork`, the policy
# has a fleet (a real redis-server): the serving process holds a connection
# to it after its refresh, then forks a helper child (SIGUSR1), which must
# not hold that connection too (a Redis connection never serves two
# processes).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

stp_need openssl
# (no stp_hook_need: this host is ours, so sanitizer builds run it as is)
[ -f "${STP_HOOK:-}" ] || { echo "SKIP: no hook" >&2; exit 77; }
[ -x "${STP_ATTACH_SERVER_MT:-}" ] || { echo "SKIP: no attach server" >&2; exit 77; }
stp_setup
P=$T/pki
mkdir -p "$P"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
MODE=${1:-plain}
if [ "$MODE" = fleetfork ]; then
    # shellcheck source-path=SCRIPTDIR source=../support/redis.sh
    source "$STP_SUPPORT/redis.sh"
    stp_redis_need
    stp_need ss
    stp_redis_start "$T/redis" 0
    stp_conf "$T/stp.cnf" preload "fleet_url = redis://127.0.0.1:$REDIS_PORT/0" \
        "fleet_host = forker"
else
    stp_conf "$T/stp.cnf" preload
fi
FORK=0
THREADS=1
SECOND=()  # a second certificate and key in the same context
FETCHES=1
if [ "$MODE" = fork ]; then
    FORK=1
    THREADS=4
elif [ "$MODE" = fleetfork ]; then
    # two certificates: two refresher workers use the fleet's connection
    # pool at once (what ThreadSanitizer needs to see)
    THREADS=4
    SECOND=("$P/good.pem" "$P/good.key")
    FETCHES=2
fi

stp_start_s_server "$T/srv.out" 5 env OCSPSTAPLE_CONF="$T/stp.cnf" \
    OPENSSL_CONF=/dev/null \
    OCSPSTAPLE_DEBUG="level:debug,file:$T/hook.log" \
    ASAN_OPTIONS=detect_leaks=0 STP_ATTACH_FORK=$FORK \
    "$STP_ATTACH_SERVER_MT" "$P/ecdsa.pem" "$P/ecdsa.key" "$P/int.pem" "$THREADS" \
    "${SECOND[@]}"
stp_assert_file_contains "$T/srv.out" "attach=1" "ocspstaple_attach succeeded"
stp_assert_file_contains "$T/srv.out" "^threads_after_attach=1$" \
    "attaching starts no thread"
stp_wait_staple "$S_SERVER_PORT" --CAfile "$P/root.pem"
stp_probe "$S_SERVER_PORT" --count 2 --require-staple
[ "$RC" -eq 0 ] || stp_fail "stapled handshakes: $PROBE"
if [ "$MODE" = fleetfork ]; then
    # redis_users: the pids holding a connection to Redis, one per line
    redis_users() {
        ss -tnpH state established "( dport = :$REDIS_PORT )" |
            grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
    }
    _published() { [ "$(stp_redis hget "ocspstaple:meta:$(stp_id ecdsa)" host)" = forker ]; }
    stp_wait_for _published || stp_fail "the response was not published to the fleet"
    redis_users | grep -qx "$S_SERVER_PID" ||
        stp_fail "the serving process holds no connection to Redis: $(redis_users | tr '\n' ' ')"
    kill -USR1 "$S_SERVER_PID"
    _spawned() { grep -q '^SPAWNED ' "$T/srv.out"; }
    stp_wait_for _spawned || stp_fail "no helper child spawned"
    CHILD=$(sed -n 's/^SPAWNED //p' "$T/srv.out" | head -n 1)
    stp_register_pid "$CHILD"
    stp_alive "$CHILD" || stp_fail "the helper child $CHILD is not running"
    if redis_users | grep -qx "$CHILD"; then
        stp_fail "the helper child $CHILD holds its parent's Redis connection"
    fi
    # and the parent still uses the fleet (its connection was not closed)
    redis_users | grep -qx "$S_SERVER_PID" ||
        stp_fail "the parent lost its Redis connection at the fork"
    stp_stop_pid "$CHILD"
    stp_forget_pid "$CHILD"
fi
# SIGTERM: the server prints its counters and exits
kill -TERM "$S_SERVER_PID"
wait "$S_SERVER_PID" || true
# (with fork, the parent waited for its child, which printed the counters)
stp_forget_pid "$S_SERVER_PID"
cat "$T/srv.out" >&2
stp_assert_file_contains "$T/srv.out" "^fetch_ok=$FETCHES$" "$FETCHES fetch(es)"
stp_assert_file_contains "$T/srv.out" "^refreshers=1$" "one refresher"
served=$(sed -n 's/^staples_served=//p' "$T/srv.out")
[ "${served:-0}" -ge 3 ] || stp_fail "staples_served=$served, wanted >= 3"
stp_assert_eq "$(stp_responder_requests "$P")" "$FETCHES" "one responder request per certificate"
stp_no_errors "$T/hook.log"
stp_ok "attach $MODE"
