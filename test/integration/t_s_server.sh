#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_s_server.sh SCENARIO [ROUTE]: an unmodified `openssl s_server` staples
# through the hook, with the policy in an openssl.cnf (ROUTE provider: OpenSSL
# loads ocspstaple.so; preload: LD_PRELOAD=libocspstaple.so; both), checked
# with `ocspstaple probe`, which verifies every staple it receives (signature,
# CertID of the leaf it got, freshness). The responder counts its requests.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

stp_need openssl sha256sum
stp_hook_need
stp_setup
P=$T/pki
mkdir -p "$P"
SCEN=${1:?scenario}
RARGS=()
# responses valid 60 s: due for refresh at once (refresh_min apart)
[ "$SCEN" = nostore_unknown ] && RARGS=(--nmin 1)
[ "$SCEN" = lost ] && RARGS=(--nmin 1)
# (and a refresh, so a log line, every 15 s or so)
case $SCEN in logrotate | syslog) RARGS=(--nmin 1) ;; esac
stp_start_responder "$P" "${RARGS[@]}"
stp_mkpki "$P" "$RESPONDER_PORT"
ROUTE=${2:-preload}
CONF=$T/stp.cnf

stop() {
    stp_stop_pid "$S_SERVER_PID"
    stp_forget_pid "$S_SERVER_PID"
}

case $SCEN in
cold)
    stp_conf "$CONF" "$ROUTE"
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_wait_staple "$PORT" --CAfile "$P/root.pem"
    stp_expect_probe 0 "cold store: good staple"
    stp_expect_line "status=good verified=yes" "not verified good"
    stp_assert_requests 1 "one responder request"
    stp_assert_eq "$(stp_refreshers "$S_SERVER_PID")" 1 "one refresher thread"
    [ -s "$T/store/$(stp_id good).der" ] || stp_fail "nothing stored"
    stp_assert_file_contains "$T/hook.log" "tracking certificate" "discovered"
    # OpenSSL's own client sees and verifies the same staple
    timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -status \
        -CAfile "$P/root.pem" -servername good.test </dev/null \
        >"$T/s_client.out" 2>&1 || true
    stp_assert_file_contains "$T/s_client.out" "OCSP Response Status: successful" \
        "s_client -status gets a response"
    stp_assert_file_contains "$T/s_client.out" "Cert Status: good" "s_client: good"
    stp_assert_file_contains "$T/s_client.out" "Verify return code: 0" "s_client: chain ok"
    stp_no_errors "$T/hook.log"
    ;;
warm)
    stp_warm good
    stp_conf "$CONF" "$ROUTE"
    stp_serve_s_server "$ROUTE" "$CONF" good
    # the very first handshake is stapled, with no new request
    stp_probe "$PORT" --require-staple --CAfile "$P/root.pem"
    stp_expect_probe 0 "first handshake with a warm store"
    stp_assert_requests 1 "no request beyond the CLI's"
    stp_no_errors "$T/hook.log"
    ;;
restart)
    stp_conf "$CONF" "$ROUTE"
    stp_serve_s_server "$ROUTE" "$CONF" ecdsa
    stp_wait_staple "$PORT"
    stop
    stp_serve_s_server "$ROUTE" "$CONF" ecdsa
    stp_probe "$PORT" --require-staple
    stp_expect_probe 0 "first handshake after a restart"
    stp_assert_requests 1 "no new request after a restart"
    ;;
tls12)
    stp_conf "$CONF" "$ROUTE"
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_wait_staple "$PORT" --tls1.2
    stp_expect_probe 0 "TLS 1.2"
    stp_probe "$PORT" --tls1.3 --require-staple
    stp_expect_probe 0 "TLS 1.3"
    ;;
