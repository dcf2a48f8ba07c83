#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench_haproxy_crtdir.sh [RESULTS]: issue #9's HAProxy goal, "HAProxy with
# 10,000 certificates (`crt DIR`, warm store, both routes): no watchdog,
# first handshake as fast as without the hook". Not a test: it prints
# figures and fails only when something could not be run.
#
# The PKI and responder are bench_scale.sh's (bench_mkcerts: N leaves
# h<i>.bench.test sharing one key; bench_responder: answers at once, counts
# requests). HAProxy (the host's, unmodified; Debian 12: 2.6) serves all N
# certificates from ONE `bind 127.0.0.1:PORT ssl crt DIR`, DIR holding one
# PEM per certificate (leaf, intermediate, key), in master-worker mode (-W
# -db, as t_haproxy.sh's mw scenario and bench_haproxy.sh), `nbthread 2`.
# HAProxy 2.6's watchdog is always on (a per-thread CPU timer: a thread that
# makes no progress for over a second is reported and the process killed,
# "Thread N is about to kill the process"; "Failed to setup watchdog timer"
# when it could not be armed): the script greps HAProxy's stderr for it.
# Variants:
#   none      no hook, no provider (OPENSSL_CONF=/dev/null): the baseline
#   preload   LD_PRELOAD=libocspstaple.so, OCSPSTAPLE_CONF=policy file
#   provider  ocspstaple.so loaded from OPENSSL_CONF=policy file
# Warm store: each hooked variant first runs once cold with an empty store
# of its own, sweeping until one sweep staples every name (bounded by
# BENCH_LIMIT; topped up by `ocspstaple fetch` should it stop short), and is
# stopped; the measured runs are restarts on that store. Then, BENCH_ROUNDS
# (1) times, each variant in turn (interleaved: the machine is noisy, compare
# the columns of one run), a measured run:
#   start     seconds from HAProxy's launch until its worker runs and the
#             port accepts a connection; the master's CPU seconds then; on
#             the hooked routes, from the hook log's timestamps, when the
#             master's first line was written (its fork handler tracking
#             the certificates: HAProxy's own loading is done) and how long
#             from there until the worker's refresher started (the hook's
#             work before the fork: tracking, reading and verifying every
#             stored response, once for the worker)
#   first     one full handshake (h1.bench.test, SNI, status_request) at
#             once: when it completed (s from launch), its duration (ms),
#             stapled or not
#   sweep     one handshake per name (BENCH_PARALLEL, 2, at a time, each
#             staple verified against the root by bench_sweep): stapled,
#             median and worst handshake (ms), failed, bad
#   memory    /proc/PID/smaps_rollup after the sweep: the worker's Rss, Pss
#             and private memory, Pss of master and worker together
#   CPU       the worker's CPU seconds at the end of the sweep, and in the
#             BENCH_IDLE (10) s after it (background work with no load)
#   requests  responder requests during the measured run (0 expected)
#   watchdog  the worker's armed watchdog timers (SIGALRM timers in
#             /proc/PID/timers: one per thread when the watchdog is on), the
#             lines of HAProxy's stderr matching watchdog|stuck|about to
#             kill|exited with code; HAProxy (master and worker) still up
# Environment: BENCH_N (1000), BENCH_PARALLEL (2), BENCH_ROUNDS (1),
# BENCH_LIMIT (s of sweeping for a cold fill, 300 + N/10), BENCH_IDLE (10),
# BENCH_VARIANTS ("none preload provider"), BENCH_LOG_LEVEL (the hook's log
# level in measured runs: info), STP_KEEP=always (keep the temporary
# directory); STP_CLI, STP_HOOK, STP_MODULE, STP_SUPPORT, STP_BENCH_MKCERTS,
# STP_BENCH_RESPONDER, STP_BENCH_SWEEP (set by the bench-haproxy-crtdir
# target). RESULTS (bench-haproxy-crtdir-results.txt) gets the table; RESULTS
# with .log instead of .txt the progress lines, sweep lines and HAProxy's
# stderr of every run.
set -euo pipefail
STP_SUPPORT=${STP_SUPPORT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../support" && pwd)}
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

N=${BENCH_N:-1000}
PARALLEL=${BENCH_PARALLEL:-2}
ROUNDS=${BENCH_ROUNDS:-1}
LIMIT=${BENCH_LIMIT:-$((300 + N / 10))}
IDLE=${BENCH_IDLE:-10}
read -ra VARIANTS <<<"${BENCH_VARIANTS:-none preload provider}"
LOG_LEVEL=${BENCH_LOG_LEVEL:-info}
RESULTS=${1:-bench-haproxy-crtdir-results.txt}
LOG=${RESULTS%.txt}.log
START_LIMIT=$((60 + N / 40)) # s: HAProxy's launch until it serves
HS_TIMEOUT_MS=60000          # the first handshake: measured, not cut short
export OPENSSL_CONF=/dev/null

for v in N PARALLEL ROUNDS LIMIT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || stp_fail "BENCH_$v='${!v}': expected a count"
done
[[ $IDLE =~ ^[0-9]+$ ]] || stp_fail "BENCH_IDLE='$IDLE': expected seconds"
for v in "${VARIANTS[@]}"; do
    case $v in
    none | preload | provider) ;;
    *) stp_fail "BENCH_VARIANTS: '$v' is not none, preload or provider" ;;
    esac
