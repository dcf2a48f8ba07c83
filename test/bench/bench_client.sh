#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# bench_client.sh [RESULTS]: what client-certificate OCSP costs an mTLS
# server (issue #10). nginx (the Debian binary, unmodified, one worker as
# www-data, `ssl_verify_client on`) on 127.0.0.1 in three variants, all
# running at once on their own ports:
#   plain   no client OCSP
#   native  nginx's own: `ssl_ocsp leaf; ssl_ocsp_cache shared:...`
#   ours    client_ocsp = leaf, libocspstaple.so by LD_PRELOAD
# Throughput: `openssl s_time -new` (full handshakes, a GET of /, with a
# client certificate) for BENCH_SECONDS per run, one warm-up run of each,
# then BENCH_ROUNDS rounds in alternating order (drift hits every variant
# alike); the median connections per second per variant and its ratio to
# plain, warm caches (the same client certificate throughout).
# First handshake of an unseen client: BENCH_UNSEEN fresh client
# certificates, one request each (curl, time_total: the server answers only
# once it has decided), then the same again (seen); median and worst, per
# variant; the responder requests each variant made for them ("requests"),
# and for the same clients again after a restart of nginx ("restarted").
# Not a test: it prints figures and fails only when something could not be
# run. Environment: BENCH_SECONDS (5), BENCH_ROUNDS (5), BENCH_UNSEEN (20),
# STP_CLI, STP_RESPONDER, STP_SUPPORT, STP_HOOK (set by the bench-client
# target), STP_KEEP=1. Needs root (nginx's master switches to www-data).
set -euo pipefail
STP_SUPPORT=${STP_SUPPORT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../support" && pwd)}
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

SECONDS_RUN=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-5}
UNSEEN=${BENCH_UNSEEN:-20}
RESULTS=${1:-bench-client-results.txt}
RUN_USER=www-data
export OPENSSL_CONF=/dev/null

[[ $SECONDS_RUN =~ ^[1-9][0-9]*$ ]] || stp_fail "BENCH_SECONDS='$SECONDS_RUN': expected a count"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || stp_fail "BENCH_ROUNDS='$ROUNDS': expected a count"
[[ $UNSEEN =~ ^[1-9][0-9]*$ ]] || stp_fail "BENCH_UNSEEN='$UNSEEN': expected a count"
stp_need nginx openssl curl awk sort timeout ss
[ -f "${STP_HOOK:-}" ] || stp_fail "STP_HOOK (libocspstaple.so) is not set"
[ "$(id -u)" -eq 0 ] || stp_fail "needs root: nginx's master switches to $RUN_USER"
NGINX=$(command -v nginx)
stp_setup
chmod 711 "$T"
P=$T/pki
mkdir -p "$P" "$T/store"
chown "$RUN_USER:" "$T/store"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
# the client CA file: root and intermediate (s_time sends the leaf alone)
cat "$P/root.pem" "$P/int.pem" >"$P/clientca.pem"
CONF=$T/stp.cnf
stp_conf "$CONF" preload "client_ocsp = leaf" "log_level = warn"

# fresh NAME...: more client certificates of the test PKI, never seen
fresh() {
    local n
    for n in "$@"; do
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/O=ocspstaple test/CN=$n" -keyout "$P/$n.key" \
            -out "$P/ca/$n.csr" 2>/dev/null
        STP_SAN=DNS:unused.test openssl ca -config "$P/ca/pki.cnf" -name CA_int \
            -batch -notext -extensions ext_client -days 2 -in "$P/ca/$n.csr" \
            -out "$P/$n.pem" 2>/dev/null || stp_fail "issuing $n"
        cat "$P/$n.pem" "$P/int.pem" >"$P/$n.chain.pem"
    done
}

# start VARIANT: nginx for VARIANT on a port of its own; sets PORT_<VARIANT>
declare -A PORTS PIDS
start() {
    local v=$1 dir=$T/nginx-$1 extra="" envs=() port i
    mkdir -p "$dir"
    case $v in
    native) extra="ssl_ocsp leaf; ssl_ocsp_cache shared:ocsp_$v:10m;" ;;
    ours)
        # the route's environment, with the log at WARN: a debug log is
        # no part of what is measured
        mapfile -t envs < <(stp_route_env preload "$CONF" |
            sed 's/^OCSPSTAPLE_DEBUG=level:debug,/OCSPSTAPLE_DEBUG=level:warn,/')
        ;;
    esac
    for ((i = 0; i < 5; i++)); do
        port=$(stp_free_port)
        cat >"$dir/nginx.conf" <<EOF
