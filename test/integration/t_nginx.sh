#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_nginx.sh SCENARIO ROUTE WORKERS: the real, unmodified nginx binary with
# its own stapling off (ssl_stapling defaults to off) staples through the
# hook (ROUTE provider: OPENSSL_CONF loads ocspstaple.so; preload:
# LD_PRELOAD=libocspstaple.so with OCSPSTAPLE_CONF), with WORKERS worker
# processes (1 or 4) running as www-data and sharing one store. Every staple
# is checked by `ocspstaple probe` (signature, CertID of the leaf received,
# freshness, and with --CAfile the chain and the host name); the responder
# counts its requests. Scenarios:
#   cold           the master tracks the certificate once before it forks;
#                  every worker's refresher races for the fetch (and a burst
#                  of concurrent first handshakes); a first staple, then
#                  (bounded wait) every handshake stapled, after exactly one
#                  responder request with a refresher in every worker
#   warm           store filled by `ocspstaple fetch`: the first handshake
#                  after start is stapled, no new request
#   restart        stop, start again: first handshake stapled, no request
#   stapling_file  `ssl_stapling on; ssl_stapling_file F;` with F older than
#                  the store: every handshake gets nginx's own F
#   sni            two server blocks (good.test RSA, ecdsa.test ECDSA), each
#                  stapled with its own verified response
#   tls            TLS 1.2 and TLS 1.3 both stapled
#   gnutls         gnutls-cli --ocsp verifies the staple itself and accepts
#                  it (and refuses a revoked.test stapled as revoked)
#   programs       `programs = nginx` in the policy: the workers staple
#   revoked_exit   mode must, revoked_action exit, a revoked.test block: the
#                  workers refuse it and stay (none exits and is respawned)
#   metrics        warm store, 40 handshakes spread over the workers:
#                  `ocspstaple metrics` counts the 40 for the host (the sum
#                  of every worker's counters file), the certificate as
#                  present and good; --textfile writes the same atomically,
#                  and so do the workers into metrics_file
#   forcerefresh   `ocspstaple refresh --force` run as the workers' user
#                  while nginx runs: every worker serves the new response
#                  within seconds, with no reload and no request of its own
#   reload         `nginx -s reload` (SIGHUP: the same master reads its
#                  configuration again and forks new workers), three times:
#                  a reload that adds ecdsa.test: good.test stapled from the
#                  first handshake with no request, ecdsa.test fetched at
#                  once; a reload after `mode = never` was written (the kill
#                  switch): nothing stapled by any worker, and one INFO line
#                  says the policy was read again; a reload after mode auto
#                  and a responder override (127.0.0.2) were written, with
#                  revoked.test added: stapled again, revoked.test fetched
#                  from the override
#   client         ssl_verify_client on, client_ocsp = leaf: a good client
#                  gets $ssl_client_verify SUCCESS, a revoked one nginx's
#                  400 and "certificate revoked" in its error.log, from every
#                  worker, with one responder request per client certificate;
#                  after a restart, decided from the store with no request
# Every scenario ends by stopping nginx (no worker may survive), with no
# ERROR line in the hook log and no warning or error in nginx's error.log.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

SCEN=${1:?scenario}
ROUTE=${2:-provider}
WORKERS=${3:-1}
RUN_USER=www-data

stp_need nginx openssl sha256sum ss pgrep ps timeout
if [ "$SCEN" = gnutls ]; then
    stp_need gnutls-cli
fi
id -u "$RUN_USER" >/dev/null 2>&1 || {
    echo "SKIP: no user $RUN_USER" >&2
    exit 77
}
[ "$(id -u)" -eq 0 ] || {
    echo "SKIP: nginx's master must run as root to switch to $RUN_USER" >&2
    exit 77
}
stp_hook_need
NGINX=$(command -v nginx)
stp_setup
# the workers (www-data) reach the store through $T
chmod 711 "$T"
P=$T/pki
N=$T/nginx
CONF=$T/stp.cnf
mkdir -p "$P" "$N" "$T/store"
chown "$RUN_USER:" "$T/store"
RARGS=()
[ "$SCEN" = reload ] && RARGS=(--alt-addr 127.0.0.2) # the override's address
stp_start_responder "$P" "${RARGS[@]}"
stp_mkpki "$P" "$RESPONDER_PORT"

