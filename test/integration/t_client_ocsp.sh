#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_client_ocsp.sh SCENARIO [ROUTE]: client-certificate OCSP in an unmodified
# `openssl s_server -Verify 2 -verify_return_error` (ROUTE preload or
# provider), with real clients (curl --cert) and the real responder. The
# check runs inside OpenSSL's verification: a refused client gets the alert
# that names the cause, and s_server's own verify callback prints it.
#
# Scenarios:
#   decide    good admitted, revoked and unknown refused, no AIA skipped;
#             every answer fetched once and then decided from memory, and
#             each decision logged once
#   chain     client_ocsp = chain: the intermediate names no responder
#             (skipped by default, refused with client_ocsp_no_url = refuse)
#   fail      responder refusing connections: closed refuses, open admits,
#             a cached "revoked" is refused either way
#   hang      responder hangs: the handshake waits client_ocsp_timeout, no
#             more; the fetch goes on, and once the responder answers the
#             next handshake is decided from memory
#   store     a second server process (and a restart) decides from the
#             answer the first one stored: no request; `ocspstaple status`
#             lists the answers apart from the staples
#   override  client_ocsp_responder sends every request to another address;
#             client_ocsp_default_responder only those of certificates
#             without AIA
#   forged    a response signed by a rogue responder, or one for another
#             certificate, is not an answer: refused (fail closed)
#   revoke    a client revoked at run time is refused after the next refresh
#   nonce     client_ocsp_nonce = yes: the real responder echoes the nonce
#             (admitted); a valid answer without it is refused, and the same
#             answer is taken with client_ocsp_nonce = no
#   percert   client_ocsp set in the section of one server certificate
#             (ecdsa.test) and off elsewhere: a revoked client is refused on
#             ecdsa.test and admitted on good.test (SNI, s_server -cert2)
#   twonames  responder down, ecdsa.test failing closed and good.test open:
#             one client alternating between them gets one line per
#             decision, not one per alternation
#   resume    a session of a client revoked after it was made is not resumed
#             (TLS 1.3 ticket): the full handshake refuses the client
#   first     a client met for the first time while the server's own
#             certificates' fetches queue for the same responder (1 at a
#             time, each answered after 1.5 s): its fetch goes first, so it
#             is decided within client_ocsp_timeout (4 s), not after them
#   appverify (preload) an application with its own verification procedure
#             and session ticket callbacks (STP_VERIFY_HOST): they still run
#             and decide, and ours checks what they accepted
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

stp_need openssl curl
SCEN=${1:?scenario}
ROUTE=${2:-preload}
# In a ThreadSanitizer build the verify host is ours and instrumented:
# appverify runs there with only our library preloaded. s_server is not ours.
TSAN_HOST=
case ${STP_SANITIZER_PRELOAD:-}:$SCEN in
*tsan*:appverify) TSAN_HOST=1 ;;
*) stp_hook_need ;;
esac
stp_setup
P=$T/pki
mkdir -p "$P"
RARGS=()
case $SCEN in
override) RARGS=(--alt-addr 127.0.0.2) ;;
revoke | resume) RARGS=(--nmin 1) ;; # answers valid 60 s: refreshed within seconds
esac
stp_start_responder "$P" "${RARGS[@]}"
stp_mkpki "$P" "$RESPONDER_PORT"
CONF=$T/stp.cnf
export OPENSSL_CONF=/dev/null
# the server's own certificate is not stapled: every request is a client's
BASE=("mode = never" "timeout = 2s" "connect_timeout = 2s" "retry_base = 1s"
    "retry_max = 2s" "refresh_min = 10s")

# serve [POLICY LINES...]: s_server under ROUTE, requiring a client
# certificate and refusing a chain that does not verify.
serve() {
    stp_conf "$CONF" "$ROUTE" "${BASE[@]}" "$@"
    stp_serve_s_server "$ROUTE" "$CONF" ecdsa -- -Verify 2 -verify_return_error \
        -CAfile "$P/root.pem"
}

stop() {
    stp_stop_pid "$S_SERVER_PID"
    stp_forget_pid "$S_SERVER_PID"
}