dual)
    # one SSL_CTX with an RSA and an ECDSA certificate
    stp_conf "$CONF" "$ROUTE"
    stp_serve_s_server "$ROUTE" "$CONF" good -- -dcert "$P/ecdsa.pem" \
        -dkey "$P/ecdsa.key" -dcert_chain "$P/int.pem"
    stp_wait_staple "$PORT" --sigalgs "ECDSA+SHA256" --tls1.2
    stp_expect_line "cert_key=EC" "ECDSA leaf not selected"
    stp_wait_staple "$PORT" --sigalgs "RSA-PSS+SHA256:RSA+SHA256" --tls1.2
    stp_expect_line "cert_key=RSA" "RSA leaf not selected"
    stp_probe "$PORT" --sigalgs "ECDSA+SHA256" --require-staple
    stp_expect_probe 0 "ECDSA staple verified against the ECDSA leaf (TLS 1.3)"
    stp_assert_requests 2 "one request per certificate"
    ;;
sni)
    # a second SSL_CTX chosen by SNI (libssl switches contexts mid-handshake)
    stp_conf "$CONF" "$ROUTE"
    # (s_server gives the second context no chain: the hook finds the
    # issuer through the first one's)
    cat "$P/int.pem" "$P/root.pem" >"$T/cas.pem"
    stp_serve_s_server "$ROUTE" "$CONF" good -- -servername ecdsa.test \
        -cert2 "$P/ecdsa.pem" -key2 "$P/ecdsa.key"
    stp_wait_staple "$PORT" --servername ecdsa.test --CAfile "$T/cas.pem"
    stp_expect_line "CN=ecdsa.test" "SNI context not used"
    stp_wait_staple "$PORT" --servername good.test
    stp_expect_line "CN=good.test" "default context not used"
    ;;
muststaple)
    # cold store: the first handshake waits (bounded) for the first fetch
    stp_conf "$CONF" "$ROUTE" "staple_all = no"
    stp_serve_s_server "$ROUTE" "$CONF" muststaple
    stp_probe "$PORT" --require-staple
    stp_expect_probe 0 "the first Must-Staple handshake is stapled"
    stp_assert_requests 1 "one request"
    ;;
notmuststaple)
    # staple_all = no: a certificate without Must-Staple is not stapled
    stp_conf "$CONF" "$ROUTE" "staple_all = no"
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_probe "$PORT"
    stp_expect_probe 0 "handshake"
    stp_expect_line "stapled=no" "stapled with staple_all=no"
    stp_assert_requests 0 "no request"
    ;;
noaia)
    stp_conf "$CONF" "$ROUTE"
    stp_serve_s_server "$ROUTE" "$CONF" noaia
    stp_probe "$PORT"
    stp_expect_probe 0 "handshake without a staple"
    # the refresher looks at the certificate, and gives up at once
    stp_wait_for grep -q "noaia.test: no OCSP URL" "$T/hook.log" ||
        stp_fail "the refresher did not look at the certificate"
    stp_probe "$PORT"
    stp_expect_line "stapled=no" "stapled without a URL"
    stp_assert_requests 0 "no request"
    stp_assert_file_contains "$T/hook.log" "no OCSP URL" "said at debug level"
    stp_no_errors "$T/hook.log"
    ;;
revoked_auto)
    stp_conf "$CONF" "$ROUTE"
    stp_serve_s_server "$ROUTE" "$CONF" revoked
    stp_wait_staple "$PORT"
    stp_expect_probe 3 "auto mode staples the revoked response"
    ;;
revoked_must)
    stp_warm revoked
    stp_conf "$CONF" "$ROUTE" "mode = must"
    stp_serve_s_server "$ROUTE" "$CONF" revoked
    stp_probe "$PORT"
    stp_expect_probe 1 "must mode refuses a revoked certificate"
    stp_probe "$PORT"
    stp_expect_probe 1 "and keeps refusing"
    stp_assert_eq "$(grep -c "certificate is revoked: refusing" "$T/hook.log")" 1 \
        "logged once, not per handshake"
    ;;
revoked_exit)
    stp_warm revoked
    stp_conf "$CONF" "$ROUTE" "mode = always" "revoked_action = exit"
    stp_serve_s_server "$ROUTE" "$CONF" revoked
    # the first connection makes the process track its certificates
    stp_probe "$PORT"
    stp_expect_probe 1 "always mode refuses a revoked certificate"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$S_SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$S_SERVER_PID" 2>/dev/null && stp_fail "server still running"
    stp_forget_pid "$S_SERVER_PID"
    stp_assert_file_contains "$T/hook.log" "revoked_action exit" "says why"
    ;;
