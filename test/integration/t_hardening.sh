#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_hardening.sh SCENARIO ROUTE: what hosts do to their contexts while they
# serve, with support/churn_server.c (a TLS server that does not know
# ocspstaple) under ROUTE (preload or provider).
#   ctx_churn: 4 threads create a server SSL_CTX, an SSL on it, and free
#              both, for 4 s, while handshakes are served and probed: every
#              churn thread finishes (no deadlock in the hook), the server
#              keeps answering and stapling, and no ERROR is logged.
#   late_cert: a context with a Must-Staple certificate is added after the
#              server started serving and reached through SNI
#              (SSL_set_SSL_CTX): under LD_PRELOAD its certificate is
#              fetched at once (stapled within a few seconds, not after the
#              refresher's next minute); through the provider alone such a
#              context is only examined when an SSL is created on it, so
#              nothing is stapled for it, and nothing breaks.
#   lock_perms: the files of store_dir are created with the documented
#              modes: responses and chains 0644 (public data), state and
#              lock files not readable by other users, so that a local user
#              who can read store_dir cannot take a certificate's lock
#              (flock needs only read access); an older world-readable lock
#              file is tightened the next time it is taken.
#   setuid:    a setuid-root host of ours, run by nobody with
#              OCSPSTAPLE_DEBUG naming a log file in a directory only root
#              may write and OCSPSTAPLE_FAKE_TIME past the stored response's
#              nextUpdate: neither is taken (no file created, the stored
#              response is loaded at the real time). Run in a private mount
#              namespace where the default store_dir is the test's.
#   skipverify_store: with skip_verify = yes (no signer authorisation
#              check) and mode must, a "good" response for the revoked leaf,
#              signed by an unrelated responder and planted in store_dir by
#              a store writer, is never stapled: under skip_verify nothing
#              read from the shared store is trusted, only what this process
#              fetched itself (which here says revoked: refused).
#   shared_backoff: two servers on one store, the responder hangs: the
#              second, which waited on the first's lock, honours the failure
#              the first recorded (its backoff) instead of asking the hanging
#              responder again at once: one request in all.
#   lock_held: a process holds a Must-Staple certificate's lock past the
#              fetch timeout (a stuck or hostile writer): the first attempt
#              ends after one bounded wait, later handshakes do not wait,
#              it is logged once, naming the lock file and the holder's pid,
#              and the staple arrives once the lock is released.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

SCEN=${1:?scenario}
ROUTE=${2:?route}
stp_need openssl
# In a ThreadSanitizer build the churn server is ours and instrumented (its
# runtime is linked in): ctx_churn and late_cert run there too, with only our
# library preloaded. Every other host here is not ours.
TSAN_HOST=
case ${STP_SANITIZER_PRELOAD:-}:$SCEN in
*tsan*:ctx_churn | *tsan*:late_cert) TSAN_HOST=1 ;;
*) stp_hook_need ;;
esac
[ -x "${STP_CHURN_SERVER:-}" ] || { echo "SKIP: no stp_churn_server" >&2 && exit 77; }
stp_setup
P=$T/pki
mkdir -p "$P"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
CONF=$T/stp.cnf
stp_conf "$CONF" "$ROUTE" "must_staple_wait = 1s"

# churn_env: the route's environment for the churn server (without the
# sanitizer runtime when the host carries its own).
churn_env() {
    if [ -n "$TSAN_HOST" ]; then
        STP_SANITIZER_PRELOAD='' stp_route_env "$ROUTE" "$CONF"
    else
        stp_route_env "$ROUTE" "$CONF"
    fi
}

# serve CHURN SECONDS [LATE...]: the churn server with the good leaf.
serve() {
    # shellcheck disable=SC2046
    stp_start_s_server "$T/churn.out" 5 env $(churn_env) \
        "$STP_CHURN_SERVER" "$P/good.pem" "$P/good.key" "$P/int.pem" "$@"
    PORT=$S_SERVER_PORT
}

out_has() { grep -q "$1" "$T/churn.out"; }

