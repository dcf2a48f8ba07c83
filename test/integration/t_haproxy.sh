#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_haproxy.sh SCENARIO ROUTE: the real, unmodified HAProxy (2.6: it reads
# an SSL_CTX's status callback back and takes the callback's argument for its
# own, so a foreign callback found there would crash it) serves TLS from a
# frontend `bind ... ssl crt FILE.pem` (cert, key and chain in one file),
# answering `http-request return status 200` itself, under the hook (ROUTE
# provider: OPENSSL_CONF loads ocspstaple.so; preload: LD_PRELOAD=
# libocspstaple.so with OCSPSTAPLE_CONF). Every staple is checked by
# `ocspstaple probe` (signature, CertID of the leaf received, freshness, and
# with --CAfile the chain and the host name); the responder counts its
# requests. Scenarios:
#   cold   foreground (-db), cold store: HAProxy stays up and serves, our
#          verified staple arrives, exactly one responder request
#   warm   daemon (-D -p pidfile), warm store: the first handshake is
#          stapled, no new request
#   mw     master-worker (-W -db), cold store: the master tracks the
#          certificate before it forks, the worker staples (one request, one
#          refresher thread in the worker, none in the master);
#          stopping the master leaves no worker behind
#   mwreload  master-worker, reloaded (SIGUSR2: the master executes itself
#          again and forks a new worker) twice: after `mode = never` was
#          written nothing is stapled; after mode auto and a responder
#          override (127.0.0.2) were written, with ecdsa.test added to the
#          bind: good.test stapled from the first handshake with no request,
#          ecdsa.test fetched at once from the override
#   tls12  TLS 1.2 stapled; gnutls-cli --ocsp verifies the staple itself
#          and asks no responder
#   hotupdate  HAProxy's runtime API replaces good.pem and its .ocsp
#          (`set ssl cert` + `commit ssl cert`: a new SSL_CTX, configured
#          while other threads serve handshakes) 150 times under a stream of
#          handshakes: HAProxy must not crash (it reads the new context's
#          status callback back) and keeps stapling its own response
#   replace  the runtime API replaces good.pem's certificate by another one
#          (ecdsa.test's, under the same file name): HAProxy frees the old
#          context, the hook forgets good.test (logged at DEBUG; it is no
#          longer refreshed) and staples ecdsa.test, from a warm store
#   own    HAProxy's own OCSP: good.pem.ocsp next to good.pem (2-day
#          response, older than the store's 1-day one): every good.test
#          handshake gets HAProxy's file, in TLS 1.3 and 1.2, and HAProxy
#          does not crash; ecdsa.test, a second certificate of the same bind
#          without a .ocsp file, gets our staple
#   client `verify required ca-file`, client_ocsp = leaf: a good client is
#          served, a revoked one refused in the handshake, one responder
#          request per client certificate
#   debian HAProxy as Debian ships it: the `global` section of the packaged
#          /etc/haproxy/haproxy.cfg, unchanged (chroot /var/lib/haproxy,
#          user and group haproxy, daemon, the stats socket in /run/haproxy,
#          which a private mount namespace gives this test alone), started
#          as root: staples (one request), refreshes before nextUpdate
#          (responses live 60 s), and logs no line twice
# Every scenario ends by stopping HAProxy (no process may survive), with no
# ERROR line in the hook log and no alert on HAProxy's stderr.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

SCEN=${1:?scenario}
ROUTE=${2:-preload}

stp_need haproxy openssl sha256sum ss pgrep ps timeout curl
if [ "$SCEN" = tls12 ]; then
    stp_need gnutls-cli
fi
stp_hook_need
case ${STP_SANITIZER_PRELOAD:-}:$SCEN in
*asan*:warm | *asan*:hotupdate | *asan*:replace) ;; # no fetch needed
*asan*:*)
    # With the ASan runtime preloaded into this uninstrumented host, glibc's
    # gettext lock (_nl_state_lock) is inconsistent from startup on, hook or
    # no hook (gdb: its reader count is -1); the refresher's dlopen of
    # libcurl runs libgnutls's constructor, whose bindtextdomain() then
    # waits on that lock forever, and nothing is ever fetched (a warm store
    # needs no fetch: those scenarios run).
    echo "SKIP: HAProxy under the ASan runtime: glibc's gettext lock is broken" >&2
    exit 77
    ;;
