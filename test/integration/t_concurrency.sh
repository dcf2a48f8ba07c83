#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_concurrency.sh SCENARIO: several servers share one store_dir under a
# parallel handshake load (`ocspstaple probe --count` from several shells)
# while their refreshers, and `ocspstaple refresh` in a loop, renew
# responses that live 2 minutes (the responder runs with --nmin 2) on a
# short schedule. Every handshake completes with a staple that verifies,
# the responder gets one request per certificate per refresh round, and no
# ERROR is logged.
#   servers: 4 `openssl s_server` (RSA and ECDSA certificates each) under
#            LD_PRELOAD; skipped in ThreadSanitizer builds (uninstrumented
#            host)
#   mt:      2 stp_attach_server_mt (support/attach_server_mt.c, 4 threads
#            each, linked with libocspstaple.so): the host is ours, so
#            ThreadSanitizer builds run it and must report nothing
#   margin:  2 `openssl s_server`: the round comes from refresh_margin
#            alone (90%: thisUpdate + 12 s), clock_skew 5 s
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

SCEN=${1:?scenario}
stp_need openssl
case $SCEN in
mt)
    [ -f "${STP_HOOK:-}" ] || { echo "SKIP: no hook" >&2 && exit 77; }
    [ -x "${STP_ATTACH_SERVER_MT:-}" ] ||
        { echo "SKIP: no stp_attach_server_mt" >&2 && exit 77; }
    NSERVERS=2
    ;;
servers) NSERVERS=4 ;;
margin) NSERVERS=2 ;;
*) stp_fail "unknown scenario $SCEN" ;;
esac
[ "$SCEN" = mt ] || stp_hook_need
stp_setup
P=$T/pki
mkdir -p "$P"
stp_start_responder "$P" --nmin 2
stp_mkpki "$P" "$RESPONDER_PORT"
CONF=$T/stp.cnf
ROUND=12 # seconds from a response's thisUpdate to its refresh
if [ "$SCEN" = margin ]; then
    # 10% of 120 s left: thisUpdate + 12 s (refresh_min 10 s is below)
    stp_conf "$CONF" preload "refresh_margin = 90" "refresh_min = 10s" \
        "refresh_jitter = 0" "clock_skew = 5s" "retry_base = 1s" \
        "ca_file = $P/root.pem"
else
    # refresh_margin 90 and nextUpdate - clock_skew (120 - 108) both put
    # the refresh at thisUpdate + 12 s (see the margin scenario)
    stp_conf "$CONF" preload "refresh_margin = 90" "refresh_min = 10s" \
        "refresh_jitter = 0" "clock_skew = 108s" "retry_base = 1s" \
        "ca_file = $P/root.pem"
fi
RSA=(--sigalgs "RSA-PSS+SHA256:RSA+SHA256")
EC=(--sigalgs "ECDSA+SHA256")
SHELLS=${STP_LOAD_SHELLS:-4}
COUNT=${STP_LOAD_COUNT:-20}

PORTS=()
SPIDS=()
# start_server I: server I of the scenario, on a kernel-chosen port.
start_server() {
    if [ "$SCEN" = mt ]; then
        stp_start_s_server "$T/srv$1.out" 5 env OCSPSTAPLE_CONF="$CONF" \
            OPENSSL_CONF=/dev/null \
            OCSPSTAPLE_DEBUG="level:debug,file:$T/hook.log" \
            ASAN_OPTIONS=detect_leaks=0 \
            TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1" \
            "$STP_ATTACH_SERVER_MT" "$P/good.pem" "$P/good.key" "$P/int.pem" 4 \
            "$P/ecdsa.pem" "$P/ecdsa.key"
        stp_assert_file_contains "$T/srv$1.out" "^attach=1$" "attached"
    else
        # shellcheck disable=SC2046
        stp_start_s_server "$T/srv$1.out" 5 env $(stp_route_env preload "$CONF") \
            openssl s_server -www -accept 127.0.0.1:0 -cert "$P/good.pem" \
            -key "$P/good.key" -cert_chain "$P/int.pem" \
            -dcert "$P/ecdsa.pem" -dkey "$P/ecdsa.key" -dcert_chain "$P/int.pem"
    fi
    PORTS+=("$S_SERVER_PORT")
    SPIDS+=("$S_SERVER_PID")
}

