#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# run.sh BUILD_DIR SECONDS: runs each libFuzzer binary of BUILD_DIR (built
# with -DCMAKE_C_COMPILER=clang -DOCSPSTAPLE_FUZZ=ON) for SECONDS seconds on
# a scratch copy of its committed corpus (with <target>.dict when there is
# one), one after the other, each under a hard timeout, and prints the
# executions of each. Exit 1 if a target crashed, leaked, broke an invariant
# or is missing; its log tail is printed and the input that did it is copied
# to BUILD_DIR/fuzz-artifacts/. New corpus entries are discarded: minimise
# and commit useful ones by hand (libFuzzer -merge=1). Environment:
# FUZZ_TARGETS (default: all four), FUZZ_ARGS (more libFuzzer flags), TMPDIR.
set -euo pipefail

usage() {
    echo "usage: run.sh BUILD_DIR SECONDS" >&2
    exit 2
}

[ "$#" -eq 2 ] || usage
BUILD=$1
SECS=$2
case "$SECS" in
'' | *[!0-9]*) usage ;;
esac
if [ "$SECS" -lt 1 ] || [ "$SECS" -gt 86400 ]; then
    usage
fi
HERE=$(cd "$(dirname "$0")" && pwd)
read -r -a TARGETS <<<"${FUZZ_TARGETS:-policy verify store certinfo}"
read -r -a EXTRA <<<"${FUZZ_ARGS:-}"

# tmpfs when there is one: the store target fsyncs on every input.
base=${TMPDIR:-/tmp}
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    base=/dev/shm
fi
SCRATCH=$(mktemp -d "$base/stp-fuzz-run.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

failed=0
summary=()
for t in "${TARGETS[@]}"; do
    bin=$BUILD/test/fuzz_$t
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin missing (configure with -DCMAKE_C_COMPILER=clang" \
            "-DOCSPSTAPLE_FUZZ=ON)" >&2
        failed=1
        summary+=("fuzz_$t: missing")
        continue
    fi
    work=$SCRATCH/$t
    mkdir -p "$work/corpus" "$work/tmp" "$work/artifacts"
    cp "$HERE/corpus/$t"/* "$work/corpus/"
    log=$work/log
    dict=()
    if [ -f "$HERE/$t.dict" ]; then
        dict=(-dict="$HERE/$t.dict")
    fi
    echo "== fuzz_$t: ${SECS}s"
    rc=0
    # The hard bound covers start-up, the corpus load and a slow last input.
    # -max_len above the 8 KiB seed cap; -timeout flags a hanging input.
    TMPDIR=$work/tmp OPENSSL_CONF=/dev/null \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        timeout --kill-after=10 $((SECS + 120)) "$bin" \
        -max_total_time="$SECS" -print_final_stats=1 -max_len=8192 \
        -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$work/artifacts/" "${dict[@]}" "${EXTRA[@]}" \
        "$work/corpus" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    units=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -n 1)
    if [ "$rc" -ne 0 ]; then
        failed=1
        echo "fuzz_$t: FAILED (exit $rc); end of its log:" >&2
        tail -n 60 "$log" >&2
        if compgen -G "$work/artifacts/*" >/dev/null; then
            mkdir -p "$BUILD/fuzz-artifacts"
            cp "$work/artifacts/"* "$BUILD/fuzz-artifacts/"
            echo "fuzz_$t: inputs kept in $BUILD/fuzz-artifacts/:" >&2
            (cd "$work/artifacts" && ls) >&2
        fi
        summary+=("fuzz_$t: FAILED after ${execs:-?} executions")
        continue
    fi
    summary+=("fuzz_$t: ${execs:-?} executions in ${SECS}s (${rate:-?}/s, ${units:-?} new units)")
done

echo "== fuzz summary"
printf '%s\n' "${summary[@]}"
exit "$failed"
