#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_fixtures.sh: tests the test fixtures themselves with the real `openssl ocsp`
# client: the loopback responder (POST, GET, request log, fault modes, hang
# not blocking others, lifetime, SIGTERM cleanup), the mkpki.sh PKI and lib.sh.
set -euo pipefail

STP_SUPPORT=${STP_SUPPORT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../support" && pwd)}
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
. "$STP_SUPPORT/lib.sh"

stp_need openssl curl base64 sed
if [ ! -x "${STP_RESPONDER:-}" ]; then
    echo "SKIP: STP_RESPONDER (the built ocsp_responder) is not set" >&2
    exit 77
fi
export OPENSSL_CONF=${OPENSSL_CONF:-/dev/null}

stp_setup
P=$T/pki
NREQ=0

stp_start_responder "$P"
stp_ok "responder on 127.0.0.1:$RESPONDER_PORT, pid $RESPONDER_PID"
t0=$(date +%s%N)
stp_mkpki "$P" "$RESPONDER_PORT"
stp_ok "mkpki.sh took $((($(date +%s%N) - t0) / 1000000)) ms"
cd "$P"

# query NAME [ARGS...]: ask the responder about NAME.pem; output in $T/NAME.out.
query() {
    local name=$1
    shift
    NREQ=$((NREQ + 1))
    openssl ocsp -issuer int.pem -cert "$name.pem" -CAfile root.pem -no_nonce \
        -url "http://127.0.0.1:$RESPONDER_PORT/" -timeout 5 "$@" \
        >"$T/$name.out" 2>&1
}

# expect_status NAME STATUS: a verified answer with that certificate status.
expect_status() {
    query "$1" || { cat "$T/$1.out" >&2; stp_fail "openssl ocsp failed for $1"; }
    stp_assert_file_contains "$T/$1.out" "^Response verify OK" "$1 verified"
    stp_assert_file_contains "$T/$1.out" "^$1\\.pem: $2\$" "$1 is $2"
    stp_ok "POST $1 -> $2"
}

# ---- the responder, normal mode ----
expect_status good good
expect_status ecdsa good
expect_status revoked revoked
stp_assert_file_contains "$T/revoked.out" "Reason: keyCompromise" "revocation reason"
expect_status unknown unknown
expect_status muststaple good
expect_status multiurl good
query good -nonce || stp_fail "query with a nonce failed"
stp_assert_file_contains "$T/good.out" "^good\\.pem: good\$" "good with nonce"
stp_assert_file_lacks "$T/good.out" "WARNING: no nonce" "nonce echoed"
stp_ok "POST with nonce"

# GET: /<prefix>/<url-encoded base64 of the DER request>
openssl ocsp -issuer int.pem -cert ecdsa.pem -no_nonce -reqout "$T/req.der" >/dev/null
enc=$(base64 -w0 "$T/req.der" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
NREQ=$((NREQ + 1))
curl -sS --max-time 5 -D "$T/get.hdr" -o "$T/get.der" \
    "http://127.0.0.1:$RESPONDER_PORT/some/prefix/$enc" || stp_fail "GET failed"
stp_assert_file_contains "$T/get.hdr" "^HTTP/1\\.0 200 OK" "GET status"
stp_assert_file_contains "$T/get.hdr" "^Content-Type: application/ocsp-response" \
    "GET content type"
openssl ocsp -respin "$T/get.der" -issuer int.pem -cert ecdsa.pem -CAfile root.pem \
    -no_nonce >"$T/get.out" 2>&1 || stp_fail "GET response unusable"
stp_assert_file_contains "$T/get.out" "^ecdsa\\.pem: good\$" "GET answer"
stp_assert_file_contains responder.log "^[0-9]+ GET [0-9]+ normal 200 [0-9A-F]+\$" "GET logged"
stp_ok "GET -> good"

stp_assert_eq "$(stp_responder_requests "$P")" "$NREQ" "requests logged"
stp_ok "$NREQ requests logged"

# ---- fault modes ----
stp_responder_mode "$P" http500
if query good; then stp_fail "query succeeded in http500 mode"; fi
stp_assert_file_contains "$T/good.out" "code=500" "http500 seen by the client"
stp_ok "http500 -> client error"

stp_responder_mode "$P" trylater
if query good; then stp_fail "query succeeded in trylater mode"; fi
stp_assert_file_contains "$T/good.out" "Responder Error: trylater" "trylater"
stp_ok "trylater -> Responder Error: trylater"

stp_responder_mode "$P" unauthorized
if query good; then stp_fail "query succeeded in unauthorized mode"; fi
stp_assert_file_contains "$T/good.out" "Responder Error: unauthorized" "unauthorized"
stp_ok "unauthorized -> Responder Error: unauthorized"

stp_responder_mode "$P" garbage
NREQ=$((NREQ + 1))
curl -sS --max-time 5 -o "$T/garbage.bin" --data-binary @"$T/req.der" \
    "http://127.0.0.1:$RESPONDER_PORT/" || stp_fail "garbage mode: no answer"
stp_assert_eq "$(wc -c <"$T/garbage.bin")" 64 "garbage body size"
stp_ok "garbage -> 64 bytes"

stp_responder_mode "$P" close
if query good; then stp_fail "query succeeded in close mode"; fi
stp_ok "close -> client error"

# hang: the hung connection must not block other clients.
stp_responder_mode "$P" hang
NREQ=$((NREQ + 1))
curl -s --max-time 30 -o /dev/null --data-binary @"$T/req.der" \
    "http://127.0.0.1:$RESPONDER_PORT/" &
hung=$!
stp_register_pid "$hung"
stp_wait_for grep -q " hang 0 " responder.log || stp_fail "hang request not logged"
stp_responder_mode "$P" normal
expect_status good good
kill -0 "$hung" 2>/dev/null || stp_fail "the hung request was answered"
stp_stop_pid "$hung"
stp_ok "hang does not block other connections"

# slow: one byte per 200 ms, so a 1 s client timeout sees a partial answer.
stp_responder_mode "$P" slow
NREQ=$((NREQ + 1))
rc=0
curl -s --max-time 1 -o /dev/null --data-binary @"$T/req.der" \
    "http://127.0.0.1:$RESPONDER_PORT/" || rc=$?
stp_assert_eq "$rc" 28 "curl exit status against slow mode (timeout)"
stp_responder_mode "$P" normal
stp_ok "slow -> client timeout"

# refuse: in force once stp_responder_mode returns (no connection in
# between is accepted and reset), and undone as promptly.
stp_responder_mode "$P" refuse
rc=0
curl -s --max-time 5 -o /dev/null --data-binary @"$T/req.der" \
    "http://127.0.0.1:$RESPONDER_PORT/" || rc=$?
stp_assert_eq "$rc" 7 "curl exit status at once after the switch to refuse"
stp_responder_mode "$P" normal
expect_status good good
stp_ok "refuse -> connection refused at once, normal -> answered at once"

stp_assert_eq "$(stp_responder_requests "$P")" "$NREQ" "requests logged in all modes"
stp_ok "$NREQ requests logged in all modes"

# ---- the PKI ----
x509() { openssl x509 -in "$1.pem" -noout -text >"$T/$1.txt"; }
x509 muststaple
stp_assert_file_contains "$T/muststaple.txt" "TLS Feature" "muststaple has TLS Feature"
stp_assert_file_contains "$T/muststaple.txt" "status_request" "muststaple feature"
x509 noaia
stp_assert_file_lacks "$T/noaia.txt" "OCSP - URI" "noaia has no OCSP URI"
x509 multiurl
stp_assert_eq "$(grep -o 'OCSP - URI:.*' "$T/multiurl.txt" | tr '\n' ' ')" \
    "OCSP - URI:ldap://127.0.0.1/x OCSP - URI:http://127.0.0.1:$RESPONDER_PORT/ " \
    "multiurl OCSP URIs in order"
x509 good
stp_assert_file_contains "$T/good.txt" "Public-Key: \\(2048 bit\\)" "good is RSA 2048"
stp_assert_file_contains "$T/good.txt" "DNS:good\\.test" "good SAN"
x509 ocsp
stp_assert_file_contains "$T/ocsp.txt" "OCSP Signing" "responder EKU"
x509 noeku
stp_assert_file_lacks "$T/noeku.txt" "OCSP Signing" "noeku has no OCSP EKU"
x509 rogue-ocsp
stp_assert_file_contains "$T/rogue-ocsp.txt" "OCSP Signing" "rogue responder EKU"

certs="root int ocsp noeku rogue rogue-ocsp good ecdsa muststaple revoked unknown"
certs="$certs noaia multiurl"
serials=$(for c in $certs; do openssl x509 -in "$c.pem" -noout -serial; done)
stp_assert_eq "$(sort -u <<<"$serials" | wc -l)" 13 "distinct serials"
for c in ocsp noeku good ecdsa muststaple revoked unknown noaia multiurl; do
    openssl verify -CAfile root.pem -untrusted int.pem "$c.pem" >/dev/null ||
        stp_fail "$c.pem does not chain to root.pem"
done
openssl verify -CAfile rogue.pem rogue-ocsp.pem >/dev/null || stp_fail "rogue chain"
openssl verify -CAfile root.pem -untrusted good.chain.pem good.chain.pem >/dev/null ||
    stp_fail "good.chain.pem"
stp_assert_file_contains index.txt "^R.*keyCompromise.*CN=revoked\\.test\$" "index R line"
stp_assert_file_lacks index.txt "CN=unknown\\.test" "unknown is not in the index"
rc=0
bash "$STP_SUPPORT/mkpki.sh" "$P" "$RESPONDER_PORT" 2>/dev/null || rc=$?
stp_assert_eq "$rc" 2 "mkpki.sh refuses an existing PKI"
stp_ok "PKI contents"

# ---- responder lifecycle ----
gone() { ! kill -0 "$1" 2>/dev/null; }
stp_start_responder "$T/life" --lifetime 1
stp_wait_for gone "$RESPONDER_PID" || stp_fail "--lifetime 1 ignored"
stp_ok "--lifetime ends the responder"

stp_start_responder "$T/term"
term=$RESPONDER_PID
ls -d "$T/term"/stp-responder.* >/dev/null 2>&1 || stp_fail "no responder temp dir"
stp_stop_pid "$term"
rc=0
wait "$term" || rc=$?
stp_assert_eq "$rc" 0 "exit status after SIGTERM"
if ls -d "$T/term"/stp-responder.* >/dev/null 2>&1; then
    stp_fail "temp dir left after SIGTERM"
fi
stp_ok "SIGTERM: clean exit, temp files removed"

echo "PASS: t_fixtures ($NREQ responder requests)"