SNI=        # the name of a second server block's certificate, if any
HOOK_ERRORS_OK= # ERROR lines the scenario expects in the hook log (grep -E)
GOOD_EXTRA=  # lines for the good.test server block
write_conf() {
    {
        cat <<EOF
user $RUN_USER;
worker_processes $WORKERS;
daemon off;
pid $N/nginx.pid;
error_log $N/error.log info;
events { worker_connections 256; }
http {
    access_log $N/access.log;
    client_body_temp_path $N/tmp_body;
    proxy_temp_path $N/tmp_proxy;
    fastcgi_temp_path $N/tmp_fastcgi;
    uwsgi_temp_path $N/tmp_uwsgi;
    scgi_temp_path $N/tmp_scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    server {
        # reuseport: one socket per worker, the kernel spreads connections
        listen 127.0.0.1:$PORT ssl reuseport;
        server_name good.test;
        ssl_certificate $P/good.chain.pem;
        ssl_certificate_key $P/good.key;
        $GOOD_EXTRA
        location / { return 200 "good\n"; }
    }
EOF
        if [ -n "$SNI" ]; then
            cat <<EOF
    server {
        listen 127.0.0.1:$PORT ssl;
        server_name $SNI.test;
        ssl_certificate $P/$SNI.chain.pem;
        ssl_certificate_key $P/$SNI.key;
        location / { return 200 "$SNI\n"; }
    }
EOF
        fi
        echo "}"
    } >"$N/nginx.conf"
}

# launch: nginx in the foreground (daemon off) under $ROUTE on $PORT, for
# stp_start_server.
launch() {
    write_conf
    rm -f "$N/nginx.pid"
    # shellcheck disable=SC2046
    env $(stp_route_env "$ROUTE" "$CONF") "$NGINX" -p "$N/" \
        -c "$N/nginx.conf" -e "$N/error.log" </dev/null >>"$N/stderr" 2>&1 &
    SRV_PID=$!
}

# workers_up: the master wrote its pid file and runs all its workers.
workers_up() {
    [ -s "$N/nginx.pid" ] && [ "$(<"$N/nginx.pid")" = "$SRV_PID" ] &&
        [ "$(stp_nchildren "$SRV_PID")" -eq "$WORKERS" ]
}

# start: nginx on a free port (another one if a parallel test took it
# first), listening alone there with all its workers.
start() {
    stp_start_server nginx launch workers_up "$N/stderr" "$N/error.log"
    echo "nginx $SRV_PID: $WORKERS worker(s) on 127.0.0.1:$PORT" >&2
}

# stop: SIGTERM to the master, which stops its workers; none may survive.
stop() {
    stp_stop_server "$SRV_PID" "$NGINX"
}

# reload: the configuration written again ($SNI), then `nginx -s reload`
# (SIGHUP to the master); returns once none of the old workers is left and
# $WORKERS new ones run (bounded).
reload() {
    local old
    old=$(stp_children "$SRV_PID")
    write_conf
    kill -HUP "$SRV_PID"
    stp_wait_regenerated "$SRV_PID" "$old" "$WORKERS" nginx
}

# burst N: N concurrent handshakes (whatever their outcome): with several
# workers, several of them meet the certificate at the same time.
burst() {
    local i pids=()
    for ((i = 0; i < $1; i++)); do
        timeout 20 "$STP_CLI" probe "127.0.0.1:$PORT" --timeout 5 \
            --servername good.test >/dev/null 2>&1 &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do
        wait "$i" || true
    done
}

# hooked: after the first handshakes, the workers track the certificate
# under the policy in $CONF (not some default one).
hooked() {
    stp_assert_file_lacks "$T/hook.log" "no ocspstaple section|stays passive|/var/cache/ocspstaple" \
        "the workers use the policy in $CONF and its store_dir"
    stp_assert_file_contains "$T/hook.log" "tracking certificate" \
        "the certificate is tracked"
}

# served: how many processes run a refresher (every worker starts its own
# right after the fork that made it).
served() {
    stp_log_pids "$T/hook.log" "refresher started" | wc -l
}

# tracked_by_master: the master tracked the certificates, once, before it
# forked its workers (they inherit the records and the stored responses);
# no worker tracks them again.
tracked_by_master() {
    stp_assert_eq "$(stp_log_pids "$T/hook.log" "tracking certificate" | paste -sd' ')" \
        "$SRV_PID" "the master alone tracks the certificates"
}

# all_stapled PROBE_ARGS...: 20 handshakes in a row get a verified staple
# (good or revoked).
all_stapled() {
    stp_probe "$PORT" "$@" --require-staple --count 20
    grep -q "handshakes=20 stapled=20 verified=20" <<<"$PROBE"
}

# every_worker PROBE_ARGS...: with a cold store, the workers that lost the
# race for the store lock take the winner's file at their next pass, about
# a second later: wait (bounded) until every handshake is stapled.
every_worker() {
    stp_wait_for all_stapled "$@" || stp_fail "not every worker staples: $*"
}

# gnutls NAME: one gnutls-cli --ocsp handshake with NAME (SNI and host
# name check); output in $T/gnutls.NAME, exit status in RC.
gnutls() {
    set +e
    timeout 20 gnutls-cli --ocsp --x509cafile "$P/root.pem" --sni-hostname "$1" \
        --verify-hostname "$1" -p "$PORT" 127.0.0.1 </dev/null >"$T/gnutls.$1" 2>&1
    RC=$?
    set -e
    echo "gnutls-cli $1: rc=$RC" >&2
    _stp_show "$T/gnutls.$1"
}

CA=(--CAfile "$P/root.pem")
GOOD=(--servername good.test "${CA[@]}")

case $SCEN in
cold)
    stp_conf "$CONF" "$ROUTE"
    start
    burst $((2 * WORKERS))
    hooked
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_expect_probe 0 "cold store: a staple arrives"
    stp_verified good.test
    t0=$(date +%s%N)
    every_worker "${GOOD[@]}"
    lag_ms=$((($(date +%s%N) - t0) / 1000000))
    stp_expect_probe 0 "20 handshakes stapled, good"
    stp_assert_requests 1 "one responder request with $WORKERS worker(s)"
    # every worker's refresher raced for the one fetch
    n=$(served)
    stp_assert_eq "$n" "$WORKERS" "a refresher in every worker"
    tracked_by_master
    [ -s "$T/store/$(stp_id good).der" ] || stp_fail "nothing stored"
    stp_ok "$n worker(s) served, $(stp_requests) responder request(s), all stapled ${lag_ms} ms after the first staple"
    ;;
