# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Helpers for tests that run servers under the hook, sourced after lib.sh:
# openssl.cnf files for both routes, probes with the project's own client and
# what to expect of them, bounded waits for a staple, the hook's log, and
# responses stored or made for a server. Reads STP_HOOK (libocspstaple.so),
# STP_MODULE (ocspstaple.so) and STP_CLI, set by ctest. Starting and stopping
# the servers is servers.sh's.

# ---- routes and policy ------------------------------------------------------

# stp_hook_need: skip (77) when the hook was not built.
stp_hook_need() {
    if [ ! -f "${STP_HOOK:-}" ] || [ ! -f "${STP_MODULE:-}" ]; then
        echo "SKIP: STP_HOOK / STP_MODULE not built" >&2
        exit 77
    fi
    case ${STP_SANITIZER_PRELOAD:-} in
    *tsan*)
        # ThreadSanitizer cannot run inside a host that was not built with
        # it; its runs use hosts we build (it/attach).
        echo "SKIP: ThreadSanitizer build, uninstrumented host" >&2
        exit 77
        ;;
    esac
}

# stp_conf FILE ROUTE [LINE...]: an openssl.cnf whose ocspstaple section has
# store_dir $T/store, log_level debug and the extra LINEs. ROUTE "provider"
# adds module = $STP_MODULE and activate = 1 (OpenSSL loads the provider);
# "preload" leaves them out (only the hook reads the section).
stp_conf() {
    local file=$1 route=$2
    shift 2
    {
        printf 'openssl_conf = openssl_init\n[openssl_init]\nproviders = prov\n'
        printf '[prov]\ndefault = default_sect\nocspstaple = stp_sect\n'
        printf '[default_sect]\nactivate = 1\n[stp_sect]\n'
        if [ "$route" = provider ]; then
            printf 'module = %s\nactivate = 1\n' "$STP_MODULE"
        fi
        printf 'store_dir = %s\n' "$T/store"
        printf '%s\n' "$@"
    } >"$file"
}

# stp_route_env ROUTE CONF: prints the env assignments that put a server
# under ROUTE with policy CONF, for `env $(stp_route_env ...) server ...`.
# The log goes to $T/hook.log.
# In a sanitizer build, STP_SANITIZER_PRELOAD (the runtime) goes first in
# LD_PRELOAD, and leak checking of the host (not ours to fix) is off.
stp_route_env() {
    local route=$1 conf=$2 rt=${STP_SANITIZER_PRELOAD:-}
    printf 'OCSPSTAPLE_DEBUG=level:debug,file:%s\n' "$T/hook.log"
    if [ -n "$rt" ]; then
        printf 'ASAN_OPTIONS=detect_leaks=0\n'
    fi
    case $route in
    provider)
        printf 'OPENSSL_CONF=%s\n' "$conf"
        if [ -n "$rt" ]; then printf 'LD_PRELOAD=%s\n' "$rt"; fi
        ;;
    preload | both)
        printf 'LD_PRELOAD=%s\nOCSPSTAPLE_CONF=%s\n' "${rt:+$rt:}$STP_HOOK" "$conf"
        if [ "$route" = both ]; then
            printf 'OPENSSL_CONF=%s\n' "$conf"
        else
            printf 'OPENSSL_CONF=/dev/null\n'
        fi
        ;;
    *) stp_fail "unknown route $route" ;;
    esac
}

# ---- probes ----------------------------------------------------------------

# stp_probe PORT [ARGS...]: one handshake with `ocspstaple probe`; sets RC
# and PROBE (its output line).
stp_probe() {
    local port=$1
    shift
    set +e
    PROBE=$(timeout 20 "$STP_CLI" probe "127.0.0.1:$port" --timeout 5 "$@" 2>&1)
    RC=$?
    set -e
    echo "probe $port $*: rc=$RC $PROBE" >&2
}

# stp_wait_staple PORT [ARGS...]: probes until a verified staple arrives
# (bounded: STP_WAIT seconds, default 10); fails the test otherwise.
stp_wait_staple() {
    local port=$1 i limit
    shift
    limit=$((${STP_WAIT:-10} * 10))
    for ((i = 0; i < limit; i++)); do
        stp_probe "$port" --require-staple "$@"
        if [ "$RC" -eq 0 ] || [ "$RC" -eq 3 ] || [ "$RC" -eq 4 ]; then
            return 0
        fi
        sleep 0.1
    done
    stp_fail "no verified staple from 127.0.0.1:$port within ${STP_WAIT:-10}s"
}