case $SCEN in
ctx_churn)
    serve 4 4
    # handshakes while the contexts churn, until the churn ends (bounded)
    n=0
    for ((i = 0; i < 200; i++)); do
        out_has "^CHURN " && break
        stp_probe "$PORT" --timeout 3
        [ "$RC" -eq 0 ] || stp_fail "handshake $i during the churn: rc=$RC $PROBE"
        n=$((n + 1))
    done
    STP_WAIT=30 stp_wait_for out_has "^CHURN " ||
        stp_fail "the churn threads never finished (deadlock?)"
    out_has "^CHURN DONE" || stp_fail "$(grep '^CHURN' "$T/churn.out")"
    kill -0 "$S_SERVER_PID" || stp_fail "the server died"
    stp_ok "$(grep '^CHURN' "$T/churn.out"), $n handshakes meanwhile"
    stp_wait_staple "$PORT" --CAfile "$P/root.pem"
    stp_expect_probe 0 "still stapling after the churn"
    if grep -q " ERROR " "$T/hook.log"; then
        stp_fail "ERROR logged: $(grep ' ERROR ' "$T/hook.log" | head -3)"
    fi
    ;;
late_cert)
    serve 0 0 "$P/muststaple.pem" "$P/muststaple.key" muststaple.test
    stp_wait_staple "$PORT" --CAfile "$P/root.pem"
    STP_WAIT=10 stp_wait_for out_has "^LATE READY" || stp_fail "no late context"
    t0=$(stp_ms)
    if [ "$ROUTE" = preload ]; then
        # fetched at once: well within the refresher's one-minute sleep
        STP_WAIT=8 stp_wait_staple "$PORT" --servername muststaple.test \
            --CAfile "$P/root.pem"
        stp_expect_probe 0 "the late certificate is stapled"
        echo "$PROBE" | grep -q "subject=CN=muststaple.test" ||
            stp_fail "not the late certificate: $PROBE"
        dt=$(($(stp_ms) - t0))
        [ "$dt" -lt 8000 ] ||
            stp_fail "the late certificate was stapled only after $dt ms"
        stp_ok "late certificate stapled $dt ms after it was reachable"
    else
        stp_probe "$PORT" --servername muststaple.test --CAfile "$P/root.pem"
        stp_expect_probe 0 "the late context serves (unstapled through the provider)"
        echo "$PROBE" | grep -q "subject=CN=muststaple.test" ||
            stp_fail "not the late certificate: $PROBE"
    fi
    ;;
lock_perms)
    ID=$(stp_id good)
    "$STP_CLI" fetch --store-dir "$T/store" "$P/good.chain.pem" >"$T/fetch.out" 2>&1 ||
        stp_fail "fetch: $(cat "$T/fetch.out")"
    mode() { stat -c %a "$T/store/$ID.$1"; }
    stp_assert_eq "$(mode der)" 644 "the response is public"
    stp_assert_eq "$(mode pem)" 644 "the chain is public"
    for f in state lock; do
        case $(mode $f) in
        *0) stp_ok "$ID.$f: mode $(mode $f)" ;;
        *) stp_fail "$ID.$f is readable by every user: mode $(mode $f)" ;;
        esac
    done
    chmod 0755 "$T" # a local user who can read store_dir
    as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
    as_nobody cat "$T/store/$ID.der" >/dev/null || stp_fail "nobody cannot read the response"
    if as_nobody flock -n -x "$T/store/$ID.lock" true 2>"$T/flock.err"; then
        stp_fail "a local user took the certificate's lock"
    fi
    stp_ok "nobody cannot lock: $(cat "$T/flock.err")"
    # a lock file left world-readable by an older version is tightened
    chmod 0644 "$T/store/$ID.lock"
    "$STP_CLI" fetch --force --store-dir "$T/store" "$P/good.chain.pem" >"$T/fetch.out" 2>&1 ||
        stp_fail "fetch: $(cat "$T/fetch.out")"
    case $(mode lock) in
    *0) stp_ok "tightened to $(mode lock)" ;;
    *) stp_fail "the lock stays world-readable: $(mode lock)" ;;
    esac
    # `ocspstaple check` reports an unsafe store, and a safe one is OK: the
    # store of a host serving with nginx alone, its workers' user's (check,
    # as root, also tries that user)
    stp_conf "$CONF" provider "programs = nginx"
    chown -R www-data: "$T/store"
    "$STP_CLI" check --conf "$CONF" >"$T/check.out" 2>&1 ||
        stp_fail "check of a safe store: $(cat "$T/check.out")"
    chmod 0644 "$T/store/$ID.lock"
    chmod 0777 "$T/store"
    if "$STP_CLI" check --conf "$CONF" >"$T/check.out" 2>&1; then
        stp_fail "check says OK for an unsafe store: $(cat "$T/check.out")"
    fi
    stp_assert_file_contains "$T/check.out" "store_dir '$T/store' is writable by every user" \
        "check: world-writable store_dir"
    stp_assert_file_contains "$T/check.out" "$ID.lock is readable by every user" \
        "check: world-readable lock file"
    exit 0
    ;;