warm)
    stp_warm good "$RUN_USER"
    stp_conf "$CONF" "$ROUTE"
    start
    stp_probe "$PORT" "${GOOD[@]}" --require-staple
    hooked
    stp_expect_probe 0 "the first handshake with a warm store is stapled"
    stp_verified good.test
    stp_probe "$PORT" "${GOOD[@]}" --require-staple --count 20
    stp_expect_probe 0 "the first handshake of every worker is stapled"
    stp_assert_requests 1 "no request beyond the CLI's"
    stp_ok "$(served) worker(s) served, $(stp_requests) responder request(s)"
    ;;
restart)
    stp_conf "$CONF" "$ROUTE"
    start
    burst 1
    hooked
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stop
    start
    stp_probe "$PORT" "${GOOD[@]}" --require-staple
    stp_expect_probe 0 "the first handshake after a restart is stapled"
    stp_verified good.test
    stp_probe "$PORT" "${GOOD[@]}" --require-staple --count 20
    stp_expect_probe 0 "every worker staples after a restart"
    stp_assert_requests 1 "no new request after a restart"
    ;;
stapling_file)
    # nginx's own stapling with a fixed file: its callback wins (preload:
    # ours is chained behind it; provider: ours leaves the context alone)
    stp_warm good "$RUN_USER"
    cp "$T/store/$(stp_id good).der" "$T/app.der"
    stp_next_second
    "$STP_CLI" fetch "$P/good.chain.pem" --store-dir "$T/store" --force >&2
    chown -R "$RUN_USER:" "$T/store"
    want=$(stp_file_this_update "$T/app.der")
    held=$(stp_file_this_update "$T/store/$(stp_id good).der")
    [ "$want" != "$held" ] || stp_fail "the file and the store hold the same thisUpdate"
    GOOD_EXTRA="ssl_stapling on; ssl_stapling_file $T/app.der;"
    stp_conf "$CONF" "$ROUTE"
    start
    burst 1
    hooked
    for ((i = 0; i < 4 * WORKERS; i++)); do
        stp_probe "$PORT" "${GOOD[@]}" --require-staple
        stp_expect_probe 0 "a staple"
        stp_assert_eq "$(stp_probe_this_update)" "$want" \
            "the staple is nginx's ssl_stapling_file (the store has $held)"
    done
    if [ "$ROUTE" = provider ]; then
        stp_assert_file_contains "$T/hook.log" "own status callback: left alone" \
            "the provider leaves nginx's callback alone"
    fi
    stp_assert_requests 2 "no request beyond the CLI's"
    ;;
