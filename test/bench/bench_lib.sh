# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# bench_lib.sh: what the benchmarks that use bench_responder share, sourced
# after test/support/lib.sh with P (the PKI directory) set: starting the
# responder and driving its control file (bench_responder.c says what each
# field does).

# kv FILE KEY: the value of "KEY VALUE" in FILE (empty when missing, or
# when FILE is).
kv() {
    awk -v k="$2" '$1 == k { print $2; exit }' "$1" 2>/dev/null
}

# The responder's control file: a new CTL_GEN resets its counters, CTL_SNAP
# makes it write them at once; answers CTL_DELAY ms late; CTL_HANG 1: the
# hang listener never answers.
CTL_GEN=0
CTL_SNAP=0
CTL_DELAY=0
CTL_HANG=0

_bench_ctl_acked() {
    [ "$(kv "$P/stats" snap)" = "$CTL_SNAP" ] &&
        [ "$(kv "$P/stats" gen)" = "$CTL_GEN" ]
}

# bench_ctl NEWGEN: writes the control file (NEWGEN 1: new counters) and
# waits (bounded) until the responder applied it; then $P/snap holds its
# counters.
bench_ctl() {
    CTL_GEN=$((CTL_GEN + $1))
    CTL_SNAP=$((CTL_SNAP + 1))
    printf 'gen=%d snap=%d delay_ms=%d hang=%d\n' "$CTL_GEN" "$CTL_SNAP" \
        "$CTL_DELAY" "$CTL_HANG" >"$P/ctl.tmp"
    mv -f "$P/ctl.tmp" "$P/ctl"
    stp_wait_for _bench_ctl_acked || stp_fail "the responder ignores its control file"
    cp "$P/stats" "$P/snap"
}

_bench_ports() {
    [ -s "$P/ports" ] || ! stp_alive "$RESPONDER_PID"
}

# bench_responder_start LIFETIME [ARG...]: $STP_BENCH_RESPONDER on
# 127.0.0.1, its files in $P, exiting after LIFETIME s at the latest, ARGs
# appended; sets RESPONDER_PID (registered), RPORT and HANG_PORT.
bench_responder_start() {
    local lifetime=$1
    shift
    "$STP_BENCH_RESPONDER" --index "$P/index.txt" --ca "$P/int.pem" \
        --key "$P/int.key" --port-file "$P/ports" --ctl "$P/ctl" \
        --stats "$P/stats" --lifetime "$lifetime" "$@" \
        </dev/null >>"$P/responder.err" 2>&1 &
    RESPONDER_PID=$!
    stp_register_pid "$RESPONDER_PID"
    stp_wait_for _bench_ports || true
    [ -s "$P/ports" ] || {
        cat "$P/responder.err" >&2
        stp_fail "the responder did not start"
    }
    # shellcheck disable=SC2034 # for the benchmarks that source this
    read -r RPORT HANG_PORT <"$P/ports"
}
