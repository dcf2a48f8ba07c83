#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_apache.sh SCENARIO ROUTE: the real, unmodified Apache httpd (apache2,
# mod_ssl) with its own stapling off (no SSLStaplingCache) staples through
# the hook (ROUTE provider: OPENSSL_CONF loads ocspstaple.so; preload:
# LD_PRELOAD=libocspstaple.so with OCSPSTAPLE_CONF). The master runs as
# root in its own session (prefork signals its whole process group when it
# stops), its children as www-data sharing one store. Two name-based
# virtual hosts: good.test (RSA) and revoked.test (ECDSA, revoked). Every
# staple is checked by `ocspstaple probe`; the responder counts its
# requests. Scenarios:
#   cold          prefork, StartServers 4: the parent tracks the
#                 certificates before it forks, the four children's
#                 refreshers race for the fetches (with four connections held
#                 open at once); then every handshake is stapled, after
#                 exactly one responder request per certificate
#   warm          store filled by `ocspstaple fetch`: the first handshake
#                 after start is stapled, no new request
#   revoked_must  mode = must, store warmed with the revoked certificate:
#                 handshakes for revoked.test are refused, good.test keeps
#                 working (stapled)
#   revoked_exit   mode must, revoked_action exit: the children refuse
#                  revoked.test and stay (none exits and is respawned)
#   event         mpm_event (threads): cold store, every handshake stapled
#                 after exactly one request per certificate
#   reload        `apachectl graceful` (SIGUSR1) twice and `restart`
#                 (SIGHUP) once: the same parent reads its configuration
#                 again and forks a new generation of children. After
#                 `mode = never` was written: nothing stapled by any child,
#                 one INFO line that the policy was read again; after mode
#                 auto and a responder override (127.0.0.2) were written:
#                 stapled from the first handshake with no request; a
#                 restart that adds ecdsa.test: fetched at once, from the
#                 override
#   client        SSLVerifyClient require on good.test, client_ocsp = leaf:
#                 a good client is served by every child, a revoked one is
#                 refused in the handshake ("certificate revoked"), with one
#                 responder request per client certificate; after a
#                 restart, decided from the store with no request
# Every scenario ends by stopping httpd (no child may survive); the hook
# logs no ERROR (but the refusal of revoked_must) and httpd's error log no
# warning or error (but AH01882, see below).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

SCEN=${1:?scenario}
ROUTE=${2:-provider}
RUN_USER=www-data
MODULES=/usr/lib/apache2/modules

stp_need apache2 setsid openssl sha256sum ss pgrep ps timeout
for m in mod_mpm_prefork mod_mpm_event mod_ssl mod_socache_shmcb mod_authz_core; do
    [ -f "$MODULES/$m.so" ] || {
        echo "SKIP: no $MODULES/$m.so" >&2
        exit 77
    }
done
id -u "$RUN_USER" >/dev/null 2>&1 || {
    echo "SKIP: no user $RUN_USER" >&2
    exit 77
}
[ "$(id -u)" -eq 0 ] || {
    echo "SKIP: httpd's master must run as root to switch to $RUN_USER" >&2
    exit 77
}
stp_hook_need
APACHE=$(command -v apache2)
stp_setup
# the children (www-data) reach the store through $T
chmod 711 "$T"
P=$T/pki
A=$T/apache
CONF=$T/stp.cnf
mkdir -p "$P" "$A/run" "$A/htdocs" "$T/store"
chown "$RUN_USER:" "$T/store"
RARGS=()
[ "$SCEN" = reload ] && RARGS=(--alt-addr 127.0.0.2) # the override's address
stp_start_responder "$P" "${RARGS[@]}"
stp_mkpki "$P" "$RESPONDER_PORT"

MPM=prefork
CHILDREN=4
GOOD_EXTRA= # lines for the good.test virtual host
VHOSTS="good revoked"
vhost() {
    cat <<EOF
<VirtualHost 127.0.0.1:$PORT>
    ServerName $1.test
    SSLEngine on
    SSLCertificateFile $P/$1.chain.pem
    SSLCertificateKeyFile $P/$1.key
EOF
    if [ "$1" = good ]; then printf '%s\n' "$GOOD_EXTRA"; fi
    echo "</VirtualHost>"
}