user $RUN_USER;
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/tmp_body;
    proxy_temp_path $dir/tmp_proxy;
    fastcgi_temp_path $dir/tmp_fastcgi;
    uwsgi_temp_path $dir/tmp_uwsgi;
    scgi_temp_path $dir/tmp_scgi;
    ssl_protocols TLSv1.3;
    ssl_session_tickets off;
    ssl_session_cache off;
    server {
        listen 127.0.0.1:$port ssl;
        server_name ecdsa.test;
        ssl_certificate $P/ecdsa.chain.pem;
        ssl_certificate_key $P/ecdsa.key;
        ssl_client_certificate $P/clientca.pem;
        ssl_verify_client on;
        ssl_verify_depth 2;
        $extra
        location / { return 200 "\$ssl_client_verify\n"; }
    }
}
EOF
        rm -f "$dir/nginx.pid"
        env "${envs[@]}" "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" \
            </dev/null >>"$dir/stderr" 2>&1 &
        PIDS[$v]=$!
        stp_register_pid "${PIDS[$v]}"
        up() { [ -s "$dir/nginx.pid" ] && stp_port_owned "$port" "${PIDS[$v]}"; }
        if stp_wait_for up; then
            PORTS[$v]=$port
            return 0
        fi
        stp_stop_pid "${PIDS[$v]}"
    done
    stp_fail "nginx ($v) did not start: $(tail -5 "$dir/error.log" 2>/dev/null)"
}

# get VARIANT CLIENT: one request with CLIENT's certificate; prints
# "<ms> <body>"
get() {
    local t
    : >"$T/get.body"
    t=$(timeout 10 curl -sS --cacert "$P/root.pem" --cert "$P/$2.chain.pem" \
        --key "$P/$2.key" --resolve "ecdsa.test:${PORTS[$1]}:127.0.0.1" \
        -o "$T/get.body" -w '%{time_total}' "https://ecdsa.test:${PORTS[$1]}/" \
        2>"$T/get.err" || true)
    awk -v t="${t:-0}" -v b="$(head -c 200 "$T/get.body" | tr -d '\n') $(cat "$T/get.err")" \
        'BEGIN { sub(/ +$/, "", b); printf "%d %s\n", t * 1000 + 0.5, b }'
}