done
stp_need haproxy openssl ss pgrep timeout awk
for v in STP_CLI STP_HOOK STP_MODULE STP_BENCH_MKCERTS STP_BENCH_RESPONDER STP_BENCH_SWEEP; do
    [ -f "${!v:-}" ] || stp_fail "$v is not set to a file (run the bench-haproxy-crtdir target)"
done
HAPROXY=$(command -v haproxy)
HVER=$("$HAPROXY" -v | awk 'NR == 1 { print $3 }')

stp_setup
P=$T/pki
CRT=$T/crt
mkdir -p "$P" "$CRT"
: >"$LOG"
RUN_T0=$(stp_ms)

# log MSG: a progress line on stderr and in the log.
log() {
    printf 'bench-haproxy-crtdir: %s\n' "$*" | tee -a "$LOG" >&2
}

# ---- the responder (bench_lib.sh) and the certificates ----------------------

bench_responder_start $((4 * LIMIT + 8 * ROUNDS * START_LIMIT + 3600))
HPORT=$HANG_PORT

t=$(stp_ms)
"$STP_BENCH_MKCERTS" "$P" "$N" "$RPORT" "$HPORT" 0 || stp_fail "bench_mkcerts failed"
# HAProxy's crt DIR: one file per certificate, leaf and intermediate (the
# chain file) then the key; one awk for all of them (no fork per file)
awk -v n="$N" -v p="$P" -v d="$CRT" 'BEGIN {
    while ((getline l < (p "/leaf.key")) > 0) key = key l "\n"
    for (i = 1; i <= n; i++) {
        f = p "/certs/h" i ".chain.pem"
        o = d "/h" i ".pem"
        while ((getline l < f) > 0) print l > o
        printf "%s", key > o
        close(f)
        close(o)
    }
}' || stp_fail "cannot write $CRT"
[ "$(find "$CRT" -name '*.pem' | wc -l)" -eq "$N" ] || stp_fail "$CRT does not hold $N files"
GEN_MS=$(($(stp_ms) - t))
log "HAProxy $HVER; $N certificates (crt $CRT) made in $GEN_MS ms; responder on 127.0.0.1:$RPORT"

# ---- HAProxy -----------------------------------------------------------------

# The run in progress: VARIANT, its directory HD, its store STORE, the
# launch time HAPROXY_T0 (epoch ms).
VARIANT=
HD=
STORE=
HAPROXY_T0=
T_READY=

write_conf() {
    cat >"$HD/haproxy.cfg" <<EOF
global
    nbthread 2
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:$PORT ssl crt $CRT
    http-request return status 200 content-type text/plain string "ok"
EOF
}