write_conf() {
    {
        cat <<EOF
ServerRoot "$A"
DefaultRuntimeDir "$A/run"
PidFile "$A/httpd.pid"
ErrorLog "$A/error.log"
LogLevel info
ServerName good.test
Listen 127.0.0.1:$PORT
User $RUN_USER
Group $(id -gn "$RUN_USER")
LoadModule mpm_${MPM}_module $MODULES/mod_mpm_$MPM.so
LoadModule authz_core_module $MODULES/mod_authz_core.so
LoadModule socache_shmcb_module $MODULES/mod_socache_shmcb.so
LoadModule ssl_module $MODULES/mod_ssl.so
DocumentRoot "$A/htdocs"
<Directory />
    Require all granted
</Directory>
SSLSessionCache shmcb:$A/run/ssl_scache(512000)
SSLProtocol -all +TLSv1.2 +TLSv1.3
EOF
        if [ "$MPM" = prefork ]; then
            cat <<EOF
StartServers $CHILDREN
MinSpareServers $CHILDREN
MaxSpareServers 8
ServerLimit 8
MaxRequestWorkers 8
EOF
        else
            cat <<EOF
StartServers $CHILDREN
ServerLimit $CHILDREN
ThreadsPerChild 8
ThreadLimit 8
MinSpareThreads 8
MaxSpareThreads 16
MaxRequestWorkers $((CHILDREN * 8))
EOF
        fi
        for v in $VHOSTS; do
            vhost "$v"
        done
    } >"$A/httpd.conf"
}

# launch: httpd in the foreground, in a session of its own, under $ROUTE on
# $PORT, for stp_start_server.
launch() {
    write_conf
    rm -f "$A/httpd.pid"
    # shellcheck disable=SC2046
    env $(stp_route_env "$ROUTE" "$CONF") setsid "$APACHE" -d "$A" \
        -f "$A/httpd.conf" -DFOREGROUND </dev/null >>"$A/stderr" 2>&1 &
    SRV_PID=$!
}

# children_up: the master wrote its pid file and runs its first children.
children_up() {
    [ -s "$A/httpd.pid" ] && [ "$(<"$A/httpd.pid")" = "$SRV_PID" ] &&
        [ "$(stp_nchildren "$SRV_PID")" -ge "$CHILDREN" ]
}

# start: httpd on a free port (another one if a parallel test took it
# first), listening alone there with its first children.
start() {
    stp_start_server httpd launch children_up "$A/stderr" "$A/error.log"
    echo "httpd $SRV_PID ($MPM): $(stp_nchildren "$SRV_PID") children on 127.0.0.1:$PORT" >&2
}

# stop: SIGTERM to the master, which stops its children; none may survive.
stop() {
    stp_stop_server "$SRV_PID" "$APACHE"
}

# hooked: the children track the certificates under the policy in $CONF.
hooked() {
    stp_assert_file_lacks "$T/hook.log" "no ocspstaple section|stays passive|/var/cache/ocspstaple" \
        "the children use the policy in $CONF and its store_dir"
    stp_assert_file_contains "$T/hook.log" "tracking certificate" \
        "the children track the certificates"
}

# tracking: how many children run a refresher (each starts its own right
# after the fork that made it, with the records the parent tracked before
# it forked).
tracking() {
    stp_log_pids "$T/hook.log" "refresher started" | wc -l
}

tracking_all() {
    [ "$(tracking)" -ge "$1" ]
}

# tracked_by_parent: no child tracks the certificates again: the parent did
# before it forked them.
tracked_by_parent() {
    local both
    both=$(comm -12 <(stp_log_pids "$T/hook.log" "tracking certificate") \
        <(stp_log_pids "$T/hook.log" "refresher started") | paste -sd' ')
    stp_assert_eq "$both" "" "processes that track and refresh: the parent tracks, children refresh"
}

# all_stapled PROBE_ARGS...: 20 handshakes in a row get a verified staple.
all_stapled() {
    stp_probe "$PORT" "$@" --require-staple --count 20
    grep -q "handshakes=20 stapled=20 verified=20" <<<"$PROBE"
}

# every_child PROBE_ARGS...: with a cold store, the children that lost the
# race for the store lock take the winner's file at their next pass, about
# a second later: wait (bounded) until every handshake is stapled.
every_child() {
    stp_wait_for all_stapled "$@" || stp_fail "not every child staples: $*"
}

CA=(--CAfile "$P/root.pem")
GOOD=(--servername good.test "${CA[@]}")
ERRORS_OK=

# reload SIGNAL: the configuration written again ($VHOSTS), then SIGNAL to
# the parent (USR1: graceful, HUP: restart); returns once none of the old
# children is left and a new generation runs (bounded).
reload() {
    local old
    old=$(stp_children "$SRV_PID")
    write_conf
    kill -"$1" "$SRV_PID"
    stp_wait_regenerated "$SRV_PID" "$old" "$CHILDREN" "httpd (SIG$1)"
}

