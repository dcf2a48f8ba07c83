#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# demo.sh [BUILD_DIR]: the main job end to end, on 127.0.0.1 only. Builds a
# throwaway PKI whose certificates point at a local OCSP responder (the real
# `openssl ocsp` responder logic behind a loopback HTTP front), then warms a
# store directory with `ocspstaple fetch` and shows it with `ocspstaple
# status`. Everything lives in a temporary directory removed at the end
# (kept with KEEP=1).
set -euo pipefail

SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${1:-$SRC/build}" && pwd)
CLI=$BUILD/ocspstaple
RESPONDER=$BUILD/test/stp_test_responder
for f in "$CLI" "$RESPONDER"; do
    [ -x "$f" ] || { echo "demo: $f is missing: build first (see README.md)" >&2; exit 1; }
done

T=$(mktemp -d /tmp/ocspstaple-demo.XXXXXX)
RPID=
cleanup() {
    [ -n "$RPID" ] && kill "$RPID" 2>/dev/null && wait "$RPID" 2>/dev/null
    if [ "${KEEP:-0}" = 1 ]; then echo "demo: kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }

step "responder on 127.0.0.1 (port chosen by the kernel)"
mkdir -p "$T/pki"
"$RESPONDER" --dir "$T/pki" --port-file "$T/pki/port" --log "$T/pki/requests.log" \
    --lifetime 120 &
RPID=$!
for _ in $(seq 100); do [ -s "$T/pki/port" ] && break; sleep 0.05; done
PORT=$(cat "$T/pki/port")
echo "listening on http://127.0.0.1:$PORT/"

step "throwaway PKI: root -> intermediate -> leaves with AIA http://127.0.0.1:$PORT/"
"$SRC/test/support/mkpki.sh" "$T/pki" "$PORT" >/dev/null
openssl x509 -in "$T/pki/good.pem" -noout -subject -ext authorityInfoAccess

step "ocspstaple fetch: fetch, verify, store (good, Must-Staple, revoked, no AIA)"
set +e
for c in good muststaple revoked noaia; do
    "$CLI" fetch "$T/pki/$c.chain.pem" --store-dir "$T/store"
    echo "   exit status $?"
done
set -e

step "openssl verifies the stored staple independently"
ID=$(openssl x509 -in "$T/pki/good.pem" -outform DER | sha256sum | cut -d' ' -f1)
openssl ocsp -respin "$T/store/$ID.der" -issuer "$T/pki/int.pem" \
    -CAfile "$T/pki/root.pem" -cert "$T/pki/good.pem" -no_nonce

step "ocspstaple status"
"$CLI" status --store-dir "$T/store"

step "a second fetch reuses the fresh staple: no new responder request"
"$CLI" fetch "$T/pki/good.chain.pem" --store-dir "$T/store"
echo "responder requests so far: $(wc -l <"$T/pki/requests.log")"