# hs CLIENT: one HTTPS request with CLIENT's certificate (bounded: 10 s);
# sets HS_RC (curl's exit status), HS_ERR (its message) and HS_MS.
hs() {
    local t0
    t0=$(date +%s%N)
    HS_RC=0
    timeout 10 curl -sS --cacert "$P/root.pem" --cert "$P/$1.chain.pem" \
        --key "$P/$1.key" --resolve "ecdsa.test:$PORT:127.0.0.1" \
        -o "$T/hs.body" "https://ecdsa.test:$PORT/" 2>"$T/hs.err" || HS_RC=$?
    HS_ERR=$(cat "$T/hs.err")
    HS_MS=$((($(date +%s%N) - t0) / 1000000))
}

# admitted CLIENT MSG / refused CLIENT ALERT MSG: the outcome of hs CLIENT.
admitted() {
    hs "$1"
    [ "$HS_RC" -eq 0 ] || stp_fail "$2: $1 refused (curl $HS_RC: $HS_ERR)"
    grep -q "Verify return code: 0 (ok)" "$T/hs.body" ||
        stp_fail "$2: s_server did not see $1's chain verified"
    stp_ok "$2: $1 admitted ($HS_MS ms)"
}

refused() {
    hs "$1"
    [ "$HS_RC" -ne 0 ] || stp_fail "$3: $1 admitted"
    grep -q "alert $2" <<<"$HS_ERR" ||
        stp_fail "$3: $1 refused, but not with 'alert $2': $HS_ERR"
    stp_ok "$3: $1 refused with alert $2 ($HS_MS ms)"
}

# said N REGEX MSG: exactly N lines of the hook's log match REGEX.
said() {
    local n
    n=$({ grep -E -- "$2" "$T/hook.log" || true; } | wc -l)
    stp_assert_eq "$n" "$1" "$3"
}

serial() { openssl x509 -in "$P/$1.pem" -noout -serial | sed 's/serial=//'; }

case $SCEN in
decide)
    serve "client_ocsp = leaf"
    admitted client-good "good"
    refused client-revoked "certificate revoked" "revoked"
    stp_assert_file_contains "$T/s_server.out.err" \
        "verify error:num=23:certificate revoked" "s_server's own log names the cause"
    refused client-unknown "certificate unknown" "unknown"
    admitted client-noaia "no OCSP URL: skipped"
    stp_assert_requests 3 "one request per certificate with a responder"
    for i in 1 2 3; do
        admitted client-good "again ($i)"
        refused client-revoked "certificate revoked" "again ($i)"
        refused client-unknown "certificate unknown" "again ($i)"
        admitted client-noaia "again ($i)"
    done
    stp_assert_requests 3 "decided from memory: no more requests"
    said 1 "client: .*CN=client-good.*serial $(serial client-good).*: good: admitted" \
        "one line for client-good's decision"
    said 1 "WARN client: .*CN=client-revoked.*: revoked: refused" \
        "one line for client-revoked's decision"
    said 1 "WARN client: .*CN=client-unknown.*: unknown to its responder: refused" \
        "one line for client-unknown's decision"
    said 1 "client: .*CN=client-noaia.*names no OCSP responder: not checked" \
        "one line for client-noaia's decision"
    stp_assert_eq "$({ grep -c "client: " "$T/hook.log" || true; })" 7 \
        "16 more handshakes added no line (3 'checking' lines and 4 decisions)"
    ;;
chain)
    serve "client_ocsp = chain"
    admitted client-good "chain, intermediate without AIA skipped"
    said 1 "client: .*CN=STP Test Intermediate CA.*names no OCSP responder: not checked" \
        "the intermediate is said to be skipped"
    refused client-revoked "certificate revoked" "chain: a revoked leaf"
    stop
    serve "client_ocsp = chain" "client_ocsp_no_url = refuse"
    refused client-good "certificate unknown" \
        "chain, client_ocsp_no_url = refuse: the intermediate has no responder"
    stp_assert_file_contains "$T/s_server.out.err" "verify error:num=73:OCSP verification needed" \
        "s_server names the cause"
    ;;
fail)
    serve "client_ocsp = leaf"
    refused client-revoked "certificate revoked" "responder up: revoked"
    stp_responder_mode "$P" refuse
    refused client-good "certificate unknown" \
        "responder down, client_ocsp_fail = closed"
    stp_assert_file_contains "$T/s_server.out.err" "verify error:num=74:OCSP verification failed" \
        "s_server names the cause"
    said 1 "WARN client: .*CN=client-good.*no OCSP answer in time: refused" "said once"
    stop
    stp_responder_mode "$P" normal
    serve "client_ocsp = leaf" "client_ocsp_fail = open"
    refused client-revoked "certificate revoked" "open, responder up: revoked (stored)"
    stp_responder_mode "$P" refuse
    admitted client-unknown "responder down, client_ocsp_fail = open"
    said 1 "WARN client: .*CN=client-unknown.*no OCSP answer in time: admitted" "said once"
    refused client-revoked "certificate revoked" "open, responder down: a cached revoked"
    ;;