esac
HAPROXY=$(command -v haproxy)
stp_setup
P=$T/pki
H=$T/haproxy
CONF=$T/stp.cnf
mkdir -p "$P" "$H"
if [ "$SCEN" = debian ]; then
    stp_need unshare
    if [ ! -f /etc/haproxy/haproxy.cfg ] || [ ! -d /var/lib/haproxy ] ||
        ! id -u haproxy >/dev/null 2>&1; then
        echo "SKIP: no packaged HAProxy configuration" >&2
        exit 77
    fi
    [ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to drop to haproxy" >&2 && exit 77; }
    # responses that live 60 s: the refresh before nextUpdate is seen
    stp_start_responder "$P" --nmin 1
elif [ "$SCEN" = mwreload ]; then
    stp_start_responder "$P" --alt-addr 127.0.0.2 # the override's address
else
    stp_start_responder "$P"
fi
stp_mkpki "$P" "$RESPONDER_PORT"
# HAProxy's crt files: leaf, key and chain in one PEM
for n in good ecdsa; do
    cat "$P/$n.pem" "$P/$n.key" "$P/int.pem" >"$H/$n.pem"
done

CRTS="crt $H/good.pem"
BIND_EXTRA= # more bind options (client)
STATS= # the runtime API's port (hotupdate), chosen with the frontend's
STOCK= # 1: the packaged global section (debian)
write_conf() {
    if [ -n "$STOCK" ]; then
        # global and its indented lines, as the package ships them
        awk '/^[^ \t#]/ { on = ($1 == "global") } on' /etc/haproxy/haproxy.cfg \
            >"$H/haproxy.cfg"
    else
        printf 'global\n    nbthread 2\n%s\n' \
            "${STATS:+    stats socket ipv4@127.0.0.1:$STATS level admin}" \
            >"$H/haproxy.cfg"
    fi
    cat >>"$H/haproxy.cfg" <<EOF
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:$PORT ssl $CRTS $BIND_EXTRA
    http-request return status 200 content-type text/plain string "ok"
EOF
}

# MODE: foreground (-db), daemon (-D -p pidfile), mw (-W -db, master-worker)
# or stock (the packaged global section's own `daemon`, in a mount namespace
# with a private /run/haproxy for its stats socket).
MODE=foreground
launch() {
    if [ -n "$STATS" ]; then
        STATS=$(stp_free_port)
    fi
    write_conf
    # shellcheck disable=SC2046
    case $MODE in
    foreground)
        env $(stp_route_env "$ROUTE" "$CONF") "$HAPROXY" -db \
            -f "$H/haproxy.cfg" </dev/null >>"$H/stderr" 2>&1 &
        SRV_PID=$!
        ;;
    mw)
        env $(stp_route_env "$ROUTE" "$CONF") "$HAPROXY" -W -db \
            -f "$H/haproxy.cfg" </dev/null >>"$H/stderr" 2>&1 &
        SRV_PID=$!
        ;;
    stock)
        rm -f "$H/haproxy.pid"
        # shellcheck disable=SC2016 # expanded by the inner sh
        env $(stp_route_env "$ROUTE" "$CONF") unshare -m sh -c '
            mount -t tmpfs -o mode=2775 tmpfs /run/haproxy &&
                chown haproxy:haproxy /run/haproxy && exec "$@"' _ \
            "$HAPROXY" -p "$H/haproxy.pid" -f "$H/haproxy.cfg" </dev/null \
            >>"$H/stderr" 2>&1 || return 1
        [ -s "$H/haproxy.pid" ] || return 1
        SRV_PID=$(head -n 1 "$H/haproxy.pid")
        ;;
    daemon)
        # the parent binds, forks the daemon, writes its pid and exits
        rm -f "$H/haproxy.pid"
        env $(stp_route_env "$ROUTE" "$CONF") "$HAPROXY" -D \
            -p "$H/haproxy.pid" -f "$H/haproxy.cfg" </dev/null \
            >>"$H/stderr" 2>&1 || return 1
        [ -s "$H/haproxy.pid" ] || return 1
        SRV_PID=$(head -n 1 "$H/haproxy.pid")
        ;;
    esac
}