# stp_expect_probe RC MSG: the last stp_probe exited RC.
stp_expect_probe() {
    [ "$RC" -eq "$1" ] || stp_fail "$2: probe exit $RC, wanted $1: $PROBE"
}

# stp_expect_line TEXT MSG: the last probe's output contains TEXT.
stp_expect_line() {
    grep -q -- "$1" <<<"$PROBE" || stp_fail "$2: '$1' not in: $PROBE"
}

# stp_verified NAME: the last probe got NAME's own good, verified staple.
stp_verified() {
    stp_expect_line "status=good verified=yes" "$1: a good, verified staple"
    stp_expect_line "chain=ok subject=CN=$1" "$1: its own certificate"
}

# stp_probe_this_update: the thisUpdate of the last stp_probe's staple, in
# the format of `ocspstaple show` ("Nov  1 12:00:00 2026 GMT").
stp_probe_this_update() {
    local t
    t=$(sed -n 's/.*this_update=\([^ ]*\).*/\1/p' <<<"$PROBE")
    [ -n "$t" ] || stp_fail "no this_update in the probe's output: $PROBE"
    TZ=UTC date -d "${t%%$'\n'*}" '+%b %e %H:%M:%S %Y GMT'
}

# stp_probe_next_update: the nextUpdate of the last stp_probe's staple, in
# seconds since the epoch.
stp_probe_next_update() {
    local t
    t=$(sed -n 's/.*next_update=\([^ ]*\).*/\1/p' <<<"$PROBE")
    [ -n "$t" ] || stp_fail "no next_update in the probe's output: $PROBE"
    date -d "${t%%$'\n'*}" +%s
}

# stp_probe_days: the validity (nextUpdate - thisUpdate, whole days) of the
# last stp_probe's staple.
stp_probe_days() {
    local tu nu
    tu=$(sed -n 's/.*this_update=\([^ ]*\).*/\1/p' <<<"$PROBE")
    nu=$(sed -n 's/.*next_update=\([^ ]*\).*/\1/p' <<<"$PROBE")
    if [ -z "$tu" ] || [ -z "$nu" ]; then
        stp_fail "no validity in: $PROBE"
    fi
    echo $((($(date -d "${nu%%$'\n'*}" +%s) - $(date -d "${tu%%$'\n'*}" +%s)) / 86400))
}

# ---- the hook's log and threads, the responder's requests ------------------

# stp_no_errors LOG: a healthy run logs no ERROR line.
stp_no_errors() {
    stp_assert_file_lacks "$1" " ERROR " "no ERROR lines in $1"
}

# stp_log_pids LOG REGEX: the distinct pids of the hook log's lines that
# match REGEX (grep -E), one per line.
stp_log_pids() {
    { grep -E -- "$2" "$1" 2>/dev/null || true; } |
        sed -n 's/^[^ ]* ocspstaple\[\([0-9]*\):.*/\1/p' | sort -un
}