hang)
    serve "client_ocsp = leaf" "client_ocsp_timeout = 300ms"
    stp_responder_mode "$P" hang
    refused client-good "certificate unknown" \
        "responder hangs"
    # the wait is the client_ocsp_timeout, not the fetch timeout (2 s)
    [ "$HS_MS" -lt 1800 ] || stp_fail "a handshake waited $HS_MS ms (client_ocsp_timeout 300ms)"
    stp_ok "the handshake waited at most about client_ocsp_timeout ($HS_MS ms)"
    refused client-good "certificate unknown" \
        "while the first fetch hangs"
    [ "$HS_MS" -lt 1800 ] || stp_fail "a handshake waited $HS_MS ms while a fetch hangs"
    stp_responder_mode "$P" normal
    fetched() { grep -q "refresh: client-good: stored good response" "$T/hook.log"; }
    STP_WAIT=15 stp_wait_for fetched || stp_fail "no good answer fetched after the hang"
    admitted client-good "after the responder recovered: from memory"
    [ "$HS_MS" -lt 1800 ] || stp_fail "the decision from memory took $HS_MS ms"
    ;;
store)
    serve "client_ocsp = leaf"
    admitted client-good "first server"
    refused client-revoked "certificate revoked" "first server"
    stp_assert_requests 2 "two requests"
    S1=$S_SERVER_PID
    P1=$PORT
    stp_serve_s_server "$ROUTE" "$CONF" ecdsa -- -Verify 2 -verify_return_error \
        -CAfile "$P/root.pem"
    admitted client-good "a second server process"
    refused client-revoked "certificate revoked" "a second server process"
    stop
    S_SERVER_PID=$S1
    PORT=$P1
    stop
    stp_serve_s_server "$ROUTE" "$CONF" ecdsa -- -Verify 2 -verify_return_error \
        -CAfile "$P/root.pem"
    admitted client-good "after a restart"
    refused client-revoked "certificate revoked" "after a restart"
    stp_assert_requests 2 "no request from the second process nor after the restart"
    # the CLI trusts the client PKI's root as the servers do (ca_file)
    stp_conf "$T/cli.cnf" preload "ca_file = $P/root.pem"
    "$STP_CLI" status --conf "$T/cli.cnf" >"$T/status.out" 2>&1 ||
        stp_fail "ocspstaple status: $(cat "$T/status.out")"
    sed -n '/^client certificates (client_ocsp):$/,$p' "$T/status.out" >"$T/status.clients"
    stp_assert_file_contains "$T/status.clients" "CN=client-good.* good " \
        "status lists client-good's answer among the client certificates"
    stp_assert_file_contains "$T/status.clients" "CN=client-revoked.* revoked " \
        "and client-revoked's"
    "$STP_CLI" status --conf "$T/cli.cnf" --json >"$T/status.json" 2>&1 ||
        stp_fail "ocspstaple status --json"
    [ "$(grep -o '"role": "client"' "$T/status.json" | wc -l)" -eq 2 ] ||
        stp_fail "status --json: not two client answers: $(cat "$T/status.json")"
    stp_ok "ocspstaple status lists the two client answers apart"
    ;;
override)
    serve "client_ocsp = leaf" "client_ocsp_responder = http://127.0.0.2:$RESPONDER_PORT/"
    admitted client-good "override"
    refused client-revoked "certificate revoked" "override"
    admitted client-noaia "override: a certificate without AIA is checked too"
    stp_assert_eq "$({ grep -c " alt:normal 200" "$P/responder.log" || true; })" 3 \
        "every request went to the override"
    stp_assert_requests 3 "and none elsewhere"
    said 1 "client: .*CN=client-noaia.*checking by OCSP at http://127.0.0.2:" \
        "client-noaia is checked at the override"
    stop
    rm -rf "$T/store"
    serve "client_ocsp = leaf" "client_ocsp_default_responder = http://127.0.0.2:$RESPONDER_PORT/"
    admitted client-good "default responder: its own AIA"
    admitted client-noaia "default responder: without AIA"
    stp_assert_eq "$({ grep -c " alt:normal 200" "$P/responder.log" || true; })" 4 \
        "only client-noaia's request went to the default responder"
    stp_assert_requests 5 "client-good's went to its own"
    ;;