# probe_ok PORT ARGS...: one handshake with a staple that verifies.
probe_ok() {
    local port=$1
    shift
    stp_probe "$port" --require-staple --CAfile "$P/root.pem" "$@"
    [ "$RC" -ne 7 ] || stp_fail "an invalid staple on port $port: $PROBE"
    [ "$RC" -ne 1 ] || stp_fail "a failed handshake on port $port: $PROBE"
}

# tu_epoch FILE: thisUpdate of the DER response FILE, in seconds.
tu_epoch() {
    date -d "$(stp_file_this_update "$1")" +%s
}

# probe_tu: thisUpdate of the last probe's staple, in seconds.
probe_tu() {
    local t
    t=$(sed -n 's/.*this_update=\([^ ]*\).*/\1/p' <<<"$PROBE")
    date -d "${t%%$'\n'*}" +%s
}

# all_serve_store: every server staples, for both certificates, the
# response now in the store.
all_serve_store() {
    local port g e
    g=$(tu_epoch "$T/store/$(stp_id good).der")
    e=$(tu_epoch "$T/store/$(stp_id ecdsa).der")
    for port in "${PORTS[@]}"; do
        probe_ok "$port" "${RSA[@]}"
        if [ "$RC" -ne 0 ] || [ "$(probe_tu)" != "$g" ]; then return 1; fi
        probe_ok "$port" "${EC[@]}"
        if [ "$RC" -ne 0 ] || [ "$(probe_tu)" != "$e" ]; then return 1; fi
    done
}

# wait_staple PORT ARGS...: handshakes until a staple arrives (20 s at
# most), none of them invalid.
wait_staple() {
    local i
    for ((i = 0; i < 200; i++)); do
        probe_ok "$@"
        [ "$RC" -eq 6 ] || return 0
        sleep 0.1
    done
    stp_fail "no staple from 127.0.0.1:$1 within 20 s"
}

