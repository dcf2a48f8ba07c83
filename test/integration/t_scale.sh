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
