#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench_scale.sh [RESULTS]: the scale benchmark of issue #9. nginx (the
# Debian binary, unmodified, master as root, WORKERS workers as www-data)
# with one server block per certificate, N certificates, on 127.0.0.1,
# stapling first by nginx itself (ssl_stapling on; ssl_stapling_verify on)
# and then by ocspstaple (nginx's stapling off, libocspstaple.so by
# LD_PRELOAD; with BENCH_ROUTES="preload provider" also through the
# provider in openssl.cnf), all in one run. Not a test: it prints figures
# and fails only when something could not be run.
#
# The PKI (bench_mkcerts): root -> intermediate -> N leaves h<i>.bench.test
# (i = 1..N), EC P-256, ONE key shared by every leaf; leaf i names in its
# AIA the responder's main port, or, when i is a multiple of 20 (5%), its
# "hang" port. The responder (bench_responder) signs each answer at once as
# the intermediate and counts requests; per phase it answers at once, after
# BENCH_DELAY_MS (100), or never on the hang port. The client (bench_sweep)
# sweeps: one full handshake per name (SNI, status_request), BENCH_PARALLEL
# (2) at a time, each staple verified against the test root; in a cold
# phase a sweep with misses is followed by retry rounds over the names never
# stapled yet (bench_sweep.c), then the next sweep.
#
# Phases, nginx stopped and started again for each:
#   baseline     no stapling, no hook: start-up, memory after MEM_SWEEPS sweeps
#   fast         cold (empty store), fast responder: sweeps until one sweep
#                staples every name (at least MEM_SWEEPS sweeps), then memory
#   delay        cold, every answer BENCH_DELAY_MS late
#   hang         cold, the 5% hanging certificates' responder never answers:
#                until one sweep staples every other name
#   warm         a restart with the store of the fast phase (ours; topped up
#                by `ocspstaple fetch` if the fast phase left it incomplete):
#                one sweep. nginx's own stapling keeps nothing across a
#                restart, so its warm phase is its cold first sweep.
# Times are counted from the start of nginx (so they include its start-up).
# Every phase is bounded by BENCH_LIMIT seconds of sweeping (default
# 600 + N/10); a phase that hits it reports "> LIMIT" and what it reached.
#
# Memory: after the fast phase, /proc/PID/smaps_rollup of the master and
# each worker: Pss summed over all of them (physical memory of the server,
# shared pages split), and Private_Clean + Private_Dirty averaged over the
# workers; "per certificate": minus the baseline's, divided by N.
#
# CPU: the user + system seconds of nginx (master and workers), of the
# responder and of the sweeping client over each cold phase, in the log.
# The smaps of one worker after the fast phase: RESULTS with .smaps-VARIANT
# instead of .txt (which mappings the private memory is in); with
# BENCH_PROBE="CMD ARGS" also the output of CMD ARGS MASTER_PID WORKER_PID
# at that point, e.g. BENCH_PROBE=test/bench/cow_pages.py (which heap pages
# a worker copied from the master, and whether it changed them).
#
# Environment: BENCH_N (1000), BENCH_WORKERS (4), BENCH_PARALLEL (2),
# BENCH_DELAY_MS (100), BENCH_LIMIT (s per phase), BENCH_MEM_SWEEPS (16),
# BENCH_HANG_EVERY (20: every 20th leaf names the hanging responder; 0:
# none, so every leaf names one responder host, as a private PKI's do),
# BENCH_PHASES ("fast delay hang warm": a subset runs only those, for a
# closer look at one; the table then shows "-" for the others),
# BENCH_ROUTES (preload; "preload provider" for both), BENCH_NATIVE (1; 0
# skips nginx's own stapling, for long runs of ours alone), BENCH_HOOK_EXTRA
# (lines added to the ocspstaple section), STP_KEEP=1 (keep the temporary
# directory after a failure); STP_CLI, STP_HOOK, STP_MODULE, STP_SUPPORT,
# STP_BENCH_MKCERTS, STP_BENCH_RESPONDER, STP_BENCH_SWEEP (set by the
# bench-scale target). RESULTS (bench-scale-results.txt) gets the table,
# RESULTS with .log instead of .txt the per-sweep lines of every phase.
# Needs root (nginx's master switches to www-data), nginx, ss.
set -euo pipefail
STP_SUPPORT=${STP_SUPPORT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../support" && pwd)}
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

N=${BENCH_N:-1000}
WORKERS=${BENCH_WORKERS:-4}
PARALLEL=${BENCH_PARALLEL:-2}
DELAY_MS=${BENCH_DELAY_MS:-100}
LIMIT=${BENCH_LIMIT:-$((600 + N / 10))}
MEM_SWEEPS=${BENCH_MEM_SWEEPS:-16}
ROUTES=${BENCH_ROUTES:-preload}
PHASES=" ${BENCH_PHASES:-fast delay hang warm} "
RESULTS=${1:-bench-scale-results.txt}
LOG=${RESULTS%.txt}.log
HANG_EVERY=${BENCH_HANG_EVERY:-20}
RUN_USER=www-data
START_LIMIT=$((30 + N / 50)) # s: bound on nginx's start-up
export OPENSSL_CONF=/dev/null

for v in N WORKERS PARALLEL LIMIT MEM_SWEEPS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || stp_fail "BENCH_$v='${!v}': expected a count"
done
[[ $DELAY_MS =~ ^[0-9]+$ ]] || stp_fail "BENCH_DELAY_MS='$DELAY_MS': expected ms"
[[ $HANG_EVERY =~ ^[0-9]+$ ]] || stp_fail "BENCH_HANG_EVERY='$HANG_EVERY': expected a count"
[[ $HANG_EVERY != 0 || $PHASES != *" hang "* ]] ||
    stp_fail "BENCH_HANG_EVERY=0: no hanging certificates for the hang phase: leave it out of BENCH_PHASES"
for ph in $PHASES; do
    case $ph in
    fast | delay | hang | warm) ;;
    *) stp_fail "BENCH_PHASES: '$ph' is none of fast, delay, hang, warm" ;;
    esac