start() {
    stp_start_server haproxy launch
}

stop() {
    stp_stop_server "$SRV_PID" "$HAPROXY"
}

# serving: HAProxy runs (no crash) and answers HTTPS with its 200.
serving() {
    local code
    stp_alive "$SRV_PID" || stp_fail "HAProxy $SRV_PID died"
    code=$(curl -sS --noproxy '*' --max-time 10 --cacert "$P/root.pem" \
        --resolve "good.test:$PORT:127.0.0.1" -o "$T/curl.out" \
        -w '%{http_code}' "https://good.test:$PORT/") ||
        stp_fail "HAProxy does not serve HTTPS (curl: $code)"
    stp_assert_eq "$code" 200 "HAProxy answers over TLS"
    stp_assert_eq "$(cat "$T/curl.out")" ok "HAProxy's own answer"
}

# api TEXT: one command (with its payload) on HAProxy's runtime API;
# prints the answer.
api() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$STATS" || exit 1
        printf '%s\n' "$1" >&3
        timeout 5 cat <&3
    ) 2>&1 || true
}

# load: until $T/load.stop exists (60 s at most), handshakes (handshakes)
# or bare TCP connections (connects: HAProxy makes an SSL for each one it
# accepts, and every SSL_new may examine contexts created since the last).
load() {
    local end=$((SECONDS + 60)) i
    while [ ! -e "$T/load.stop" ] && [ "$SECONDS" -lt "$end" ]; do
        if [ "$1" = handshakes ]; then
            "$STP_CLI" probe "127.0.0.1:$PORT" --count 50 --timeout 2 \
                >/dev/null 2>&1 || true
            continue
        fi
        for ((i = 0; i < 100; i++)); do
            { : <>"/dev/tcp/127.0.0.1/$PORT"; } 2>/dev/null || true
        done
    done
}

hooked() {
    stp_assert_file_contains "$T/hook.log" "tracking certificate .* in haproxy" \
        "HAProxy's certificates are tracked"
}

CA=(--CAfile "$P/root.pem")
GOOD=(--servername good.test "${CA[@]}")

case $SCEN in
cold)
    stp_conf "$CONF" "$ROUTE"
    start
    serving
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_expect_probe 0 "cold store: our staple arrives"
    stp_verified good.test
    [ "$(stp_probe_days)" -eq 1 ] || stp_fail "not the responder's 1-day response"
    stp_probe "$PORT" "${GOOD[@]}" --require-staple --count 20
    stp_expect_probe 0 "20 handshakes stapled"
    stp_expect_line "handshakes=20 stapled=20 verified=20" "every handshake stapled"
    serving
    hooked
    stp_assert_requests 1 "exactly one responder request"
    stp_assert_eq "$(stp_refreshers "$SRV_PID")" 1 "one refresher thread"
    [ -s "$T/store/$(stp_id good).der" ] || stp_fail "nothing stored"
    ;;
client)
    # `verify required ca-file`: a revoked client is refused in the
    # handshake, as HAProxy refuses any chain that does not verify
    BIND_EXTRA="verify required ca-file $P/root.pem"
    stp_conf "$CONF" "$ROUTE" "client_ocsp = leaf"
    start
    hs_client() { stp_mtls_get "$PORT" "$1" /; }
    for i in 1 2 3 4; do
        hs_client client-good
        [ "$CODE" = 200 ] || stp_fail "client-good ($i): HTTP $CODE $CERR"
        hs_client client-revoked
        if [ "$CODE" != 000 ] || ! grep -q "alert certificate revoked" <<<"$CERR"; then
            stp_fail "client-revoked ($i): HTTP $CODE $CERR"
        fi
    done
    stp_ok "4 times: client-good served, client-revoked refused (alert certificate revoked)"
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_assert_requests 3 "one request per client certificate (and good.test's staple)"
    ;;
