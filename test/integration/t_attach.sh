#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_attach.sh: an application that links libocspstaple.so and calls
# ocspstaple_attach() (no openssl.cnf, no LD_PRELOAD) staples verified
# responses; its own counters agree with what the client saw.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

stp_need openssl
# (no stp_hook_need: this host is ours, so sanitizer builds run it as is)
[ -f "${STP_HOOK:-}" ] || { echo "SKIP: no hook" >&2; exit 77; }
[ -x "${STP_ATTACH_SERVER_MT:-}" ] || { echo "SKIP: no attach server" >&2; exit 77; }
stp_setup
P=$T/pki
mkdir -p "$P"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
stp_conf "$T/stp.cnf" preload

stp_start_s_server "$T/srv.out" 5 env OCSPSTAPLE_CONF="$T/stp.cnf" \
    OPENSSL_CONF=/dev/null \
    OCSPSTAPLE_DEBUG="level:debug,file:$T/hook.log" \
    ASAN_OPTIONS=detect_leaks=0 \
    "$STP_ATTACH_SERVER_MT" "$P/ecdsa.pem" "$P/ecdsa.key" "$P/int.pem" 1
stp_assert_file_contains "$T/srv.out" "attach=1" "ocspstaple_attach succeeded"
stp_wait_staple "$S_SERVER_PORT" --CAfile "$P/root.pem"
stp_probe "$S_SERVER_PORT" --count 2 --require-staple
[ "$RC" -eq 0 ] || stp_fail "stapled handshakes: $PROBE"
# SIGTERM: the server prints its counters and exits
kill -TERM "$S_SERVER_PID"
wait "$S_SERVER_PID" || true
stp_forget_pid "$S_SERVER_PID"
cat "$T/srv.out" >&2
stp_assert_file_contains "$T/srv.out" "^fetch_ok=1$" "one fetch"
stp_assert_file_contains "$T/srv.out" "^refreshers=1$" "one refresher"
served=$(sed -n 's/^staples_served=//p' "$T/srv.out")
[ "${served:-0}" -ge 3 ] || stp_fail "staples_served=$served, wanted >= 3"
stp_assert_eq "$(stp_responder_requests "$P")" 1 "one responder request"
stp_no_errors "$T/hook.log"
stp_ok attach