# policy FILE ROUTE STORE LEVEL: the openssl.cnf of a hooked variant (as
# hook.sh's stp_conf, with this run's store).
policy() {
    {
        printf 'openssl_conf = openssl_init\n[openssl_init]\nproviders = prov\n'
        printf '[prov]\ndefault = default_sect\nocspstaple = stp_sect\n'
        printf '[default_sect]\nactivate = 1\n[stp_sect]\n'
        if [ "$2" = provider ]; then
            printf 'module = %s\nactivate = 1\n' "$STP_MODULE"
        fi
        printf 'store_dir = %s\nlog_level = %s\n' "$3" "$4"
    } >"$1"
}

HOOK_LEVEL=info
launch() {
    local envs=(OPENSSL_CONF=/dev/null)
    write_conf
    case $VARIANT in
    preload)
        policy "$HD/stp.cnf" preload "$STORE" "$HOOK_LEVEL"
        envs=(LD_PRELOAD="$STP_HOOK" OCSPSTAPLE_CONF="$HD/stp.cnf" OPENSSL_CONF=/dev/null
            "OCSPSTAPLE_DEBUG=level:$HOOK_LEVEL,file:$HD/hook.log")
        ;;
    provider)
        policy "$HD/stp.cnf" provider "$STORE" "$HOOK_LEVEL"
        envs=(OPENSSL_CONF="$HD/stp.cnf" "OCSPSTAPLE_DEBUG=level:$HOOK_LEVEL,file:$HD/hook.log")
        ;;
    esac
    T_READY=
    HAPROXY_T0=$(stp_ms)
    env "${envs[@]}" "$HAPROXY" -W -db -f "$HD/haproxy.cfg" </dev/null >>"$HD/stderr" 2>&1 &
    SRV_PID=$!
}