forged)
    stp_responder_mode "$P" rogue
    serve "client_ocsp = leaf"
    refused client-good "certificate unknown" \
        "a response signed by a rogue responder"
    stp_assert_file_contains "$T/hook.log" "client-good: .*signature or responder authorisation check failed" \
        "the refresher says why"
    stop
    stp_own_response good "$P/responder.replay.der" 1
    stp_responder_mode "$P" replay
    serve "client_ocsp = leaf"
    refused client-revoked "certificate unknown" \
        "a good response for another certificate"
    stp_assert_file_contains "$T/hook.log" "client-revoked: .*not for this certificate" \
        "the refresher says why"
    ;;
revoke)
    serve "client_ocsp = leaf" "refresh_margin = 90"
    admitted client-good "before the revocation"
    STP_SAN=DNS:unused.test openssl ca -config "$P/ca/pki.cnf" -name CA_int -revoke "$P/client-good.pem" \
        -crl_reason keyCompromise >"$T/revoke.out" 2>&1 || { cat "$T/revoke.out" >&2; stp_fail "revoking client-good"; }
    revoked_now() { grep -q "refresh: client-good: stored revoked response" "$T/hook.log"; }
    STP_WAIT=30 stp_wait_for revoked_now || stp_fail "the refresher did not see the revocation"
    refused client-good "certificate revoked" "after the next refresh"
    said 1 "WARN client: .*CN=client-good.*: revoked: refused" "the change is said once"
    ;;
nonce)
    serve "client_ocsp = leaf" "client_ocsp_nonce = yes"
    admitted client-good "the responder echoes the nonce"
    stp_assert_file_contains "$P/responder.log" " normal 200 " "it was asked"
    stop
    rm -rf "$T/store"
    # a valid answer for client-good, made without a nonce
    stp_own_response client-good "$P/responder.replay.der" 1
    stp_responder_mode "$P" replay
    serve "client_ocsp = leaf" "client_ocsp_nonce = yes"
    refused client-good "certificate unknown" "an answer without the nonce"
    stp_assert_file_contains "$T/hook.log" \
        "refresh: client-good: the answer does not echo the request's nonce" \
        "the refresher says why"
    stop
    rm -rf "$T/store"
    serve "client_ocsp = leaf"
    admitted client-good "the same answer, client_ocsp_nonce = no"
    ;;
percert)
    stp_conf "$CONF" "$ROUTE" "${BASE[@]}" "certs = stp_certs" "[stp_certs]" \
        "e = stp_e" "[stp_e]" "match = name:ecdsa.test" "client_ocsp = leaf"
    stp_serve_s_server "$ROUTE" "$CONF" ecdsa -- -Verify 2 -verify_return_error \
        -CAfile "$P/root.pem" -servername good.test -cert2 "$P/good.pem" \
        -key2 "$P/good.key"
    refused client-revoked "certificate revoked" "ecdsa.test (client_ocsp = leaf in its section)"
    # hs2 CLIENT: as hs, to good.test (the second context, client_ocsp off)
    HS_RC=0
    # (s_server sends the second context's certificate without its chain)
    cat "$P/root.pem" "$P/int.pem" >"$T/cas.pem"
    timeout 10 curl -sS --cacert "$T/cas.pem" --cert "$P/client-revoked.chain.pem" \
        --key "$P/client-revoked.key" --resolve "good.test:$PORT:127.0.0.1" \
        -o "$T/hs.body" "https://good.test:$PORT/" 2>"$T/hs.err" || HS_RC=$?
    [ "$HS_RC" -eq 0 ] || stp_fail "good.test refused client-revoked: $(cat "$T/hs.err")"
    stp_ok "good.test (client_ocsp off): client-revoked admitted"
    stp_assert_requests 1 "one request: client-revoked's, for ecdsa.test"
    ;;