setuid)
    [ -x "${STP_SETUID_HOST:-}" ] || { echo "SKIP: no stp_setuid_host" >&2 && exit 77; }
    command -v unshare >/dev/null || { echo "SKIP: no unshare" >&2 && exit 77; }
    # the default store_dir (/var/cache/ocspstaple), warm, in a private
    # mount namespace: the host's /var/cache is not touched
    mkdir -p "$T/varcache"
    "$STP_CLI" fetch --store-dir "$T/varcache/ocspstaple" "$P/good.chain.pem" \
        >"$T/fetch.out" 2>&1 || stp_fail "fetch: $(cat "$T/fetch.out")"
    install -o root -m 4755 "$STP_SETUID_HOST" "$T/setuid_host"
    mkdir -m 0755 "$T/rootonly"
    chmod 0755 "$T" "$P"
    chmod 0644 "$P"/*
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- test -r "$STP_HOOK" ||
        { echo "SKIP: nobody cannot read $STP_HOOK" >&2 && exit 77; }
    FAKE=$(($(date +%s) + 30 * 86400))
    # shellcheck disable=SC2016 # expanded by the inner bash
    unshare -m bash -c 'mount --bind "$1" /var/cache && shift &&
        exec setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"' _ \
        "$T/varcache" env OPENSSL_CONF=/dev/null \
        OCSPSTAPLE_DEBUG="level:debug,file:$T/rootonly/planted.log" \
        OCSPSTAPLE_FAKE_TIME="$FAKE" \
        "$T/setuid_host" "$P/good.pem" "$P/good.key" "$P/int.pem" \
        >"$T/setuid.out" 2>"$T/setuid.err" || stp_fail "setuid host: $(cat "$T/setuid.err")"
    grep -q "^attach=1 " "$T/setuid.out" || stp_fail "not attached: $(cat "$T/setuid.out" "$T/setuid.err")"
    [ ! -e "$T/rootonly/planted.log" ] ||
        stp_fail "a setuid program created the file OCSPSTAPLE_DEBUG named"
    stp_ok "OCSPSTAPLE_DEBUG ignored in a setuid program"
    grep -q "store_load=1$" "$T/setuid.out" ||
        stp_fail "OCSPSTAPLE_FAKE_TIME moved the clock of a setuid program: $(cat "$T/setuid.out")"
    stp_ok "OCSPSTAPLE_FAKE_TIME ignored in a setuid program"
    exit 0
    ;;
skipverify_store)
    ID=$(stp_id revoked)
    mkdir -p "$T/store"
    # the index as a forger would want it: the revoked leaf listed as valid
    awk -F'\t' 'BEGIN { OFS = "\t" } $1 == "R" { $1 = "V"; $3 = "" } { print }' \
        "$P/index.txt" >"$T/forged.index"
    openssl ocsp -issuer "$P/int.pem" -cert "$P/revoked.pem" -no_nonce \
        -reqout "$T/req.der" >/dev/null 2>&1 || stp_fail "request"
    openssl ocsp -index "$T/forged.index" -CA "$P/int.pem" \
        -rsigner "$P/rogue-ocsp.pem" -rkey "$P/rogue-ocsp.key" -reqin "$T/req.der" \
        -respout "$T/store/$ID.der" -ndays 1 >/dev/null 2>&1 || stp_fail "forged response"
    openssl ocsp -respin "$T/store/$ID.der" -resp_text -noverify 2>/dev/null |
        grep -q "Cert Status: good" || stp_fail "the forged response does not say good"
    stp_conf "$CONF" "$ROUTE" "skip_verify = yes" "mode = must"
    stp_serve_s_server "$ROUTE" "$CONF" revoked
    stp_probe "$PORT"
    if [ "$RC" -eq 7 ] || echo "$PROBE" | grep -q "status=good"; then
        stp_fail "the planted response was stapled under skip_verify: $PROBE"
    fi
    # the process fetches for itself: revoked, and mode must refuses it
    fetched() { grep -q "revoked.test: .*revoked response" "$T/hook.log"; }
    STP_WAIT=10 stp_wait_for fetched || stp_fail "no fetch of its own"
    for ((i = 0; i < 5; i++)); do
        stp_probe "$PORT"
        if [ "$RC" -eq 7 ] || echo "$PROBE" | grep -q "status=good"; then
            stp_fail "the planted response was stapled: $PROBE"
        fi
    done
    stp_assert_file_contains "$T/hook.log" "skip_verify" "says why the store is not used"
    ;;
shared_backoff)
    stp_conf "$CONF" "$ROUTE" "timeout = 3s" "connect_timeout = 3s" \
        "retry_base = 30s" "retry_max = 60s"
    stp_responder_mode "$P" hang
    # shellcheck disable=SC2046
    stp_start_s_server "$T/a.out" 5 env $(stp_route_env "$ROUTE" "$CONF") \
        openssl s_server -www -accept 127.0.0.1:0 -cert "$P/good.pem" \
        -key "$P/good.key" -cert_chain "$P/int.pem"
    A=$S_SERVER_PORT
    stp_probe "$A"
    asked() { [ "$(stp_requests)" -ge 1 ]; }
    stp_wait_for asked || stp_fail "the first server does not ask"
    # shellcheck disable=SC2046
    stp_start_s_server "$T/b.out" 5 env $(stp_route_env "$ROUTE" "$CONF") \
        openssl s_server -www -accept 127.0.0.1:0 -cert "$P/good.pem" \
        -key "$P/good.key" -cert_chain "$P/int.pem"
    stp_probe "$S_SERVER_PORT"
    # both first attempts are over: the first's timeout, and the second's
    # deferral (or, without the shared backoff, its own timeout)
    both_done() {
        [ "$(grep -cE "good.test: (.*timed out|.*after a failed attempt)" "$T/hook.log")" -ge 2 ]
    }
    STP_WAIT=15 stp_wait_for both_done || stp_fail "the attempts did not end"
    stp_assert_requests 1 "one request to the hanging responder for both servers"
    stp_assert_file_contains "$T/hook.log" "after a failed attempt .*next attempt in" \
        "the second server defers to the first's backoff"
    ;;
lock_held)
    ID=$(stp_id muststaple)
    LOCK=$T/store/$ID.lock
    mkdir -p "$T/store"
    stp_hold_lock "$LOCK"
    stp_conf "$CONF" "$ROUTE" "must_staple_wait = 1s" "timeout = 2s" \
        "connect_timeout = 2s" "retry_base = 1s" "retry_max = 4s"
    stp_serve_s_server "$ROUTE" "$CONF" muststaple
    stp_probe "$PORT"
    busy_logged() { grep -q "$ID.lock.*pid $HOLDER" "$T/hook.log"; }
    STP_WAIT=10 stp_wait_for busy_logged ||
        stp_fail "the held lock is not logged with its holder"
    stp_probe "$PORT" --count 10
    ms=$(sed -n 's/.*elapsed_ms=\([0-9]*\).*/\1/p' <<<"$PROBE")
    if [ -z "$ms" ] || [ "$ms" -ge 5000 ]; then
        stp_fail "10 handshakes took ${ms:-?} ms: they wait for the held lock"
    fi
    stp_ok "10 handshakes in $ms ms while the lock is held"
    # further attempts (backoff 1, 2, 4 s) are not logged again above DEBUG
    attempts() { [ "$(grep -c "DEBUG.*still not fetching.*$ID.lock" "$T/hook.log")" -ge 2 ]; }
    STP_WAIT=30 stp_wait_for attempts || stp_fail "no further attempts"
    stp_assert_eq "$(grep -v DEBUG "$T/hook.log" | grep -c "$ID.lock")" 1 \
        "the held lock is logged once"
    stp_assert_requests 0 "no request while the lock is held"
    stp_stop_pid "$HOLDER"
    stp_forget_pid "$HOLDER"
    STP_WAIT=15 stp_wait_staple "$PORT" --CAfile "$P/root.pem"
    stp_expect_probe 0 "stapled once the lock is released"
    stp_assert_requests 1 "one request"
    ;;
*) stp_fail "unknown scenario $SCEN" ;;
esac
stp_stop_pid "$S_SERVER_PID"
stp_forget_pid "$S_SERVER_PID"
stp_ok "$SCEN $ROUTE"