# ready: the worker runs and the port accepts a connection; the first time
# it holds, T_READY (epoch ms) and MASTER_CPU (the master's CPU seconds so
# far: loading the configuration and, on the hooked routes, the hook's work
# before the fork; the master re-executes itself after forking, and exec
# keeps the counters).
MASTER_CPU=
ready() {
    if [ -z "$(pgrep -P "$SRV_PID")" ] || ! { : <>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null; then
        return 1
    fi
    if [ -z "$T_READY" ]; then
        T_READY=$(stp_ms)
        MASTER_CPU=$(cpu_s "$SRV_PID")
    fi
}

WORKER=
# start VARIANT NAME STORE: HAProxy of VARIANT in $T/haproxy.NAME, up.
start() {
    VARIANT=$1
    HD=$T/haproxy.$2
    STORE=$3
    mkdir -p "$HD"
    STP_WAIT=$START_LIMIT stp_start_server "haproxy $1" launch ready "$HD/stderr"
    WORKER=$(pgrep -P "$SRV_PID" | head -n 1)
    stp_register_pid "$WORKER"
    log "$2: HAProxy $SRV_PID (worker $WORKER) serving on 127.0.0.1:$PORT" \
        "$((T_READY - HAPROXY_T0)) ms after its launch"
}

_gone() { ! stp_alive "$SRV_PID" && ! stp_alive "$WORKER"; }
# stop: SIGTERM to the master, at most 60 s for it and its worker to exit
# (10,000 contexts to free), then SIGKILL to each by pid; no HAProxy process
# of this run may be left. Its stderr and the hook log's ERROR/WARN lines
# go into the log.
stop() {
    local p
    kill -TERM "$SRV_PID" 2>/dev/null || true
    if ! STP_WAIT=60 stp_wait_for _gone 2>/dev/null; then
        log "HAProxy $SRV_PID did not stop in 60 s: SIGKILL"
        for p in "$WORKER" "$SRV_PID"; do
            kill -KILL "$p" 2>/dev/null || true
        done
    fi
    wait "$SRV_PID" 2>/dev/null || true
    stp_forget_pid "$WORKER"
    stp_forget_pid "$SRV_PID"
    STP_WAIT=20 stp_assert_no_server "$HAPROXY" "$T"
    {
        echo "--- $HD/stderr ($(wc -l <"$HD/stderr") lines, last 20):"
        tail -n 20 "$HD/stderr"
        if [ -f "$HD/hook.log" ]; then
            echo "--- $HD/hook.log: $(wc -l <"$HD/hook.log") lines," \
                "$(grep -c ' ERROR ' "$HD/hook.log" || true) ERROR," \
                "$(grep -c ' WARN ' "$HD/hook.log" || true) WARN; first 5 of them:"
            grep -E ' (ERROR|WARN) ' "$HD/hook.log" | head -n 5 || true
        fi
    } >>"$LOG"
}

# sweep OUT ARGS...: bench_sweep against the current HAProxy, times counted
# from its launch; its summary in OUT, its sweep lines in OUT.err and the log.
sweep() {
    local out=$1
    shift
    echo "--- $VARIANT: bench_sweep $*" >>"$LOG"
    timeout $((LIMIT + START_LIMIT + 300)) "$STP_BENCH_SWEEP" --port "$PORT" \
        --ca "$P/root.pem" --t0-ms "$HAPROXY_T0" "$@" >"$out" 2>"$out.err" ||
        { cat "$out.err" >>"$LOG"; stp_fail "bench_sweep failed (see $LOG)"; }
    cat "$out.err" >>"$LOG"
}

# ---- the warm stores -------------------------------------------------------------

declare -A R # R[column.metric]

# fill VARIANT: a cold run of VARIANT with an empty store, sweeping until
# one sweep staples every name; the store then holds every response.
fill() {
    local v=$1 store=$T/store.$1 f have chains=() i
    mkdir -p "$store"
    bench_ctl 1
    HOOK_LEVEL=info
    start "$v" "$v.cold" "$store"
    f=$T/sweep.$v.cold
    sweep "$f" --n "$N" --parallel "$PARALLEL" --until-all --limit "$LIMIT"
    bench_ctl 0
    R[$v.cold_all]=$(kv "$f" all_sweep_s)
    R[$v.cold_requests]=$(kv "$P/snap" requests)
    R[$v.cold_max]=$(kv "$P/snap" max_per_cert)
    log "$v cold: every name stapled in one sweep at ${R[$v.cold_all]} s," \
        "${R[$v.cold_requests]} requests (at most ${R[$v.cold_max]} per certificate)"
    stop
    have=$(find "$store" -maxdepth 1 -name '*.der' | wc -l)
    if [ "$have" -lt "$N" ]; then
        log "$v: the store holds $have of $N responses after the cold run: ocspstaple fetch"
        for ((i = 1; i <= N; i++)); do
            chains+=("$P/certs/h$i.chain.pem")
        done
        timeout $((60 + N / 10)) "$STP_CLI" fetch "${chains[@]}" --store-dir "$store" \
            >>"$LOG" 2>&1 || true
        have=$(find "$store" -maxdepth 1 -name '*.der' | wc -l)
    fi
    R[$v.store]=$have
    [ "$have" -eq "$N" ] || log "$v: WARNING: the warm store holds $have of $N responses"
}

# ---- a measured run --------------------------------------------------------------

# cpu_s PID: utime + stime of PID in seconds (two decimals).
cpu_s() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' \
        "/proc/$1/stat" 2>/dev/null || echo "?"
}

# rollup PID KEY...: the sum of the KEYs (kB) in PID's smaps_rollup.
rollup() {
    local pid=$1
    shift
    awk -v keys=" $* " 'index(keys, " " $1 " ") { s += $2 } END { print s + 0 }' \
        "/proc/$pid/smaps_rollup" 2>/dev/null || echo 0
}

# mib KIB: KIB in MiB, one decimal ("-" stays "-").
mib() {
    case $1 in
    '' | *[!0-9]*) echo - ;;
    *) awk -v a="$1" 'BEGIN { printf "%.1f MiB", a / 1024 }' ;;
    esac
}