sni)
    SNI=ecdsa
    stp_conf "$CONF" "$ROUTE"
    start
    burst 1
    hooked
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_verified good.test
    stp_expect_line "cert_key=RSA" "good.test is the RSA certificate"
    stp_wait_staple "$PORT" --servername ecdsa.test "${CA[@]}"
    stp_verified ecdsa.test
    stp_expect_line "cert_key=EC" "ecdsa.test is the ECDSA certificate"
    for name in good.test ecdsa.test; do
        every_worker --servername "$name" "${CA[@]}"
        stp_expect_probe 0 "$name: every handshake stapled and verified"
        stp_verified "$name"
    done
    stp_assert_requests 2 "one request per certificate"
    ;;
tls)
    stp_conf "$CONF" "$ROUTE"
    start
    burst 1
    hooked
    stp_wait_staple "$PORT" "${GOOD[@]}" --tls1.2
    for v in 1.2 1.3; do
        every_worker "${GOOD[@]}" --tls$v
        stp_expect_probe 0 "TLS $v: every handshake stapled"
        stp_verified good.test
        stp_expect_line "protocol=TLSv$v" "TLS $v negotiated"
    done
    stp_assert_requests 1 "one request"
    ;;
gnutls)
    # gnutls-cli --ocsp checks a stapled response itself (and would ask the
    # responder when none is stapled: the request count tells which). Its
    # "- Options: ... OCSP status request," means "received and verified"
    # ("OCSP status request[ignored]" would be received and not valid). A
    # revoked.test server block, stapled in the default mode auto, is the
    # control: there gnutls-cli must refuse the certificate.
    SNI=revoked
    stp_conf "$CONF" "$ROUTE"
    start
    burst 1
    hooked
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_wait_staple "$PORT" --servername revoked.test "${CA[@]}"
    stp_expect_probe 3 "revoked.test is stapled with its revoked status"
    every_worker "${GOOD[@]}"
    every_worker --servername revoked.test "${CA[@]}"
    stp_assert_requests 2 "one request per certificate"
    gnutls good.test
    [ "$RC" -eq 0 ] || stp_fail "gnutls-cli --ocsp refused good.test (exit $RC)"
    stp_assert_file_contains "$T/gnutls.good.test" "Options:.* OCSP status request," \
        "gnutls-cli received and verified the staple"
    stp_assert_file_lacks "$T/gnutls.good.test" "\\[ignored\\]|OCSP: " \
        "gnutls-cli found the staple valid and asked no responder"
    stp_assert_file_contains "$T/gnutls.good.test" "The certificate is trusted" \
        "gnutls-cli trusts good.test"
    gnutls revoked.test
    [ "$RC" -ne 0 ] || stp_fail "gnutls-cli --ocsp accepted revoked.test"
    stp_assert_file_contains "$T/gnutls.revoked.test" "revoked" \
        "gnutls-cli refuses revoked.test because of the stapled status"
    stp_assert_requests 2 "gnutls-cli used the staples, asked no responder"
    ;;