case $SCEN in
cold)
    stp_conf "$CONF" "$ROUTE"
    start
    # four connections held open at once, each with the first byte of a
    # TLS record (httpd's listener defers the accept until data arrives):
    # a prefork child serves one connection at a time and mod_ssl creates
    # its SSL as soon as it accepts, so four children make their first SSL
    # together while their refreshers race for the fetch
    fds=()
    for ((i = 0; i < CHILDREN; i++)); do
        exec {fd}<>"/dev/tcp/127.0.0.1/$PORT" || stp_fail "cannot connect to $PORT"
        printf '\026' >&"$fd"
        fds+=("$fd")
    done
    stp_wait_for tracking_all "$CHILDREN" ||
        stp_fail "only $(tracking) children run a refresher"
    for fd in "${fds[@]}"; do
        exec {fd}>&-
    done
    hooked
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_verified good.test
    t0=$(date +%s%N)
    every_child "${GOOD[@]}"
    lag_ms=$((($(date +%s%N) - t0) / 1000000))
    stp_assert_requests 2 \
        "one responder request per certificate with $(tracking) processes"
    tracked_by_parent
    # both stored and two requests: exactly one request per certificate
    [ -s "$T/store/$(stp_id good).der" ] || stp_fail "good.test not stored"
    [ -s "$T/store/$(stp_id revoked).der" ] || stp_fail "revoked.test not stored"
    stp_ok "$(tracking) children met the certificate, $(stp_requests) responder request(s), all stapled ${lag_ms} ms after the first staple"
    ;;
warm)
    stp_warm good "$RUN_USER"
    stp_warm revoked "$RUN_USER"
    stp_conf "$CONF" "$ROUTE"
    start
    stp_probe "$PORT" "${GOOD[@]}" --require-staple
    hooked
    stp_expect_probe 0 "the first handshake with a warm store is stapled"
    stp_verified good.test
    stp_probe "$PORT" "${GOOD[@]}" --require-staple --count 20
    stp_expect_probe 0 "the first handshake of every child is stapled"
    stp_assert_requests 2 "no request beyond the CLI's"
    stp_ok "$(tracking) children served, $(stp_requests) responder request(s)"
    ;;
revoked_must)
    stp_warm good "$RUN_USER"
    stp_warm revoked "$RUN_USER"
    stp_conf "$CONF" "$ROUTE" "mode = must"
    start
    for ((i = 0; i < 3; i++)); do
        stp_probe "$PORT" --servername revoked.test "${CA[@]}"
        stp_expect_probe 1 "mode must refuses the revoked certificate"
        stp_expect_line "alert internal error" "refused in the handshake, by an alert"
        stp_probe "$PORT" "${GOOD[@]}" --require-staple
        stp_expect_probe 0 "the good.test virtual host keeps working"
        stp_verified good.test
    done
    hooked
    stp_probe "$PORT" "${GOOD[@]}" --require-staple --count 20
    stp_expect_probe 0 "good.test: every handshake stapled"
    stp_assert_file_contains "$T/hook.log" "revoked.test: certificate is revoked: refusing" \
        "the refusal is logged"
    stp_assert_requests 2 "no request beyond the CLI's"
    # the refusal is the expected ERROR; mod_ssl reports the failed
    # handshakes at info level
    ERRORS_OK=1
    ;;
revoked_exit)
    # revoked_action exit in a prefork child: the child must not kill itself
    # (httpd would start a new one, forever); the certificate is refused and
    # one ERROR per child says why
    stp_warm good "$RUN_USER"
    stp_warm revoked "$RUN_USER"
    stp_conf "$CONF" "$ROUTE" "mode = must" "revoked_action = exit"
    start
    stp_revoked_exit_stays "$SRV_PID" "$CHILDREN" "${GOOD[@]}"
    ERRORS_OK=1
    ;;
event)
    MPM=event
    CHILDREN=2
    stp_conf "$CONF" "$ROUTE"
    start
    stp_probe "$PORT" "${GOOD[@]}"
    hooked
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_verified good.test
    every_child "${GOOD[@]}"
    stp_wait_staple "$PORT" --servername revoked.test "${CA[@]}"
    stp_expect_probe 3 "revoked.test is stapled with its revoked status (mode auto)"
    stp_assert_requests 2 "one request per certificate"
    stp_ok "$(tracking) processes served, $(stp_requests) responder request(s)"
    ;;