# secs MS: MS milliseconds in seconds, two decimals.
secs() { awk -v a="$1" 'BEGIN { printf "%.2f", a / 1000 }'; }

# log_ms LINE: the epoch ms of a hook log line ("2026-12-02T00:50:33.116Z ...").
log_ms() { date -d "${1%% *}" +%s%3N 2>/dev/null; }

# hook_times COLUMN: from $HD/hook.log, the master's first line (s after the
# launch) and the time from it to the worker's refresher start (s).
hook_times() {
    local first start a b
    R[$1.hook_first]=-
    R[$1.hook_prefork]=-
    [ -s "$HD/hook.log" ] || return 0
    first=$(head -n 1 "$HD/hook.log")
    start=$(grep -m 1 'refresher started' "$HD/hook.log" || true)
    a=$(log_ms "$first")
    [ -n "$a" ] || return 0
    R[$1.hook_first]=$(secs $((a - HAPROXY_T0)))
    if [ -n "$start" ] && b=$(log_ms "$start") && [ -n "$b" ]; then
        R[$1.hook_prefork]=$(secs $((b - a)))
    fi
}

# measure VARIANT ROUND: the measured run of VARIANT (warm store), its
# figures in R[VARIANT#ROUND.*].
measure() {
    local v=$1 c=$1#$2 store='' f i k t1 wd up=yes
    case $v in preload | provider) store=$T/store.$v ;; esac
    bench_ctl 1
    HOOK_LEVEL=$LOG_LEVEL
    start "$v" "$v.$2" "$store"
    R[$c.start]=$(secs $((T_READY - HAPROXY_T0)))
    R[$c.master_cpu]=$MASTER_CPU
    R[$c.wdt]=$({ grep -c '^signal: 14/' "/proc/$WORKER/timers" 2>/dev/null || true; })
    hook_times "$c"
    # the first handshake, at once (retried should it fail: at most 5 times)
    f=$T/first.$v.$2
    for ((i = 1; i <= 5; i++)); do
        sweep "$f" --n 1 --max-sweeps 1 --parallel 1 --timeout-ms "$HS_TIMEOUT_MS"
        [ "$(kv "$f" failed)" != 0 ] || break
        log "$c: the first handshake failed (try $i)"
        stp_alive "$SRV_PID" || break
    done
    t1=$(sed -n 's/^sweep 1: t=\([0-9.]*\)s.*/\1/p' "$f.err" | head -n 1)
    R[$c.first_at]=${t1:-?}
    R[$c.first_ms]=$(kv "$f" first_worst_ms)
    R[$c.first_tries]=$i
    R[$c.first_stapled]=$(kv "$f" first_stapled)
    [ "$(kv "$f" failed)" = 0 ] || R[$c.first_ms]="failed"
    # one full sweep
    f=$T/sweep.$v.$2
    sweep "$f" --n "$N" --max-sweeps 1 --parallel "$PARALLEL" --limit "$LIMIT"
    R[$c.stapled]=$(kv "$f" first_stapled)
    R[$c.median]=$(kv "$f" first_median_ms)
    R[$c.p99]=$(kv "$f" first_p99_ms)
    R[$c.worst]=$(kv "$f" first_worst_ms)
    R[$c.failed]=$(kv "$f" failed)
    R[$c.bad]=$(kv "$f" bad)
    R[$c.sweep_s]=$(sed -n 's/^sweep 1: t=\([0-9.]*\)s.*/\1/p' "$f.err" | head -n 1)
    # memory and CPU after the sweep
    if stp_alive "$WORKER"; then
        R[$c.rss]=$(rollup "$WORKER" Rss:)
        R[$c.pss]=$(rollup "$WORKER" Pss:)
        R[$c.priv]=$(rollup "$WORKER" Private_Clean: Private_Dirty:)
        R[$c.pss_all]=$((${R[$c.pss]} + $(rollup "$SRV_PID" Pss:)))
        R[$c.master_rss]=$(rollup "$SRV_PID" Rss:)
        R[$c.cpu]=$(cpu_s "$WORKER")
        sleep "$IDLE"
        R[$c.idle_cpu]=$(awk -v a="$(cpu_s "$WORKER")" -v b="${R[$c.cpu]}" \
            'BEGIN { printf "%.2f", a - b }')
    else
        up=no
        for k in rss pss priv pss_all master_rss cpu idle_cpu; do R[$c.$k]="-"; done
    fi
    bench_ctl 0
    R[$c.requests]=$(kv "$P/snap" requests)
    if ! stp_alive "$SRV_PID" || ! stp_alive "$WORKER"; then
        up=no
    fi
    R[$c.up]=$up
    wd=$({ grep -icE 'watchdog|stuck|about to kill|exited with code' "$HD/stderr" || true; })
    R[$c.watchdog]=$wd
    if [ "$wd" != 0 ]; then
        {
            echo "--- $c: watchdog/stuck lines of $HD/stderr:"
            grep -iE 'watchdog|stuck|about to kill|exited with code' "$HD/stderr"
        } >>"$LOG"
    fi
    log "$c: ready ${R[$c.start]} s, first handshake done at ${R[$c.first_at]} s" \
        "(${R[$c.first_ms]} ms, stapled ${R[$c.first_stapled]}), sweep ${R[$c.stapled]}/$N" \
        "stapled, median ${R[$c.median]} ms, worst ${R[$c.worst]} ms; worker Rss" \
        "$(mib "${R[$c.rss]}"), Pss $(mib "${R[$c.pss]}"); ${R[$c.requests]} requests;" \
        "watchdog lines $wd; up $up"
    stop
}