revoked_exit)
    # revoked_action exit in nginx's workers: a worker must not kill itself
    # (the master would start a new one, forever); the certificate is
    # refused, one ERROR per worker says why, the workers stay
    SNI=revoked
    stp_warm good "$RUN_USER"
    stp_warm revoked "$RUN_USER"
    stp_conf "$CONF" "$ROUTE" "mode = must" "revoked_action = exit"
    start
    stp_revoked_exit_stays "$SRV_PID" "$WORKERS" "${GOOD[@]}"
    HOOK_ERRORS_OK="certificate is revoked: (refusing|revoked_action exit is not possible)"
    ;;
metrics)
    stp_warm good "$RUN_USER"
    # metrics_file: the workers (www-data) write it too
    mkdir -p "$T/mf"
    chown "$RUN_USER:" "$T/mf"
    stp_conf "$CONF" "$ROUTE" "ca_file = $P/root.pem" "metrics_file = $T/mf/ocspstaple.prom"
    start
    stp_probe "$PORT" "${GOOD[@]}" --require-staple --count 40
    stp_expect_line "handshakes=40 stapled=40 verified=40" "40 handshakes stapled"
    # every worker writes its counters every 10 s: await the host's total
    host_metrics() {
        "$STP_CLI" metrics --conf "$CONF" >"$T/metrics.out" 2>"$T/metrics.err" &&
            grep -qx 'ocspstaple_handshakes_total{staple="ours"} 40' "$T/metrics.out"
    }
    STP_WAIT=30 stp_wait_for host_metrics ||
        stp_fail "the host's counter is not 40: $(grep handshakes_total "$T/metrics.out") $(cat "$T/metrics.err")"
    stp_assert_file_contains "$T/metrics.out" '^ocspstaple_handshakes_total\{staple="none"\} 0$' \
        "no handshake without a staple"
    running=$(sed -n 's/^ocspstaple_processes{state="running"} //p' "$T/metrics.out")
    if [ "$running" -lt 1 ] || [ "$running" -gt "$WORKERS" ]; then
        stp_fail "processes counted: $running (workers $WORKERS)"
    fi
    # status names the processes that use good.test's staple: nginx's, each
    # one the master or one of its workers
    "$STP_CLI" status --conf "$CONF" --json >"$T/status.json" ||
        stp_fail "status --json: $(cat "$T/status.json")"
    users=$(grep -o '"pid": [0-9]*, "program": "[a-z0-9]*"' "$T/status.json" | sort -u)
    [ -n "$users" ] || stp_fail "status names no process: $(cat "$T/status.json")"
    ours=$( (echo "$SRV_PID"; pgrep -P "$SRV_PID") | sort -u)
    while read -r _ pid _ prog; do
        pid=${pid%,}
        stp_assert_eq "$prog" '"nginx"' "the program of process $pid"
        grep -qx "$pid" <<<"$ours" || stp_fail "status names $pid, not one of nginx's"
    done <<<"$users"
    stp_ok "status names $(wc -l <<<"$users") nginx process(es) using good.test's staple"
    stp_assert_file_contains "$T/metrics.out" \
        "^ocspstaple_staple_present\\{id=\"$(stp_id good | cut -c1-12)\",subject=\"CN=good.test\",role=\"staple\"\\} 1$" \
        "good.test's staple is present"
    stp_assert_file_contains "$T/metrics.out" \
        "^ocspstaple_cert_status\\{.*subject=\"CN=good.test\".*status=\"good\"\\} 1$" "and good"
    stp_assert_file_contains "$T/metrics.out" '^# TYPE ocspstaple_fetch_duration_seconds histogram$' \
        "the fetch duration histogram"
    mkdir -p "$T/textfile"
    "$STP_CLI" metrics --conf "$CONF" --textfile "$T/textfile" ||
        stp_fail "metrics --textfile"
    stp_assert_file_contains "$T/textfile/ocspstaple.prom" \
        '^ocspstaple_handshakes_total\{staple="ours"\} 40$' "the textfile holds the same"
    [ -z "$(find "$T/textfile" -name '.ocspstaple.prom.*')" ] || stp_fail "a temp file was left"
    # metrics_file, written by the workers every 30 s: the same counters
    mf_counted() {
        grep -qx 'ocspstaple_handshakes_total{staple="ours"} 40' "$T/mf/ocspstaple.prom" 2>/dev/null
    }
    STP_WAIT=45 stp_wait_for mf_counted || stp_fail "metrics_file does not count 40"
    stp_assert_file_contains "$T/mf/ocspstaple.prom" \
        "^ocspstaple_staple_present\\{id=\"$(stp_id good | cut -c1-12)\",subject=\"CN=good.test\",role=\"staple\"\\} 1$" \
        "metrics_file: good.test's staple is present"
    stp_ok "the host counts 40 handshakes over $running worker(s)"
    ;;
