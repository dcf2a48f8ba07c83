#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_attach.sh [fork]: an application that links libocspstaple.so and calls
# ocspstaple_attach() (no openssl.cnf, no LD_PRELOAD) staples verified
# responses; its own counters agree with what the client saw. Attaching
# starts no thread. With `fork`, the application forks after attaching, as
# a prefork server does, and the child serves from 4 threads: its own
# refresher staples, with one request.
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
MODE=${1:-plain}
FORK=0
THREADS=1
if [ "$MODE" = fork ]; then
    FORK=1
    THREADS=4
fi

stp_start_s_server "$T/srv.out" 5 env OCSPSTAPLE_CONF="$T/stp.cnf" \
    OPENSSL_CONF=/dev/null \
    OCSPSTAPLE_DEBUG="level:debug,file:$T/hook.log" \
    ASAN_OPTIONS=detect_leaks=0 STP_ATTACH_FORK=$FORK \
    "$STP_ATTACH_SERVER_MT" "$P/ecdsa.pem" "$P/ecdsa.key" "$P/int.pem" "$THREADS"
stp_assert_file_contains "$T/srv.out" "attach=1" "ocspstaple_attach succeeded"
stp_assert_file_contains "$T/srv.out" "^threads_after_attach=1$" \
    "attaching starts no thread"
stp_wait_staple "$S_SERVER_PORT" --CAfile "$P/root.pem"
stp_probe "$S_SERVER_PORT" --count 2 --require-staple
[ "$RC" -eq 0 ] || stp_fail "stapled handshakes: $PROBE"
# SIGTERM: the server prints its counters and exits
kill -TERM "$S_SERVER_PID"
wait "$S_SERVER_PID" || true
# (with fork, the parent waited for its child, which printed the counters)
stp_forget_pid "$S_SERVER_PID"
cat "$T/srv.out" >&2
stp_assert_file_contains "$T/srv.out" "^fetch_ok=1$" "one fetch"
stp_assert_file_contains "$T/srv.out" "^refreshers=1$" "one refresher"
served=$(sed -n 's/^staples_served=//p' "$T/srv.out")
[ "${served:-0}" -ge 3 ] || stp_fail "staples_served=$served, wanted >= 3"
stp_assert_eq "$(stp_responder_requests "$P")" 1 "one responder request"
stp_no_errors "$T/hook.log"
stp_ok "attach $MODE"