# stp_refreshers PID: how many refresher threads PID runs.
stp_refreshers() {
    local n=0 f
    for f in /proc/"$1"/task/*/comm; do
        if [ "$(cat "$f" 2>/dev/null)" = ocspstaple ]; then
            n=$((n + 1))
        fi
    done
    echo "$n"
}

# stp_requests: how many requests the responder of $P received.
stp_requests() { stp_responder_requests "$P"; }

# stp_assert_requests N MSG: the responder of $P received exactly N requests;
# else fail, first showing which serial numbers were asked how often and what
# the hook's processes said of their fetches ($T/hook.log), so that a count
# that differs once in CI says why.
stp_assert_requests() {
    local got
    got=$(stp_requests)
    [ "$got" = "$1" ] && return 0
    echo "--- $P/responder.log (seq method len mode status serial):" >&2
    cat "$P/responder.log" >&2 2>/dev/null || true
    echo "--- requests per serial:" >&2
    awk '{ print $NF }' "$P/responder.log" 2>/dev/null | sort | uniq -c >&2 || true
    if [ -f "$T/hook.log" ]; then
        echo "--- $T/hook.log, fetch and store lines:" >&2
        grep -E " (refresh|client|store|fetch|pool): " "$T/hook.log" >&2 || true
    fi
    stp_fail "$2: got '$got', want '$1'"
}

# stp_mtls_get PORT CLIENT PATH: one HTTPS request to good.test on PORT with
# the client certificate CLIENT of $P (its chain and key), bounded (10 s): sets
# CODE (the HTTP status; 000 when the server refused the handshake), BODY
# (the answer) and CERR (curl's error).
stp_mtls_get() {
    CODE=$(timeout 10 curl -sS --noproxy '*' --cacert "$P/root.pem" \
        --cert "$P/$2.chain.pem" --key "$P/$2.key" \
        --resolve "good.test:$1:127.0.0.1" -o "$T/mtls.body" \
        -w '%{http_code}' "https://good.test:$1$3" 2>"$T/mtls.err" || true)
    BODY=$(cat "$T/mtls.body" 2>/dev/null || true)
    CERR=$(cat "$T/mtls.err")
    export CODE BODY CERR
}

# ---- responses for a server ------------------------------------------------

# stp_warm NAME [OWNER]: stores NAME's response in $T/store with `ocspstaple
# fetch` (a revoked or unknown status is stored too), then hands the store
# to OWNER (the servers' worker user) when given.
stp_warm() {
    "$STP_CLI" fetch "$P/$1.chain.pem" --store-dir "$T/store" >&2 || true
    [ -s "$T/store/$(stp_id "$1").der" ] ||
        stp_fail "ocspstaple fetch $1 stored nothing"
    if [ -n "${2:-}" ]; then
        chown -R "$2:" "$T/store"
    fi
}

# stp_own_response NAME OUT NDAYS: OUT is a DER response for $P/NAME.pem
# made by `openssl ocsp` itself from the PKI's index (the responder is not
# asked: no request is logged), valid NDAYS days: a server's own staple file,
# told from a fetched one (1 day) by its validity.
stp_own_response() {
    openssl ocsp -issuer "$P/int.pem" -cert "$P/$1.pem" -no_nonce \
        -reqout "$2.req" >/dev/null 2>&1 || stp_fail "openssl ocsp: request for $1"
    openssl ocsp -index "$P/index.txt" -CA "$P/int.pem" -rsigner "$P/ocsp.pem" \
        -rkey "$P/ocsp.key" -reqin "$2.req" -respout "$2" -ndays "$3" \
        >/dev/null 2>&1 || stp_fail "openssl ocsp: response for $1"
    rm -f "$2.req"
}

# stp_file_this_update FILE: the thisUpdate of the DER OCSP response FILE.
stp_file_this_update() {
    local t
    t=$("$STP_CLI" show "$1" | sed -n 's/.*This Update: //p')
    [ -n "$t" ] || stp_fail "no thisUpdate in $1"
    echo "${t%%$'\n'*}"
}

# stp_revoked_exit_stays PID NPROC PROBE_ARGS...: a master/worker server
# (master PID, NPROC workers) with mode must and revoked_action exit, serving
# revoked.test: 15 handshakes are refused, the refresher of each worker that
# met the revoked response decides, the other certificate (PROBE_ARGS) keeps
# being stapled, and no worker exits (each one of before still runs), each
# saying once why it does not exit.
_stp_exit_decided() {
    grep -qE "revoked_action exit( is not possible|: terminating)" "$T/hook.log"
}

stp_revoked_exit_stays() {
    local pid=$1 nproc=$2 kids0 kids1 i n
    shift 2
    kids0=$(pgrep -P "$pid" | sort | tr '\n' ' ')
    for ((i = 0; i < 15; i++)); do
        stp_probe "${PORT:?}" --servername revoked.test --CAfile "$P/root.pem"
        stp_expect_probe 1 "the revoked certificate is refused"
    done
    stp_wait_for _stp_exit_decided || stp_fail "no word about revoked_action exit"
    stp_probe "$PORT" "$@" --require-staple --count 5
    stp_expect_probe 0 "the other certificate keeps working"
    stp_alive "$pid" || stp_fail "the server stopped"
    # every worker of before still runs (a prefork server may have added
    # spare ones meanwhile: that is no respawn)
    kids1=" $(pgrep -P "$pid" | sort | tr '\n' ' ')"
    for i in $kids0; do
        [[ $kids1 == *" $i "* ]] || stp_fail "worker $i exited (workers now:$kids1)"
    done
    stp_assert_file_lacks "$T/hook.log" "terminating" "no worker terminated itself"
    stp_assert_file_contains "$T/hook.log" "revoked_action exit is not possible in a worker" \
        "says why it does not exit"
    # once per worker: a prefork server may have added spare workers since
    # it started with <nproc>, and each says it once
    n=$(grep "revoked_action exit is not possible" "$T/hook.log" |
        grep -o 'ocspstaple\[[0-9]*' | sort | uniq -d | wc -l)
    [ "$n" -eq 0 ] || stp_fail "said more than once by $n worker(s) (of $nproc at start, or more)"
}
