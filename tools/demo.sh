#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# demo.sh [BUILD_DIR]: the main job end to end, on 127.0.0.1 only. A local
# OCSP responder (the real `openssl ocsp` responder logic behind a loopback
# HTTP front) and a throwaway PKI whose certificates point at it; then an
# unmodified `openssl s_server` staples through the LD_PRELOAD hook (cold
# store: the hook fetches in the background), a second one through the
# provider that openssl.cnf loads (warm store: the first handshake is
# stapled, no new request), and the clients show the verified staple.
# Everything lives in a temporary directory removed at the end (KEEP=1).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
CLI=$BUILD/ocspstaple
RESPONDER=$BUILD/test/stp_test_responder
HOOK=$BUILD/libocspstaple.so
MODULE=$BUILD/ocspstaple.so
for f in "$CLI" "$RESPONDER" "$HOOK" "$MODULE"; do
    [ -e "$f" ] || { echo "demo: $f is missing: build first (see README.md)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/ocspstaple-demo.XXXXXX)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "demo: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
requests() { wc -l <"$T/pki/requests.log"; }

# start_server LOG ENV...: an unmodified openssl s_server on a free port.
start_server() {
    local log=$1
    shift
    env "$@" openssl s_server -www -accept 127.0.0.1:0 -cert "$T/pki/good.pem" \
        -key "$T/pki/good.key" -cert_chain "$T/pki/int.pem" </dev/null >"$log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        PORT=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$log")
        [ -n "$PORT" ] && return 0
        sleep 0.05
    done
    echo "demo: the server did not start" >&2
    exit 1
}

step "OCSP responder on 127.0.0.1 (port chosen by the kernel)"
mkdir -p "$T/pki"
"$RESPONDER" --dir "$T/pki" --port-file "$T/pki/port" \
    --log "$T/pki/requests.log" --lifetime 120 2>/dev/null &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/pki/port" ] && break; sleep 0.05; done
RPORT=$(cat "$T/pki/port")
touch "$T/pki/requests.log"
echo "http://127.0.0.1:$RPORT/"

step "throwaway PKI: root -> intermediate -> leaves with AIA http://127.0.0.1:$RPORT/"
"$SRC/test/support/mkpki.sh" "$T/pki" "$RPORT" >/dev/null
openssl x509 -in "$T/pki/good.pem" -noout -subject -ext authorityInfoAccess

step "the policy: an openssl.cnf with an ocspstaple section"
cat >"$T/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
ocspstaple = ocspstaple_sect
[default_sect]
activate = 1
[ocspstaple_sect]
module = $MODULE
activate = 1
store_dir = $T/store
log_level = info
# the demo's only server is openssl s_server, as root (check, as root, would
# otherwise also try the users of the servers installed on this host)
programs = openssl
# the throwaway PKI's root: \`status\` believes stored chains that reach it
ca_file = $T/pki/root.pem
CNF
sed -n '/^\[ocspstaple_sect\]/,$p' "$T/openssl.cnf"
"$CLI" check --conf "$T/openssl.cnf"

step "openssl s_server under LD_PRELOAD=libocspstaple.so (cold store)"
start_server "$T/s1.log" LD_PRELOAD="$HOOK" OCSPSTAPLE_CONF="$T/openssl.cnf" \
    OPENSSL_CONF=/dev/null
echo "listening on 127.0.0.1:$PORT"
for _ in $(seq 100); do
    "$CLI" probe "127.0.0.1:$PORT" --require-staple >/dev/null 2>&1 && break
    sleep 0.1
done
echo "ocspstaple probe (verifies signature, CertID, freshness):"
"$CLI" probe "127.0.0.1:$PORT" --require-staple --CAfile "$T/pki/root.pem"
echo "openssl s_client -status:"
openssl s_client -connect "127.0.0.1:$PORT" -status -CAfile "$T/pki/root.pem" \
    </dev/null 2>/dev/null | grep -E "OCSP Response Status|Cert Status|Next Update|Verify return" |
    awk '!seen[$0]++'
echo "responder requests so far: $(requests)"

step "openssl s_server loading the provider from openssl.cnf (warm store)"
start_server "$T/s2.log" OPENSSL_CONF="$T/openssl.cnf"
echo "listening on 127.0.0.1:$PORT; first handshake:"
"$CLI" probe "127.0.0.1:$PORT" --require-staple --CAfile "$T/pki/root.pem"
echo "responder requests so far: $(requests) (the store served this process)"

step "ocspstaple status"
"$CLI" status --conf "$T/openssl.cnf"