# load I: handshakes from shell I, round robin over the servers and both
# certificates, until $T/stop exists; each `probe --count` must succeed
# (every handshake stapled with a staple that verifies). The tally goes to
# $T/load.I.
load() {
    local i=$1 n=0 hs=0 rc out port sig
    while [ ! -e "$T/stop" ]; do
        port=${PORTS[$(((i + n) % ${#PORTS[@]}))]}
        if (((i + n / ${#PORTS[@]}) % 2)); then sig=("${EC[@]}"); else sig=("${RSA[@]}"); fi
        set +e
        out=$(timeout 60 "$STP_CLI" probe "127.0.0.1:$port" --count "$COUNT" \
            --require-staple --timeout 5 "${sig[@]}" 2>&1)
        rc=$?
        set -e
        if [ "$rc" -ne 0 ]; then
            printf 'FAIL rc=%s port=%s: %s\n' "$rc" "$port" "$out" >"$T/load.$i"
            return 1
        fi
        hs=$((hs + $(sed -n 's/^handshakes=\([0-9]*\) .*/\1/p' <<<"$out")))
        n=$((n + 1))
    done
    printf 'runs=%s handshakes=%s\n' "$n" "$hs" >"$T/load.$i"
}

# until_time EPOCH CMD...: polls CMD every 0.1 s until it succeeds, or
# fails once the clock reaches EPOCH.
until_time() {
    local end=$1
    shift
    while ! "$@"; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

_reached() {
    [ "$(stp_requests)" -ge "$1" ]
}

for ((i = 0; i < NSERVERS; i++)); do
    start_server "$i"
done
# round 1: a cold store; every server staples both certificates
for port in "${PORTS[@]}"; do
    wait_staple "$port" "${RSA[@]}"
    wait_staple "$port" "${EC[@]}"
done
until_time $(($(date +%s) + 20)) all_serve_store ||
    stp_fail "the servers do not serve the stored responses"
stp_assert_requests 2 "round 1: one request per certificate"
tu1=$(tu_epoch "$T/store/$(stp_id good).der")
echo "round 1 done $(($(date +%s) - tu1)) s after thisUpdate" >&2
# load, and a CLI refresher, across round 2
rm -f "$T/stop"
LPIDS=()
for ((i = 0; i < SHELLS; i++)); do
    load "$i" &
    LPIDS+=("$!")
done
(
    while [ ! -e "$T/stop" ]; do
        timeout 30 "$STP_CLI" refresh --conf "$CONF" >>"$T/cli_refresh.out" 2>&1 || true
        sleep 0.5
    done
) &
LPIDS+=("$!")
# round 2: thisUpdate + 12 s, + 8 s of slack (a loaded 2-core machine)
if ! until_time $((tu1 + ROUND + 8)) _reached 4; then
    touch "$T/stop"
    wait "${LPIDS[@]}" || true
    if [ "$SCEN" = margin ]; then
        grep -h "next refresh in" "$T/hook.log" "$T/cli_refresh.out" >&2 || true
        stp_fail "no refresh round within $((ROUND + 8)) s of thisUpdate: refresh_margin 90 of a 120 s response is not honoured (requests: $(stp_requests))"
    fi
    stp_fail "no refresh round within $((ROUND + 8)) s of thisUpdate (requests: $(stp_requests))"
fi
echo "round 2 at $(($(date +%s) - tu1)) s after thisUpdate" >&2
until_time $(($(date +%s) + 10)) all_serve_store ||
    stp_fail "a server did not take the renewed responses"
sleep 1 # one more second of load on the renewed responses
touch "$T/stop"
lrc=0
for p in "${LPIDS[@]}"; do
    wait "$p" || lrc=1
done
total=0
for ((i = 0; i < SHELLS; i++)); do
    cat "$T/load.$i" >&2
    grep -q '^runs=' "$T/load.$i" || stp_fail "load shell $i: $(cat "$T/load.$i")"
    total=$((total + $(sed -n 's/.*handshakes=\([0-9]*\)$/\1/p' "$T/load.$i")))
done
[ "$lrc" -eq 0 ] || stp_fail "a load shell failed"
[ "$total" -gt 0 ] || stp_fail "no handshake under load"
tu2=$(tu_epoch "$T/store/$(stp_id good).der")
[ "$tu2" -gt "$tu1" ] || stp_fail "the good response was not renewed"
stp_assert_requests 4 "round 2: one request per certificate"
echo "handshakes under load: $total; requests: $(stp_requests) (2 rounds, 2 certificates)" >&2
# the servers stop cleanly
for ((i = 0; i < NSERVERS; i++)); do
    pid=${SPIDS[i]}
    if [ "$SCEN" = mt ]; then
        kill -TERM "$pid"
        set +e
        wait "$pid"
        rc=$?
        set -e
        stp_forget_pid "$pid"
        cat "$T/srv$i.out" "$T/srv$i.out.err" >&2
        if grep -q "ThreadSanitizer\|AddressSanitizer\|runtime error" "$T/srv$i.out.err"; then
            stp_fail "server $i: a sanitizer report"
        fi
        stp_assert_eq "$rc" 0 "server $i exit status"
        stp_assert_file_contains "$T/srv$i.out" "^failed=0$" "server $i: no failed handshake"
        stp_assert_file_contains "$T/srv$i.out" "^refreshers=1$" "server $i: one refresher"
    else
        kill -0 "$pid" || stp_fail "server $i died"
        stp_stop_pid "$pid"
        stp_forget_pid "$pid"
    fi
done
stp_no_errors "$T/hook.log"
stp_ok "concurrency $SCEN: $total handshakes, $(stp_requests) requests"