reload)
    stp_conf "$CONF" "$ROUTE"
    start
    hooked
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_wait_staple "$PORT" --servername revoked.test "${CA[@]}"
    every_child "${GOOD[@]}"
    stp_assert_requests 2 "one request per certificate before the reloads"
    # 1: graceful after the kill switch was written
    stp_conf "$CONF" "$ROUTE" "mode = never"
    reload USR1
    for ((i = 0; i < 4 * CHILDREN; i++)); do
        for name in good.test revoked.test; do
            stp_probe "$PORT" --servername "$name" "${CA[@]}"
            stp_expect_line "stapled=no" "graceful 1 (mode never): $name not stapled"
        done
    done
    stp_assert_eq "$(grep -c "policy: $CONF \\[.*\\] changed: read again" "$T/hook.log")" 1 \
        "graceful 1: the parent says once that it read the changed policy"
    # 2: graceful after mode auto and a responder override were written
    stp_conf "$CONF" "$ROUTE" "responder_url = http://127.0.0.2:$RESPONDER_PORT/"
    reload USR1
    stp_probe "$PORT" "${GOOD[@]}" --require-staple
    stp_expect_probe 0 "graceful 2: good.test stapled from the first handshake"
    every_child "${GOOD[@]}"
    stp_assert_requests 2 "graceful 2: no request (the store's responses)"
    # 3: a restart that adds ecdsa.test, fetched from the override
    VHOSTS="good revoked ecdsa"
    reload HUP
    stp_wait_staple "$PORT" --servername ecdsa.test "${CA[@]}"
    stp_verified ecdsa.test
    stp_assert_requests 3 "restart: one request, for the certificate it added"
    stp_assert_file_contains "$P/responder.log" "^3 GET [0-9]+ alt:normal 200 " \
        "restart: ecdsa.test asked at the override (127.0.0.2)"
    ;;
client)
    GOOD_EXTRA="    SSLCACertificateFile $P/root.pem
    SSLVerifyClient require
    SSLVerifyDepth 2"
    echo hello >"$A/htdocs/index.html"
    stp_conf "$CONF" "$ROUTE" "client_ocsp = leaf"
    start
    # client CLIENT: one request with CLIENT's certificate
    client() { stp_mtls_get "$PORT" "$1" /index.html; }
    for i in $(seq 1 $((2 * CHILDREN))); do
        client client-good
        [ "$CODE" = 200 ] || stp_fail "client-good ($i): HTTP $CODE $CERR"
        client client-revoked
        if [ "$CODE" != 000 ] || ! grep -q "alert certificate revoked" <<<"$CERR"; then
            stp_fail "client-revoked ($i): HTTP $CODE $CERR"
        fi
    done
    stp_ok "$((2 * CHILDREN)) times: client-good served, client-revoked refused (alert certificate revoked)"
    stp_assert_file_contains "$A/error.log" "Certificate Verification: Error \(23\): certificate revoked" \
        "httpd's own log names the cause"
    stp_wait_staple "$PORT" "${GOOD[@]}"
    stp_wait_staple "$PORT" --servername revoked.test "${CA[@]}"
    stp_expect_probe 3 "revoked.test is stapled with its revoked status"
    stp_assert_requests 4 \
        "one request per client certificate (and each vhost's staple) with $CHILDREN children"
    stop
    start
    client client-good
    [ "$CODE" = 200 ] || stp_fail "after a restart, client-good: HTTP $CODE $CERR"
    client client-revoked
    [ "$CODE" = 000 ] || stp_fail "after a restart, client-revoked: HTTP $CODE"
    stp_assert_requests 4 "after a restart: decided from the store, no request"
    ;;
*)
    stp_fail "unknown scenario $SCEN"
    ;;
esac
stop
if [ -z "$ERRORS_OK" ]; then
    stp_no_errors "$T/hook.log"
else
    grep " ERROR " "$T/hook.log" |
        grep -Ev "certificate is revoked: (refusing|revoked_action exit is not possible)" \
        >"$T/errors" || true
    [ ! -s "$T/errors" ] || {
        _stp_show "$T/errors"
        stp_fail "ERROR lines in the hook log besides the refusal"
    }
fi
# (but AH01882: Debian's mod_ssl was built against a newer OpenSSL 3.0.x
# than the libssl installed, a packaging matter)
grep -E ':(warn|error|crit|alert|emerg)\]' "$A/error.log" | grep -v AH01882 >"$T/alarming" || true
[ ! -s "$T/alarming" ] || {
    _stp_show "$T/alarming"
    stp_fail "warnings or errors in httpd's error log"
}
stp_assert_file_lacks "$A/stderr" '.' "nothing on httpd's stderr"
# (httpd sends its processes' stderr, where a sanitizer reports, to the log)
stp_assert_file_lacks "$A/error.log" 'Sanitizer|runtime error:' "no sanitizer report"
stp_ok "apache $SCEN $ROUTE"