client)
    GOOD_EXTRA="ssl_client_certificate $P/root.pem; ssl_verify_client on;
        ssl_verify_depth 2;
        location /verify { return 200 \"\$ssl_client_verify\\n\"; }"
    stp_conf "$CONF" "$ROUTE" "client_ocsp = leaf"
    start
    # client CLIENT: one request to /verify with CLIENT's certificate
    client() { stp_mtls_get "$PORT" "$1" /verify; }
    for i in $(seq 1 $((4 * WORKERS))); do
        client client-good
        if [ "$CODE" != 200 ] || [ "$BODY" != SUCCESS ]; then
            stp_fail "client-good ($i): HTTP $CODE '$BODY' $CERR"
        fi
        client client-revoked
        [ "$CODE" = 400 ] ||
            stp_fail "client-revoked ($i): HTTP $CODE '$BODY' $CERR"
    done
    stp_ok "$((4 * WORKERS)) times: client-good SUCCESS, client-revoked 400"
    stp_assert_file_contains "$N/error.log" \
        "client SSL certificate verify error: \(23:certificate revoked\)" \
        "nginx's own log names the cause"
    stp_wait_staple "$PORT" "${GOOD[@]}"
    # (what each process fetched or took, should it fail: it did once in CI)
    requests_said() {
        [ "$(stp_requests)" = 3 ] && return 0
        cat "$P/responder.log" >&2
        grep -E "refresh: |client: |store: " "$T/hook.log" >&2 || true
        return 1
    }
    requests_said || stp_fail "not one request per client certificate (and the staple's) with $WORKERS worker(s): $(stp_requests)"
    [ "$(grep -c "WARN client: .*CN=client-revoked.*revoked: refused" "$T/hook.log")" -le "$WORKERS" ] ||
        stp_fail "client-revoked's decision said more than once per worker"
    stop
    start
    client client-good
    [ "$BODY" = SUCCESS ] || stp_fail "after a restart, client-good: HTTP $CODE '$BODY'"
    client client-revoked
    [ "$CODE" = 400 ] || stp_fail "after a restart, client-revoked: HTTP $CODE"
    requests_said || stp_fail "after a restart: requests $(stp_requests), not 3"
    ;;
reload)
    stp_conf "$CONF" "$ROUTE"
    start
    burst 1
    hooked
    stp_wait_staple "$PORT" "${GOOD[@]}"
    every_worker "${GOOD[@]}"
    stp_assert_requests 1 "one request before the reloads"
    # 1: a certificate added, the policy unchanged
    SNI=ecdsa
    reload
    stp_probe "$PORT" "${GOOD[@]}" --require-staple
    stp_expect_probe 0 "reload 1: good.test stapled from the first handshake"
    stp_wait_staple "$PORT" --servername ecdsa.test "${CA[@]}"
    stp_verified ecdsa.test
    every_worker "${GOOD[@]}"
    stp_assert_requests 2 "reload 1: one request, for the certificate it added"
    # 2: the kill switch
    stp_conf "$CONF" "$ROUTE" "mode = never"
    reload
    for ((i = 0; i < 4 * WORKERS; i++)); do
        for name in good.test ecdsa.test; do
            stp_probe "$PORT" --servername "$name" "${CA[@]}"
            stp_expect_line "stapled=no" "reload 2 (mode never): $name not stapled"
        done
    done
    stp_assert_eq "$(grep -c "policy: $CONF \\[.*\\] changed: read again" "$T/hook.log")" 1 \
        "reload 2: the master says once that it read the changed policy"
    # 3: back on, with a responder override and revoked.test added
    stp_conf "$CONF" "$ROUTE" "responder_url = http://127.0.0.2:$RESPONDER_PORT/"
    SNI=revoked
    reload
    stp_probe "$PORT" "${GOOD[@]}" --require-staple
    stp_expect_probe 0 "reload 3: good.test stapled again from the first handshake"
    stp_wait_staple "$PORT" --servername revoked.test "${CA[@]}"
    stp_expect_probe 3 "reload 3: revoked.test stapled, revoked"
    stp_assert_requests 3 "reload 3: one request, for revoked.test"
    stp_assert_file_contains "$P/responder.log" "^3 GET [0-9]+ alt:normal 200 " \
        "reload 3: revoked.test asked at the override (127.0.0.2)"
    ;;
