# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# Helpers for tests that run servers under the hook, sourced after lib.sh:
# openssl.cnf files for both routes, probes with the project's own client,
# bounded waits for a staple. Reads STP_HOOK (libocspstaple.so), STP_MODULE
# (ocspstaple.so) and STP_CLI, set by ctest.

# stp_hook_need: skip (77) when the hook was not built.
stp_hook_need() {
    if [ ! -f "${STP_HOOK:-}" ] || [ ! -f "${STP_MODULE:-}" ]; then
        echo "SKIP: STP_HOOK / STP_MODULE not built" >&2
        exit 77
    fi
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

# stp_id NAME: the store id of leaf $P/NAME.pem.
stp_id() {
    openssl x509 -in "$P/$1.pem" -outform DER | sha256sum | cut -d' ' -f1
}

# stp_no_errors LOG: a healthy run logs no ERROR line.
stp_no_errors() {
    stp_assert_file_lacks "$1" " ERROR " "no ERROR lines in $1"
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
