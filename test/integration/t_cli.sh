#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_cli.sh SCENARIO: the CLI's fetch -> verify -> store path against the real
# `openssl ocsp` responder logic (test/support/ocsp_responder.c) on
# 127.0.0.1, with a PKI built for this run. One scenario per ctest case.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"

stp_need openssl sha256sum cmp
stp_setup
P=$T/pki
S=$T/store
mkdir -p "$P"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
URL="http://127.0.0.1:$RESPONDER_PORT/"

# fetch NAME [ARGS...]: fetch the chain of leaf NAME into $S.
fetch() {
    local name=$1
    shift
    stp_cli fetch "$P/$name.chain.pem" --store-dir "$S" "$@"
}

# openssl_verify NAME: the stored response, checked by openssl itself.
openssl_verify() {
    openssl ocsp -respin "$S/$(stp_id "$1").der" -issuer "$P/int.pem" \
        -CAfile "$P/root.pem" -cert "$P/$1.pem" -no_nonce 2>&1
}

requests() { stp_responder_requests "$P"; }

# flip_last_byte FILE: corrupts a file in place.
flip_last_byte() {
    local size last
    size=$(stat -c %s "$1")
    last=$(tail -c 1 "$1" | od -An -tu1 | tr -d ' ')
    # shellcheck disable=SC2059
    printf "\\$(printf '%03o' $((last ^ 1)))" |
        dd of="$1" bs=1 seek=$((size - 1)) conv=notrunc status=none
}

case "${1:?scenario}" in
good)
    fetch good
    stp_assert_eq "$RC" 0 "exit status of a good fetch"
    stp_assert_file_contains "$OUT" "good.test: good" "fetch prints the status"
    f=$S/$(stp_id good).der
    [ -s "$f" ] || stp_fail "no response stored at $f"
    v=$(openssl_verify good)
    echo "$v" | grep -q "Response verify OK" || stp_fail "openssl does not verify the stored file: $v"
    echo "$v" | grep -q "good.pem: good" || stp_fail "openssl does not read good: $v"
    stp_assert_eq "$(requests)" 1 "one responder request"
    grep -q '^failures=0$' "$S/$(stp_id good).state" || stp_fail "state not reset"
    grep -q "^url=$URL\$" "$S/$(stp_id good).state" || stp_fail "state lacks the URL"
    # RFC 5019: the short request went as GET
    stp_assert_file_contains "$P/responder.log" " GET " "request sent as GET"
    # a second fetch reuses the fresh stored response: no new request
    fetch good
    stp_assert_eq "$RC" 0 "exit status of the reuse"
    stp_assert_file_contains "$OUT" "still fresh" "reuse is reported"
    stp_assert_eq "$(requests)" 1 "no request while the stored response is fresh"
    # --force fetches anyway
    fetch good --force
    stp_assert_eq "$(requests)" 2 "--force fetches"
    stp_cli status --store-dir "$S"
    stp_assert_eq "$RC" 0 "status exit"
    stp_assert_file_contains "$OUT" "CN=good.test" "status shows the subject"
    stp_assert_file_contains "$OUT" " good " "status shows good"
    stp_cli status --store-dir "$S" --json
    stp_assert_file_contains "$OUT" '"status": "good"' "json status"
    stp_assert_file_contains "$OUT" '"verified": true' "json verified"
    stp_cli show "$f" --cert "$P/good.pem" --issuer "$P/int.pem"
    stp_assert_eq "$RC" 0 "show verifies"
    stp_assert_file_contains "$OUT" "Verified: good" "show says verified"
    stp_assert_file_contains "$OUT" "Cert Status: good" "show decodes"
    ;;
ecdsa | muststaple | multiurl)
    fetch "$1"
    stp_assert_eq "$RC" 0 "exit status for $1"
    openssl_verify "$1" | grep -q "$1.pem: good" || stp_fail "openssl check of $1"
    ;;
issuer)
    # leaf alone: the issuer is missing, then given with --issuer
    stp_cli fetch "$P/good.pem" --store-dir "$S"
    stp_assert_eq "$RC" 1 "no issuer is an error"
    stp_assert_file_contains "$ERR" "issuer certificate not found" "names the cause"
    stp_assert_eq "$(requests)" 0 "no request without an issuer"
    stp_cli fetch "$P/good.pem" --issuer "$P/int.pem" --store-dir "$S"
    stp_assert_eq "$RC" 0 "--issuer works"
    ;;
revoked)
    fetch revoked
    stp_assert_eq "$RC" 3 "exit status of a revoked certificate"
    stp_assert_file_contains "$OUT" "revoked.test: revoked" "prints revoked"
    openssl_verify revoked | grep -q "revoked.pem: revoked" || stp_fail "stored response is not revoked"
    ;;
unknown)
    fetch unknown
    stp_assert_eq "$RC" 4 "exit status of an unknown certificate"
    stp_assert_file_contains "$OUT" "unknown.test: unknown" "prints unknown"
    ;;
noaia)
    fetch noaia
    stp_assert_eq "$RC" 5 "exit status without an OCSP URL"
    stp_assert_file_contains "$ERR" "no OCSP responder URL" "says why"
    stp_assert_eq "$(requests)" 0 "no request"
    [ ! -e "$S/$(stp_id noaia).der" ] || stp_fail "stored something for noaia"
    # a responder override makes it applicable
    fetch noaia --url "$URL"
    stp_assert_eq "$RC" 0 "--url override"
    ;;
