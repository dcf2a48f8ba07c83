#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench_haproxy.sh [RESULTS]: HAProxy's own OCSP updater (`ocsp-update on`,
# HAProxy 2.8 and later: Debian 13's 3.0) side by side with ocspstaple in
# the same HAProxy, on 127.0.0.1, in one run. Not a test: it prints figures
# and fails only when something could not be run. On a host whose HAProxy
# has no ocsp-update (Debian 12's 2.6) only ours is measured.
#
# The PKI and responder are bench_scale.sh's (bench_mkcerts: N leaves
# h<i>.bench.test, bench_responder: answers at once, counts requests);
# HAProxy serves them all from one `bind ... ssl crt-list` in master-worker
# mode (-W), one line per certificate (leaf, intermediate and key in one
# file), with `[ocsp-update on]` for HAProxy's own. Variants:
#   haproxy   HAProxy's updater, no hook (skipped when it has none)
#   provider  no ocsp-update, ocspstaple.so loaded from openssl.cnf
# Phases, HAProxy started again for each:
#   slow      cold (empty store, no .ocsp files), every answer
#             BENCH_DELAY_MS (100) late: sweeps (one handshake per name, SNI,
#             status_request, the staple verified against the root) until
#             one sweep staples every name, bounded by BENCH_LIMIT
#   cold      the same with a responder that answers at once
#   restart   HAProxy stopped and started again: one sweep at once (what a
#             restart serves), and the requests it costs
# Figures: seconds from HAProxy's start until one sweep stapled every name
# (and until each had been stapled once), staples in the restart's first
# sweep, responder requests per phase and at most per certificate.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

N=${BENCH_N:-200}
DELAY_MS=${BENCH_DELAY_MS:-100}
LIMIT=${BENCH_LIMIT:-$((120 + N / 10))}
RESULTS=${1:-bench-haproxy-results.txt}
LOG=${RESULTS%.txt}.log
export OPENSSL_CONF=/dev/null
[[ $N =~ ^[1-9][0-9]*$ ]] || stp_fail "BENCH_N='$N': expected a count"
stp_need haproxy openssl awk
for v in STP_MODULE STP_BENCH_MKCERTS STP_BENCH_RESPONDER STP_BENCH_SWEEP; do
    [ -f "${!v:-}" ] || stp_fail "$v is not set to a file (run the bench-haproxy target)"
done
HAPROXY=$(command -v haproxy)
HVER=$("$HAPROXY" -v | awk 'NR == 1 { print $3 }')
NATIVE=1
# ocsp-update came with HAProxy 2.8
case $HVER in 1.* | 2.[0-7].* | 2.[0-7]) NATIVE=0 ;; esac

stp_setup
P=$T/pki
mkdir -p "$P" "$T/crt"
: >"$LOG"
log() { printf 'bench-haproxy: %s\n' "$*" | tee -a "$LOG" >&2; }
bench_responder_start $((8 * LIMIT + 600))
HPORT=$HANG_PORT
"$STP_BENCH_MKCERTS" "$P" "$N" "$RPORT" "$HPORT" 0 || stp_fail "bench_mkcerts failed"
for ((i = 1; i <= N; i++)); do
    cat "$P/certs/h$i.chain.pem" "$P/leaf.key" >"$T/crt/h$i.pem"
done
log "HAProxy $HVER; $N certificates; responder on 127.0.0.1:$RPORT"

# write_conf VARIANT DIR: haproxy.cfg and crt-list for VARIANT in DIR
write_conf() {
    local i opt=
    [ "$1" = haproxy ] && opt=" [ocsp-update on]"
    : >"$2/crt-list"
    for ((i = 1; i <= N; i++)); do
        printf '%s%s\n' "$T/crt/h$i.pem" "$opt" >>"$2/crt-list"
    done
    cat >"$2/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:$PORT ssl crt-list $2/crt-list
    http-request return status 200 content-type text/plain string "ok"
EOF
}