forcerefresh)
    stp_warm good "$RUN_USER"
    stp_conf "$CONF" "$ROUTE" "ca_file = $P/root.pem"
    start
    stp_wait_staple "$PORT" "${GOOD[@]}"
    old=$(stp_probe_this_update)
    r0=$(stp_requests)
    stp_next_second # the new response's thisUpdate is a later second
    setpriv --reuid="$RUN_USER" --regid="$RUN_USER" --clear-groups -- \
        "$STP_CLI" refresh --force --conf "$CONF" >&2 || stp_fail "refresh --force"
    new=$(stp_file_this_update "$T/store/$(stp_id good).der")
    [ "$new" != "$old" ] || stp_fail "refresh --force stored no new response"
    # every worker: 4 handshakes per worker, all with the new response
    all_new() {
        local i
        for ((i = 0; i < 4 * WORKERS; i++)); do
            stp_probe "$PORT" "${GOOD[@]}" --require-staple
            [ "$(stp_probe_this_update)" = "$new" ] || return 1
        done
    }
    STP_WAIT=30 stp_wait_for all_new || stp_fail "not every handshake serves the new response ($new)"
    stp_ok "every worker serves the response of refresh --force"
    stp_assert_eq "$(($(stp_requests) - r0))" 1 "one request, the CLI's; none from the workers"
    stp_assert_file_contains "$T/hook.log" "changed by ocspstaple: 1 stored response\\(s\\) read again" \
        "the workers say they took it"
    ;;
programs)
    # a policy limited to nginx (programs = nginx) acts in nginx's workers
    stp_conf "$CONF" "$ROUTE" "programs = nginx"
    start
    burst 1
    hooked
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_expect_probe 0 "stapled under programs = nginx"
    ;;
*)
    stp_fail "unknown scenario $SCEN"
    ;;
esac
stop
if [ -z "$HOOK_ERRORS_OK" ]; then
    stp_no_errors "$T/hook.log"
else
    grep " ERROR " "$T/hook.log" | grep -Ev "$HOOK_ERRORS_OK" >"$T/errors" || true
    [ ! -s "$T/errors" ] || {
        _stp_show "$T/errors"
        stp_fail "ERROR lines in the hook log besides the expected ones"
    }
fi
stp_assert_file_lacks "$N/error.log" '\[(warn|error|crit|alert|emerg)\]' \
    "nothing alarming in nginx's error.log"
stp_assert_file_lacks "$N/stderr" 'emerg|alert|crit|error|warn' \
    "nothing alarming on nginx's stderr"
# (nginx sends its processes' stderr, where a sanitizer reports, to error.log)
stp_assert_file_lacks "$N/error.log" 'Sanitizer|runtime error:' "no sanitizer report"
stp_ok "nginx $SCEN $ROUTE, $WORKERS worker(s)"