down)
    stp_stop_pid "$RESPONDER_PID"
    start=$(date +%s)
    fetch good --timeout 3
    end=$(date +%s)
    stp_assert_eq "$RC" 1 "a dead responder is an error"
    stp_assert_file_contains "$ERR" "connect" "names the cause"
    stp_assert_file_contains "$ERR" "127.0.0.1:$RESPONDER_PORT" "names the URL"
    [ $((end - start)) -le 5 ] || stp_fail "took $((end - start))s with a 3s timeout"
    grep -q '^failures=1$' "$S/$(stp_id good).state" || stp_fail "failure not recorded"
    ;;
hang)
    stp_responder_mode "$P" hang
    start=$(date +%s)
    fetch good --timeout 2
    end=$(date +%s)
    stp_assert_eq "$RC" 1 "a silent responder is an error"
    stp_assert_file_contains "$ERR" "timeout" "says timeout"
    [ $((end - start)) -le 5 ] || stp_fail "took $((end - start))s with a 2s timeout"
    ;;
http500 | garbage | trylater | unauthorized)
    fetch good
    stp_assert_eq "$RC" 0 "first fetch"
    cp "$S/$(stp_id good).der" "$T/before.der"
    stp_responder_mode "$P" "$1"
    fetch good --force
    stp_assert_eq "$RC" 1 "$1 is an error"
    case $1 in
    http500) want="http: .*HTTP status 500" ;;
    garbage) want="malformed: not a DER OCSP response" ;;
    trylater) want="tryLater: responder answered trylater" ;;
    unauthorized) want="unauthorized: responder answered unauthorized" ;;
    esac
    stp_assert_file_contains "$ERR" "$want" "distinct error for $1"
    cmp -s "$T/before.der" "$S/$(stp_id good).der" || stp_fail "the good response was lost"
    grep -q '^failures=1$' "$S/$(stp_id good).state" || stp_fail "failure not recorded"
    ;;
tampered)
    fetch good
    f=$S/$(stp_id good).der
    flip_last_byte "$f" # inside the signature
    stp_cli status --store-dir "$S"
    stp_assert_file_contains "$OUT" "invalid:signature" "status sees the tampering"
    fetch good
    stp_assert_eq "$RC" 0 "refetch after tampering"
    stp_assert_file_contains "$ERR" "stored response .*/$(stp_id good).der rejected" "the loader names the rejected file"
    stp_assert_eq "$(requests)" 2 "tampered file refetched"
    openssl_verify good | grep -q "Response verify OK" || stp_fail "not repaired"
    # a valid response for another certificate renamed into place
    fetch ecdsa
    cp "$S/$(stp_id good).der" "$S/$(stp_id ecdsa).der"
    fetch ecdsa
    stp_assert_eq "$RC" 0 "refetch after a foreign file"
    stp_assert_file_contains "$ERR" "not for this certificate" "foreign file rejected"
    stp_assert_eq "$(requests)" 4 "foreign file refetched"
    ;;
wrongcert)
    # the responder answers with a valid, signed response for another cert
    fetch good
    cp "$S/$(stp_id good).der" "$P/responder.replay.der"
    stp_responder_mode "$P" replay
    fetch ecdsa
    stp_assert_eq "$RC" 1 "a response for another certificate is an error"
    stp_assert_file_contains "$ERR" "certid: .*not for this certificate" "says why"
    [ ! -e "$S/$(stp_id ecdsa).der" ] || stp_fail "stored a response for another certificate"
    ;;
older)
    fetch good
    cp "$S/$(stp_id good).der" "$T/r1.der"
    # thisUpdate has a resolution of one second: let one pass
    stp_next_second
    fetch good --force
    stp_assert_eq "$RC" 0 "second fetch"
    cmp -s "$T/r1.der" "$S/$(stp_id good).der" && stp_fail "second fetch did not replace"
    cp "$S/$(stp_id good).der" "$T/r2.der"
    cp "$T/r1.der" "$P/responder.replay.der"
    stp_responder_mode "$P" replay
    fetch good --force
    stp_assert_eq "$RC" 1 "an older response is refused"
    stp_assert_file_contains "$ERR" "older than the stored one" "says why"
    cmp -s "$T/r2.der" "$S/$(stp_id good).der" || stp_fail "the newer response was replaced"
    ;;
refresh)
    fetch good
    fetch ecdsa
    stp_cli refresh --store-dir "$S"
    stp_assert_eq "$RC" 0 "refresh exit"
    stp_assert_file_contains "$OUT" "good.test: good \\(stored response not due\\)" "good not due"
    stp_assert_file_contains "$OUT" "2 certificate\\(s\\), 0 failed" "summary"
    stp_assert_eq "$(requests)" 2 "nothing due: no request"
    stp_cli refresh --store-dir "$S" --force
    stp_assert_eq "$(requests)" 4 "--force fetches both"
    stp_assert_file_contains "$OUT" "ecdsa.test: good \\(fetched\\)" "fetched"
    rm "$S/$(stp_id ecdsa).pem"
    stp_cli refresh --store-dir "$S"
    stp_assert_eq "$RC" 1 "a certificate without its chain is a failure"
    stp_assert_file_contains "$OUT" "skipped: no usable" "says why"
    ;;
*)
    stp_fail "unknown scenario $1"
    ;;
esac
stp_ok "$1"
