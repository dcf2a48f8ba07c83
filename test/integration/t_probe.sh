#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_probe.sh: `ocspstaple probe` against `openssl s_server -status_file`
# (OpenSSL's own fixed-file stapling) on 127.0.0.1, with responses fetched
# from the real responder logic for this run's PKI: good, a response for
# another certificate, none (with and without --require-staple), revoked,
# unknown, expired; the chain and host name check; the choice of a
# dual-certificate server's RSA or ECDSA leaf by --sigalgs; connection
# errors, the handshake timeout and usage errors. TLS 1.3 and 1.2.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"

stp_need openssl sha256sum timeout
stp_setup
P=$T/pki
S=$T/store
mkdir -p "$P"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"

# resp NAME: the stored response of leaf NAME (fetched below).
resp() {
    echo "$S/$(stp_id "$1").der"
}

for n in good ecdsa revoked unknown; do
    "$STP_CLI" fetch "$P/$n.chain.pem" --store-dir "$S" >"$T/fetch.out" 2>&1 || true
    [ -s "$(resp "$n")" ] || { cat "$T/fetch.out" >&2; stp_fail "no response for $n"; }
done

declare -A PORT SPID
# server NAME LEAF [S_SERVER ARGS...]: s_server for LEAF, its chain sent,
# lifetime bounded; PORT[NAME], SPID[NAME].
server() {
    local name=$1 leaf=$2
    shift 2
    stp_start_s_server "$T/s_server.$name.out" 5 timeout 120 \
        openssl s_server -www -accept 127.0.0.1:0 -cert "$P/$leaf.pem" \
        -key "$P/$leaf.key" -cert_chain "$P/int.pem" "$@"
    PORT[$name]=$S_SERVER_PORT
    SPID[$name]=$S_SERVER_PID
}

# probe PORT ARGS...: runs the probe, bounded; sets RC, OUT, ERR (files).
probe() {
    local port=$1
    shift
    OUT=$T/probe.out
    ERR=$T/probe.err
    set +e
    timeout 30 "$STP_CLI" probe "127.0.0.1:$port" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    set -e
    cat "$OUT" "$ERR" >&2
}

# expect WANT_RC MSG PORT ARGS...: probe and check the exit status.
expect() {
    local want=$1 msg=$2
    shift 2
    probe "$@"
    stp_assert_eq "$RC" "$want" "exit status: $msg"
}

server good ecdsa -status_file "$(resp ecdsa)"
server other ecdsa -status_file "$(resp good)"
server none ecdsa
server revoked revoked -status_file "$(resp revoked)"
server unknown unknown -status_file "$(resp unknown)"
server dual good -dcert "$P/ecdsa.pem" -dkey "$P/ecdsa.key" \
    -dcert_chain "$P/int.pem" -status_file "$(resp good)"

for v in 1.3 1.2; do
    # a good staple, the chain checked against the root and the host name
    expect 0 "good, TLS $v" "${PORT[good]}" --tls$v --CAfile "$P/root.pem" \
        --servername ecdsa.test
    stp_assert_file_contains "$OUT" \
        "^stapled=yes status=good verified=yes this_update=[0-9TZ:-]+ next_update=[0-9TZ:-]+ protocol=TLSv$v sigalg=ECDSA\\+SHA256 cert_key=EC chain=ok subject=CN=ecdsa\\.test\$" \
        "good staple line, TLS $v"
    expect 0 "good --json, TLS $v" "${PORT[good]}" --tls$v --json
    stp_assert_file_contains "$OUT" \
        '^\{"target": .*"stapled": true, "verified": true, "status": "good".*"exit": 0\}$' \
        "good staple JSON, TLS $v"
    stp_ok "good staple verified, TLS $v"

    # a valid response, but for another certificate
    expect 7 "response for another certificate, TLS $v" "${PORT[other]}" --tls$v
    stp_assert_file_contains "$OUT" "^stapled=yes verified=no error=certid " \
        "certid line, TLS $v"
    stp_assert_file_contains "$ERR" \
        "stapled response does not verify: certid: response is not for this certificate" \
        "certid cause, TLS $v"
    stp_ok "foreign staple rejected, TLS $v"

    # no staple: fine unless required
    expect 0 "no staple, TLS $v" "${PORT[none]}" --tls$v
    stp_assert_file_contains "$OUT" "^stapled=no protocol=TLSv$v " "stapled=no, TLS $v"
    expect 6 "no staple, required, TLS $v" "${PORT[none]}" --tls$v --require-staple
    stp_assert_file_contains "$ERR" "no stapled OCSP response" "says why, TLS $v"
    stp_ok "no staple: 0, and 6 when required, TLS $v"

    expect 3 "revoked, TLS $v" "${PORT[revoked]}" --tls$v --require-staple
    stp_assert_file_contains "$OUT" "^stapled=yes status=revoked verified=yes " \
        "revoked line, TLS $v"
    expect 4 "unknown, TLS $v" "${PORT[unknown]}" --tls$v
    stp_assert_file_contains "$OUT" "^stapled=yes status=unknown verified=yes " \
        "unknown line, TLS $v"
    stp_ok "revoked 3, unknown 4, TLS $v"

    # the dual-certificate server: the client's sigalgs pick the leaf
    expect 0 "dual, RSA leaf, TLS $v" "${PORT[dual]}" --tls$v \
        --sigalgs RSA-PSS+SHA256:RSA+SHA256 --CAfile "$P/root.pem"
    stp_assert_file_contains "$OUT" "cert_key=RSA chain=ok subject=CN=good\\.test\$" \
        "RSA leaf chosen, TLS $v"
    expect 7 "dual, ECDSA leaf, TLS $v" "${PORT[dual]}" --tls$v --sigalgs ECDSA+SHA256
    stp_assert_file_contains "$OUT" "sigalg=ECDSA\\+SHA256 cert_key=EC .*subject=CN=ecdsa\\.test\$" \
        "ECDSA leaf chosen, TLS $v"
    stp_ok "--sigalgs picks the RSA or ECDSA leaf, TLS $v"
