#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_stunnel.sh SCENARIO ROUTE: the real, unmodified stunnel (Debian 12's
# 5.68) as a TLS server service (`accept` on 127.0.0.1, `connect` to a
# second test responder that only serves as the tunnel's backend), under the
# hook (ROUTE provider: stunnel reads openssl.cnf and loads ocspstaple.so;
# preload: LD_PRELOAD=libocspstaple.so). stunnel 5.68 does no OCSP stapling of
# its own: its OCSP options (OCSP, OCSPaia) check the peer's certificate, and
# it installs no status callback (server-side stapling came with 5.71), so
# ours is the only one in both routes. Every staple is checked by
# `ocspstaple probe`; the responder counts its requests. Scenarios:
#   cold  our verified staple arrives (TLS 1.3 and 1.2, where stunnel's own
#         log shows it sending the certificate status), exactly one
#         responder request, the tunnel carries an HTTPS request through
#   warm  warm store: the first handshake is stapled, no new request
#   client  `verifyChain = yes`, `requireCert = yes`, client_ocsp = leaf: a
#         good client tunnels, a revoked one is refused in the handshake
#         (stunnel's own log says "certificate revoked"), one responder
#         request per client certificate
# Every scenario ends by stopping stunnel (no process may survive), with no
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

STUNNEL=$(command -v stunnel4 || command -v stunnel || true)
[ -n "$STUNNEL" ] || {
    echo "SKIP: missing tool(s): stunnel4" >&2
    exit 77
}
stp_need openssl sha256sum ss pgrep ps timeout curl
stp_hook_need
case ${STP_SANITIZER_PRELOAD:-}:$SCEN in
*asan*:warm) ;; # no fetch from this host needed
*asan*:*)
    # With the ASan runtime preloaded into this uninstrumented host, glibc's
    # gettext lock (_nl_state_lock) is inconsistent from startup on, hook or
    # no hook (gdb: its reader count is -1); the refresher's dlopen of
    # libcurl runs libgnutls's constructor, whose bindtextdomain() then
    # waits on that lock forever, and nothing is ever fetched (a warm store
    # needs no fetch: those scenarios run).
    echo "SKIP: stunnel under the ASan runtime: glibc's gettext lock is broken" >&2
    exit 77
    ;;
esac
stp_setup
P=$T/pki
S=$T/stunnel
CONF=$T/stp.cnf
mkdir -p "$P" "$S"
# the tunnel's backend: a second responder (its own directory and log)
stp_start_responder "$S/backend"
BACKEND_PORT=$RESPONDER_PORT
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"

SVC_EXTRA= # more service options (client)
launch() {
    rm -f "$S/stunnel.pid"
    cat >"$S/stunnel.conf" <<EOF
foreground = yes
pid = $S/stunnel.pid
output = $S/stunnel.log
debug = 7
[svc]
accept = 127.0.0.1:$PORT
connect = 127.0.0.1:$BACKEND_PORT
cert = $P/good.chain.pem
key = $P/good.key
$SVC_EXTRA
EOF
    # shellcheck disable=SC2046
    env $(stp_route_env "$ROUTE" "$CONF") "$STUNNEL" "$S/stunnel.conf" \
        </dev/null >>"$S/stderr" 2>&1 &
    SRV_PID=$!
}

start() {
    stp_start_server stunnel launch
}

stop() {
    stp_stop_server "$SRV_PID" "$STUNNEL"
}

# tunnels: stunnel runs, and an HTTPS request reaches the backend through it
# (the backend answers it with an HTTP error: a GET of "/" is no OCSP
# request) and the answer comes back.
tunnels() {
    local code before
    stp_alive "$SRV_PID" || stp_fail "stunnel $SRV_PID died"
    before=$(stp_responder_requests "$S/backend")
    code=$(curl -sS --noproxy '*' --max-time 10 --cacert "$P/root.pem" \
        --resolve "good.test:$PORT:127.0.0.1" -o /dev/null \
        -w '%{http_code}' "https://good.test:$PORT/") ||
        stp_fail "no HTTPS through stunnel (curl: $code)"
    [[ $code =~ ^[1-5][0-9][0-9]$ ]] || stp_fail "no HTTP answer through stunnel: $code"
    stp_assert_eq "$(stp_responder_requests "$S/backend")" $((before + 1)) \
        "the request went through the tunnel"
}

GOOD=(--servername good.test --CAfile "$P/root.pem")

case $SCEN in
cold)
    stp_conf "$CONF" "$ROUTE"
    start
    tunnels
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_expect_probe 0 "cold store: our staple arrives"
    stp_verified good.test
    stp_probe "$PORT" "${GOOD[@]}" --tls1.2 --require-staple
    stp_expect_probe 0 "TLS 1.2 stapled"
    stp_expect_line "protocol=TLSv1.2" "TLS 1.2 negotiated"
    # stunnel's own trace of the TLS 1.2 handshake: the CertificateStatus
    # message went out
    stp_assert_file_contains "$S/stunnel.log" "write certificate status" \
        "stunnel sent a certificate status"
    stp_probe "$PORT" "${GOOD[@]}" --require-staple --count 10
    stp_expect_line "handshakes=10 stapled=10 verified=10" "every handshake stapled"
    tunnels
    stp_assert_file_contains "$T/hook.log" "tracking certificate .* in stunnel" \
        "stunnel's certificate is tracked"
    # stunnel 5.68 has no status callback of its own: ours is installed in
    # the provider route too
    stp_assert_file_lacks "$T/hook.log" "own status callback" \
        "stunnel has no status callback of its own"
    stp_assert_file_lacks "$S/stunnel.log" "OCSP: " "stunnel itself does no OCSP"
    stp_assert_requests 1 "exactly one responder request"
    stp_assert_eq "$(stp_refreshers "$SRV_PID")" 1 "one refresher thread"
    ;;
warm)
    stp_warm good
    stp_conf "$CONF" "$ROUTE"
    start
    stp_probe "$PORT" "${GOOD[@]}" --require-staple
    stp_expect_probe 0 "the first handshake with a warm store is stapled"
    stp_verified good.test
    tunnels
    stp_assert_requests 1 "no request beyond the CLI's"
    ;;
client)
    SVC_EXTRA="CAfile = $P/root.pem
verifyChain = yes
requireCert = yes"
    stp_conf "$CONF" "$ROUTE" "client_ocsp = leaf"
    start
    # through CLIENT: an HTTPS request with CLIENT's certificate (an HTTP
    # status from the backend, or 000 when refused)
    through() { stp_mtls_get "$PORT" "$1" /; }
    for i in 1 2 3; do
        through client-good
        [[ $CODE =~ ^[1-5][0-9][0-9]$ ]] || stp_fail "client-good ($i): $CODE $CERR"
        through client-revoked
        if [ "$CODE" != 000 ] || ! grep -q "alert certificate revoked" <<<"$CERR"; then
            stp_fail "client-revoked ($i): $CODE $CERR"
        fi
    done
    stp_ok "3 times: client-good tunnels, client-revoked refused (alert certificate revoked)"
    stp_assert_file_contains "$S/stunnel.log" "certificate revoked" \
        "stunnel's own log names the cause"
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_assert_requests 3 "one request per client certificate (and the staple's)"
    ;;
*)
    stp_fail "unknown scenario $SCEN"
    ;;
esac
stop
stp_no_errors "$T/hook.log"
stp_assert_file_lacks "$S/stderr" 'Segmentation|core dumped' \
    "nothing alarming on stunnel's stderr"
stp_ok "stunnel $SCEN $ROUTE: $(stp_requests) responder request(s)"