debian)
    MODE=stock
    STOCK=1
    chmod 711 "$T"
    mkdir -p "$T/store"
    chown haproxy:haproxy "$T/store"
    stp_conf "$CONF" "$ROUTE" "refresh_min = 10s"
    start
    serving
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_expect_probe 0 "HAProxy as Debian ships it staples"
    stp_verified good.test
    hooked
    stp_assert_requests 1 "one responder request"
    ps -o user= -p "$SRV_PID" | grep -qx haproxy || stp_fail "HAProxy did not drop to user haproxy"
    # the 60 s response is refreshed well before its nextUpdate
    NU=$(stp_probe_next_update)
    refreshed() { [ "$(stp_requests)" -ge 2 ]; }
    STP_WAIT=40 stp_wait_for refreshed || stp_fail "no refresh before nextUpdate"
    [ "$(date +%s)" -lt "$NU" ] || stp_fail "refreshed only after nextUpdate"
    newer() {
        stp_probe "$PORT" "${GOOD[@]}" --require-staple
        [ "$RC" -eq 0 ] && [ "$(stp_probe_next_update)" -gt "$NU" ]
    }
    STP_WAIT=10 stp_wait_for newer || stp_fail "the refreshed response is not stapled"
    stp_probe "$PORT" "${GOOD[@]}" --require-staple --count 50
    stp_expect_probe 0 "50 more handshakes stapled"
    # one line per certificate per change of state: no warning or error
    # twice, one refresh line per response fetched, none per handshake
    sed 's/^[^ ]* [^ ]* //' "$T/hook.log" | { grep -E "^(WARN|ERROR)" || true; } |
        sort | uniq -d >"$T/repeated"
    [ ! -s "$T/repeated" ] || { _stp_show "$T/repeated" && stp_fail "lines logged more than once"; }
    fetched=$(grep -c "INFO refresh: good.test: stored" "$T/hook.log")
    [ "$fetched" -le "$(stp_requests)" ] ||
        stp_fail "$fetched refresh lines for $(stp_requests) requests"
    [ "$(wc -l <"$T/hook.log")" -lt 20 ] || stp_fail "the log grows with the handshakes"
    stp_assert_file_lacks "$T/hook.log" "cannot start the refresher" "the refresher runs"
    ;;
warm)
    MODE=daemon
    stp_warm good
    stp_conf "$CONF" "$ROUTE"
    start
    stp_probe "$PORT" "${GOOD[@]}" --require-staple
    stp_expect_probe 0 "the first handshake with a warm store is stapled"
    stp_verified good.test
    serving
    hooked
    stp_assert_requests 1 "no request beyond the CLI's"
    ;;
mw)
    MODE=mw
    stp_conf "$CONF" "$ROUTE"
    start
    worker=$(pgrep -P "$SRV_PID" | head -n 1)
    [ -n "$worker" ] || stp_fail "the master $SRV_PID has no worker"
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_expect_probe 0 "the worker staples"
    stp_verified good.test
    serving
    hooked
    stp_assert_eq "$(stp_log_pids "$T/hook.log" "tracking certificate")" "$SRV_PID" \
        "the master tracks the certificate before it forks the worker"
    stp_assert_eq "$(stp_refreshers "$worker")" 1 "one refresher in the worker"
    stp_assert_eq "$(stp_refreshers "$SRV_PID")" 0 "no refresher in the master"
    stp_assert_requests 1 "exactly one responder request"
    stop
    stp_alive "$worker" && stp_fail "worker $worker survived its master"
    ;;
mwreload)
    MODE=mw
    # reload: the configuration written again, then USR2 to the master;
    # returns once its old worker is gone and a new one runs
    reload() {
        local old
        old=$(stp_children "$SRV_PID")
        write_conf
        kill -USR2 "$SRV_PID"
        stp_wait_regenerated "$SRV_PID" "$old" 1 haproxy
    }
    stp_conf "$CONF" "$ROUTE"
    start
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_assert_requests 1 "one request before the reloads"
    # 1: the kill switch
    stp_conf "$CONF" "$ROUTE" "mode = never"
    reload
    for ((i = 0; i < 8; i++)); do
        stp_probe "$PORT" "${GOOD[@]}"
        stp_expect_line "stapled=no" "reload 1 (mode never): not stapled"
    done
    serving
    # 2: back on, with a responder override and ecdsa.test added
    stp_conf "$CONF" "$ROUTE" "responder_url = http://127.0.0.2:$RESPONDER_PORT/"
    CRTS="crt $H/good.pem crt $H/ecdsa.pem"
    reload
    stp_probe "$PORT" "${GOOD[@]}" --require-staple
    stp_expect_probe 0 "reload 2: good.test stapled from the first handshake"
    stp_wait_staple "$PORT" --servername ecdsa.test "${CA[@]}"
    stp_verified ecdsa.test
    stp_assert_requests 2 "reload 2: one request, for the certificate it added"
    stp_assert_file_contains "$P/responder.log" "^2 GET [0-9]+ alt:normal 200 " \
        "reload 2: ecdsa.test asked at the override (127.0.0.2)"
    ;;
