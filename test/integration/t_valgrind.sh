#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_valgrind.sh: an unmodified `openssl s_server` under valgrind's memcheck,
# with the hook preloaded (LD_PRELOAD is in valgrind's environment, which
# hands it on to the program it runs, after its own preloads), a cold store
# (the refresher fetches with libcurl under valgrind), then a few hundred
# handshakes with `ocspstaple probe --count`. s_server does not exit cleanly
# on a signal: -naccept makes it exit by itself after the last connection,
# and valgrind's exit status must be 0 with "ERROR SUMMARY: 0 errors".
# Leaks count as errors: definitely and possibly lost blocks, s_server's
# and OpenSSL's included (there are none), with one suppression
# (test/valgrind.supp: the thread-local storage of the refresher thread,
# which runs until exit). STP_VALGRIND_LEAKS replaces these leak options
# (e.g. "--leak-check=no").
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

stp_need openssl valgrind
stp_hook_need
if [ -n "${STP_SANITIZER_PRELOAD:-}" ]; then
    echo "SKIP: sanitizer build (valgrind cannot run a sanitized library)" >&2
    exit 77
fi
stp_setup
P=$T/pki
mkdir -p "$P"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
CONF=$T/stp.cnf
stp_conf "$CONF" preload
N=${STP_VALGRIND_HANDSHAKES:-300}
WARMUP=60 # connections the cold start may take, at most
NACCEPT=$((N + WARMUP))
SUPP=$STP_SUPPORT/../valgrind.supp
[ -f "$SUPP" ] || stp_fail "no $SUPP"
KINDS=definite,possible
LEAKS=(--leak-check=full "--errors-for-leak-kinds=$KINDS"
    "--show-leak-kinds=$KINDS" --suppressions="$SUPP")
if [ -n "${STP_VALGRIND_LEAKS:-}" ]; then
    read -r -a LEAKS <<<"$STP_VALGRIND_LEAKS"
fi
VLOG=$T/valgrind.log

# s_server under valgrind: up to 60 s to listen
# shellcheck disable=SC2046
stp_start_s_server "$T/s_server.out" 60 env $(stp_route_env preload "$CONF") \
    valgrind --tool=memcheck --error-exitcode=99 --track-fds=no \
    --child-silent-after-fork=yes "${LEAKS[@]}" --log-file="$VLOG" \
    openssl s_server -www -accept 127.0.0.1:0 -naccept "$NACCEPT" \
    -cert "$P/good.pem" -key "$P/good.key" -cert_chain "$P/int.pem"
VPID=$S_SERVER_PID
port=$S_SERVER_PORT

t0=$(date +%s)

# the cold start: one connection per probe, until a staple arrives (each
# one counts against -naccept)
used=0
stapled=0
while [ "$used" -lt "$WARMUP" ]; do
    stp_probe "$port" --require-staple --timeout 20
    used=$((used + 1))
    [ "$RC" -ne 7 ] || stp_fail "an invalid staple: $PROBE"
    [ "$RC" -ne 1 ] || stp_fail "a failed handshake: $PROBE"
    if [ "$RC" -eq 0 ]; then
        stapled=1
        break
    fi
    sleep 0.5
done
[ "$stapled" -eq 1 ] || stp_fail "no staple after $used handshakes"
echo "first staple after $used handshakes, $(($(date +%s) - t0)) s" >&2
stp_assert_file_contains "$T/hook.log" "tracking certificate" \
    "the hook is loaded in the program valgrind runs"
stp_assert_requests 1 "one responder request"

# the rest of -naccept: at least N handshakes, every one stapled and verified
rest=$((NACCEPT - used))
set +e
out=$(timeout 250 "$STP_CLI" probe "127.0.0.1:$port" --count "$rest" \
    --require-staple --timeout 20 --CAfile "$P/root.pem" 2>&1)
rc=$?
set -e
echo "$out" >&2
stp_assert_eq "$rc" 0 "$rest stapled handshakes"
grep -q "^handshakes=$rest stapled=$rest verified=$rest " <<<"$out" ||
    stp_fail "not every handshake was stapled and verified"

# s_server exits after its last connection; valgrind reports then
for ((i = 0; i < 600; i++)); do
    kill -0 "$VPID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$VPID" 2>/dev/null; then
    stp_fail "s_server did not exit after $NACCEPT connections"
fi
set +e
wait "$VPID"
vrc=$?
set -e
stp_forget_pid "$VPID"
grep -E "ERROR SUMMARY|lost:|suppressed:|Invalid|uninitialised" "$VLOG" >&2 || true
if [ "$vrc" -ne 0 ]; then
    cat "$VLOG" >&2
    stp_fail "valgrind exit status $vrc"
fi
stp_assert_file_contains "$VLOG" "ERROR SUMMARY: 0 errors" "memcheck: no error"
stp_no_errors "$T/hook.log"
stp_ok "valgrind s_server: $NACCEPT handshakes, $(($(date +%s) - t0)) s"
