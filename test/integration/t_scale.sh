#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_scale.sh SCENARIO ROUTE: what the hook costs a server's own threads, and
# what one responder may cost the others' certificates (issue #9), with an
# unmodified `openssl s_server` serving two contexts (good.test by default,
# ecdsa.test by SNI). Scenarios:
#   lazy   warm store for both: a handshake for good.test is stapled, and
#          s_server's own thread (it serves every handshake) never reads
#          ecdsa.test's stored response: the refresher reads the store, a
#          handshake reads at most its own certificate's (strace of every
#          thread's openat)
#   hang   cold store, ecdsa.test's responder (a per-certificate
#          responder_url) accepts and never answers, with a 30 s timeout:
#          good.test is stapled well within that timeout (its fetch does not
#          queue behind the hanging one), ecdsa.test is not stapled
#   hostcap three servers (processes) on one store, each with its own
#          certificate on one responder that answers after 1 s: without a
#          cap the responder has their requests at once; with
#          fetch_per_host_total = 1 (the store's fetch slots) never two
#   peerlock another process holds both certificates' store locks (as a
#          server's other worker does while it fetches them), with one
#          request per host at a time (fetch_per_host = 1) and a 10 s
#          timeout: each certificate is tried at once and set aside, none
#          holds the host's request waiting for the other process (which
#          would hold it up to the timeout), no request goes out; ecdsa.test
#          released alone is fetched and stapled within seconds while
#          good.test's lock is still held; then good.test
#   peerfile another process holds good.test's store lock (reading it, or
#          still writing after its fetch) and its fresh response is already
#          in the store: the refresher takes the file without the lock, so
#          good.test is stapled within seconds, with no request of ours and
#          no "held ... for over" warning (the lock is only for the process
#          that fetches)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

SCEN=${1:?scenario}
ROUTE=${2:-preload}
stp_need openssl sha256sum
stp_hook_need
stp_setup
P=$T/pki
CONF=$T/stp.cnf
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
cat "$P/int.pem" "$P/root.pem" >"$T/cas.pem"
SNI=(-- -servername ecdsa.test -cert2 "$P/ecdsa.pem" -key2 "$P/ecdsa.key")

case $SCEN in
lazy)
    stp_need strace
    stp_warm good
    stp_warm ecdsa
    warmed=$(stp_requests)
    stp_conf "$CONF" "$ROUTE"
    STP_AS=(strace -f -qq -e trace=openat -o "$T/strace.out")
    stp_serve_s_server "$ROUTE" "$CONF" good "${SNI[@]}"
    unset STP_AS
    stp_probe "$PORT" --servername good.test --require-staple
    stp_expect_probe 0 "the first handshake is stapled from the warm store"
    # s_server's thread: the first one strace names (it exec'd env, then
    # openssl); the hook's threads come later
    main=$(awk 'NR == 1 { print $1 }' "$T/strace.out")
    [[ $main =~ ^[0-9]+$ ]] || stp_fail "no thread in $T/strace.out"
    stp_register_pid "$main" # strace's own stop would leave it running
    # (the store opens its files relative to the directory: openat(fd,
    # "<id>.der", ...))
    read_by_main() {
        awk -v t="$main" -v f="\"$(stp_id "$1").der\"" \
            '$1 == t && index($0, f) { n++ } END { print n + 0 }' \
            "$T/strace.out"
    }
    read_by_hook() {
        awk -v t="$main" -v f="\"$(stp_id ecdsa).der\"" \
            '$1 != t && index($0, f) { n++ } END { exit n == 0 }' "$T/strace.out"
    }
    echo "s_server's thread $main read good's response $(read_by_main good) time(s), ecdsa's $(read_by_main ecdsa)" >&2
    stp_assert_eq "$(read_by_main ecdsa)" 0 \
        "s_server's own thread read the stored response of a certificate its handshake did not select"
    [ "$(read_by_main good)" -le 1 ] ||
        stp_fail "s_server's own thread read good.test's response more than once"
    # the refresher reads ecdsa.test's, and it is stapled too
    stp_wait_for read_by_hook || stp_fail "no thread of the hook read ecdsa.test's stored response"
    stp_wait_staple "$PORT" --servername ecdsa.test --CAfile "$T/cas.pem"
    stp_assert_requests "$warmed" "no request with a warm store"
    ;;
