#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_hardening.sh SCENARIO ROUTE: what hosts do to their contexts while they
# serve, with support/churn_server.c (a TLS server that does not know
# ocspstaple) under ROUTE (preload or provider).
#   ctx_churn: 4 threads create a server SSL_CTX, an SSL on it, and free
#              both, for 4 s, while handshakes are served and probed: every
#              churn thread finishes (no deadlock in the hook), the server
#              keeps answering and stapling, and no ERROR is logged.
#   late_cert: a context with a Must-Staple certificate is added after the
#              server started serving and reached through SNI
#              (SSL_set_SSL_CTX): under LD_PRELOAD its certificate is
#              fetched at once (stapled within a few seconds, not after the
#              refresher's next minute); through the provider alone such a
#              context is only examined when an SSL is created on it, so
#              nothing is stapled for it, and nothing breaks.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

SCEN=${1:?scenario}
ROUTE=${2:?route}
stp_need openssl
stp_hook_need
[ -x "${STP_CHURN_SERVER:-}" ] || { echo "SKIP: no stp_churn_server" >&2 && exit 77; }
stp_setup
P=$T/pki
mkdir -p "$P"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
CONF=$T/stp.cnf
stp_conf "$CONF" "$ROUTE" "must_staple_wait = 1s"

# serve CHURN SECONDS [LATE...]: the churn server with the good leaf.
serve() {
    # shellcheck disable=SC2046
    stp_start_s_server "$T/churn.out" env $(stp_route_env "$ROUTE" "$CONF") \
        "$STP_CHURN_SERVER" "$P/good.pem" "$P/good.key" "$P/int.pem" "$@"
    PORT=$S_SERVER_PORT
}

out_has() { grep -q "$1" "$T/churn.out"; }

case $SCEN in
ctx_churn)
    serve 4 4
    # handshakes while the contexts churn, until the churn ends (bounded)
    n=0
    for ((i = 0; i < 200; i++)); do
        out_has "^CHURN " && break
        stp_probe "$PORT" --timeout 3
        [ "$RC" -eq 0 ] || stp_fail "handshake $i during the churn: rc=$RC $PROBE"
        n=$((n + 1))
    done
    STP_WAIT=30 stp_wait_for out_has "^CHURN " ||
        stp_fail "the churn threads never finished (deadlock?)"
    out_has "^CHURN DONE" || stp_fail "$(grep '^CHURN' "$T/churn.out")"
    kill -0 "$S_SERVER_PID" || stp_fail "the server died"
    stp_ok "$(grep '^CHURN' "$T/churn.out"), $n handshakes meanwhile"
    stp_wait_staple "$PORT" --CAfile "$P/root.pem"
    stp_expect_probe 0 "still stapling after the churn"
    if grep -q " ERROR " "$T/hook.log"; then
        stp_fail "ERROR logged: $(grep ' ERROR ' "$T/hook.log" | head -3)"
    fi
    ;;
late_cert)
    serve 0 0 "$P/muststaple.pem" "$P/muststaple.key" muststaple.test
    stp_wait_staple "$PORT" --CAfile "$P/root.pem"
    STP_WAIT=10 stp_wait_for out_has "^LATE READY" || stp_fail "no late context"
    t0=$(stp_ms)
    if [ "$ROUTE" = preload ]; then
        # fetched at once: well within the refresher's one-minute sleep
        STP_WAIT=8 stp_wait_staple "$PORT" --servername muststaple.test \
            --CAfile "$P/root.pem"
        stp_expect_probe 0 "the late certificate is stapled"
        echo "$PROBE" | grep -q "subject=CN=muststaple.test" ||
            stp_fail "not the late certificate: $PROBE"
        dt=$(($(stp_ms) - t0))
        [ "$dt" -lt 8000 ] ||
            stp_fail "the late certificate was stapled only after $dt ms"
        stp_ok "late certificate stapled $dt ms after it was reachable"
    else
        stp_probe "$PORT" --servername muststaple.test --CAfile "$P/root.pem"
        stp_expect_probe 0 "the late context serves (unstapled through the provider)"
        echo "$PROBE" | grep -q "subject=CN=muststaple.test" ||
            stp_fail "not the late certificate: $PROBE"
    fi
    ;;
*) stp_fail "unknown scenario $SCEN" ;;
esac
stp_stop_pid "$S_SERVER_PID"
stp_forget_pid "$S_SERVER_PID"
stp_ok "$SCEN $ROUTE"