twonames)
    stp_responder_mode "$P" refuse
    stp_conf "$CONF" "$ROUTE" "${BASE[@]}" "certs = stp_certs" "[stp_certs]" \
        "e = stp_e" "g = stp_g" "[stp_e]" "match = name:ecdsa.test" "client_ocsp = leaf" \
        "[stp_g]" "match = name:good.test" "client_ocsp = leaf" "client_ocsp_fail = open"
    stp_serve_s_server "$ROUTE" "$CONF" ecdsa -- -Verify 2 -verify_return_error \
        -CAfile "$P/root.pem" -servername good.test -cert2 "$P/good.pem" \
        -key2 "$P/good.key"
    cat "$P/root.pem" "$P/int.pem" >"$T/cas.pem"
    for i in 1 2 3; do
        refused client-good "certificate unknown" "ecdsa.test, fail closed ($i)"
        HS_RC=0
        timeout 10 curl -sS --cacert "$T/cas.pem" --cert "$P/client-good.chain.pem" \
            --key "$P/client-good.key" --resolve "good.test:$PORT:127.0.0.1" \
            -o "$T/hs.body" "https://good.test:$PORT/" 2>"$T/hs.err" || HS_RC=$?
        [ "$HS_RC" -eq 0 ] || stp_fail "good.test, fail open ($i): $(cat "$T/hs.err")"
    done
    stp_ok "3 times each: refused on ecdsa.test, admitted on good.test"
    said 1 "WARN client: .*CN=client-good.*no OCSP answer in time: refused" \
        "the refusal is said once"
    said 1 "WARN client: .*CN=client-good.*no OCSP answer in time: admitted" \
        "the admission is said once"
    ;;
resume)
    serve "client_ocsp = leaf" "refresh_margin = 90"
    # sess ARGS...: one s_client connection as client-good, a GET, the
    # answer read; output in $T/sess.out
    sess() {
        printf 'GET / HTTP/1.0\r\n\r\n' | timeout 10 openssl s_client \
            -connect "127.0.0.1:$PORT" -servername ecdsa.test -CAfile "$P/root.pem" \
            -cert "$P/client-good.pem" -key "$P/client-good.key" \
            -cert_chain "$P/int.pem" -ign_eof "$@" >"$T/sess.out" 2>&1 || true
    }
    sess -sess_out "$T/session.pem"
    stp_assert_file_contains "$T/sess.out" "Verify return code: 0" "first connection: a full handshake"
    [ -s "$T/session.pem" ] || stp_fail "no session saved"
    sess -sess_in "$T/session.pem"
    stp_assert_file_contains "$T/sess.out" "^Reused, TLSv1.3" "a good client's session is resumed"
    stp_ok "client-good's session resumed while it is good"
    STP_SAN=DNS:unused.test openssl ca -config "$P/ca/pki.cnf" -name CA_int \
        -revoke "$P/client-good.pem" -crl_reason keyCompromise >"$T/revoke.out" 2>&1 ||
        { cat "$T/revoke.out" >&2; stp_fail "revoking client-good"; }
    revoked_now() { grep -q "refresh: client-good: stored revoked response" "$T/hook.log"; }
    STP_WAIT=30 stp_wait_for revoked_now || stp_fail "the refresher did not see the revocation"
    sess -sess_in "$T/session.pem"
    stp_assert_file_lacks "$T/sess.out" "^Reused" "the revoked client's session is not resumed"
    stp_assert_file_contains "$T/sess.out" "alert certificate revoked" \
        "the full handshake refuses the revoked client"
    said 1 "WARN client: .*CN=client-good.*session resumption refused" "said once"
    stp_ok "client-good revoked: its session is not resumed, and the client is refused"
    ;;
first)
    stp_responder_mode "$P" "lag 1500"
    stp_conf "$CONF" "$ROUTE" "client_ocsp = leaf" "client_ocsp_timeout = 4s" \
        "fetch_per_host = 1" "timeout = 5s" "retry_base = 1s" "retry_max = 2s"
    stp_serve_s_server "$ROUTE" "$CONF" ecdsa -- -Verify 2 -verify_return_error \
        -CAfile "$P/root.pem" -dcert "$P/good.pem" -dkey "$P/good.key" \
        -dcert_chain "$P/int.pem"
    # a handshake without a client certificate (refused) has the server's
    # contexts tracked; then the first of the two staples' requests is out
    # and the second queued
    timeout 10 curl -sS --cacert "$P/root.pem" --resolve "ecdsa.test:$PORT:127.0.0.1" \
        -o /dev/null "https://ecdsa.test:$PORT/" 2>/dev/null &&
        stp_fail "a client without a certificate was admitted"
    one_out() { [ "$(stp_requests)" -ge 1 ]; }
    STP_WAIT=10 stp_wait_for one_out || stp_fail "no staple request within 10 s"
    stp_assert_requests 1 "one request out at a time (fetch_per_host = 1)"
    admitted client-good "met while two staple fetches are ahead of it"
    # behind both staples' it would have waited 3 x 1.5 s
    [ "$HS_MS" -lt 4000 ] || stp_fail "the handshake waited $HS_MS ms"
    fetched_all() { [ "$(stp_requests)" -ge 3 ]; }
    STP_WAIT=15 stp_wait_for fetched_all || stp_fail "the staples were not fetched after it"
    stp_assert_requests 3 "one request per certificate"
    ;;
