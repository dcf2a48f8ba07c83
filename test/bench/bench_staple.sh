#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench_staple.sh [RESULTS]: what stapling costs a server. Full handshakes
# per second (no resumption) of `openssl s_server` on 127.0.0.1, measured by
# `ocspstaple probe --count N`, for TLS 1.3 and TLS 1.2, in three variants:
#   plain        no stapling
#   status_file  s_server -status_file RESP.der (OpenSSL's fixed-file stapling)
#   hook         s_server with LD_PRELOAD=$STP_HOOK, stapling from a store_dir
#                warmed with `ocspstaple fetch` (only when STP_HOOK is a file)
# Per protocol: one discarded warm-up run of every variant, then BENCH_ROUNDS
# rounds whose order alternates (status_file hook plain, plain hook
# status_file, ...) so that drift hits every variant alike. Prints the median
# per variant and its ratio to plain, and writes the same to RESULTS. For the
# hook it also measures the time from server start to the first verified
# stapled handshake, with a warm and with an empty (cold) store_dir.
# The client verifies each staple (byte-identical repeats reuse the verdict,
# see tools/cli_probe.c), so the ratios include that client work.
#
# Environment: STP_CLI, STP_RESPONDER, STP_SUPPORT (as for the tests),
# STP_HOOK (libocspstaple.so, optional), BENCH_N (handshakes per run, 300),
# BENCH_ROUNDS (5), BENCH_LEAF (ecdsa: EC P-256, or good: RSA 2048),
# BENCH_HOOK_EXTRA (lines added to the ocspstaple section), STP_KEEP=1.
# Meant for an unsanitized build: s_server itself is not instrumented.
set -euo pipefail
STP_SUPPORT=${STP_SUPPORT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../support" && pwd)}
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"

N=${BENCH_N:-300}
ROUNDS=${BENCH_ROUNDS:-5}
LEAF=${BENCH_LEAF:-ecdsa}
RESULTS=${1:-bench-results.txt}
LIFETIME=1800            # s: bound on every server started here
RUN_LIMIT=$((30 + N / 10)) # s: bound on one probe run (each handshake: 5 s)
FIRST_LIMIT_MS=10000     # bound on waiting for the first staple
export OPENSSL_CONF=/dev/null

[[ $N =~ ^[1-9][0-9]*$ ]] || stp_fail "BENCH_N='$N': expected a count"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || stp_fail "BENCH_ROUNDS='$ROUNDS': expected a count"
case "$LEAF" in
ecdsa | good) ;;
*) stp_fail "BENCH_LEAF='$LEAF': expected ecdsa or good" ;;
esac
stp_need openssl awk sort sha256sum timeout
[ -x "${STP_CLI:-}" ] || stp_fail "STP_CLI (the ocspstaple CLI) is not set"
[ -x "${STP_RESPONDER:-}" ] || stp_fail "STP_RESPONDER is not set"

stp_setup
P=$T/pki
mkdir -p "$P"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
ID=$(openssl x509 -in "$P/$LEAF.pem" -outform DER | sha256sum | cut -d' ' -f1)

# warm STORE: fetch the leaf's response into STORE.
warm() {
    "$STP_CLI" fetch "$P/$LEAF.chain.pem" --store-dir "$1" >"$T/fetch.out" 2>&1 ||
        { cat "$T/fetch.out" >&2; stp_fail "ocspstaple fetch into $1 failed"; }
}
warm "$T/fetched"
cp "$T/fetched/$ID.der" "$T/resp.der"

ms() {
    echo $(($(date +%s%N) / 1000000))
}

# The s_server command line shared by every variant.
SERVER=(openssl s_server -www -accept 127.0.0.1:0 -cert "$P/$LEAF.pem"
    -key "$P/$LEAF.key" -cert_chain "$P/int.pem")