done
[[ $PHASES != *" warm "* || $PHASES == *" fast "* ]] ||
    stp_fail "BENCH_PHASES: warm restarts with the fast phase's store: add fast"
for r in $ROUTES; do
    case $r in
    preload | provider) ;;
    *) stp_fail "BENCH_ROUTES: '$r' is neither preload nor provider" ;;
    esac
done
[ "$(id -u)" -eq 0 ] || stp_fail "run as root: nginx's master switches to $RUN_USER"
id -u "$RUN_USER" >/dev/null 2>&1 || stp_fail "no user $RUN_USER"
stp_need nginx openssl ss pgrep timeout awk
for v in STP_CLI STP_HOOK STP_BENCH_MKCERTS STP_BENCH_RESPONDER STP_BENCH_SWEEP; do
    [ -f "${!v:-}" ] || stp_fail "$v is not set to a file (run the bench-scale target)"
done
case " $ROUTES " in
*" provider "*) [ -f "${STP_MODULE:-}" ] || stp_fail "STP_MODULE is not set" ;;
esac
NGINX=$(command -v nginx)

stp_setup
chmod 711 "$T" # the workers (www-data) reach their store through $T
P=$T/pki
mkdir -p "$P"
: >"$LOG"
RUN_T0=$(stp_ms)

# log MSG: a progress line on stderr and in the log.
log() {
    printf 'bench-scale: %s\n' "$*" | tee -a "$LOG" >&2
}


# ---- the responder ----------------------------------------------------------

# responder_phase DELAY_MS HANG: new counters, new behaviour.
responder_phase() {
    CTL_DELAY=$1
    CTL_HANG=$2
    bench_ctl 1
}

# responder_snapshot: $P/snap holds the counters of this phase so far.
responder_snapshot() {
    bench_ctl 0
}

bench_responder_start $((12 * LIMIT + 3600))
HPORT=$HANG_PORT

t=$(stp_ms)
"$STP_BENCH_MKCERTS" "$P" "$N" "$RPORT" "$HPORT" "$HANG_EVERY" ||
    stp_fail "bench_mkcerts failed"
