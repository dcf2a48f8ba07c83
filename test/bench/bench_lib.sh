# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# bench_lib.sh: what the benchmarks that use bench_responder share (and
# it/nginx_cow_*), sourced after test/support/lib.sh with P (the PKI
# directory) set: starting the responder and driving its control file
# (bench_responder.c says what each field does), and nginx with a server
# block per certificate of bench_mkcerts' PKI.

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

# bench_nginx_conf FILE DIR N WORKERS WCONN [HTTP_LINES]: an nginx.conf
# (user www-data, WORKERS workers of WCONN connections each, its pid, logs
# and temporary files in DIR) with one server block per certificate
# h1..hN.bench.test of $P on 127.0.0.1:$PORT, all with the one key, and
# HTTP_LINES in its http block.
bench_nginx_conf() {
    local file=$1 dir=$2 n=$3 workers=$4 wconn=$5 extra=${6:-} i
    {
        cat <<EOF
user www-data;
worker_processes $workers;
worker_rlimit_nofile $((2 * wconn + 64));
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections $wconn; }
http {
    access_log off;
    client_body_temp_path $dir/tmp_body;
    proxy_temp_path $dir/tmp_proxy;
    fastcgi_temp_path $dir/tmp_fastcgi;
    uwsgi_temp_path $dir/tmp_uwsgi;
    scgi_temp_path $dir/tmp_scgi;
    server_names_hash_max_size $((2 * n + 512));
    server_names_hash_bucket_size 64;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_certificate_key $P/leaf.key;
    $extra
EOF
        # reuseport on the first block: one socket per worker, the kernel
        # spreads the connections over the workers
        # shellcheck disable=SC2153 # PORT: set by stp_start_server
        printf '    server { listen 127.0.0.1:%d ssl reuseport; server_name h1.bench.test; ssl_certificate %s/certs/h1.chain.pem; }\n' \
            "$PORT" "$P"
        for ((i = 2; i <= n; i++)); do
            printf '    server { listen 127.0.0.1:%d ssl; server_name h%d.bench.test; ssl_certificate %s/certs/h%d.chain.pem; }\n' \
                "$PORT" "$i" "$P" "$i"
        done
        echo "}"
    } >"$file"
}

# bench_nginx_run DIR [ENV...]: the Debian nginx with DIR/nginx.conf in the
# background (its stderr in DIR/stderr), ENV in its environment; sets
# SRV_PID (the master).
bench_nginx_run() {
    local dir=$1
    shift
    rm -f "$dir/nginx.pid"
    env "$@" "$(command -v nginx)" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" \
        </dev/null >>"$dir/stderr" 2>&1 &
    SRV_PID=$!
}

# bench_nginx_up DIR WORKERS: SRV_PID wrote DIR/nginx.pid and runs WORKERS
# workers.
bench_nginx_up() {
    [ -s "$1/nginx.pid" ] && [ "$(<"$1/nginx.pid")" = "$SRV_PID" ] &&
        [ "$(stp_nchildren "$SRV_PID")" -eq "$2" ]
}