expired)
    # the stored response is valid one day; the server lives two days later
    stp_warm good
    stp_conf "$CONF" "$ROUTE"
    export OCSPSTAPLE_FAKE_TIME=$(($(date +%s) + 2 * 86400))
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_probe "$PORT"
    stp_expect_line "stapled=no" "stapled an expired response"
    refetched() { [ "$(stp_requests)" -ge 2 ]; }
    stp_wait_for refetched || stp_fail "no refetch"
    stp_probe "$PORT"
    stp_expect_line "stapled=no" "stapled a response already expired"
    stp_assert_file_contains "$T/hook.log" "expired" "rejection logged"
    ;;
appcb)
    # s_server's own -status_file callback keeps priority over ours
    stp_warm good
    cp "$T/store/$(stp_id good).der" "$T/app.der"
    stp_next_second
    "$STP_CLI" fetch "$P/good.chain.pem" --store-dir "$T/store" --force >&2
    want=$(stp_file_this_update "$T/app.der")
    held=$(stp_file_this_update "$T/store/$(stp_id good).der")
    [ "$want" != "$held" ] || stp_fail "the file and the store hold the same thisUpdate"
    stp_conf "$CONF" "$ROUTE"
    stp_serve_s_server "$ROUTE" "$CONF" good -- -status_file "$T/app.der"
    stp_probe "$PORT" --require-staple
    stp_expect_probe 0 "the application's staple"
    stp_assert_eq "$(stp_probe_this_update)" "$want" \
        "the staple is the application's file (the store has $held)"
    ;;
both)
    # the preload hook and the provider in one process: one copy of the state
    ROUTE=both
    stp_conf "$CONF" provider
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_wait_staple "$PORT"
    stp_assert_eq "$(stp_refreshers "$S_SERVER_PID")" 1 "one refresher thread"
    stp_assert_requests 1 "one request"
    stp_assert_file_contains "$T/hook.log" "provider stands down" "provider yields"
    ;;
lost)
    # a 60 s response, then the responder refuses: once it expires, one
    # ERROR says the certificate lost its last valid staple (the retries
    # are WARNs), and nothing is stapled past nextUpdate
    stp_conf "$CONF" "$ROUTE" "retry_base = 1s" "retry_max = 2s" "refresh_min = 10s" \
        "clock_skew = 0"
    stp_warm good
    stp_responder_mode "$P" refuse
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_probe "$PORT" --require-staple
    stp_expect_probe 0 "stapled from the store"
    lost() { grep -q "good.test: its last valid staple expired" "$T/hook.log"; }
    STP_WAIT=90 stp_wait_for lost || stp_fail "no line says the staple was lost"
    stp_probe "$PORT" --count 10
    stp_expect_line "stapled=0 " "nothing stapled past nextUpdate"
    stp_assert_eq "$(grep -c "ERROR refresh: good.test: its last valid staple expired" "$T/hook.log")" 1 \
        "one ERROR for the loss"
    [ "$(grep -c "WARN refresh: good.test: " "$T/hook.log")" -ge 2 ] ||
        stp_fail "the failed retries are not WARNs"
    ;;
badconf)
    # a broken section never breaks TLS: the module stays passive
    stp_conf "$CONF" "$ROUTE" "cache_tll = 5"
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_probe "$PORT"
    stp_expect_probe 0 "TLS still works"
    stp_expect_line "stapled=no" "stapled while passive"
    stp_assert_file_contains "$T/hook.log" "unknown key 'cache_tll'" "names the key"
    stp_assert_file_contains "$T/hook.log" "stays passive" "says it is passive"
    # said once by the server (a bystander never says it: it/bystander_*)
    stp_probe "$PORT" --count 5
    stp_assert_eq "$(grep -c "unknown key 'cache_tll'" "$T/hook.log")" 1 "said once"
    stp_assert_requests 0 "no request"
    ;;