done

# N full handshakes, each verified
expect 0 "--count" "${PORT[good]}" --count 20 --require-staple
stp_assert_file_contains "$OUT" \
    '^handshakes=20 stapled=20 verified=20 elapsed_ms=[0-9]+ hs_per_s=[0-9.]+$' \
    "summary line"
expect 0 "--count --json" "${PORT[good]}" --count 3 --json
stp_assert_file_contains "$OUT" '"summary": \{"handshakes": 3, "stapled": 3, "verified": 3, ' \
    "JSON summary"
stp_ok "--count: 20 handshakes, 20 staples verified"

# two days later the stapled response (nextUpdate = thisUpdate + 1 day) is
# stale; the certificates are still valid
OCSPSTAPLE_FAKE_TIME=$(($(date +%s) + 2 * 86400)) \
    expect 7 "expired staple" "${PORT[good]}"
stp_assert_file_contains "$ERR" "does not verify: expired: " "expired cause"
stp_ok "expired staple rejected"

# the chain: wrong anchor, wrong host name
expect 1 "untrusted chain" "${PORT[good]}" --CAfile "$P/rogue.pem"
stp_assert_file_contains "$OUT" " chain=failed " "chain=failed"
stp_assert_file_contains "$ERR" "certificate verify failed: unable to get local issuer" \
    "chain cause"
expect 1 "host name mismatch" "${PORT[good]}" --CAfile "$P/root.pem" \
    --servername other.test
stp_assert_file_contains "$ERR" "certificate verify failed: hostname mismatch" \
    "host name cause"
stp_ok "chain and host name failures are errors"

# connection errors, bounded
stp_stop_pid "${SPID[none]}"
stp_forget_pid "${SPID[none]}"
expect 1 "connection refused" "${PORT[none]}"
stp_assert_file_contains "$ERR" "127\\.0\\.0\\.1:${PORT[none]}: connect: Connection refused" \
    "refused cause"
expect 1 "connection refused, JSON" "${PORT[none]}" --json
stp_assert_file_contains "$OUT" '"error": "connect: Connection refused", "exit": 1\}$' \
    "JSON error"
# the responder in hang mode accepts and never answers
stp_responder_mode "$P" hang
start=$(date +%s%N)
expect 1 "silent server" "$RESPONDER_PORT" --timeout 1
elapsed=$((($(date +%s%N) - start) / 1000000))
stp_assert_file_contains "$ERR" "handshake: timed out" "timeout cause"
[ "$elapsed" -lt 3000 ] || stp_fail "took ${elapsed} ms with --timeout 1"
stp_responder_mode "$P" normal
stp_ok "refused and silent servers: exit 1 (timeout after ${elapsed} ms)"

# usage
for bad in localhost:443 127.0.0.1 127.0.0.1:0 '::1:443' '[::1]:x'; do
    set +e
    "$STP_CLI" probe "$bad" >/dev/null 2>"$ERR"
    RC=$?
    set -e
    stp_assert_eq "$RC" 2 "usage: $bad"
done
expect 2 "--tls1.2 and --tls1.3" "${PORT[good]}" --tls1.2 --tls1.3
expect 2 "--count 0" "${PORT[good]}" --count 0
expect 2 "bad --sigalgs" "${PORT[good]}" --sigalgs NOPE+SHA1
stp_ok "usage errors: 2"
