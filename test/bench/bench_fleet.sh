#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench_fleet.sh [RESULTS]: the fleet tier (issue #12) measured: for each
# fleet size H in BENCH_HOSTS (1 3 10), H "hosts" (one nginx each, one
# worker as www-data, BENCH_N (100) server blocks, its own store directory
# and policy, fleet_host h<i>) sharing one redis-server and one responder
# (bench_responder, responses valid BENCH_VALIDITY (120) s, refreshed at 90%
# of it, no jitter: a refresh round every 12 s). Not a test: it prints
# figures and fails only when something could not be run.
#
# Per fleet size:
#   cold      every host started at once, empty stores and an empty Redis:
#             responder requests until every host stapled every name (an SNI
#             sweep of each host, every staple verified), per certificate
#   rounds    then BENCH_WINDOW (40) s of refresh rounds: requests per
#             certificate per refresh = requests / (N x rounds), where the
#             rounds are counted from the hosts' own logs (each refresh of a
#             certificate on a host is one "stored ... response" or one
#             "took the fleet's" line): the ideal is 1 whatever H
# With BENCH_NOFLEET=1 (the default) every size of more than one host is
# also run without fleet_url first, for comparison.
# For the largest H, two outages:
#   refused   redis-server killed (SIGKILL): the connection is refused
#   hang      redis-server stopped (SIGSTOP): it accepts, never answers
#             (every command runs into fleet_timeout)
# and for each, per host: when it said the fleet is unreachable after the
# outage began, and the delay between that line and its own fetch (what
# the outage cost the refresh that met it); then Redis back (SIGCONT, or
# started again) and the time until every host said "reachable again".
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/redis.sh
source "$STP_SUPPORT/redis.sh"
# shellcheck source-path=SCRIPTDIR source=bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

N=${BENCH_N:-100}
HOST_COUNTS=${BENCH_HOSTS:-1 3 10}
VALIDITY=${BENCH_VALIDITY:-120}
WINDOW=${BENCH_WINDOW:-40}
ROUTE=${BENCH_ROUTE:-provider}
NOFLEET=${BENCH_NOFLEET:-1} # each size of more than one host also without the fleet
FLEET=1
RESULTS=${1:-bench-fleet-results.txt}
LOG=${RESULTS%.txt}.log
RUN_USER=www-data
export OPENSSL_CONF=/dev/null

for v in N VALIDITY WINDOW; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || stp_fail "BENCH_$v='${!v}': expected a count"
done
MAXH=0
for h in $HOST_COUNTS; do
    [[ $h =~ ^[1-9][0-9]*$ ]] || stp_fail "BENCH_HOSTS: '$h' is not a count"
    [ "$h" -le "$MAXH" ] || MAXH=$h
done
case $ROUTE in preload | provider) ;; *) stp_fail "BENCH_ROUTE: preload or provider" ;; esac
[ "$(id -u)" -eq 0 ] || stp_fail "run as root: nginx's master switches to $RUN_USER"
stp_need nginx openssl ss pgrep timeout awk date
stp_redis_need
for v in STP_HOOK STP_MODULE STP_BENCH_MKCERTS STP_BENCH_RESPONDER STP_BENCH_SWEEP; do
    [ -f "${!v:-}" ] || stp_fail "$v is not set to a file (run the bench-fleet target)"
done
NGINX=$(command -v nginx)

stp_setup
chmod 711 "$T"
P=$T/pki
mkdir -p "$P"
: >"$LOG"
log() { printf 'bench-fleet: %s\n' "$*" | tee -a "$LOG" >&2; }

# ---- the responder (bench_lib.sh), the certificates, Redis ------------------

# requests: the responder's requests since its counters were last reset
# (bench_ctl 1)
requests() {
    bench_ctl 0
    kv "$P/snap" requests
}
bench_responder_start 7200 --validity "$VALIDITY"
"$STP_BENCH_MKCERTS" "$P" "$N" "$RPORT" "$HANG_PORT" 0 >/dev/null ||
    stp_fail "bench_mkcerts failed"
