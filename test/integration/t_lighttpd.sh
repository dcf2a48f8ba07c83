#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_lighttpd.sh SCENARIO ROUTE: the real, unmodified lighttpd (mod_openssl,
# `lighttpd -D -f CONF`) under the hook. lighttpd installs its own status
# callback on every SSL_CTX, which staples only `ssl.stapling-file`, and
# it gives libssl its certificate per connection (in its certificate
# callback), not on the SSL_CTX: the hook meets the certificate in its status
# callback, during the first handshake. Under LD_PRELOAD ours is chained
# behind lighttpd's (ours staples when lighttpd's staples nothing); through
# the provider (lighttpd reads openssl.cnf) a context with the application's
# own callback is left alone, so the provider alone never staples in
# lighttpd. Every staple is checked by `ocspstaple probe`; the responder
# counts its requests. Scenarios:
#   cold           (preload) our verified staple arrives, TLS 1.3 and 1.2;
#                  exactly one responder request
#   warm           (preload) warm store: the first handshake is stapled, no
#                  new request
#   idle           (preload) one handshake, then no more connections: the
#                  certificate met in that handshake is fetched all the same
#   stapling_file  (both routes) `ssl.stapling-file` (a 2-day response,
#                  older than the store's): every handshake gets lighttpd's
#   appcb          (provider) lighttpd's own callback is left alone: TLS
#                  works, nothing is stapled, no request (documented)
# Every scenario ends by stopping lighttpd (no process may survive), with no
# ERROR line in the hook log.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

SCEN=${1:?scenario}
ROUTE=${2:-preload}

stp_need lighttpd openssl sha256sum ss pgrep ps timeout curl
LIGHTTPD=$(command -v lighttpd)
# mod_openssl is a package of its own in Debian (lighttpd-mod-openssl)
MODDIR=${STP_LIGHTTPD_MODULES:-/usr/lib/lighttpd}
if [ ! -f "$MODDIR/mod_openssl.so" ]; then
    echo "SKIP: no $MODDIR/mod_openssl.so (lighttpd-mod-openssl)" >&2
    exit 77
fi
stp_hook_need
stp_setup
P=$T/pki
L=$T/lighttpd
CONF=$T/stp.cnf
mkdir -p "$P" "$L/www"
echo ok >"$L/www/index.html"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"

EXTRA=
launch() {
    cat >"$L/lighttpd.conf" <<EOF
server.modules = ( "mod_openssl" )
server.modules-dir = "$MODDIR"
server.document-root = "$L/www"
server.bind = "127.0.0.1"
server.port = $PORT
server.errorlog = "$L/error.log"
server.pid-file = "$L/lighttpd.pid"
ssl.engine = "enable"
ssl.pemfile = "$P/good.pem"
ssl.privkey = "$P/good.key"
ssl.ca-file = "$P/int.pem"
$EXTRA
EOF
    # shellcheck disable=SC2046
    env $(stp_route_env "$ROUTE" "$CONF") "$LIGHTTPD" -D -f "$L/lighttpd.conf" \
        </dev/null >>"$L/stderr" 2>&1 &
    SRV_PID=$!
}

start() {
    stp_start_server lighttpd launch
}

stop() {
    stp_stop_server "$SRV_PID" "$LIGHTTPD"
}

# serving: lighttpd runs and answers HTTPS.
serving() {
    local code
    stp_alive "$SRV_PID" || stp_fail "lighttpd $SRV_PID died"
    code=$(curl -sS --noproxy '*' --max-time 10 --cacert "$P/root.pem" \
        --resolve "good.test:$PORT:127.0.0.1" -o "$T/curl.out" \
        -w '%{http_code}' "https://good.test:$PORT/index.html") ||
        stp_fail "lighttpd does not serve HTTPS (curl: $code)"
    stp_assert_eq "$code" 200 "lighttpd answers over TLS"
    stp_assert_eq "$(cat "$T/curl.out")" ok "lighttpd's page"
}

GOOD=(--servername good.test --CAfile "$P/root.pem")

case $SCEN in
cold)
    stp_conf "$CONF" "$ROUTE"
    start
    serving
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_expect_probe 0 "cold store: our staple arrives"
    stp_verified good.test
    stp_probe "$PORT" "${GOOD[@]}" --tls1.2 --require-staple
    stp_expect_probe 0 "TLS 1.2 stapled"
    stp_expect_line "protocol=TLSv1.2" "TLS 1.2 negotiated"
    stp_probe "$PORT" "${GOOD[@]}" --require-staple --count 20
    stp_expect_line "handshakes=20 stapled=20 verified=20" "every handshake stapled"
    serving
    stp_assert_file_contains "$T/hook.log" "tracking certificate .* in lighttpd" \
        "lighttpd's certificate is tracked"
    stp_assert_requests 1 "exactly one responder request"
    stp_assert_eq "$(stp_refreshers "$SRV_PID")" 1 "one refresher thread"
    ;;