hang)
    good_port=$RESPONDER_PORT
    stp_start_responder "$T/hang"
    stp_responder_mode "$T/hang" hang
    hang_port=$RESPONDER_PORT
    RESPONDER_PORT=$good_port
    stp_conf "$CONF" "$ROUTE" "certs = stp_certs" "[stp_certs]" \
        "e = stp_e" "[stp_e]" "match = name:ecdsa.test" \
        "responder_url = http://127.0.0.1:$hang_port/" "timeout = 30s"
    stp_serve_s_server "$ROUTE" "$CONF" good "${SNI[@]}"
    t0=$(stp_ms)
    # the first handshake makes the process track both certificates
    stp_probe "$PORT" --servername good.test
    STP_WAIT=10 stp_wait_staple "$PORT" --servername good.test
    echo "good.test stapled $(($(stp_ms) - t0)) ms after the first handshake" >&2
    stp_probe "$PORT" --servername ecdsa.test --CAfile "$T/cas.pem"
    stp_expect_line "stapled=no" "ecdsa.test stapled although its responder hangs"
    [ "$(stp_responder_requests "$T/hang")" -le 1 ] ||
        stp_fail "more than one request to the hanging responder"
    ;;
hostcap)
    # hostcap_run CAP: the three servers, one handshake each (it makes the
    # process track its certificate), until the three are stored; then
    # stopped. Sets PEAK (the most requests the responder had at once).
    hostcap_run() {
        local leaf pids=() ports=() p
        stp_responder_mode "$P" "lag $((1000 + $1))" # a new mode: a new peak
        rm -rf "$T/store"
        stp_conf "$CONF" "$ROUTE" "fetch_per_host_total = $1"
        for leaf in good ecdsa revoked; do
            stp_serve_s_server "$ROUTE" "$CONF" "$leaf"
            pids+=("$S_SERVER_PID")
            ports+=("$PORT")
        done
        for p in "${ports[@]}"; do
            stp_probe "$p"
        done
        stored3() {
            [ "$(find "$T/store" -name '*.der' | wc -l)" -eq 3 ]
        }
        STP_WAIT=20 stp_wait_for stored3 || stp_fail "the three responses were not stored"
        PEAK=$(cat "$P/responder.mode.peak")
        for p in "${pids[@]}"; do
            stp_stop_pid "$p"
            stp_forget_pid "$p"
        done
    }
    r0=$(stp_requests)
    hostcap_run 0
    [ "$PEAK" -ge 2 ] || stp_fail "without a cap the responder had $PEAK request(s) at once, not 2 or 3"
    stp_ok "no cap (fetch_per_host_total = 0): $PEAK requests at once"
    hostcap_run 1
    stp_assert_eq "$PEAK" 1 "fetch_per_host_total = 1: requests at once"
    stp_assert_eq "$(($(stp_requests) - r0))" 6 "one request per certificate and run"
    S_SERVER_PID=
    ;;