fetchno)
    # fetch = no: the server only takes what the CLI put in the store
    stp_warm good
    stp_conf "$CONF" "$ROUTE" "fetch = no"
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_probe "$PORT" --require-staple
    stp_expect_probe 0 "stapled from the store"
    stop
    # ecdsa's stored file is good.test's response: not usable. A server
    # that may fetch rejects it and fetches; with fetch = no, the first
    # handshake reads the store, then the refresher reads it again (the
    # branch of fetch = no), each saying the file is not usable, and sends
    # no request
    cp "$T/store/$(stp_id good).der" "$T/store/$(stp_id ecdsa).der"
    stp_serve_s_server "$ROUTE" "$CONF" ecdsa
    stp_probe "$PORT"
    stp_expect_line "stapled=no" "fetched with fetch = no"
    read_twice() {
        [ "$(grep -c "ecdsa.test: stored response not usable" "$T/hook.log")" -ge 2 ]
    }
    stp_wait_for read_twice || stp_fail "the refresher did not read the store"
    stp_assert_requests 1 "the servers sent no request"
    ;;
nostore)
    # store_dir cannot be used (a regular file is in the way): the process
    # fetches for itself and staples from memory, and says so once
    : >"$T/notadir"
    stp_conf "$CONF" "$ROUTE" "store_dir = $T/notadir/store"
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_wait_staple "$PORT" --CAfile "$P/root.pem"
    stp_expect_probe 0 "stapled from memory"
    stp_probe "$PORT" --count 10 --require-staple
    stp_expect_probe 0 "and keeps stapling"
    stp_assert_eq "$(grep -c "notadir/store" "$T/hook.log")" 1 \
        "the store problem is logged once"
    stp_assert_requests 1 "one request"
    ;;
nostore_unknown)
    # What may replace a held response is one rule whether or not a store
    # is there: with store_dir unusable, the good staple held in memory is
    # not replaced by a later `unknown` answer (it stays until it expires).
    : >"$T/notadir"
    stp_conf "$CONF" "$ROUTE" "store_dir = $T/notadir/store" "refresh_min = 10s"
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_wait_staple "$PORT" --CAfile "$P/root.pem"
    stp_expect_probe 0 "stapled good from memory"
    stp_responder_mode "$P" unknown
    answered_unknown() {
        [ "$(stp_requests)" -ge 2 ] &&
            grep -q "refresh: good.test: .*unknown" "$T/hook.log"
    }
    STP_WAIT=30 stp_wait_for answered_unknown || stp_fail "no refresh answered unknown"
    stp_probe "$PORT" --count 5 --require-staple --CAfile "$P/root.pem"
    stp_expect_probe 0 "the good staple is still served after an unknown answer"
    stp_expect_line "status=good verified=yes" "not good"
    ;;
inert)
    # a key that has no effect is said once, in the server, with what it
    # does not do; an OpenSSL program that serves nothing says nothing
    stp_conf "$CONF" "$ROUTE" "client_ocsp_fail = open"
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_wait_staple "$PORT" --CAfile "$P/root.pem"
    stp_probe "$PORT" --count 10
    stp_assert_eq "$(grep -c "WARN policy: openssl: key 'client_ocsp_fail' has no effect while client_ocsp is off" "$T/hook.log")" 1 \
        "said once in the server"
    stp_conf "$T/bystander.cnf" provider "client_ocsp_fail = open"
    OPENSSL_CONF=$T/bystander.cnf OCSPSTAPLE_DEBUG='' openssl version >"$T/bystander.out" 2>&1 ||
        stp_fail "openssl version: $(cat "$T/bystander.out")"
    stp_assert_file_lacks "$T/bystander.out" "client_ocsp" "a bystander says nothing"
    ;;
never)
    stp_conf "$CONF" "$ROUTE" "mode = never"
    stp_serve_s_server "$ROUTE" "$CONF" muststaple
    stp_probe "$PORT"
    stp_expect_line "stapled=no" "stapled in mode never"
    stp_assert_requests 0 "no request"
    ;;