tls12)
    stp_conf "$CONF" "$ROUTE"
    start
    stp_wait_staple "$PORT" "${GOOD[@]}" --tls1.2
    stp_expect_probe 0 "TLS 1.2 stapled"
    stp_verified good.test
    stp_expect_line "protocol=TLSv1.2" "TLS 1.2 negotiated"
    stp_probe "$PORT" "${GOOD[@]}" --tls1.3 --require-staple
    stp_expect_probe 0 "TLS 1.3 stapled"
    stp_assert_requests 1 "one request"
    # gnutls-cli --ocsp checks a stapled response itself, and asks the
    # responder when none is stapled (the request count tells which): its
    # "- Options: ... OCSP status request," means received and verified
    # ("OCSP status request[ignored]": received, not valid)
    set +e
    timeout 10 gnutls-cli --ocsp --x509cafile "$P/root.pem" -p "$PORT" 127.0.0.1 \
        --sni-hostname good.test --verify-hostname good.test \
        </dev/null >"$T/gnutls.out" 2>&1
    RC=$?
    set -e
    [ "$RC" -eq 0 ] || {
        _stp_show "$T/gnutls.out"
        stp_fail "gnutls-cli --ocsp refused the handshake (exit $RC)"
    }
    stp_assert_file_contains "$T/gnutls.out" "Options:.* OCSP status request," \
        "gnutls-cli received and verified the staple"
    stp_assert_file_lacks "$T/gnutls.out" "\\[ignored\\]|OCSP: |OCSP server" \
        "gnutls-cli found the staple valid and asked no responder"
    stp_assert_file_contains "$T/gnutls.out" "The certificate is trusted" \
        "gnutls-cli trusts good.test"
    stp_assert_requests 1 "gnutls-cli used the staple, asked no responder"
    serving
    ;;
replace)
    stp_warm good
    stp_warm ecdsa
    warmed=$(stp_requests)
    STATS=yes
    stp_conf "$CONF" "$ROUTE"
    start
    serving
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_expect_line "CN=good.test" "good.test served before the update"
    api "set ssl cert $H/good.pem <<"$'\n'"$(<"$H/ecdsa.pem")"$'\n' >"$T/api.out"
    grep -Eq "Transaction (created|updated)" "$T/api.out" ||
        { _stp_show "$T/api.out"; stp_fail "set ssl cert refused"; }
    api "commit ssl cert $H/good.pem" >"$T/api.out"
    grep -q "Success!" "$T/api.out" ||
        { _stp_show "$T/api.out"; stp_fail "commit ssl cert failed"; }
    forgotten() {
        grep -q "good.test: certificate $(stp_id good | cut -c1-12) is no longer served by any context: forgotten" \
            "$T/hook.log"
    }
    stp_wait_for forgotten || stp_fail "good.test's record outlived its last context"
    if [ "$ROUTE" = preload ]; then
        stp_wait_staple "$PORT" --servername ecdsa.test "${CA[@]}"
    else
        # through the provider alone, a context HAProxy builds at run time
        # gets no callback from us (README's HAProxy row): served, not
        # stapled
        stp_probe "$PORT" --servername ecdsa.test "${CA[@]}"
    fi
    stp_expect_line "CN=ecdsa.test" "the new certificate is served"
    stp_assert_requests "$warmed" "no request with a warm store"
    ;;