for v in "${VARIANTS[@]}"; do
    case $v in preload | provider) fill "$v" ;; esac
done
COLS=()
for ((r = 1; r <= ROUNDS; r++)); do
    for v in "${VARIANTS[@]}"; do
        measure "$v" "$r"
        COLS+=("$v#$r")
    done
done
TOTAL_S=$((($(stp_ms) - RUN_T0) / 1000))

# ---- report ------------------------------------------------------------------

bench_env() {
    local v out="BENCH_N=$N"
    for v in $(compgen -e | grep '^BENCH_' || true); do
        [ "$v" = BENCH_N ] || out+=" $v=$(printf '%q' "${!v}")"
    done
    echo "$out"
}

report() {
    local c w=16 v
    row() {
        local l=$1 x
        shift
        printf '| %-58s' "$l"
        for x in "$@"; do printf ' | %-*s' "$w" "$x"; done
        printf ' |\n'
    }
    # vals METRIC [SUFFIX]: the METRIC of every column
    vals() {
        local c
        local x
        for c in "${COLS[@]}"; do
            x=${R[$c.$1]:-?}
            case $x in -* | '?') printf '%s\n' "$x" ;; *) printf '%s%s\n' "$x" "${2:-}" ;; esac
        done
    }
    printf 'ocspstaple bench-haproxy-crtdir %s: HAProxy %s, %s, %s CPUs, commit %s\n' \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$HVER" "$(openssl version | cut -d' ' -f1-2)" \
        "$(nproc)" "$(git -C "$STP_SUPPORT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf 'command: %s cmake --build <build> --target bench-haproxy-crtdir\n' "$(bench_env)"
    printf 'N = %d certificates in one "bind ssl crt DIR" (EC P-256 leaves, one key), ' "$N"
    printf 'HAProxy -W -db, nbthread 2; warm store (each route: its own cold run, then restarts);\n'
    printf 'sweep: %d parallel full handshakes (TLS 1.3, SNI, status_request, each staple verified)\n\n' \
        "$PARALLEL"
    local hdr=()
    for c in "${COLS[@]}"; do
        case $c in none*) hdr+=("no hook ${c#*#}") ;; *) hdr+=("${c%#*} ${c#*#}") ;; esac
    done
    row "N = $N, crt DIR, warm store" "${hdr[@]}"
    local d=() s
    for c in "${COLS[@]}"; do
        s=$(printf '%*s' "$w" '' | tr ' ' -)
        d+=("$s")
    done
    row "$(printf '%58s' '' | tr ' ' -)" "${d[@]}"
    mapfile -t a < <(vals start " s")
    row "launch to worker up and port accepting" "${a[@]}"
    mapfile -t a < <(vals master_cpu " s")
    row "master CPU until then" "${a[@]}"
    mapfile -t a < <(vals hook_first " s")
    row "launch to the hook's first log line (HAProxy loaded)" "${a[@]}"
    mapfile -t a < <(vals hook_prefork " s")
    row "hook's work before the fork (to worker's refresher)" "${a[@]}"
    mapfile -t a < <(vals first_at " s")
    row "launch to first handshake completed" "${a[@]}"
    mapfile -t a < <(vals first_ms " ms")
    row "first handshake duration" "${a[@]}"
    mapfile -t a < <(vals first_stapled)
    row "first handshake stapled (1 = yes)" "${a[@]}"
    local st=() mw=() ff=()
    for c in "${COLS[@]}"; do
        st+=("${R[$c.stapled]:-?} / $N")
        mw+=("${R[$c.median]:-?} / ${R[$c.worst]:-?}")
        ff+=("${R[$c.failed]:-?} / ${R[$c.bad]:-?}")
    done
    row "full sweep right after: stapled" "${st[@]}"
    row "full sweep: median / worst handshake (ms)" "${mw[@]}"
    mapfile -t a < <(vals p99 " ms")
    row "full sweep: p99 handshake" "${a[@]}"
    row "full sweep: failed handshakes / bad staples" "${ff[@]}"
    mapfile -t a < <(vals sweep_s " s")
    row "full sweep ended (from launch)" "${a[@]}"
    mapfile -t a < <(vals requests)
    row "responder requests during the run" "${a[@]}"
    local rs=() ps=() pa=() pv=() mr=()
    for c in "${COLS[@]}"; do
        rs+=("$(mib "${R[$c.rss]}")")
        ps+=("$(mib "${R[$c.pss]}")")
        pv+=("$(mib "${R[$c.priv]}")")
        pa+=("$(mib "${R[$c.pss_all]}")")
        mr+=("$(mib "${R[$c.master_rss]}")")
    done
    row "worker Rss after the sweep" "${rs[@]}"
    row "worker Pss after the sweep" "${ps[@]}"
    row "worker private (clean + dirty)" "${pv[@]}"
    row "Pss master + worker" "${pa[@]}"
    row "master Rss" "${mr[@]}"
    mapfile -t a < <(vals cpu " s")
    row "worker CPU at the end of the sweep" "${a[@]}"
    mapfile -t a < <(vals idle_cpu " s")
    row "worker CPU in the $IDLE s after it (idle)" "${a[@]}"
    mapfile -t a < <(vals wdt)
    row "watchdog timers armed in the worker (1 per thread)" "${a[@]}"
    mapfile -t a < <(vals watchdog)
    row "watchdog / stuck lines on HAProxy's stderr" "${a[@]}"
    mapfile -t a < <(vals up)
    row "HAProxy master and worker still up at the end" "${a[@]}"
    printf '\n'
    for v in "${VARIANTS[@]}"; do
        case $v in
        preload | provider)
            printf 'warm store of %s: %s responses; its cold run: every name stapled in one sweep at %s s from launch, %s requests (max %s per certificate)\n' \
                "$v" "${R[$v.store]}" "${R[$v.cold_all]}" "${R[$v.cold_requests]}" "${R[$v.cold_max]}"
            ;;
        esac
    done
    printf 'certificates made in %s ms; whole run %d s\n' "$GEN_MS" "$TOTAL_S"
}

report | tee "$RESULTS"
log "results written to $RESULTS, details in $LOG"