# cpu PID: the CPU time (user + system, clock ticks) PID has used
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# rate VARIANT: "<connections per second> <worker CPU us per connection>"
# of one s_time run
rate() {
    local w c0 c1 out
    w=$(pgrep -P "${PIDS[$1]}" | head -1)
    c0=$(cpu "$w")
    out=$(timeout $((SECONDS_RUN + 30)) openssl s_time -connect "127.0.0.1:${PORTS[$1]}" \
        -new -time "$SECONDS_RUN" -www / -cert "$P/client-good.pem" \
        -key "$P/client-good.key" -CAfile "$P/root.pem" 2>/dev/null |
        awk '/connections in .* real seconds/ { print $1, $4 }' | tail -1)
    c1=$(cpu "$w")
    [ -n "$out" ] || return 0
    awk -v n="${out% *}" -v s="${out#* }" -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.1f %.0f\n", n / s, t * 1e6 / hz / n }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : "-") }'; }

VARIANTS=(plain native ours)
for v in "${VARIANTS[@]}"; do start "$v"; done
for v in "${VARIANTS[@]}"; do
    r=$(get "$v" client-good)
    [ "${r#* }" = SUCCESS ] || stp_fail "$v: client-good not admitted: $r"
done
echo "servers: plain ${PORTS[plain]}, native ${PORTS[native]}, ours ${PORTS[ours]}" >&2

# ---- throughput, warm -------------------------------------------------------
declare -A RATES CPUS
for v in "${VARIANTS[@]}"; do rate "$v" >/dev/null; done # warm-up
for ((r = 0; r < ROUNDS; r++)); do
    if ((r % 2 == 0)); then order=(plain native ours); else order=(ours native plain); fi
    for v in "${order[@]}"; do
        x=$(rate "$v")
        [ -n "$x" ] || stp_fail "s_time against $v printed no rate"
        RATES[$v]+="${x% *} "
        CPUS[$v]+="${x#* } "
        echo "round $r $v: ${x% *} conn/s, ${x#* } us of worker CPU per connection" >&2
    done
done

# ---- first handshake of unseen clients --------------------------------------
names=()
for ((i = 1; i <= UNSEEN; i++)); do names+=("unseen$i"); done
fresh "${names[@]}"
declare -A FIRST SEEN REQS NAMES AFTER
for v in "${VARIANTS[@]}"; do
    NAMES[$v]="${names[*]}"
    before=$(stp_requests)
    f=() s=()
    for n in "${names[@]}"; do
        for pass in first seen; do
            r=$(get "$v" "$n")
            [ "${r#* }" = SUCCESS ] || stp_fail "$v: $n not admitted ($pass): $r"
            if [ "$pass" = first ]; then f+=("${r%% *}"); else s+=("${r%% *}"); fi
        done
    done
    FIRST[$v]="${f[*]}"
    SEEN[$v]="${s[*]}"
    REQS[$v]=$(($(stp_requests) - before))
    # the next variant's clients must be unseen too
    if [ "$v" != ours ]; then
        old=("${names[@]}")
        names=()
        for n in "${old[@]}"; do names+=("${n}x"); done
        fresh "${names[@]}"
    fi
done

# ---- after a restart: the same clients again ---------------------------------
for v in native ours; do
    stp_stop_pid "${PIDS[$v]}"
    start "$v"
    before=$(stp_requests)
    for n in ${NAMES[$v]}; do
        r=$(get "$v" "$n")
        [ "${r#* }" = SUCCESS ] || stp_fail "$v: $n not admitted after a restart: $r"
    done
    AFTER[$v]=$(($(stp_requests) - before))
done
AFTER[plain]=0

# ---- report -----------------------------------------------------------------
base=$(tr ' ' '\n' <<<"${RATES[plain]}" | grep . | median)
cbase=$(tr ' ' '\n' <<<"${CPUS[plain]}" | grep . | median)
{
    echo "client-certificate OCSP, nginx $("$NGINX" -v 2>&1 | sed 's|.*/||'), 1 worker, TLS 1.3, EC P-256"
    echo "throughput: full handshakes + GET per second (openssl s_time -new, ${SECONDS_RUN} s runs, median of $ROUNDS interleaved rounds)"
    echo "and the nginx worker's CPU time per connection (user + system, /proc)"
    printf '%-8s %10s %8s %14s %8s   %s\n' variant conn/s ratio "worker us/conn" ratio runs
    for v in "${VARIANTS[@]}"; do
        m=$(tr ' ' '\n' <<<"${RATES[$v]}" | grep . | median)
        c=$(tr ' ' '\n' <<<"${CPUS[$v]}" | grep . | median)
        printf '%-8s %10s %8s %14s %8s   %s\n' "$v" "$m" \
            "$(awk -v a="$m" -v b="$base" 'BEGIN { printf "%.3f", a / b }')" "$c" \
            "$(awk -v a="$c" -v b="$cbase" 'BEGIN { printf "%.3f", a / b }')" "${RATES[$v]}"
    done
    echo "first request of $UNSEEN unseen client certificates, then the same again (ms, curl time_total)"
    printf '%-8s %12s %10s %12s %10s %10s %10s\n' variant first-median first-max \
        seen-median seen-max requests restarted
    for v in "${VARIANTS[@]}"; do
            printf '%-8s %12s %10s %12s %10s %10s %10s\n' "$v" \
            "$(tr ' ' '\n' <<<"${FIRST[$v]}" | median)" \
            "$(tr ' ' '\n' <<<"${FIRST[$v]}" | sort -n | tail -1)" \
            "$(tr ' ' '\n' <<<"${SEEN[$v]}" | median)" \
            "$(tr ' ' '\n' <<<"${SEEN[$v]}" | sort -n | tail -1)" "${REQS[$v]}" \
            "${AFTER[$v]}"
    done
} | tee "$RESULTS"
for v in "${VARIANTS[@]}"; do stp_stop_pid "${PIDS[$v]}"; done
