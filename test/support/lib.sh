# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# lib.sh: helpers sourced by the integration tests (which run under
# `set -euo pipefail`): a per-test temporary directory $T with cleanup of
# registered pids, the loopback test OCSP responder, the throwaway PKI and
# its store ids, the CLI, clocks, waits bounded by polling, and assertions.
# Servers are in servers.sh, the hook's routes and probes in hook.sh.
# Environment: STP_RESPONDER, STP_SUPPORT, STP_CLI, STP_KEEP=1 (keep $T of a
# failed test; always: of every run, for a benchmark), STP_WAIT
# (stp_wait_for limit, s).

STP_SUPPORT=${STP_SUPPORT:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
STP_PIDS=()
# STP_AS: a command prefix (e.g. setpriv ... --) under which stp_cli (and
# servers.sh's stp_serve_s_server) run their program; empty: as is.
STP_AS=()

# stp_ok MSG: a progress line.
stp_ok() {
    printf 'ok - %s\n' "$*"
}

# stp_fail MSG: report a failure and end the test.
stp_fail() {
    printf 'FAIL: %s\n' "$*" >&2
    exit 1
}

# stp_need TOOL...: skip the test (exit 77) unless every tool is available.
stp_need() {
    local tool missing=()
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "SKIP: missing tool(s): ${missing[*]}" >&2
        exit 77
    fi
}

# stp_register_pid PID: stop PID when the test exits.
stp_register_pid() {
    STP_PIDS+=("$1")
}

# stp_stop_pid PID: SIGTERM, wait up to ~3 s, then SIGKILL. By pid only.
stp_stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 60; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    echo "warning: pid $pid ignored SIGTERM for 3 s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

_stp_on_exit() {
    local rc=$? i
    set +e
    for ((i = ${#STP_PIDS[@]} - 1; i >= 0; i--)); do
        stp_stop_pid "${STP_PIDS[i]}"
    done
    if [ -n "${T:-}" ] && [ -d "$T" ]; then
        if { [ "$rc" -ne 0 ] && [ "${STP_KEEP:-0}" = 1 ]; } || [ "${STP_KEEP:-0}" = always ]; then
            echo "kept $T (exit status $rc)" >&2
        else
            rm -rf "$T"
        fi
    fi
    exit "$rc"
}

# stp_setup: create $T and install the cleanup trap.
stp_setup() {
    T=$(mktemp -d "${TMPDIR:-/tmp}/stp-it.XXXXXX")
    export T
    trap _stp_on_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# stp_wait_for CMD...: poll CMD every 50 ms until it succeeds; give up after
# STP_WAIT seconds (default 5, whole seconds) and return 1.
stp_wait_for() {
    local limit=${STP_WAIT:-5} i
    for ((i = 0; i <= limit * 20; i++)); do
        if "$@"; then
            return 0
        fi
        sleep 0.05
    done
    echo "stp_wait_for: still failing after ${limit} s: $*" >&2
    return 1
}

# stp_start_responder DIR [ARGS...]: start the test OCSP responder serving
# DIR (the PKI may come later) on 127.0.0.1; sets RESPONDER_PORT/RESPONDER_PID.
# Its stderr goes to DIR/responder.stderr, its temp files to DIR.
stp_start_responder() {
    local dir=$1 i
    shift
    [ -n "${STP_RESPONDER:-}" ] || stp_fail "STP_RESPONDER is not set"
    mkdir -p "$dir"
    rm -f "$dir/responder.port"
    TMPDIR=$dir "$STP_RESPONDER" --dir "$dir" --port-file "$dir/responder.port" \
        --log "$dir/responder.log" "$@" </dev/null >>"$dir/responder.stderr" 2>&1 &
    RESPONDER_PID=$!
    stp_register_pid "$RESPONDER_PID"
    for ((i = 0; i < 100; i++)); do
        if [ -s "$dir/responder.port" ]; then
            RESPONDER_PORT=$(<"$dir/responder.port")
            [[ $RESPONDER_PORT =~ ^[0-9]+$ ]] ||
                stp_fail "bad port file $dir/responder.port"
            export RESPONDER_PORT RESPONDER_PID
            return 0
        fi
        if ! kill -0 "$RESPONDER_PID" 2>/dev/null; then
            cat "$dir/responder.stderr" >&2
            stp_fail "the responder exited during startup"
        fi
        sleep 0.05
    done
    stp_fail "the responder wrote no $dir/responder.port within 5 s"
}

# stp_mkpki DIR PORT: build the test PKI (see mkpki.sh).
stp_mkpki() {
    bash "$STP_SUPPORT/mkpki.sh" "$1" "$2" || stp_fail "mkpki.sh $1 $2 failed"
}

# stp_responder_requests DIR: the number of requests the responder logged.
stp_responder_requests() {
    local n=0
    if [ -f "$1/responder.log" ]; then
        n=$(wc -l <"$1/responder.log")
    fi
    echo $((n))
}

_stp_mode_applied() {
    [ "$(cat "$1/responder.mode.applied" 2>/dev/null)" = "$2" ]
}

# stp_responder_mode DIR MODE: switch the running responder's fault mode,
# and wait (bounded) until it says the mode is in force: the responder
# polls its mode file, and "refuse" closes its listener only at a poll.
stp_responder_mode() {
    printf '%s\n' "$2" >"$1/responder.mode.tmp"
    mv -f "$1/responder.mode.tmp" "$1/responder.mode"
    stp_wait_for _stp_mode_applied "$1" "$2" ||
        stp_fail "the responder in $1 did not apply mode '$2'"
}

# stp_assert_eq GOT WANT MSG
stp_assert_eq() {
    [ "$1" = "$2" ] || stp_fail "$3: got '$1', want '$2'"
}

_stp_show() {
    echo "--- $1 (last 20 lines):" >&2
    tail -n 20 "$1" >&2 || true
}

# stp_assert_file_contains FILE REGEX MSG (extended regex, grep -E)
stp_assert_file_contains() {
    [ -f "$1" ] || stp_fail "$3: no file $1"
    if ! grep -Eq -- "$2" "$1"; then
        _stp_show "$1"
        stp_fail "$3: /$2/ not found in $1"
    fi
}

# stp_assert_file_lacks FILE REGEX MSG (a missing file lacks everything)
stp_assert_file_lacks() {
    if [ -f "$1" ] && grep -Eq -- "$2" "$1"; then
        _stp_show "$1"
        stp_fail "$3: /$2/ found in $1"
    fi
}

# stp_forget_pid PID: drop PID from the exit cleanup (it was stopped already).
stp_forget_pid() {
    local i
    for i in "${!STP_PIDS[@]}"; do
        if [ "${STP_PIDS[i]}" = "$1" ]; then
            unset 'STP_PIDS[i]'
        fi
    done
    STP_PIDS=("${STP_PIDS[@]}")
}

# stp_id NAME: the store id of leaf $P/NAME.pem (hex SHA-256 of its DER).
stp_id() {
    openssl x509 -in "$P/$1.pem" -outform DER | sha256sum | cut -d' ' -f1
}

# stp_hold_lock FILE: another process (flock(1), its pid in HOLDER) holds
# the exclusive lock of FILE (created if missing) until it is stopped by pid;
# returns once /proc/locks shows it held.
stp_hold_lock() {
    : >>"$1"
    # --no-fork: the process that holds the lock is the one we stop
    flock --no-fork -x "$1" sleep 120 &
    HOLDER=$!
    stp_register_pid "$HOLDER"
    stp_wait_for grep -qE "FLOCK .* $HOLDER " /proc/locks ||
        stp_fail "the test's flock did not take $1"
}

# stp_cli ARGS...: runs the CLI ($STP_CLI, under $STP_AS when set), bounded
# (30 s); sets RC, OUT and ERR ($T/cli.out and $T/cli.err, its stdout and
# stderr), and shows both on the test's stderr.
stp_cli() {
    OUT=$T/cli.out
    ERR=$T/cli.err
    set +e
    "${STP_AS[@]}" timeout 30 "$STP_CLI" "$@" >"$OUT" 2>"$ERR"
    RC=$?
    set -e
    echo "cli $*: rc=$RC" >&2
    cat "$OUT" "$ERR" >&2
}

# stp_ms: the wall clock in milliseconds (no fork).
stp_ms() {
    local t=${EPOCHREALTIME/[.,]/}
    echo $((t / 1000))
}

# stp_next_second: returns once the clock has passed to the next second, so
# that a response made after it has a later thisUpdate than one made before.
_stp_after() {
    [ "$(date +%s)" -gt "$1" ]
}

stp_next_second() {
    stp_wait_for _stp_after "$(date +%s)" || stp_fail "the clock does not move"
}

# stp_state_get FILE KEY [DEFAULT]: the value of KEY in a store state file
# (<id>.state), or DEFAULT when the file or the key is missing.
stp_state_get() {
    local v
    v=$(sed -n "s/^$2=//p" "$1" 2>/dev/null | head -n 1)
    echo "${v:-${3:-}}"
}