warm)
    stp_warm good
    stp_conf "$CONF" "$ROUTE"
    start
    # lighttpd gives its context the certificate per connection, so the hook
    # first meets it in the status callback of the first handshake, where it
    # reads no file: that handshake is not stapled, the next ones are, from
    # the store (a documented limitation of per-connection certificates)
    stp_probe "$PORT" "${GOOD[@]}"
    stp_expect_probe 0 "the first handshake"
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_verified good.test
    serving
    stp_assert_requests 1 "no request beyond the CLI's: the store served it"
    ;;
idle)
    # the certificate is met in the status callback of the first handshake;
    # the refresher must fetch it without waiting for another connection
    stp_conf "$CONF" "$ROUTE"
    start
    stp_probe "$PORT" "${GOOD[@]}"
    stp_expect_probe 0 "a handshake"
    fetched() { [ "$(stp_requests)" -ge 1 ]; }
    STP_WAIT=10 stp_wait_for fetched ||
        stp_fail "no fetch within 10 s of the first handshake, with no other connection"
    stp_assert_eq "$(stp_refreshers "$SRV_PID")" 1 "one refresher thread"
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_verified good.test
    stp_assert_requests 1 "exactly one responder request"
    ;;
stapling_file)
    # lighttpd's own response, made first (thisUpdate T0, 2 days), then the
    # store's (a later thisUpdate, 1 day): whichever is stapled is known
    stp_own_response good "$L/good.ocsp.der" 2
    want=$(stp_file_this_update "$L/good.ocsp.der")
    stp_next_second
    stp_warm good
    held=$(stp_file_this_update "$T/store/$(stp_id good).der")
    [ "$want" != "$held" ] || stp_fail "the file and the store hold the same thisUpdate"
    EXTRA="ssl.stapling-file = \"$L/good.ocsp.der\""
    stp_conf "$CONF" "$ROUTE"
    start
    for v in 1.3 1.2 1.3 1.2; do
        stp_probe "$PORT" "${GOOD[@]}" --tls$v --require-staple
        stp_expect_probe 0 "TLS $v: a staple"
        stp_verified good.test
        stp_assert_eq "$(stp_probe_this_update)" "$want" \
            "TLS $v: the staple is lighttpd's ssl.stapling-file (the store has $held)"
        stp_assert_eq "$(stp_probe_days)" 2 "TLS $v: lighttpd's 2-day response"
    done
    serving
    if [ "$ROUTE" = provider ]; then
        stp_assert_file_contains "$T/hook.log" "own status callback: left alone" \
            "the provider leaves lighttpd's callback alone"
    fi
    stp_assert_requests 1 "no request beyond the CLI's"
    ;;
appcb)
    # through the provider alone: lighttpd's callback is always there, so
    # ours is never installed (documented); TLS is untouched
    [ "$ROUTE" = provider ] || stp_fail "appcb is a provider-route scenario"
    stp_conf "$CONF" "$ROUTE"
    start
    serving
    stp_assert_file_contains "$T/hook.log" "an SSL_CTX of lighttpd has its own status callback: left alone" \
        "lighttpd loads the provider, which leaves its callback alone"
    for v in 1.3 1.2; do
        stp_probe "$PORT" "${GOOD[@]}" --tls$v --count 5
        stp_expect_probe 0 "TLS $v handshakes"
        stp_expect_line "handshakes=5 stapled=0" "TLS $v: nothing stapled"
        stp_expect_line "protocol=TLSv$v" "TLS $v negotiated"
    done
    serving
    stp_assert_requests 0 "no request"
    stp_assert_eq "$(stp_refreshers "$SRV_PID")" 0 "no refresher thread"
    ;;
*)
    stp_fail "unknown scenario $SCEN"
    ;;
esac
stop
stp_no_errors "$T/hook.log"
stp_assert_file_lacks "$L/stderr" 'error|Segmentation|core dumped' \
    "nothing alarming on lighttpd's stderr"
stp_ok "lighttpd $SCEN $ROUTE: $(stp_requests) responder request(s)"