launch() {
    local envs=(OPENSSL_CONF=/dev/null)
    write_conf "$VARIANT" "$HD"
    if [ "$VARIANT" = provider ]; then
        {
            printf 'openssl_conf = openssl_init\n[openssl_init]\nproviders = prov\n'
            printf '[prov]\ndefault = default_sect\nocspstaple = stp_sect\n'
            printf '[default_sect]\nactivate = 1\n[stp_sect]\nmodule = %s\n' "$STP_MODULE"
            printf 'activate = 1\nstore_dir = %s\nlog_level = info\n' "$STORE"
        } >"$HD/stp.cnf"
        envs=(OPENSSL_CONF="$HD/stp.cnf" "OCSPSTAPLE_DEBUG=level:info,file:$HD/hook.log")
    fi
    T0=$(stp_ms)
    env "${envs[@]}" "$HAPROXY" -W -db -f "$HD/haproxy.cfg" </dev/null >>"$HD/stderr" 2>&1 &
    SRV_PID=$!
}
listening() { [ -n "$(pgrep -P "$SRV_PID")" ] && { : <>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null; }

# start VARIANT PHASE: HAProxy of VARIANT, up (its worker listening)
start() {
    VARIANT=$1
    HD=$T/haproxy.$1.$2
    mkdir -p "$HD"
    STP_WAIT=$((30 + N / 20)) stp_start_server "haproxy $1" launch listening "$HD/stderr"
    log "$1 $2: HAProxy $SRV_PID listening on 127.0.0.1:$PORT after $(($(stp_ms) - T0)) ms"
}
stop() { stp_stop_server "$SRV_PID" "$HAPROXY"; }

sweep() {
    local out=$1
    shift
    timeout $((LIMIT + 120)) "$STP_BENCH_SWEEP" --port "$PORT" --n "$N" --ca "$P/root.pem" \
        --parallel 2 --t0-ms "$T0" --limit "$LIMIT" "$@" >"$out" 2>>"$LOG" ||
        stp_fail "bench_sweep failed (see $LOG)"
}

declare -A R
# phase VARIANT PHASE SWEEP_ARGS...: one phase, its figures into R
phase() {
    local v=$1 ph=$2 f
    shift 2
    bench_ctl 1
    start "$v" "$ph"
    f=$T/sweep.$v.$ph
    sweep "$f" "$@"
    bench_ctl 0
    R[$v.$ph.all]=$(kv "$f" all_sweep_s)
    R[$v.$ph.once]=$(kv "$f" all_once_s)
    R[$v.$ph.first]=$(kv "$f" first_stapled)
    R[$v.$ph.requests]=$(kv "$P/snap" requests)
    R[$v.$ph.max]=$(kv "$P/snap" max_per_cert)
    log "$v $ph: all stapled in one sweep at ${R[$v.$ph.all]} s, each once at" \
        "${R[$v.$ph.once]} s, first sweep ${R[$v.$ph.first]}/$N;" \
        "${R[$v.$ph.requests]} requests (at most ${R[$v.$ph.max]} per certificate)"
    stop
}

VARIANTS=(provider)
[ "$NATIVE" = 1 ] && VARIANTS=(haproxy provider)
for v in "${VARIANTS[@]}"; do
    STORE=$T/store.$v.slow
    mkdir -p "$STORE"
    CTL_DELAY=$DELAY_MS
    phase "$v" slow --until-all
    CTL_DELAY=0
    STORE=$T/store.$v
    mkdir -p "$STORE"
    phase "$v" cold --until-all
    phase "$v" restart --max-sweeps 1
done

{
    echo "bench-haproxy: HAProxy $HVER (-W, nbthread 2), $N certificates, one crt-list, slow: answers ${DELAY_MS} ms late, $(date -u +%Y-%m-%dT%H:%MZ)"
    printf '%-10s %-8s %-22s %-22s %-12s %-10s %s\n' variant phase "all in one sweep (s)" \
        "each once (s)" "first sweep" requests "max/cert"
    for v in "${VARIANTS[@]}"; do
        for ph in slow cold restart; do
            printf '%-10s %-8s %-22s %-22s %-12s %-10s %s\n' "$v" "$ph" "${R[$v.$ph.all]}" \
                "${R[$v.$ph.once]}" "${R[$v.$ph.first]}/$N" "${R[$v.$ph.requests]}" "${R[$v.$ph.max]}"
        done
    done
} | tee "$RESULTS"