skipprog)
    stp_conf "$CONF" "$ROUTE" "skip_programs = openssl"
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_probe "$PORT"
    stp_expect_line "stapled=no" "stapled in a skipped program"
    stp_assert_file_contains "$T/hook.log" "program 'openssl' is outside" "says why"
    ;;
logrotate)
    # logrotate moves the log file away (its "create" mode): within 10 s
    # the hook writes to a new file at the same path; what it wrote before
    # stays in the moved one. (Responses valid 60 s: a refresh, so a line,
    # about every 15 s.)
    stp_conf "$CONF" "$ROUTE" "refresh_min = 10s" "refresh_jitter = 0"
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_wait_staple "$PORT"
    mv "$T/hook.log" "$T/hook.log.1"
    rotated_size=$(stat -c %s "$T/hook.log.1")
    reopened() { [ -e "$T/hook.log" ]; }
    STP_WAIT=20 stp_wait_for reopened || stp_fail "no new $T/hook.log 20 s after the rotation"
    refreshed() { grep -q "good.test: stored good response" "$T/hook.log"; }
    STP_WAIT=60 stp_wait_for refreshed || stp_fail "the next refresh is not in the new file"
    stp_assert_file_contains "$T/hook.log.1" "good.test: stored good response" \
        "the lines before the rotation stay in the moved file"
    # the moved file got nothing after the reopen (a short while for a
    # line being written during it)
    sleep_until_quiet() { [ "$(stat -c %s "$T/hook.log.1")" = "$rotated_size" ]; }
    rotated_size=$(stat -c %s "$T/hook.log.1")
    stp_probe "$PORT" --count 3
    stp_expect_probe 0 "still stapled after the rotation"
    sleep_until_quiet || stp_fail "the moved file still grows after the reopen"
    ;;
syslog)
    # log_syslog: lines also go to a syslog socket (facility daemon), even
    # after syslog restarts; the listener is a real datagram socket
    stp_need perl
    listen_syslog() {
        perl -MIO::Socket::UNIX -MSocket -e '
            my ($path, $out) = @ARGV;
            unlink $path;
            my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $path)
                or die "bind $path: $!";
            open(my $o, ">>", $out) or die "$out: $!";
            $o->autoflush(1);
            alarm 120;
            while (defined $s->recv(my $m, 8192)) { print $o "$m\n"; }' \
            "$T/log.sock" "$T/syslog.out" &
        SYSLOG_PID=$!
        stp_register_pid "$SYSLOG_PID"
        STP_WAIT=5 stp_wait_for test -S "$T/log.sock" || stp_fail "no syslog socket"
    }
    listen_syslog
    stp_conf "$CONF" "$ROUTE" "log_syslog = $T/log.sock" "refresh_min = 10s" \
        "refresh_jitter = 0"
    stp_serve_s_server "$ROUTE" "$CONF" good
    stp_wait_staple "$PORT"
    # <30>: facility daemon (3), severity info (6)
    in_syslog() { grep -q "$1" "$T/syslog.out" 2>/dev/null; }
    STP_WAIT=10 stp_wait_for in_syslog '^<30>ocspstaple\[[0-9]*\]: INFO refresh: good.test: stored good response' ||
        stp_fail "the stored response is not in syslog: $(head -c 600 "$T/syslog.out" 2>/dev/null)"
    stp_assert_file_contains "$T/hook.log" "good.test: stored good response" \
        "and still in the log file"
    # syslog restarts (a new socket at the path): the hook connects again
    stp_stop_pid "$SYSLOG_PID"
    stp_forget_pid "$SYSLOG_PID"
    : >"$T/syslog.out"
    listen_syslog
    STP_WAIT=60 stp_wait_for in_syslog 'good.test: stored good response' ||
        stp_fail "the next refresh is not in syslog after it restarted"
    stp_stop_pid "$SYSLOG_PID"
    ;;
*)
    stp_fail "unknown scenario $SCEN"
    ;;
esac
stp_ok "$SCEN $ROUTE"