chmod 600 "$P"/*.key
stp_redis_start "$T/redis" 0
log "$N certificates; responder 127.0.0.1:$RPORT; redis 127.0.0.1:$REDIS_PORT"

# ---- hosts -------------------------------------------------------------------

declare -A HPORT HPID
# host_start NAME: nginx for host NAME ($T/NAME), its store emptied.
host_start() {
    local h=$1 d=$T/$1 i envs
    rm -rf "$d"
    mkdir -p "$d/store"
    chown "$RUN_USER:" "$d/store"
    HPORT[$h]=$(stp_free_port)
    {
        printf 'openssl_conf = openssl_init\n[openssl_init]\nproviders = prov\n'
        printf '[prov]\ndefault = default_sect\nocspstaple = stp_sect\n'
        printf '[default_sect]\nactivate = 1\n[stp_sect]\n'
        [ "$ROUTE" != provider ] || printf 'module = %s\nactivate = 1\n' "$STP_MODULE"
        printf 'store_dir = %s\nlog_level = info\n' "$d/store"
        if [ "$FLEET" = 1 ]; then
            printf 'fleet_url = redis://127.0.0.1:%s/0\nfleet_host = %s\n' "$REDIS_PORT" "$h"
        fi
        # clock_skew below the validity: else every response is due at once
        printf 'refresh_margin = 90\nrefresh_min = 10s\nrefresh_jitter = 0s\nclock_skew = 5s\n'
    } >"$d/stp.cnf"
    {
        printf 'user %s;\nworker_processes 1;\ndaemon off;\npid %s/nginx.pid;\n' "$RUN_USER" "$d"
        printf 'error_log %s/error.log warn;\nevents { worker_connections 1024; }\n' "$d"
        printf 'http {\n    access_log off;\n'
        printf '    server_names_hash_max_size %d;\n    server_names_hash_bucket_size 64;\n' $((2 * N + 512))
        for t in client_body proxy fastcgi uwsgi scgi; do
            printf '    %s_temp_path %s/tmp_%s;\n' "$t" "$d" "$t"
        done
        printf '    ssl_certificate_key %s/leaf.key;\n' "$P"
        for ((i = 1; i <= N; i++)); do
            printf '    server { listen 127.0.0.1:%d ssl; server_name h%d.bench.test; ssl_certificate %s/certs/h%d.chain.pem; }\n' \
                "${HPORT[$h]}" "$i" "$P" "$i"
        done
        printf '}\n'
    } >"$d/nginx.conf"
    if [ "$ROUTE" = provider ]; then
        envs=(OPENSSL_CONF="$d/stp.cnf")
    else
        envs=(LD_PRELOAD="$STP_HOOK" OCSPSTAPLE_CONF="$d/stp.cnf")
    fi
    env "${envs[@]}" "OCSPSTAPLE_DEBUG=level:info,file:$d/hook.log" \
        "$NGINX" -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" \
        </dev/null >>"$d/stderr" 2>&1 &
    HPID[$h]=$!
    stp_register_pid "${HPID[$h]}"
}
host_up() {
    local d=$T/$1
    [ -s "$d/nginx.pid" ] && [ "$(<"$d/nginx.pid")" = "${HPID[$1]}" ] &&
        [ "$(stp_nchildren "${HPID[$1]}")" -eq 1 ] &&
        stp_port_owned "${HPORT[$1]}" "${HPID[$1]}"
}
host_stop() {
    stp_stop_pid "${HPID[$1]}"
    stp_forget_pid "${HPID[$1]}"
}
# sweep NAME: one SNI sweep of host NAME until every name is stapled
# (bounded); prints bench_sweep's all_sweep_s.
sweep() {
    timeout 300 "$STP_BENCH_SWEEP" --port "${HPORT[$1]}" --n "$N" --ca "$P/root.pem" \
        --until-all --limit 240 --parallel 2 2>>"$T/$1/sweep.err" |
        awk '$1 == "all_sweep_s" { print $2 }'
}
# events NAME: the refreshes host NAME logged (fetched or taken)
events() {
    grep -cE "INFO refresh: .*(stored|holding) [a-z]+ response from|took the fleet's" \
        "$T/$1/hook.log" || true
}
# after FILE K ERE: the number and the text of the first line of FILE
# after line K that matches ERE, as "N LINE" (awk reads the file: no pipe a
# first match would break); status 1: none.
after() {
    awk -v k="$2" -v re="$3" 'NR > k && $0 ~ re { print NR, $0; f = 1; exit }
        END { exit !f }' "$1"
}
DOWN_RE='WARN fleet: .*unreachable'
FETCH_RE='INFO refresh: .*stored [a-z]* response from'
# t_ms "N LINE": the time of that hook log line, in epoch ms
t_ms() { date -u -d "$(cut -d' ' -f2 <<<"$1")" +%s%3N; }

RESULT_ROWS=()
RUNS=()
for H in $HOST_COUNTS; do
    [ "$NOFLEET" != 1 ] || [ "$H" = 1 ] || RUNS+=("$H 0")
    RUNS+=("$H 1")
done
for run in "${RUNS[@]}"; do
    read -r H FLEET <<<"$run"
    log "== $H host(s), $([ "$FLEET" = 1 ] && echo "one fleet" || echo "no fleet")"
    stp_redis flushall >/dev/null
    bench_ctl 1
    hosts=()
    for ((i = 1; i <= H; i++)); do
        hosts+=("h$i")
    done
    t0=$(stp_ms)
    for h in "${hosts[@]}"; do host_start "$h"; done
    for h in "${hosts[@]}"; do
        STP_WAIT=$((30 + N / 10)) stp_wait_for host_up "$h" || stp_fail "host $h did not start"
    done
    for h in "${hosts[@]}"; do
        s=$(sweep "$h")
        if [ -z "$s" ] || [ "$s" = none ]; then
            stp_fail "host $h: not every name stapled"
        fi
    done
    cold_s=$((($(stp_ms) - t0) / 1000))
    cold=$(requests)
    log "cold: $cold requests for $N certificates on $H host(s), all stapled in ${cold_s}s"
    e0=0
    for h in "${hosts[@]}"; do e0=$((e0 + $(events "$h"))); done
    bench_ctl 1
    sleep "$WINDOW" # a benchmark's measuring window, not a wait for a state
    win=$(requests)
    e1=0
    for h in "${hosts[@]}"; do e1=$((e1 + $(events "$h"))); done
    rounds=$(awk -v e=$((e1 - e0)) -v n="$N" -v h="$H" 'BEGIN { printf "%.2f", e / (n * h) }')
    per=$(awk -v r="$win" -v n="$N" -v k="$rounds" 'BEGIN { printf "%.3f", (k > 0 ? r / (n * k) : 0) }')
    log "rounds: $win requests in ${WINDOW}s, $rounds refresh round(s) per host: $per requests per certificate per refresh"
    RESULT_ROWS+=("| $H | $([ "$FLEET" = 1 ] && echo yes || echo no) | $N | $cold | $(awk -v r="$cold" -v n="$N" 'BEGIN { printf "%.2f", r / n }') | $rounds | $win | $per |")
    if [ "$H" = "$MAXH" ] && [ "$FLEET" = 1 ]; then
        OUTAGE_ROWS=()
        for kind in refused hang; do
            for h in "${hosts[@]}"; do : >"$T/$h/mark"; done
            n0=()
            for h in "${hosts[@]}"; do n0+=("$(wc -l <"$T/$h/hook.log")"); done
            ot=$(stp_ms)
            if [ "$kind" = refused ]; then
                kill -KILL "$REDIS_PID"
                stp_forget_pid "$REDIS_PID"
                wait "$REDIS_PID" 2>/dev/null || true
            else
                kill -STOP "$REDIS_PID"
            fi
            # every host meets the outage at its next refresh round
            _all_down() {
                local k=0 hh d
                for hh in "${hosts[@]}"; do
                    d=$(after "$T/$hh/hook.log" "${n0[k]}" "$DOWN_RE") || return 1
                    after "$T/$hh/hook.log" "${d%% *}" "$FETCH_RE" >/dev/null || return 1
                    k=$((k + 1))
                done
            }
            STP_WAIT=$((3 * VALIDITY / 10 + 30)) stp_wait_for _all_down || stp_fail "$kind: not every host fetched alone"
            worst_seen=0 worst_cost=0 k=0
            for h in "${hosts[@]}"; do
                dl=$(after "$T/$h/hook.log" "${n0[k]}" "$DOWN_RE")
                # its own fetch: the first one after it met the outage
                fl=$(after "$T/$h/hook.log" "${dl%% *}" "$FETCH_RE") ||
                    stp_fail "$kind: $h fetched nothing after it met the outage"
                seen=$(($(t_ms "$dl") - ot))
                cost=$(($(t_ms "$fl") - $(t_ms "$dl")))
                [ "$seen" -le "$worst_seen" ] || worst_seen=$seen
                [ "$cost" -le "$worst_cost" ] || worst_cost=$cost
                k=$((k + 1))
            done
            bt=$(stp_ms)
            if [ "$kind" = refused ]; then
                stp_redis_start "$T/redis" "$REDIS_PORT"
            else
                kill -CONT "$REDIS_PID"
            fi
            _all_up() {
                local k=0 hh
                for hh in "${hosts[@]}"; do
                    after "$T/$hh/hook.log" "${n0[k]}" "reachable again" >/dev/null || return 1
                    k=$((k + 1))
                done
            }
            STP_WAIT=$((3 * VALIDITY / 10 + 60)) stp_wait_for _all_up || stp_fail "$kind: not every host came back"
            back=$((($(stp_ms) - bt) / 1000))
            log "$kind: every host met the outage within ${worst_seen} ms of it (its next round), the fetch after it at most ${worst_cost} ms later; all back within ${back}s"
            OUTAGE_ROWS+=("| $kind | $H | $worst_seen | $worst_cost | $back |")
        done
    fi
    for h in "${hosts[@]}"; do
        grep -E " (ERROR) " "$T/$h/hook.log" | head -3 >&2 || true
        host_stop "$h"
    done
done

{
    echo "bench-fleet: N=$N certificates per host, route $ROUTE, responses valid ${VALIDITY}s (a round every $((VALIDITY / 10))s), window ${WINDOW}s"
    echo
    echo "| hosts | fleet | certificates | requests, cold | per certificate, cold | refresh rounds per host in the window | requests in the window | requests per certificate per refresh |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
    printf '%s\n' "${RESULT_ROWS[@]}"
    echo
    echo "| outage | hosts | outage to the last host meeting it (ms, its next round) | that host's line to its own fetch, worst (ms) | Redis back to every host back (s) |"
    echo "| --- | --- | --- | --- | --- |"
    printf '%s\n' "${OUTAGE_ROWS[@]}"
} | tee "$RESULTS"
