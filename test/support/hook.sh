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

# ---- real servers (nginx, Apache httpd) -----------------------------------

# stp_free_port: prints a TCP port that no socket on this host uses, in any
# state, picked at random in 20000..60999, below the kernel's ephemeral range
# when there is room (an outgoing connection cannot take it between the pick
# and the server's bind). Another test may still pick it in that window: the
# caller checks that its server alone listens there (stp_port_owned) and
# otherwise starts it again on another port.
stp_free_port() {
    local lo=20000 hi=60999 eph i p
    if read -r eph _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null &&
        [ "$eph" -gt $((lo + 1000)) ] && [ "$eph" -le "$hi" ]; then
        hi=$((eph - 1))
    fi
    for ((i = 0; i < 100; i++)); do
        p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
        if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
            echo "$p"
            return 0
        fi
    done
    stp_fail "no free TCP port in $lo..$hi"
}

# stp_port_pids PORT: the pids holding a socket listening on TCP PORT.
stp_port_pids() {
    { ss -Htlnp "( sport = :$1 )" 2>/dev/null || true; } |
        { grep -o 'pid=[0-9]*' || true; } | cut -d= -f2 | sort -un
}

# stp_port_owned PORT PID: something listens on PORT, and only PID and its
# children do (with SO_REUSEPORT a second server could share the port
# without an error).
stp_port_owned() {
    local pids p
    pids=$(stp_port_pids "$1")
    [ -n "$pids" ] || return 1
    for p in $pids; do
        [ "$p" = "$2" ] && continue
        [ "$(ps -o ppid= -p "$p" 2>/dev/null | tr -d ' ')" = "$2" ] || return 1
    done
}

# stp_nchildren PID: how many child processes PID has.
stp_nchildren() {
    { pgrep -P "$1" || true; } | wc -l
}

# stp_server_pids EXE DIR: the running EXE processes of the test in DIR:
# DIR/ in their command line, or a file under DIR/ open (nginx rewrites
# its workers' command lines; every process under the hook holds its log).
stp_server_pids() {
    local exe dir=$2 d f
    exe=$(readlink -f "$1")
    for d in /proc/[0-9]*; do
        [ "$(readlink "$d/exe" 2>/dev/null)" = "$exe" ] || continue
        if tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -qF -- "$dir/"; then
            echo "${d#/proc/}"
            continue
        fi
        for f in "$d"/fd/*; do
            case $(readlink "$f" 2>/dev/null) in
            "$dir"/*)
                echo "${d#/proc/}"
                break
                ;;
            esac
        done
    done
}

_stp_no_server_pids() {
    [ -z "$(stp_server_pids "$1" "$2")" ]
}

# stp_assert_no_server EXE DIR: no EXE process of the test in DIR is left
# (bounded by STP_WAIT); fails the test naming the survivors otherwise.
stp_assert_no_server() {
    if ! stp_wait_for _stp_no_server_pids "$1" "$2"; then
        ps -o pid,ppid,user,args -p "$(stp_server_pids "$1" "$2" | paste -sd,)" >&2 || true
        stp_fail "$1 processes of this test survived their master"
    fi
}

# stp_log_pids LOG REGEX: the distinct pids of the hook log's lines that
# match REGEX (grep -E), one per line.
stp_log_pids() {
    { grep -E -- "$2" "$1" 2>/dev/null || true; } |
        sed -n 's/^[^ ]* ocspstaple\[\([0-9]*\):.*/\1/p' | sort -un
}

# stp_probe_this_update: the thisUpdate of the last stp_probe's staple, in
# the format of `ocspstaple show` ("Nov  1 12:00:00 2026 GMT").
stp_probe_this_update() {
    local t
    t=$(sed -n 's/.*this_update=\([^ ]*\).*/\1/p' <<<"$PROBE")
    [ -n "$t" ] || stp_fail "no this_update in the probe's output: $PROBE"
    TZ=UTC date -d "${t%%$'\n'*}" '+%b %e %H:%M:%S %Y GMT'
}

# stp_file_this_update FILE: the thisUpdate of the DER OCSP response FILE.
stp_file_this_update() {
    local t
    t=$("$STP_CLI" show "$1" | sed -n 's/.*This Update: //p')
    [ -n "$t" ] || stp_fail "no thisUpdate in $1"
    echo "${t%%$'\n'*}"
}

# ---- real servers (HAProxy, lighttpd, stunnel) -----------------------------
# Used by t_haproxy.sh, t_lighttpd.sh and t_stunnel.sh, with stp_free_port,
# stp_port_owned and stp_assert_no_server above.

# stp_alive PID: PID runs (a zombie does not: a daemon's reaper may be slow).
stp_alive() {
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st%% *}" != Z ]
}

_stp_srv_up() {
    stp_port_owned "$PORT" "$SRV_PID"
}

_stp_srv_up_or_gone() {
    ! stp_alive "$SRV_PID" || _stp_srv_up
}

# stp_start_server NAME LAUNCH: starts a server on a free port: sets PORT
# (stp_free_port) and calls LAUNCH, a function of the test that writes the
# configuration for $PORT and starts the server, setting SRV_PID (the
# process that listens, or its parent) and returning non-zero when the
# server could not start. Waits (STP_WAIT) until SRV_PID or a child of it
# alone listens on $PORT; if the server exited instead (a parallel test took
# the port first), starts it again on another port, 3 times at most. SRV_PID
# is registered for the exit cleanup.
stp_start_server() {
    local name=$1 launch=$2 try
    for ((try = 1; try <= 3; try++)); do
        PORT=$(stp_free_port)
        SRV_PID=
        if "$launch" && [ -n "$SRV_PID" ]; then
            stp_register_pid "$SRV_PID"
            stp_wait_for _stp_srv_up_or_gone || true
            if _stp_srv_up; then
                echo "$name $SRV_PID listens on 127.0.0.1:$PORT" >&2
                export PORT SRV_PID
                return 0
            fi
            stp_stop_pid "$SRV_PID"
            stp_forget_pid "$SRV_PID"
        fi
        echo "$name did not come up on port $PORT (try $try)" >&2
    done
    stp_fail "$name did not start"
}

# stp_stop_server PID EXE: SIGTERM to PID (SIGKILL after 3 s), then no EXE
# process of this test ($T in its command line or open files) may be left.
stp_stop_server() {
    stp_stop_pid "$1"
    stp_forget_pid "$1"
    stp_assert_no_server "$2" "$T"
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

# ---- shared by the server tests (t_s_server, t_nginx, t_apache, ...) -------

# stp_requests: how many requests the responder of $P received.
stp_requests() { stp_responder_requests "$P"; }

# stp_expect_probe RC MSG: the last stp_probe exited RC.
stp_expect_probe() {
    [ "$RC" -eq "$1" ] || stp_fail "$2: probe exit $RC, wanted $1: $PROBE"
}

# stp_expect_line TEXT MSG: the last probe's output contains TEXT.
stp_expect_line() {
    grep -q -- "$1" <<<"$PROBE" || stp_fail "$2: '$1' not in: $PROBE"
}

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

# stp_verified NAME: the last probe got NAME's own good, verified staple.
stp_verified() {
    stp_expect_line "status=good verified=yes" "$1: a good, verified staple"
    stp_expect_line "chain=ok subject=CN=$1" "$1: its own certificate"
}
