# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
#
# servers.sh: the lifecycle of the servers the integration tests run, sourced
# after lib.sh: openssl s_server on a port the kernel picks (stp_serve_s_server
# also needs hook.sh, for its routes), and real servers (nginx, Apache httpd,
# HAProxy, lighttpd, stunnel) on a free port, started by a function of the
# test and stopped with a check that no process of theirs survives.

# ---- openssl s_server ------------------------------------------------------

_stp_s_server_up() {
    S_SERVER_PORT=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$1")
    [ -n "$S_SERVER_PORT" ] || ! stp_alive "$S_SERVER_PID"
}

# stp_start_s_server OUT SECONDS CMD...: start CMD, an `openssl s_server -www
# -accept 127.0.0.1:0 ...` (possibly behind `timeout`, `env` or valgrind),
# stdout in OUT, stderr in OUT.err, stdin from /dev/null (-www: s_server does
# not read it). Waits up to SECONDS (whole seconds) for its "ACCEPT
# host:port" line, printed once it listens on the port the kernel chose.
# Sets S_SERVER_PORT and S_SERVER_PID (registered).
stp_start_s_server() {
    local out=$1 limit=$2
    shift 2
    : >"$out"
    "$@" </dev/null >"$out" 2>"$out.err" &
    S_SERVER_PID=$!
    stp_register_pid "$S_SERVER_PID"
    S_SERVER_PORT=
    STP_WAIT=$limit stp_wait_for _stp_s_server_up "$out" || true
    if [ -n "$S_SERVER_PORT" ]; then
        export S_SERVER_PORT S_SERVER_PID
        return 0
    fi
    if ! stp_alive "$S_SERVER_PID"; then
        cat "$out.err" >&2
        stp_fail "s_server exited during startup: $*"
    fi
    stp_fail "s_server printed no ACCEPT line within $limit s: $*"
}

# stp_serve_s_server ROUTE CONF LEAF [VAR=VALUE...] [-- ARG...]: starts
# `openssl s_server -www` on 127.0.0.1 with the certificate LEAF.pem, its key
# LEAF.key and the chain int.pem, under ROUTE with the policy CONF
# (stp_route_env), VAR=VALUE in its environment and ARGs appended to its
# command line, as $STP_AS when set. LEAF is a leaf of the PKI in $P (good,
# ecdsa, ...) or a path DIR/NAME to a copy elsewhere (with DIR/int.pem).
# Output in $T/s_server.out (and .err); sets PORT, and S_SERVER_PORT and
# S_SERVER_PID (stp_start_s_server: 5 s to listen).
stp_serve_s_server() {
    local route=$1 conf=$2 leaf=$3 dir envs=()
    shift 3
    while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
        envs+=("$1")
        shift
    done
    if [ "$#" -gt 0 ]; then shift; fi
    case $leaf in
    */*) dir=${leaf%/*} ;;
    *)
        dir=$P
        leaf=$P/$leaf
        ;;
    esac
    # shellcheck disable=SC2046 # stp_route_env prints one VAR=value per word
    stp_start_s_server "$T/s_server.out" 5 "${STP_AS[@]}" env \
        $(stp_route_env "$route" "$conf") "${envs[@]}" \
        openssl s_server -www -accept 127.0.0.1:0 -cert "$leaf.pem" \
        -key "$leaf.key" -cert_chain "$dir/int.pem" "$@"
    PORT=$S_SERVER_PORT
}

# ---- real servers: ports and processes -------------------------------------

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

# stp_children PID: PID's children, sorted, on one line.
stp_children() {
    { pgrep -P "$1" || true; } | sort -n | paste -sd' '
}

# stp_wait_regenerated PID OLD MIN NAME: waits (STP_WAIT, default 20 s)
# until PID (a master after its reload) has at least MIN children and none
# of OLD (its children before); fails naming NAME otherwise.
stp_wait_regenerated() {
    local pid=$1 old=$2 min=$3
    # shellcheck disable=SC2317 # called by stp_wait_for
    _stp_regenerated() {
        local c now
        now=$(stp_children "$pid")
        [ "$(wc -w <<<"$now")" -ge "$min" ] || return 1
        for c in $old; do
            [[ " $now " != *" $c "* ]] || return 1
        done
    }
    STP_WAIT=${STP_WAIT:-20} stp_wait_for _stp_regenerated ||
        stp_fail "$4 did not reload (children '$old' -> '$(stp_children "$pid")')"
    echo "$4 $pid reloaded: children $(stp_children "$pid")" >&2
}

# stp_alive PID: PID runs (a zombie does not: a daemon's reaper may be slow).
stp_alive() {
    local st
    st=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "${st%% *}" != Z ]
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

# ---- real servers: start and stop -----------------------------------------

# _stp_srv_up [READY]: $SRV_PID (or a child of it) alone listens on $PORT,
# and READY, when not empty, succeeds.
_stp_srv_up() {
    stp_port_owned "$PORT" "$SRV_PID" && { [ -z "${1:-}" ] || "$1"; }
}

_stp_srv_up_or_gone() {
    ! stp_alive "$SRV_PID" || _stp_srv_up "$@"
}

# stp_start_server NAME LAUNCH [READY [LOG...]]: starts a server on a free
# port: sets PORT (stp_free_port) and calls LAUNCH, a function of the test
# that writes the configuration for $PORT and starts the server, setting
# SRV_PID (the process that listens, or its parent) and returning non-zero
# when the server could not start. Waits (STP_WAIT) until SRV_PID or a child
# of it alone listens on $PORT and READY (a function of the test, when given
# and not empty: say, all its workers run) succeeds; if the server exited
# instead (a parallel test took the port first), starts it again on another
# port, 3 times at most, showing the LOG files after each failed try. SRV_PID
# is registered for the exit cleanup.
stp_start_server() {
    local name=$1 launch=$2 ready=${3:-} try f
    shift "$(($# < 3 ? $# : 3))"
    for ((try = 1; try <= 3; try++)); do
        PORT=$(stp_free_port)
        SRV_PID=
        if "$launch" && [ -n "$SRV_PID" ]; then
            stp_register_pid "$SRV_PID"
            stp_wait_for _stp_srv_up_or_gone "$ready" || true
            if _stp_srv_up "$ready"; then
                echo "$name $SRV_PID listens on 127.0.0.1:$PORT" >&2
                export PORT SRV_PID
                return 0
            fi
            for f in "$@"; do
                _stp_show "$f"
            done
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