peerlock)
    stp_need flock
    holders=()
    mkdir -p "$T/store"
    for leaf in good ecdsa; do
        stp_hold_lock "$T/store/$(stp_id "$leaf").lock"
        holders+=("$HOLDER")
    done
    stp_conf "$CONF" "$ROUTE" "fetch_per_host = 1" "timeout = 10s" \
        "connect_timeout = 2s"
    stp_serve_s_server "$ROUTE" "$CONF" good "${SNI[@]}"
    stp_probe "$PORT" --servername good.test # tracks both
    # "set aside for a second: <store>/<id>.lock: held by..." (DEBUG), each
    set_aside() {
        grep -q "good.test: set aside for a second: .*$(stp_id good).lock: held by" "$T/hook.log" &&
            grep -q "ecdsa.test: set aside for a second: .*$(stp_id ecdsa).lock: held by" "$T/hook.log"
    }
    STP_WAIT=4 stp_wait_for set_aside ||
        stp_fail "both certificates were not tried within 4 s: one waits for the other process's lock (up to 11 s) and holds the host's one request"
    stp_ok "both certificates tried and set aside while their locks are held"
    stp_assert_requests 0 "no request while the locks are held"
    # ecdsa.test's lock released, good.test's still held: ecdsa.test is
    # fetched at its next try (a worker that waited for good.test's lock
    # would hold the host's one request for 11 s)
    stp_stop_pid "${holders[1]}"
    stp_forget_pid "${holders[1]}"
    t0=$(stp_ms)
    STP_WAIT=4 stp_wait_staple "$PORT" --servername ecdsa.test --CAfile "$T/cas.pem"
    echo "ecdsa.test stapled $(($(stp_ms) - t0)) ms after its lock was released" >&2
    stp_assert_requests 1 "one request, for ecdsa.test"
    stp_stop_pid "${holders[0]}"
    stp_forget_pid "${holders[0]}"
    t0=$(stp_ms)
    STP_WAIT=10 stp_wait_staple "$PORT" --servername good.test
    echo "good.test stapled $(($(stp_ms) - t0)) ms after its lock was released" >&2
    stp_assert_requests 2 "one request per certificate"
    ;;
peerfile)
    stp_need flock
    mkdir -p "$T/store" "$T/peer"
    stp_hold_lock "$T/store/$(stp_id good).lock"
    holder=$HOLDER
    # a long timeout: the lock counts as stuck only after 11 s
    stp_conf "$CONF" "$ROUTE" "timeout = 10s" "connect_timeout = 2s"
    stp_serve_s_server "$ROUTE" "$CONF" good "${SNI[@]}"
    stp_probe "$PORT" --servername good.test
    tried() { grep -q "good.test: set aside for a second: .*$(stp_id good).lock: held by" "$T/hook.log"; }
    STP_WAIT=4 stp_wait_for tried || stp_fail "good.test was not tried within 4 s"
    # ecdsa.test (lock free) is fetched by the hook: its one request
    STP_WAIT=10 stp_wait_staple "$PORT" --servername ecdsa.test --CAfile "$T/cas.pem"
    stp_assert_requests 1 "one request, for ecdsa.test"
    # the other process's fetch: its file lands in the store (by rename,
    # as the store writes), the lock still held
    "$STP_CLI" fetch --store-dir "$T/peer" "$P/good.chain.pem" >"$T/fetch.out" 2>&1 ||
        stp_fail "ocspstaple fetch into the peer store: $(cat "$T/fetch.out")"
    cp "$T/peer/$(stp_id good).der" "$T/store/.peer.tmp"
    mv "$T/store/.peer.tmp" "$T/store/$(stp_id good).der"
    t0=$(stp_ms)
    # (main before the fix: set aside at every try until the lock is free)
    STP_WAIT=4 stp_wait_staple "$PORT" --servername good.test --CAfile "$T/cas.pem"
    echo "good.test stapled $(($(stp_ms) - t0)) ms after its response landed, its lock still held" >&2
    stp_assert_requests 2 "one more request, the other process's: none of ours for good.test"
    if grep -q "held by another process.* for over" "$T/hook.log"; then
        stp_fail "a lock that a reader holds was reported stuck: $(grep -m1 'for over' "$T/hook.log")"
    fi
    stp_ok "no lock reported stuck"
    stp_stop_pid "$holder"
    stp_forget_pid "$holder"
    ;;
*) stp_fail "unknown scenario $SCEN" ;;
esac
if [ -n "${main:-}" ]; then
    stp_stop_pid "$main"
fi
if [ -n "$S_SERVER_PID" ]; then
    stp_stop_pid "$S_SERVER_PID"
fi
stp_no_errors "$T/hook.log"
stp_ok "$SCEN ($ROUTE)"
