#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_shared.sh ROUTE: one store for the users of two servers, as a host with
# nginx and HAProxy runs them: nginx's workers as www-data, HAProxy as
# haproxy (both started as root, dropping privileges), both in group
# ssl-cert, store_group = ssl-cert. Cold start, both serving good.test:
#   - the store is made ssl-cert's, setgid, 2770, by whichever starts first;
#   - one responder request for both servers (the store's lock);
#   - `ocspstaple fetch --force` run as root afterwards leaves every file
#     ssl-cert's (the setgid directory), and both servers serve the new
#     response (the store's "changed" file) with no request of their own;
#   - a user outside the group (nobody) cannot read the store.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

ROUTE=${1:-preload}
GROUP=ssl-cert
stp_need nginx haproxy openssl curl setpriv
[ "$(id -u)" -eq 0 ] || {
    echo "SKIP: the servers must start as root to drop to their users" >&2
    exit 77
}
for u in www-data haproxy nobody; do
    id -u "$u" >/dev/null 2>&1 || {
        echo "SKIP: no user $u" >&2
        exit 77
    }
done
getent group "$GROUP" >/dev/null || {
    echo "SKIP: no group $GROUP" >&2
    exit 77
}
case ${STP_SANITIZER_PRELOAD:-} in
*asan*)
    # HAProxy under the ASan runtime fetches nothing (t_haproxy.sh says why)
    echo "SKIP: HAProxy under the ASan runtime" >&2
    exit 77
    ;;
esac
stp_hook_need
stp_setup
chmod 711 "$T" # the servers' users reach the store through $T
P=$T/pki
N=$T/nginx
H=$T/haproxy
CONF=$T/stp.cnf
S=$T/store
mkdir -p "$P" "$N" "$H"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
cat "$P/good.pem" "$P/good.key" "$P/int.pem" >"$H/good.pem"
stp_conf "$CONF" "$ROUTE" "store_group = $GROUP"
CA=(--servername good.test --CAfile "$P/root.pem")

haproxy_launch() {
    cat >"$H/haproxy.cfg" <<EOF
global
    user haproxy
    group $GROUP
defaults
    mode http
    timeout connect 5s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:$PORT ssl crt $H/good.pem
    http-request return status 200 content-type text/plain string "ok"
EOF
    # shellcheck disable=SC2046
    # master-worker, as Debian's unit runs it (-Ws): the master (root)
    # forks the worker, which then drops to haproxy (design-notes.md,
    # "Resolved before the jail")
    env $(stp_route_env "$ROUTE" "$CONF") haproxy -W -db -f "$H/haproxy.cfg" \
        </dev/null >>"$H/stderr" 2>&1 &
    SRV_PID=$!
}

nginx_launch() {
    cat >"$N/nginx.conf" <<EOF
user www-data $GROUP;
worker_processes 2;
daemon off;
pid $N/nginx.pid;
error_log $N/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $N/tmp_body;
    proxy_temp_path $N/tmp_proxy;
    fastcgi_temp_path $N/tmp_fastcgi;
    uwsgi_temp_path $N/tmp_uwsgi;
    scgi_temp_path $N/tmp_scgi;
    server {
        listen 127.0.0.1:$PORT ssl;
        server_name good.test;
        ssl_certificate $P/good.chain.pem;
        ssl_certificate_key $P/good.key;
        location / { return 200 "good\n"; }
    }
}
EOF
    rm -f "$N/nginx.pid"
    # shellcheck disable=SC2046
    env $(stp_route_env "$ROUTE" "$CONF") nginx -p "$N/" -c "$N/nginx.conf" \
        -e "$N/error.log" </dev/null >>"$N/stderr" 2>&1 &
    SRV_PID=$!
}

nginx_up() {
    [ -s "$N/nginx.pid" ] && [ "$(stp_nchildren "$SRV_PID")" -eq 2 ]
}

stp_start_server haproxy haproxy_launch "" "$H/stderr"
HA_PID=$SRV_PID
HA_PORT=$PORT
stp_wait_staple "$HA_PORT" "${CA[@]}"
stp_start_server nginx nginx_launch nginx_up "$N/stderr" "$N/error.log"
NG_PID=$SRV_PID
NG_PORT=$PORT
stp_wait_staple "$NG_PORT" "${CA[@]}"
stp_assert_requests 1 "one request for both servers"
stp_assert_eq "$(stat -c '%G %a' "$S")" "$GROUP 2770" "the store: $GROUP's, setgid, 2770"
# what each server user wrote (HAProxy the response, nginx's workers their
# lists) is the group's
[ -z "$(find "$S" -maxdepth 1 -type f ! -group "$GROUP")" ] ||
    stp_fail "files of the store outside group $GROUP: $(find "$S" -maxdepth 1 -type f ! -group "$GROUP" -printf '%f %u:%g\n')"
stp_ok "both servers staple from one request; every file is $GROUP's"

# root refreshes it: nothing becomes root's alone, and both serve it
old=$(stp_probe_this_update)
stp_next_second
"$STP_CLI" fetch "$P/good.chain.pem" --conf "$CONF" --force >&2 ||
    stp_fail "ocspstaple fetch --force as root"
[ -z "$(find "$S" -maxdepth 1 -type f ! -group "$GROUP")" ] ||
    stp_fail "after fetch as root, files outside group $GROUP: $(find "$S" -maxdepth 1 -type f ! -group "$GROUP" -printf '%f %u:%g\n')"
new=$(stp_file_this_update "$S/$(stp_id good).der")
[ "$new" != "$old" ] || stp_fail "fetch --force stored no new response"
both_new() {
    local port i
    for port in "$HA_PORT" "$NG_PORT" "$NG_PORT"; do
        for ((i = 0; i < 2; i++)); do
            stp_probe "$port" "${CA[@]}" --require-staple
            [ "$(stp_probe_this_update)" = "$new" ] || return 1
        done
    done
}
STP_WAIT=30 stp_wait_for both_new || stp_fail "not both servers serve root's new response"
stp_assert_requests 2 "one more request: the CLI's"
stp_ok "after fetch --force as root both servers serve its response"

# outside the group, the store cannot even be listed
if setpriv --reuid=nobody --regid=nogroup --clear-groups -- ls "$S" >/dev/null 2>&1; then
    stp_fail "nobody can list the store"
fi
stp_stop_server "$NG_PID" nginx
stp_stop_server "$HA_PID" haproxy
stp_no_errors "$T/hook.log"
stp_ok "shared store ($ROUTE)"