GEN_MS=$(($(stp_ms) - t))
chmod 600 "$P"/*.key # read by nginx's master and the responder (root)
log "$N certificates made in $GEN_MS ms; responder on 127.0.0.1:$RPORT" \
    "(hanging certificates: 127.0.0.1:$HPORT)"

# ---- nginx -------------------------------------------------------------------

WCONN=$((1024 + N / 5)) # a worker's connections: sweeps, nginx's own fetches
# write_conf FILE VARIANT DIR: nginx.conf for VARIANT (base, native or ours),
# listening on $PORT, its files in DIR.
write_conf() {
    local stapling=''
    if [ "$2" = native ]; then
        stapling="ssl_stapling on;
    ssl_stapling_verify on;
    ssl_trusted_certificate $P/trusted.pem;"
    fi
    bench_nginx_conf "$1" "$3" "$N" "$WORKERS" "$WCONN" "$stapling"
}

# ours_conf FILE ROUTE STORE: the openssl.cnf of ocspstaple's variant.
ours_conf() {
    {
        printf 'openssl_conf = openssl_init\n[openssl_init]\nproviders = prov\n'
        printf '[prov]\ndefault = default_sect\nocspstaple = stp_sect\n'
        printf '[default_sect]\nactivate = 1\n[stp_sect]\n'
        if [ "$2" = provider ]; then
            printf 'module = %s\nactivate = 1\n' "$STP_MODULE"
        fi
        printf 'store_dir = %s\n' "$3"
        printf '%s\n' "${BENCH_HOOK_EXTRA:-}"
    } >"$1"
}

# The server of the current phase: VARIANT (base, native, preload,
# provider), its directory ND, its store STORE (ours).
VARIANT=
ND=
STORE=
NGINX_T0=
launch() {
    local envs=(OPENSSL_CONF=/dev/null) kind=ours
    case $VARIANT in base | native) kind=$VARIANT ;; esac
    write_conf "$ND/nginx.conf" "$kind" "$ND"
    case $VARIANT in
    preload)
        ours_conf "$ND/stp.cnf" preload "$STORE"
        envs=(LD_PRELOAD="$STP_HOOK" OCSPSTAPLE_CONF="$ND/stp.cnf"
            OPENSSL_CONF=/dev/null "OCSPSTAPLE_DEBUG=level:info,file:$ND/hook.log")
        ;;
    provider)
        ours_conf "$ND/stp.cnf" provider "$STORE"
        envs=(OPENSSL_CONF="$ND/stp.cnf" "OCSPSTAPLE_DEBUG=level:info,file:$ND/hook.log")
        ;;
    esac
    NGINX_T0=$(stp_ms)
    bench_nginx_run "$ND" "${envs[@]}"
}

workers_up() {
    bench_nginx_up "$ND" "$WORKERS"
}

WORKER_PIDS=()
# nginx_start VARIANT PHASE [STORE]: nginx of VARIANT for PHASE; sets
# STARTUP_MS (launch until it listens with all its workers) and PORT.
nginx_start() {
    local p
    VARIANT=$1
    ND=$T/nginx.$1.$2
    STORE=${3:-}
    mkdir -p "$ND"
    STP_WAIT=$START_LIMIT stp_start_server "nginx $1" launch workers_up \
        "$ND/stderr" "$ND/error.log"
    STARTUP_MS=$(($(stp_ms) - NGINX_T0))
    WORKER_PIDS=()
    for p in $(pgrep -P "$SRV_PID"); do
        WORKER_PIDS+=("$p")
        stp_register_pid "$p"
    done
    log "$1 $2: nginx $SRV_PID up in $STARTUP_MS ms on 127.0.0.1:$PORT"
}

_nginx_gone() {
    local p
    for p in "$SRV_PID" "${WORKER_PIDS[@]}"; do
        ! stp_alive "$p" || return 1
    done
}

# nginx_stop: SIGTERM to the master, at most 60 s for it and its workers to
# exit, then SIGKILL to each by pid.
nginx_stop() {
    local p
    kill -TERM "$SRV_PID" 2>/dev/null || true
    if ! STP_WAIT=60 stp_wait_for _nginx_gone 2>/dev/null; then
        log "nginx $SRV_PID did not stop in 60 s: SIGKILL"
        for p in "${WORKER_PIDS[@]}" "$SRV_PID"; do
            kill -KILL "$p" 2>/dev/null || true
        done
    fi
    wait "$SRV_PID" 2>/dev/null || true
    for p in "${WORKER_PIDS[@]}" "$SRV_PID"; do
        stp_forget_pid "$p"
    done
    {
        echo "--- $ND/error.log: $(wc -l <"$ND/error.log") lines, last 5:"
        tail -n 5 "$ND/error.log" 2>/dev/null || true
        if [ -f "$ND/hook.log" ]; then
            echo "--- $ND/hook.log: $(grep -c ' ERROR ' "$ND/hook.log" || true) ERROR lines, last 5:"
            tail -n 5 "$ND/hook.log"
        fi
    } >>"$LOG"
}

# memory NAME: Pss over master and workers, mean private per worker (KiB),
# in MEM_PSS[NAME] and MEM_PRIV[NAME].
declare -A MEM_PSS MEM_PRIV
memory() {
    local p pss=0 priv=0 v
    for p in "$SRV_PID" "${WORKER_PIDS[@]}"; do
        v=$(awk '$1 == "Pss:" { print $2 }' "/proc/$p/smaps_rollup")
        pss=$((pss + v))
    done
    for p in "${WORKER_PIDS[@]}"; do
        v=$(awk '$1 == "Private_Clean:" || $1 == "Private_Dirty:" { s += $2 }
            END { print s + 0 }' "/proc/$p/smaps_rollup")
        priv=$((priv + v))
    done
    MEM_PSS[$1]=$pss
    if [ -n "${BENCH_PROBE:-}" ]; then
        local probe
        read -r -a probe <<<"$BENCH_PROBE"
        log "$1: $BENCH_PROBE $SRV_PID ${WORKER_PIDS[0]}"
        "${probe[@]}" "$SRV_PID" "${WORKER_PIDS[0]}" 2>&1 | tee -a "$LOG" >&2 || true
    fi
    cp "/proc/${WORKER_PIDS[0]}/smaps" "${RESULTS%.txt}.smaps-$1" 2>/dev/null || true
    MEM_PRIV[$1]=$((priv / ${#WORKER_PIDS[@]}))
    log "$1: Pss $pss KiB over $((1 + ${#WORKER_PIDS[@]})) processes," \
        "private ${MEM_PRIV[$1]} KiB per worker"
}

# ticks [self] PID...: user + system clock ticks of the PIDs (with self:
# of the shell's waited-for children instead, e.g. a sweep that ended).
TICK_HZ=$(getconf CLK_TCK)
ticks() {
    local p sum=0 st
    if [ "$1" = self ]; then
        read -r -a st </proc/$$/stat
        echo $((st[15] + st[16]))
        return
    fi
    for p in "$@"; do
        if read -r -a st 2>/dev/null <"/proc/$p/stat"; then
            sum=$((sum + st[13] + st[14]))
        fi
    done
    echo "$sum"
}
secs_of() {
    awk -v t="$1" -v hz="$TICK_HZ" 'BEGIN { printf "%.1f", t / hz }'
}

# sweep OUT ARGS...: bench_sweep against the current nginx, times counted
# from its launch; its summary in OUT, its sweep lines in the log.
sweep() {
    local out=$1
    shift
    echo "--- $VARIANT sweeps ($*)" >>"$LOG"
    SWEEP_TICKS=$(ticks self)
    timeout $((LIMIT + START_LIMIT + 300)) "$STP_BENCH_SWEEP" --port "$PORT" \
        --n "$N" --ca "$P/root.pem" --parallel "$PARALLEL" \
        --t0-ms "$NGINX_T0" --limit "$LIMIT" "$@" >"$out" 2>>"$LOG" ||
        stp_fail "bench_sweep failed (see $LOG)"
    SWEEP_TICKS=$(($(ticks self) - SWEEP_TICKS))
    tail -n 1 "$LOG" >&2
}

# ---- phases -------------------------------------------------------------------

declare -A R # R[variant.metric]

# record VARIANT PHASE SWEEP_OUT: the phase's figures into R.
record() {
    local k=$1.$2 f=$3
    R[$k.startup]=$STARTUP_MS
    R[$k.all_sweep]=$(kv "$f" all_sweep_s)
    R[$k.all_once]=$(kv "$f" all_once_s)
    R[$k.last_miss]=$(kv "$f" last_miss_s)
    R[$k.sweeps]=$(kv "$f" sweeps)
    R[$k.last]=$(kv "$f" last_stapled)
    R[$k.once]=$(kv "$f" once)
    R[$k.counted]=$(kv "$f" counted)
    R[$k.first]=$(kv "$f" first_stapled)
    R[$k.first_worst]=$(kv "$f" first_worst_ms)
    R[$k.first_p99]=$(kv "$f" first_p99_ms)
    R[$k.worst]=$(kv "$f" worst_ms)
    R[$k.p99]=$(kv "$f" p99_ms)
    R[$k.bad]=$(kv "$f" bad)
    R[$k.failed]=$(kv "$f" failed)
    responder_snapshot
    R[$k.requests]=$(kv "$P/snap" requests)
    R[$k.distinct]=$(kv "$P/snap" distinct)
    R[$k.max_per]=$(kv "$P/snap" max_per_cert)
    log "$1 $2: every name stapled in one sweep at ${R[$k.all_sweep]} s," \
        "each at least once at ${R[$k.all_once]} s, ${R[$k.sweeps]} sweeps;" \
        "responder: ${R[$k.requests]} requests for ${R[$k.distinct]}" \
        "certificates (at most ${R[$k.max_per]} each); bad staples ${R[$k.bad]}," \
        "failed handshakes ${R[$k.failed]}"
}

# new_store NAME: an empty store directory for the workers.
new_store() {
    mkdir -p "$T/store.$1"
    chown "$RUN_USER:" "$T/store.$1"
    echo "$T/store.$1"
}

# cold VARIANT PHASE DELAY HANG: one cold phase.
cold() {
    local v=$1 ph=$2 store='' args=(--until-all)
    responder_phase "$3" "$4"
    case $v in preload | provider) store=$(new_store "$v.$ph") ;; esac
    if [ "$4" = 1 ]; then
        args+=(--hang-every "$HANG_EVERY")
    fi
    if [ "$ph" = fast ]; then
        args+=(--min-sweeps "$MEM_SWEEPS")
    fi
    local rt0
    rt0=$(ticks "$RESPONDER_PID")
    nginx_start "$v" "$ph" "$store"
    sweep "$T/sweep.$v.$ph" "${args[@]}"
    record "$v" "$ph" "$T/sweep.$v.$ph"
    log "$v $ph: CPU seconds: nginx $(secs_of "$(ticks "$SRV_PID" "${WORKER_PIDS[@]}")")," \
        "responder $(secs_of $(($(ticks "$RESPONDER_PID") - rt0)))," \
        "sweeps $(secs_of "$SWEEP_TICKS")"
    if [ "$ph" = fast ]; then
        memory "$v"
    fi
    nginx_stop
}

# warm VARIANT: a restart with the fast phase's store, one sweep.
warm() {
    local v=$1 store='' have chains=() i
    case $v in
    preload | provider)
        store=$T/store.$v.fast
        have=$(find "$store" -maxdepth 1 -name '*.der' | wc -l)
        if [ "$have" -lt "$N" ]; then
            log "$v warm: the store holds $have of $N responses: ocspstaple fetch"
            for ((i = 1; i <= N; i++)); do
                chains+=("$P/certs/h$i.chain.pem")
            done
            responder_phase 0 0
            timeout $((60 + N / 10)) "$STP_CLI" fetch "${chains[@]}" \
                --store-dir "$store" >>"$LOG" 2>&1 || true
            chown -R "$RUN_USER:" "$store"
        fi
        R[$v.warm.store]=$(find "$store" -maxdepth 1 -name '*.der' | wc -l)
        ;;
    esac
    responder_phase 0 0
    nginx_start "$v" warm "$store"
    sweep "$T/sweep.$v.warm" --max-sweeps 1
    record "$v" warm "$T/sweep.$v.warm"
    nginx_stop
}

# base: no stapling, for start-up and memory.
responder_phase 0 0
nginx_start base base
sweep "$T/sweep.base" --max-sweeps "$MEM_SWEEPS"
record base base "$T/sweep.base"
memory base
nginx_stop

VARIANTS=()
if [ "${BENCH_NATIVE:-1}" = 1 ]; then
    VARIANTS=(native)
fi
for r in $ROUTES; do
    VARIANTS+=("$r")
done
# phase NAME: whether BENCH_PHASES runs it
phase() {
    [[ $PHASES == *" $1 "* ]]
}
for v in "${VARIANTS[@]}"; do
    if phase fast; then cold "$v" fast 0 0; fi
    if phase delay; then cold "$v" delay "$DELAY_MS" 0; fi
    if phase hang; then cold "$v" hang 0 1; fi
    if phase warm; then warm "$v"; fi
done
TOTAL_S=$((($(stp_ms) - RUN_T0) / 1000))

# The figures of phases not run: "-" (the memory: that of the baseline).
for v in "${VARIANTS[@]}"; do
    for ph in fast delay hang warm; do
        if ! phase "$ph"; then
            for m in startup all_sweep all_once last_miss sweeps last once counted first \
                first_worst first_p99 worst p99 requests distinct max_per; do
                R[$v.$ph.$m]=-
            done
            R[$v.$ph.bad]=0
            R[$v.$ph.failed]=0
        fi
    done
    if ! phase fast; then
        MEM_PSS[$v]=${MEM_PSS[base]}
        MEM_PRIV[$v]=${MEM_PRIV[base]}
    fi
done

# ---- report --------------------------------------------------------------------

# secs VARIANT PHASE: "one sweep / at least once / last miss" seconds, or
# "> LIMIT".
secs() {
    local k=$1.$2 a o m
    a=${R[$k.all_sweep]}
    o=${R[$k.all_once]}
    m=${R[$k.last_miss]}
    if [ "$a" = none ]; then
        a="> $LIMIT (${R[$k.last]}/${R[$k.counted]})"
    fi
    if [ "$o" = none ]; then
        o="> $LIMIT (${R[$k.once]}/${R[$k.counted]})"
    fi
    echo "$a / $o / $m"
}

# per_cert KIB_VARIANT KIB_BASE: (variant - base) / N in KiB, one decimal.
per_cert() {
    awk -v a="$1" -v b="$2" -v n="$N" 'BEGIN { printf "%.1f", (a - b) / n }'
}

# bench_env: the BENCH_* settings of this run, as VAR=value words.
bench_env() {
    local v out="BENCH_N=$N"
    for v in $(compgen -e | grep '^BENCH_' || true); do
        if [ "$v" != BENCH_N ]; then
            out+=" $v=$(printf '%q' "${!v}")"
        fi
    done
    echo "$out"
}

# dashes N: N dashes.
dashes() {
    local s=
    while [ "${#s}" -lt "$1" ]; do s+=-; done
    echo "$s"
}

mib() {
    awk -v a="$1" 'BEGIN { printf "%.1f", a / 1024 }'
}

report() {
    local v cols=() w=28
    for v in "${VARIANTS[@]}"; do
        case $v in
        native) cols+=("nginx native") ;;
        *) cols+=("ocspstaple ($v)") ;;
        esac
    done
    # row LABEL VALUE...: one line of the table
    row() {
        local l=$1 x
        shift
        printf '| %-62s' "$l"
        for x in "$@"; do
            printf ' | %-*s' "$w" "$x"
        done
        printf ' |\n'
    }
    printf 'ocspstaple bench-scale %s: nginx %s, %s, %s CPUs, commit %s\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$("$NGINX" -v 2>&1 | sed 's,.*/,,')" \
        "$(openssl version | cut -d' ' -f1-2)" "$(nproc)" \
        "$(git -C "$STP_SUPPORT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf 'command: %s cmake --build <build> --target bench-scale\n' "$(bench_env)"
    printf 'N = %d server blocks (EC P-256 leaves, one shared key), %d workers, ' \
        "$N" "$WORKERS"
    printf 'sweeps of %d parallel full handshakes (TLS 1.3, SNI, status_request,\n' \
        "$PARALLEL"
    printf 'every staple verified); times in s from nginx start; %s s limit per phase;\n' \
        "$LIMIT"
    printf 'baseline (no stapling): start-up %s ms, Pss %s MiB (all %d processes), private %s MiB per worker\n\n' \
        "${R[base.base.startup]}" "$(mib "${MEM_PSS[base]}")" $((WORKERS + 1)) \
        "$(mib "${MEM_PRIV[base]}")"
    row "N = $N, $WORKERS workers" "${cols[@]}"
    local dashes=()
    for v in "${VARIANTS[@]}"; do
        dashes+=("$(dashes "$w")")
    done
    row "$(dashes 62)" "${dashes[@]}"
    local a=() a2=() b=() c=() d=() e=() f=() g=() h=() i=() j=() k=() l=() m=() o=()
    for v in "${VARIANTS[@]}"; do
        a+=("${R[$v.fast.startup]} ms")
        a2+=("${R[$v.warm.startup]} ms")
        b+=("${R[$v.fast.requests]} (${R[$v.fast.distinct]} certs, max ${R[$v.fast.max_per]})")
        c+=("$(secs "$v" fast)")
        d+=("$(secs "$v" delay)")
        e+=("${R[$v.delay.requests]}")
        f+=("$(secs "$v" hang)")
        g+=("${R[$v.hang.requests]}")
        h+=("${R[$v.warm.first]} / $N")
        i+=("${R[$v.warm.first_worst]} / ${R[$v.warm.first_p99]}")
        j+=("${R[$v.warm.requests]}")
        k+=("$(mib "${MEM_PSS[$v]}") / $(mib "${MEM_PRIV[$v]}")")
        l+=("$(per_cert "${MEM_PSS[$v]}" "${MEM_PSS[base]}")")
        m+=("$(per_cert "${MEM_PRIV[$v]}" "${MEM_PRIV[base]}")")
        o+=("${R[$v.fast.p99]} / ${R[$v.fast.worst]}")
    done
    row "start-up (nginx start to listening, all workers), cold" "${a[@]}"
    row "start-up, warm store" "${a2[@]}"
    row "responder requests, cold, fast responder" "${b[@]}"
    row "every name stapled: one sweep / each once / last miss (s), fast" "${c[@]}"
    row "same, responder answers in $DELAY_MS ms" "${d[@]}"
    row "  responder requests" "${e[@]}"
    row "same, 5% hanging (every other name)" "${f[@]}"
    row "  responder requests" "${g[@]}"
    row "warm restart, first sweep: stapled" "${h[@]}"
    row "warm restart, first sweep: worst / p99 handshake (ms)" "${i[@]}"
    row "warm restart: responder requests" "${j[@]}"
    row "cold fast run: handshake p99 / worst (ms)" "${o[@]}"
    row "memory after the fast run: Pss all / private per worker (MiB)" "${k[@]}"
    row "Pss per certificate over baseline (KiB)" "${l[@]}"
    row "private per worker per certificate over baseline (KiB)" "${m[@]}"
    printf '\nnotes: "one sweep" = the end of the first sweep in which every name (hang:\n'
    printf 'every non-hanging name, 95%%) got a verified staple; "each once" = when each\n'
    printf 'had got one at least once (a sweep with misses is followed by retry rounds\n'
    printf 'over the names never stapled, so this is known to within a round, not a\n'
    printf 'sweep); "last miss" = the end of the last handshake of\n'
    printf 'such a name without one (the lower bound of "one sweep", which waits for a\n'
    printf 'whole sweep); "> %s (x/y)": the limit was hit, x of y names\n' "$LIMIT"
    printf 'stapled in the last complete sweep / at least once. nginx native keeps\n'
    printf 'nothing across a restart: its warm row is a first sweep after start.\n'
    printf 'Fast-run figures after at least %d sweeps.\n' \
        "$MEM_SWEEPS"
    for v in "${VARIANTS[@]}"; do
        if [ -n "${R[$v.warm.store]:-}" ]; then
            printf 'ocspstaple (%s) warm store: %s responses.\n' "$v" "${R[$v.warm.store]}"
        fi
    done
    printf 'bad staples / failed handshakes (all phases):'
    for v in "${VARIANTS[@]}"; do
        printf ' %s %d / %d;' "$v" \
            $((${R[$v.fast.bad]} + ${R[$v.delay.bad]} + ${R[$v.hang.bad]} + ${R[$v.warm.bad]})) \
            $((${R[$v.fast.failed]} + ${R[$v.delay.failed]} + ${R[$v.hang.failed]} + ${R[$v.warm.failed]}))
    done
    printf '\ncertificates made in %s ms; whole run %d s\n' "$GEN_MS" "$TOTAL_S"
}

report | tee "$RESULTS"
log "results written to $RESULTS, sweep lines in $LOG"