# hook_conf FILE STORE_DIR: the openssl.cnf that OCSPSTAPLE_CONF names for
# the hook. No module/activate lines in stp_sect: OpenSSL itself must not
# try to load a provider from it. Adjust here (or BENCH_HOOK_EXTRA) as the
# hook's configuration settles.
hook_conf() {
    cat >"$1" <<EOF
openssl_conf = openssl_init

[openssl_init]
providers = prov

[prov]
default = default_sect
ocspstaple = stp_sect

[default_sect]
activate = 1

[stp_sect]
store_dir = $2
log_level = info
${BENCH_HOOK_EXTRA:-}
EOF
}

# hook_cmd CONF: the command of a hooked s_server (OPENSSL_CONF=/dev/null:
# s_server itself does not read CONF).
hook_cmd() {
    HOOK_CMD=(env "LD_PRELOAD=$STP_HOOK" "OCSPSTAPLE_CONF=$1"
        OPENSSL_CONF=/dev/null "${SERVER[@]}")
}

declare -A PORT SPID
# start VARIANT CMD...: start a server, lifetime bounded, wait until it
# listens; PORT[VARIANT], SPID[VARIANT].
start() {
    local v=$1
    shift
    stp_start_s_server "$T/s_server.$v.out" 5 timeout "$LIFETIME" "$@"
    PORT[$v]=$S_SERVER_PORT
    SPID[$v]=$S_SERVER_PID
}

stop() {
    stp_stop_pid "${SPID[$1]}"
    stp_forget_pid "${SPID[$1]}"
    unset 'SPID[$1]'
}

# first_staple VARIANT CMD...: start a server and poll it every 50 ms with
# `probe --require-staple` (each bounded by 1 s) until a handshake carries a
# verified staple; FIRST_MS is the time from the server's start, or "none"
# after FIRST_LIMIT_MS.
first_staple() {
    local v=$1 t0
    shift
    t0=$(ms)
    start "$v" "$@"
    FIRST_MS=none
    while [ $(($(ms) - t0)) -lt "$FIRST_LIMIT_MS" ]; do
        if timeout 5 "$STP_CLI" probe "127.0.0.1:${PORT[$v]}" --require-staple \
            --timeout 1 >"$T/poll.$v.out" 2>&1; then
            FIRST_MS=$(($(ms) - t0))
            return 0
        fi
        sleep 0.05
    done
    echo "bench: $v: no verified staple within $((FIRST_LIMIT_MS / 1000)) s;" \
        "last probe and server log:" >&2
    cat "$T/poll.$v.out" >&2
    tail -n 20 "$T/s_server.$v.out.err" >&2 || true
}

VARIANTS=(status_file)
HOOK_NOTE=
start plain "${SERVER[@]}"
# the same measure for the fixed file: server start-up plus one probe
first_staple status_file "${SERVER[@]}" -status_file "$T/resp.der"
FIRST_NOTE="status_file ${FIRST_MS} ms (start-up + one probe: the floor)"
if [ -z "${STP_HOOK:-}" ]; then
    HOOK_NOTE="skipped: STP_HOOK is not set (no ocspstaple_hook target)"
elif [ ! -f "$STP_HOOK" ]; then
    HOOK_NOTE="skipped: STP_HOOK=$STP_HOOK is not a file"
else
    warm "$T/store-warm"
    hook_conf "$T/hook-warm.cnf" "$T/store-warm"
    mkdir -p "$T/store-cold"
    hook_conf "$T/hook-cold.cnf" "$T/store-cold"
    hook_cmd "$T/hook-warm.cnf"
    first_staple hook "${HOOK_CMD[@]}"
    WARM_MS=$FIRST_MS
    hook_cmd "$T/hook-cold.cnf"
    first_staple hook_cold "${HOOK_CMD[@]}"
    COLD_MS=$FIRST_MS
    stop hook_cold
    FIRST_NOTE+=", hook warm store ${WARM_MS} ms, hook cold store ${COLD_MS} ms"
    if [ "$WARM_MS" = none ]; then
        HOOK_NOTE="skipped: the hook stapled nothing within 10 s (warm store)"
        stop hook
    else
        VARIANTS+=(hook)
        HOOK_NOTE="measured ($STP_HOOK)"
    fi
