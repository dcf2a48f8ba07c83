#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_bystander.sh ROUTE: a process that never serves TLS pays nothing for a
# system-wide openssl.cnf that loads ocspstaple (or for LD_PRELOAD): `openssl
# version`, a client-only `openssl s_client -status`, and a client on the
# generic TLS_method() that then forks (support/client_host.c) start no
# thread, open nothing in the store directory and never map libcurl. strace
# proves it, and also proves that the module was loaded (so the test can
# fail). A broken ocspstaple section prints nothing on their output either
# (it is said in processes that serve TLS: it/s_server_badconf_*), and a
# policy with log_syslog connects no socket in them.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

stp_need openssl strace
stp_hook_need
stp_setup
ROUTE=${1:-provider}
P=$T/pki
mkdir -p "$P"
stp_mkpki "$P" 9 >/dev/null # no responder needed: nothing may be fetched
# log_syslog: a serving process connects its syslog socket, a bystander
# never does (strace sees every connect)
stp_conf "$T/stp.cnf" "$ROUTE" "log_syslog = $T/devlog"

# traced NAME CMD...: runs CMD under $ROUTE, tracing file opens and thread
# creation into $T/NAME.trace.
traced() {
    local name=$1
    shift
    # shellcheck disable=SC2046
    timeout 20 env $(stp_route_env "$ROUTE" "$T/stp.cnf") \
        strace -f -qq -e trace=openat,open,clone,clone3,connect -o "$T/$name.trace" \
        "$@" </dev/null >"$T/$name.out" 2>&1 || true
}

check() {
    local trace=$T/$1.trace
    [ -s "$trace" ] || stp_fail "$1: no trace"
    stp_assert_file_contains "$trace" "libocspstaple.so" "$1: the module is loaded"
    stp_assert_file_lacks "$trace" "CLONE_THREAD" "$1: no thread"
    stp_assert_file_lacks "$trace" "libcurl" "$1: libcurl not loaded"
    stp_assert_file_lacks "$trace" "$T/store" "$1: nothing opened in the store"
    stp_assert_file_lacks "$trace" "$T/devlog" "$1: no syslog socket connected"
    [ ! -e "$T/store" ] || stp_fail "$1: the store directory was created"
}

traced version openssl version
stp_assert_file_contains "$T/version.out" "OpenSSL 3" "openssl version ran"
check version

# a plain server (no hook) for the client to talk to
stp_start_s_server "$T/srv.out" 5 env OPENSSL_CONF=/dev/null \
    openssl s_server -www -accept 127.0.0.1:0 -cert "$P/good.pem" \
    -key "$P/good.key"
traced client openssl s_client -connect "127.0.0.1:$S_SERVER_PORT" \
    -status -servername good.test
stp_assert_file_contains "$T/client.out" "CONNECTED" "the client connected"
check client
[ -x "${STP_CLIENT_HOST:-}" ] || stp_fail "STP_CLIENT_HOST is not set"
traced generic "$STP_CLIENT_HOST" "$S_SERVER_PORT"
stp_assert_file_contains "$T/generic.out" "handshake=ok" "the TLS_method() client connected"
check generic

# quiet NAME CMD...: CMD under $ROUTE with the broken policy, logging to its
# stderr (no OCSPSTAPLE_DEBUG file); nothing of ours may appear there
stp_conf "$T/bad.cnf" "$ROUTE" "mode = sometimes" "ca_file = $T/missing.pem"
quiet() {
    local name=$1
    shift
    # shellcheck disable=SC2046
    timeout 20 env $(stp_route_env "$ROUTE" "$T/bad.cnf") OCSPSTAPLE_DEBUG= \
        "$@" </dev/null >"$T/$name.quiet" 2>&1 || true
    stp_assert_file_lacks "$T/$name.quiet" "ocspstaple\[[0-9]|ERROR|invalid policy" \
        "$name: a broken section prints nothing in a bystander"
}
quiet version openssl version
stp_assert_file_contains "$T/version.quiet" "OpenSSL 3" "openssl version ran"
quiet client openssl s_client -connect "127.0.0.1:$S_SERVER_PORT" -status \
    -servername good.test
stp_assert_file_contains "$T/client.quiet" "CONNECTED" "the client connected"
quiet generic "$STP_CLIENT_HOST" "$S_SERVER_PORT"
stp_assert_file_contains "$T/generic.quiet" "handshake=ok" "the TLS_method() client connected"
stp_ok "bystander $ROUTE"