appverify)
    [ -n "${STP_VERIFY_HOST:-}" ] || stp_fail "STP_VERIFY_HOST is not set"
    stp_conf "$CONF" "$ROUTE" "${BASE[@]}" "client_ocsp = leaf"
    if [ -n "$TSAN_HOST" ]; then
        route_env=$(STP_SANITIZER_PRELOAD='' stp_route_env "$ROUTE" "$CONF")
    else
        route_env=$(stp_route_env "$ROUTE" "$CONF")
    fi
    # shellcheck disable=SC2086 # one VAR=value per word
    stp_start_s_server "$T/s_server.out" 5 env $route_env \
        "$STP_VERIFY_HOST" "$P/ecdsa.pem" "$P/ecdsa.key" "$P/int.pem" "$P/root.pem" \
        client-noaia
    PORT=$S_SERVER_PORT
    # app_hs CLIENT: one connection; sets APP_OUT (what the client read)
    app_hs() {
        APP_OUT=$(timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -quiet \
            -cert "$P/$1.pem" -key "$P/$1.key" -cert_chain "$P/int.pem" \
            -CAfile "$P/root.pem" </dev/null 2>&1 || true)
    }
    app_hs client-good
    grep -q "^VERIFY 0" <<<"$APP_OUT" || stp_fail "client-good refused: $APP_OUT"
    stp_assert_file_contains "$T/s_server.out" "^APP VERIFY client-good ok" \
        "the application's procedure ran for client-good"
    stp_ok "client-good admitted, by the application's procedure and ours"
    app_hs client-revoked
    grep -q "^VERIFY" <<<"$APP_OUT" && stp_fail "client-revoked admitted: $APP_OUT"
    grep -q "certificate revoked" <<<"$APP_OUT" ||
        stp_fail "client-revoked refused, but not as revoked: $APP_OUT"
    stp_assert_file_contains "$T/s_server.out" "^APP VERIFY client-revoked ok" \
        "the application accepted client-revoked's chain"
    stp_ok "client-revoked: accepted by the application, refused by the OCSP check"
    app_hs client-noaia
    grep -q "^VERIFY" <<<"$APP_OUT" && stp_fail "client-noaia admitted: $APP_OUT"
    stp_assert_file_contains "$T/s_server.out" "^APP VERIFY client-noaia denied" \
        "the application's own rule refused client-noaia"
    stp_ok "client-noaia: refused by the application's own rule"
    # its ticket callbacks: a ticket carries its data, and is resumed
    printf 'x' | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
        -cert "$P/client-good.pem" -key "$P/client-good.key" -cert_chain "$P/int.pem" \
        -CAfile "$P/root.pem" -sess_out "$T/session.pem" -ign_eof >"$T/sess.out" 2>&1 || true
    [ -s "$T/session.pem" ] || stp_fail "no session saved: $(cat "$T/sess.out")"
    printf 'x' | timeout 10 openssl s_client -connect "127.0.0.1:$PORT" \
        -cert "$P/client-good.pem" -key "$P/client-good.key" -cert_chain "$P/int.pem" \
        -CAfile "$P/root.pem" -sess_in "$T/session.pem" -ign_eof >"$T/sess.out" 2>&1 || true
    stp_assert_file_contains "$T/sess.out" "^Reused, TLSv1.3" "client-good's session is resumed"
    stp_assert_file_contains "$T/s_server.out" "^APP TICKET app" \
        "the application's ticket callbacks ran"
    stp_ok "the application's ticket callbacks still run, and the session resumes"
    ;;
*) stp_fail "unknown scenario $SCEN" ;;
esac
stop
stp_no_errors "$T/hook.log"
stp_ok "client OCSP $SCEN ($ROUTE)"