fi

# run VARIANT PROTO: one run of N handshakes; RATE = handshakes per second.
# A stapling variant must staple and verify every handshake, plain none.
run() {
    local v=$1 proto=$2 out=$T/run.out line
    local args=("127.0.0.1:${PORT[$v]}" "--$proto" --count "$N" --timeout 5)
    if [ "$v" != plain ]; then
        args+=(--require-staple)
    fi
    if ! timeout "$RUN_LIMIT" "$STP_CLI" probe "${args[@]}" >"$out" 2>&1; then
        cat "$out" >&2
        stp_fail "probe of $v over $proto failed"
    fi
    line=$(grep '^handshakes=' "$out") || stp_fail "no summary line from probe"
    local want="handshakes=$N stapled=$N verified=$N "
    if [ "$v" = plain ]; then
        want="handshakes=$N stapled=0 verified=0 "
    fi
    [[ $line == "$want"* ]] || stp_fail "$v over $proto: $line (want $want...)"
    [[ $line =~ hs_per_s=([0-9.]+) ]] || stp_fail "no rate in: $line"
    RATE=${BASH_REMATCH[1]}
}

ORDER=("${VARIANTS[@]}" plain)
REVERSED=()
for ((i = ${#ORDER[@]} - 1; i >= 0; i--)); do
    REVERSED+=("${ORDER[i]}")
done
for proto in tls1.3 tls1.2; do
    for v in "${ORDER[@]}"; do
        run "$v" "$proto" # warm-up, discarded
    done
    for ((r = 1; r <= ROUNDS; r++)); do
        if ((r % 2)); then
            order=("${ORDER[@]}")
        else
            order=("${REVERSED[@]}")
        fi
        for v in "${order[@]}"; do
            run "$v" "$proto"
            echo "$RATE" >>"$T/rates.$proto.$v"
            printf 'bench: %s round %d %-11s %s hs/s\n' "$proto" "$r" "$v" \
                "$RATE" >&2
        done
    done
done
for v in "${!SPID[@]}"; do
    stop "$v"
done

# median FILE: the median of the numbers in FILE, one a line.
median() {
    sort -g "$1" | awk '{ a[NR] = $1 }
        END { if (NR % 2) print a[(NR + 1) / 2];
              else printf "%.1f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

report() {
    local proto v base m
    printf 'ocspstaple bench %s: openssl s_server on 127.0.0.1, %s, %s CPUs\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(openssl version)" "$(nproc)"
    printf 'leaf %s (%s) + intermediate; %d full handshakes per run (no' \
        "$LEAF" "$([ "$LEAF" = ecdsa ] && echo EC P-256 || echo RSA 2048)" "$N"
    printf ' resumption); %d rounds after a discarded warm-up\n\n' "$ROUNDS"
    printf '%-9s %-12s %12s %9s  %s\n' protocol variant "median hs/s" \
        "vs plain" "runs (hs/s)"
    for proto in tls1.3 tls1.2; do
        base=$(median "$T/rates.$proto.plain")
        for v in plain "${VARIANTS[@]}"; do
            m=$(median "$T/rates.$proto.$v")
            printf '%-9s %-12s %12s %9s  %s\n' "TLSv${proto#tls}" "$v" "$m" \
                "$(awk -v a="$m" -v b="$base" 'BEGIN { printf "%.3f", a / b }')" \
                "$(paste -sd' ' "$T/rates.$proto.$v")"
        done
    done
    printf '\nhook variant: %s\n' "$HOOK_NOTE"
    printf 'first verified stapled handshake after server start: %s\n' \
        "$FIRST_NOTE"
}

report | tee "$RESULTS"
echo "bench: results written to $RESULTS" >&2