hotupdate)
    stp_own_response good "$H/good.pem.ocsp" 2
    want=$(stp_file_this_update "$H/good.pem.ocsp")
    STATS=yes
    stp_conf "$CONF" "$ROUTE"
    start
    serving
    pem=$(<"$H/good.pem")
    b64=$(base64 -w0 <"$H/good.pem.ocsp")
    load handshakes &
    l1=$!
    stp_register_pid "$l1"
    load connects &
    l2=$!
    stp_register_pid "$l2"
    commits=0
    end=$((SECONDS + 60))
    for ((i = 0; i < 150 && SECONDS < end; i++)); do
        api "set ssl cert $H/good.pem <<"$'\n'"$pem"$'\n' >"$T/api.out"
        grep -Eq "Transaction (created|updated)" "$T/api.out" || break
        api "set ssl cert $H/good.pem.ocsp <<"$'\n'"$b64"$'\n' >"$T/api.out"
        grep -q "Transaction updated" "$T/api.out" || break
        api "commit ssl cert $H/good.pem" >"$T/api.out"
        grep -q "Success!" "$T/api.out" || break
        commits=$((commits + 1))
    done
    touch "$T/load.stop"
    wait "$l1" "$l2" || true
    stp_forget_pid "$l1"
    stp_forget_pid "$l2"
    if ! stp_alive "$SRV_PID"; then
        rc=0
        wait "$SRV_PID" 2>/dev/null || rc=$?
        _stp_show "$H/stderr"
        stp_fail "HAProxy died (exit status $rc) after $commits commits"
    fi
    if [ "$commits" -ne 150 ]; then
        _stp_show "$T/api.out"
        stp_fail "$commits commits of 150 succeeded"
    fi
    stp_probe "$PORT" "${GOOD[@]}" --require-staple
    stp_expect_probe 0 "a staple after the updates"
    stp_assert_eq "$(stp_probe_this_update)" "$want" "still HAProxy's own response"
    stp_assert_eq "$(stp_probe_days)" 2 "HAProxy's 2-day response"
    serving
    echo "$commits commits under load" >&2
    ;;
own)
    # HAProxy's own response, made first (thisUpdate T0, 2 days), then the
    # store's (a later thisUpdate, 1 day): whichever is stapled is known
    stp_own_response good "$H/good.pem.ocsp" 2
    want=$(stp_file_this_update "$H/good.pem.ocsp")
    stp_next_second
    stp_warm good
    held=$(stp_file_this_update "$T/store/$(stp_id good).der")
    [ "$want" != "$held" ] || stp_fail "HAProxy's file and the store hold the same thisUpdate"
    CRTS="crt $H/good.pem crt $H/ecdsa.pem"
    stp_conf "$CONF" "$ROUTE"
    start
    serving
    for v in 1.3 1.2 1.3; do
        stp_probe "$PORT" "${GOOD[@]}" --tls$v --require-staple
        stp_expect_probe 0 "TLS $v: a staple"
        stp_verified good.test
        stp_assert_eq "$(stp_probe_this_update)" "$want" \
            "TLS $v: the staple is HAProxy's good.pem.ocsp (the store has $held)"
        stp_assert_eq "$(stp_probe_days)" 2 "TLS $v: HAProxy's 2-day response"
    done
    # the second certificate, without a .ocsp file: our staple
    stp_wait_staple "$PORT" --servername ecdsa.test "${CA[@]}"
    stp_expect_probe 0 "ecdsa.test: our staple"
    stp_verified ecdsa.test
    stp_assert_eq "$(stp_probe_days)" 1 "ecdsa.test: the responder's 1-day response"
    serving
    hooked
    if [ "$ROUTE" = provider ]; then
        # the provider leaves a context that has a callback of its own alone
        stp_assert_file_contains "$T/hook.log" "own status callback: left alone" \
            "the provider leaves HAProxy's callback alone"
    fi
    stp_assert_requests 2 "the CLI's request and ecdsa.test's"
    ;;
*)
    stp_fail "unknown scenario $SCEN"
    ;;
esac
if [ "$SCEN" != mw ]; then
    stop
fi
stp_no_errors "$T/hook.log"
# (a master stopped by SIGTERM reports its worker's exit status 143 as an
# ALERT: that one is expected)
grep -v "Current worker ([0-9]*) exited with code 143 (Terminated)" "$H/stderr" \
    >"$H/stderr.checked" || true
stp_assert_file_lacks "$H/stderr.checked" 'ALERT|EMERG|emerg|alert|Segmentation|core dumped' \
    "nothing alarming on HAProxy's stderr"
stp_ok "haproxy $SCEN $ROUTE: $(stp_requests) responder request(s)"
