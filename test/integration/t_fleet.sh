#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_fleet.sh SCENARIO ROUTE: the fleet tier (issue #12) with a real
# redis-server on 127.0.0.1 and "hosts" that are separate nginx instances
# (one worker each, as www-data), each with its own store directory and its
# own policy (fleet_host hostA, hostB, ...), all serving good.test (RSA) and
# ecdsa.test (ECDSA) through the hook (ROUTE provider or preload), all asking
# one responder (its log counts requests per serial number) and sharing one
# Redis database (fleet_url = redis://127.0.0.1:PORT/2). Scenarios:
#   cold     3 hosts started at once, cold: each staples both names, with
#            exactly one responder request per certificate for the fleet;
#            every host holds the one response Redis holds (resp:<id>, its
#            TTL nextUpdate - now), the lease is released, meta:<id> names
#            the host and the worker that fetched it; the others say they
#            took the fleet's response; `ocspstaple status --fleet` names
#            the fetcher; no nginx master holds a connection to Redis
#   join     cold, then a 4th host with an empty store: its first handshake,
#            after its refresher's first pass, is stapled, with no request
#   outage   responses valid 120 s refreshed every 12 s (refresh_margin 90,
#            no jitter): cold, then Redis killed (SIGKILL): every host keeps
#            stapling and fetches for itself (one request per host per
#            certificate per round, two rounds), each says once that the
#            fleet is unreachable; Redis started again on its port: each
#            says once that it is reachable again, and a round after that
#            costs one request per certificate for the fleet
#   forged   the same rounds; before each of three, resp:<good's id>
#            overwritten with garbage, with ecdsa.test's valid response, and
#            with an older valid response of good.test: refused (a WARN
#            fleet line), never stored nor stapled by any host (each staple
#            probed through the round), one host fetches and overwrites it
#   lease    a lease on good.test held by a dead host (SET lease:<id> x PX
#            4000) when 3 hosts start cold: ecdsa.test stapled meanwhile, no
#            request for good.test while that lease lives, exactly one
#            after it expired, every host stapled with it
#   auth     Redis with requirepass: 3 hosts whose fleet_auth_file (root's,
#            0600: read before the workers drop privileges) holds a wrong
#            password each say once that AUTH was refused and fetch for
#            themselves, and so does a 4th whose file others may read (an
#            ERROR names it); nothing in Redis; the right password: 3 new
#            hosts, one request per certificate; an ACL user ("USER
#            PASSWORD", keys limited to the prefix, the workers' user's file,
#            0400): one more host joins with no request; no password in any
#            log
#   cli      (one route) `ocspstaple refresh` is a fleet member: a store
#            whose responses are due while the fleet holds newer ones takes
#            them ("taken from the fleet") with no request; with the fleet
#            holding nothing newer, it fetches, publishes (meta host = its
#            fleet_host) and releases the lease; `status --fleet` names it
# Every scenario ends by stopping each host (none of its processes may
# survive), with no ERROR line in a hook log (but those a scenario
# expects) and no warning or error in nginx's logs.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"
# shellcheck source-path=SCRIPTDIR source=../support/redis.sh
source "$STP_SUPPORT/redis.sh"

SCEN=${1:?scenario}
ROUTE=${2:-preload}
RUN_USER=www-data

case $SCEN in
cold | join | outage | forged | lease | auth | cli) ;;
*) stp_fail "unknown scenario $SCEN" ;;
esac
stp_need nginx openssl sha256sum ss pgrep ps timeout cmp awk
stp_redis_need
id -u "$RUN_USER" >/dev/null 2>&1 || {
    echo "SKIP: no user $RUN_USER" >&2
    exit 77
}
[ "$(id -u)" -eq 0 ] || {
    echo "SKIP: nginx's master must run as root to switch to $RUN_USER" >&2
    exit 77
}
stp_hook_need
NGINX=$(command -v nginx)
stp_setup
chmod 711 "$T" # the workers (www-data) reach their stores through $T
P=$T/pki
mkdir -p "$P"

# ---- the responder, the PKI, the policy of every host -----------------------

RARGS=()
POLICY=("ca_file = $P/root.pem") # for `ocspstaple status`
ROUND=12 # s from a response's thisUpdate to its refresh (rounds scenarios)
case $SCEN in
outage | forged | cli)
    # responses valid 120 s, refreshed at 90% of it: thisUpdate + 12 s on
    # every host that holds the same response (no jitter; clock_skew 5 s is
    # below); a response taken from the fleet right after it was published
    # is not due
    RARGS=(--nmin 2)
    POLICY+=("refresh_margin = 90" "refresh_min = 10s" "refresh_jitter = 0s"
        "clock_skew = 5s")
    ;;
esac
stp_start_responder "$P" "${RARGS[@]}"
stp_mkpki "$P" "$RESPONDER_PORT"
# the default prefix in cold and join, another one (fleet_prefix) elsewhere
PREFIX=ocspstaple:
case $SCEN in
cold | join) ;;
*)
    PREFIX=stpit/
    POLICY+=("fleet_prefix = $PREFIX")
    ;;
esac
NAMES=(good ecdsa)
declare -A CID SERIAL
for n in "${NAMES[@]}"; do
    CID[$n]=$(stp_id "$n")
    SERIAL[$n]=$(openssl x509 -noout -serial -in "$P/$n.pem" | sed 's/^serial=0*//')
done
CA=(--CAfile "$P/root.pem")

# r ARGS...: redis-cli on the fleet's database
REDIS_DB=2
r() { stp_redis "$@"; }

# ---- hosts: one nginx each, its own store, policy and hook log --------------

declare -A HPORT HPID
HOSTS=() # the hosts running now
EVER=()  # every host started, for the final checks

# host_conf H [LINE...]: H's openssl.cnf ($T/H/stp.cnf): the store $T/H/store
# (www-data's), the fleet under the name H with the password in AUTH_FILE
# (if set), POLICY and LINEs.
AUTH_FILE=
host_conf() {
    local h=$1 d=$T/$1 auth=()
    shift
    mkdir -p "$d/nginx" "$d/store"
    chown "$RUN_USER:" "$d/store"
    if [ -n "$AUTH_FILE" ]; then
        auth=("fleet_auth_file = $AUTH_FILE")
    fi
    stp_conf "$d/stp.cnf" "$ROUTE" \
        "fleet_url = redis://127.0.0.1:$REDIS_PORT/$REDIS_DB" "fleet_host = $h" \
        "${auth[@]}" "${POLICY[@]}" "$@"
    sed -i "s|^store_dir = .*|store_dir = $d/store|" "$d/stp.cnf"
}

# host_launch H: H's nginx in the foreground on ${HPORT[H]}, one worker
# (www-data), both names; its hook log is $T/H/hook.log.
host_launch() {
    local h=$1 d=$T/$1
    cat >"$d/nginx/nginx.conf" <<EOF
user $RUN_USER;
worker_processes 1;
daemon off;
pid $d/nginx/nginx.pid;
error_log $d/nginx/error.log info;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $d/nginx/tmp_body;
    proxy_temp_path $d/nginx/tmp_proxy;
    fastcgi_temp_path $d/nginx/tmp_fastcgi;
    uwsgi_temp_path $d/nginx/tmp_uwsgi;
    scgi_temp_path $d/nginx/tmp_scgi;
    server {
        listen 127.0.0.1:${HPORT[$h]} ssl;
        server_name good.test;
        ssl_certificate $P/good.chain.pem;
        ssl_certificate_key $P/good.key;
        location / { return 200 "$h good\n"; }
    }
    server {
        listen 127.0.0.1:${HPORT[$h]} ssl;
        server_name ecdsa.test;
        ssl_certificate $P/ecdsa.chain.pem;
        ssl_certificate_key $P/ecdsa.key;
        location / { return 200 "$h ecdsa\n"; }
    }
}
EOF
    rm -f "$d/nginx/nginx.pid"
    # shellcheck disable=SC2046 # stp_route_env prints one VAR=value per word
    env $(stp_route_env "$ROUTE" "$d/stp.cnf") \
        "OCSPSTAPLE_DEBUG=level:debug,file:$d/hook.log" \
        "$NGINX" -p "$d/nginx/" -c "$d/nginx/nginx.conf" -e "$d/nginx/error.log" \
        </dev/null >>"$d/nginx/stderr" 2>&1 &
    HPID[$h]=$!
    stp_register_pid "${HPID[$h]}"
}

# host_up H: H's master wrote its pid file, runs its worker and alone
# listens on its port.
host_up() {
    local pidf=$T/$1/nginx/nginx.pid
    [ -s "$pidf" ] && [ "$(<"$pidf")" = "${HPID[$1]}" ] &&
        [ "$(stp_nchildren "${HPID[$1]}")" -eq 1 ] &&
        stp_port_owned "${HPORT[$1]}" "${HPID[$1]}"
}

host_up_or_gone() {
    ! stp_alive "${HPID[$1]}" || host_up "$1"
}

# pick_port: a free port that no host, the responder or Redis has.
pick_port() {
    local p h taken
    while :; do
        p=$(stp_free_port)
        taken=0
        for h in "${!HPORT[@]}"; do
            [ "${HPORT[$h]}" != "$p" ] || taken=1
        done
        if [ "$taken" = 0 ] && [ "$p" != "$REDIS_PORT" ] && [ "$p" != "$RESPONDER_PORT" ]; then
            echo "$p"
            return 0
        fi
    done
}

# start_hosts H...: every host's nginx launched at once (the fleet starts
# together), then each one awaited; one that did not come up (a parallel
# test took its port first) is launched again on another port, 3 tries.
start_hosts() {
    local h try pending=("$@") left
    for ((try = 1; try <= 3 && ${#pending[@]} > 0; try++)); do
        for h in "${pending[@]}"; do
            HPORT[$h]=$(pick_port)
            host_launch "$h"
        done
        left=()
        for h in "${pending[@]}"; do
            STP_WAIT=10 stp_wait_for host_up_or_gone "$h" || true
            if host_up "$h"; then
                echo "host $h: nginx ${HPID[$h]} (worker $(stp_children "${HPID[$h]}")) on 127.0.0.1:${HPORT[$h]}" >&2
                HOSTS+=("$h")
                EVER+=("$h")
            else
                _stp_show "$T/$h/nginx/stderr"
                _stp_show "$T/$h/nginx/error.log"
                stp_stop_pid "${HPID[$h]}"
                stp_forget_pid "${HPID[$h]}"
                echo "host $h did not come up on port ${HPORT[$h]} (try $try)" >&2
                left+=("$h")
            fi
        done
        pending=("${left[@]}")
    done
    [ "${#pending[@]}" -eq 0 ] || stp_fail "nginx did not start for ${pending[*]}"
}

# stop_host H: SIGTERM to H's master; none of H's processes may survive.
stop_host() {
    local h=$1 i keep=()
    stp_stop_pid "${HPID[$h]}"
    stp_forget_pid "${HPID[$h]}"
    stp_assert_no_server "$NGINX" "$T/$h"
    for i in "${HOSTS[@]}"; do
        [ "$i" = "$h" ] || keep+=("$i")
    done
    HOSTS=("${keep[@]}")
}

# hooked H: H's processes use the policy in $T/H/stp.cnf (not a default one,
# and not passive: a policy problem would leave the module passive).
hooked() {
    stp_assert_file_lacks "$T/$1/hook.log" "no ocspstaple section|stays passive|/var/cache/ocspstaple" \
        "$1: the policy in $T/$1/stp.cnf is in force"
    stp_assert_file_contains "$T/$1/hook.log" "tracking certificate" \
        "$1: the certificates are tracked"
}

# staples H...: every host H staples both names, each with its own good,
# verified response (bounded wait for the first one).
staples() {
    local h n
    for h in "$@"; do
        for n in "${NAMES[@]}"; do
            stp_wait_staple "${HPORT[$h]}" --servername "$n.test" "${CA[@]}"
            stp_expect_probe 0 "$h: $n.test stapled"
            stp_verified "$n.test"
        done
    done
}

# ---- counting: the responder's requests, the hosts' logs ---------------------

# req_for NAME: the responder's requests for NAME's certificate.
req_for() {
    if [ -f "$P/responder.log" ]; then
        awk -v s="${SERIAL[$1]}" '{ v = toupper($NF); sub(/^0+/, "", v) }
            v == s { n++ } END { print n + 0 }' "$P/responder.log"
    else
        echo 0
    fi
}

# why_requests: what the responder and each host said of their fetches.
why_requests() {
    local h n
    echo "--- $P/responder.log (seq method len mode status serial):" >&2
    cat "$P/responder.log" >&2 2>/dev/null || true
    for n in "${NAMES[@]}"; do
        echo "--- $n.test: serial ${SERIAL[$n]}, id ${CID[$n]}" >&2
    done
    for h in "${EVER[@]}"; do
        echo "--- $h: refresh and fleet lines of $T/$h/hook.log:" >&2
        grep -E " (refresh|fleet|fetch|pool|store): " "$T/$h/hook.log" >&2 || true
    done
}

# assert_req NAME N MSG: the responder got exactly N requests for NAME.
assert_req() {
    local got
    got=$(req_for "$1")
    [ "$got" = "$2" ] && return 0
    why_requests
    stp_fail "$3: $got request(s) for $1.test, want $2"
}

# log_lines H LEVEL FIXED...: how many lines of H's hook log are at LEVEL
# ("" for any) and contain every FIXED string (the first one, "fleet",
# in any case).
log_lines() {
    local f=$T/$1/hook.log lvl=$2 out w
    shift 2
    [ -f "$f" ] || {
        echo 0
        return
    }
    out=$(cat "$f")
    if [ -n "$lvl" ]; then
        out=$(grep -F -- " $lvl " <<<"$out" || true)
    fi
    for w in "$@"; do
        if [ "$w" = fleet ]; then
            out=$(grep -iF -- "$w" <<<"$out" || true)
        else
            out=$(grep -F -- "$w" <<<"$out" || true)
        fi
    done
    if [ -z "$out" ]; then echo 0; else wc -l <<<"$out"; fi
}

# took H NAME: how many times H said it took NAME's response from the fleet.
took() {
    { grep -E -- " refresh: [^ ]*$2\\.test.*took the fleet's ([a-z]+ )?response" \
        "$T/$1/hook.log" 2>/dev/null || true; } | wc -l
}

# ---- what the hosts and the fleet hold ---------------------------------------

# der_sum H NAME: the SHA-256 of H's stored response for NAME ("-": none).
der_sum() {
    local f=$T/$1/store/${CID[$2]}.der
    if [ -s "$f" ]; then sha256sum <"$f" | cut -c1-64; else echo -; fi
}

# fleet_get NAME FILE: FILE holds the fleet's response for NAME; 1: none.
fleet_get() {
    r STRLEN "$PREFIX""resp:${CID[$1]}" >/dev/null 2>&1 || return 1
    stp_redis_get_file "$PREFIX""resp:${CID[$1]}" "$2" 2>/dev/null ||
        return 1
}

# fleet_sum NAME: the SHA-256 of the fleet's response for NAME ("-": none,
# or Redis cannot be asked).
fleet_sum() {
    if fleet_get "$1" "$T/fleet.$1.der"; then
        sha256sum <"$T/fleet.$1.der" | cut -c1-64
    else
        echo -
    fi
}

# synced NAME NOT H...: every host H holds the response for NAME that the
# fleet holds, and it is not NOT.
synced() {
    local n=$1 not=$2 s h
    shift 2
    s=$(fleet_sum "$n")
    [ "$s" != - ] && [ "$s" != "$not" ] || return 1
    for h in "$@"; do
        [ "$(der_sum "$h" "$n")" = "$s" ] || return 1
    done
}

# wait_synced NAME NOT LIMIT H...: synced, within LIMIT s.
wait_synced() {
    local n=$1 not=$2 limit=$3
    shift 3
    STP_WAIT=$limit stp_wait_for synced "$n" "$not" "$@" || {
        local h
        for h in "$@"; do echo "$h holds $(der_sum "$h" "$n")" >&2; done
        echo "the fleet holds $(fleet_sum "$n")" >&2
        why_requests
        stp_fail "not every host of ($*) holds the fleet's response for $n.test within $limit s"
    }
}

# Rounds. Every host that holds the same response refreshes it at the same
# second (thisUpdate + ROUND, no jitter), and writes when it will next try
# (<id>.state, next_attempt) after each attempt. settle waits for a quiet
# point: no host in a refresh cycle nor due within 2 s; then marks what
# each host holds and the requests so far; round awaits the next refresh
# of both names on every host.

# quiet H...: no host H is due for either name within 2 s (nor in a cycle,
# which a past next_attempt would say).
quiet() {
    local h n na now
    now=$(date +%s)
    for h in "$@"; do
        for n in "${NAMES[@]}"; do
            na=$(stp_state_get "$T/$h/store/${CID[$n]}.state" next_attempt 0)
            [ "$na" -ge $((now + 2)) ] || return 1
        done
    done
}

# mark H...: remembers what each host H holds now, and the requests so far.
declare -A MARK REQ0
mark() {
    local h n
    for n in "${NAMES[@]}"; do
        REQ0[$n]=$(req_for "$n")
        for h in "$@"; do
            MARK[$h.$n]=$(der_sum "$h" "$n")
        done
    done
}

# settle H...: a quiet point (bounded: one round), then mark.
settle() {
    STP_WAIT=$((ROUND + 8)) stp_wait_for quiet "$@" || {
        why_requests
        stp_fail "no quiet point between refresh rounds of ($*)"
    }
    mark "$@"
}

# renewed H...: every host H holds another response for both names than
# at the last mark.
renewed() {
    local h n
    for h in "$@"; do
        for n in "${NAMES[@]}"; do
            [ "$(der_sum "$h" "$n")" != "${MARK[$h.$n]}" ] || return 1
        done
    done
}

# round LIMIT MSG H...: awaits (LIMIT s) a new response of both names on
# every host H since the last mark (settle).
round() {
    local limit=$1 msg=$2 h n
    shift 2
    STP_WAIT=$limit stp_wait_for renewed "$@" && return 0
    for n in "${NAMES[@]}"; do
        for h in "$@"; do
            echo "$h holds $(der_sum "$h" "$n") for $n.test (at the mark: ${MARK[$h.$n]})" >&2
        done
    done
    why_requests
    stp_fail "$msg: not every host of ($*) renewed both responses within $limit s"
}

# fleet_round MSG H...: a round in which the fleet asked the responder once
# per certificate (one_fetch).
fleet_round() {
    round $((ROUND + 8)) "$@"
    one_fetch "$@"
}

# one_fetch MSG H...: one request for each certificate since the mark, and
# every host H holds the response the fleet holds.
one_fetch() {
    local msg=$1 n
    shift
    for n in "${NAMES[@]}"; do
        assert_req "$n" $((REQ0[$n] + 1)) "$msg: one request for $n.test"
        synced "$n" - "$@" || {
            why_requests
            stp_fail "$msg: not every host of ($*) holds the fleet's response for $n.test"
        }
    done
}

# file_next_update FILE: the nextUpdate of the DER response FILE (epoch s).
file_next_update() {
    local t
    t=$("$STP_CLI" show "$1" | sed -n 's/.*Next Update: //p')
    [ -n "$t" ] || stp_fail "no nextUpdate in $1"
    date -d "${t%%$'\n'*}" +%s
}

# fleet_keys NAME FETCHER T0 H...: what the fleet holds for NAME after
# FETCHER fetched it (at T0 or later): the response (its TTL nextUpdate -
# now), no lease left, the meta hash naming FETCHER, a worker of its nginx,
# and a time since T0; and the others (H...) said they took it.
fleet_keys() {
    local n=$1 fh=$2 t0=$3 id=${CID[$1]} ttl nu now pid at h
    shift 3
    fleet_get "$n" "$T/fleet.$n.der" || stp_fail "no $PREFIX""resp:$id in the fleet"
    nu=$(file_next_update "$T/fleet.$n.der")
    ttl=$(r TTL "$PREFIX""resp:$id")
    now=$(date +%s)
    if [ "$ttl" -gt $((nu - now + 1)) ] || [ "$ttl" -lt $((nu - now - 10)) ]; then
        stp_fail "$n.test: the fleet's response lives ${ttl}s, nextUpdate is in $((nu - now))s"
    fi
    stp_assert_eq "$(r EXISTS "$PREFIX""lease:$id")" 0 "$n.test: the lease was released"
    stp_assert_eq "$(r HGET "$PREFIX""meta:$id" host)" "$fh" "$n.test: meta host"
    pid=$(r HGET "$PREFIX""meta:$id" pid)
    if [ -z "${HPID[$fh]:-}" ] || [[ " $(stp_children "${HPID[$fh]}") " != *" $pid "* ]]; then
        stp_fail "$n.test: meta pid '$pid' is not $fh's nginx worker ($(stp_children "${HPID[$fh]:-0}"))"
    fi
    at=$(r HGET "$PREFIX""meta:$id" at)
    if ! [[ $at =~ ^[0-9]+$ ]] || [ "$at" -lt "$t0" ] || [ "$at" -gt "$now" ]; then
        stp_fail "$n.test: meta at '$at' is not in [$t0, $now]"
    fi
    for h in "$@"; do
        [ "$h" = "$fh" ] && continue
        [ "$(took "$h" "$n")" -ge 1 ] || {
            _stp_show "$T/$h/hook.log"
            stp_fail "$h does not say it took the fleet's response for $n.test"
        }
    done
}

# fetcher NAME: the host that published NAME's response (meta host).
fetcher() { r HGET "$PREFIX""meta:${CID[$1]}" host; }

# no_master_connection: no nginx master holds a connection to Redis (only
# refreshers, in the workers, talk to it), and none is shared by two
# processes.
no_master_connection() {
    local line pids h n=0
    while read -r line; do
        [ -n "$line" ] || continue
        n=$((n + 1))
        pids=$(grep -o 'pid=[0-9]*' <<<"$line" | cut -d= -f2 | sort -u)
        [ "$(wc -l <<<"$pids")" -le 1 ] ||
            stp_fail "a connection to Redis shared by processes $(paste -sd' ' <<<"$pids"): $line"
        for h in "${HOSTS[@]}"; do
            [ "$pids" != "${HPID[$h]}" ] ||
                stp_fail "$h's nginx master (${HPID[$h]}) holds a connection to Redis: $line"
        done
    done < <(ss -Htnp state established "( dport = :$REDIS_PORT )" 2>/dev/null || true)
    echo "$n connection(s) to Redis, none of them a master's" >&2
}

# status_fleet H: `ocspstaple status --fleet` with H's store and policy
# names, for each name, the host that published its response.
status_fleet() {
    local h=$1 n fh
    stp_cli status --fleet --store-dir "$T/$h/store" --conf "$T/$h/stp.cnf"
    stp_assert_eq "$RC" 0 "status --fleet ($h)"
    stp_assert_eq "$(grep -c "fleet: fetched by " "$OUT")" "${#NAMES[@]}" \
        "status --fleet: one fleet line per certificate"
    for n in "${NAMES[@]}"; do
        fh=$(fetcher "$n")
        grep -A1 "^${CID[$n]:0:12} " "$OUT" | grep -q "fleet: fetched by $fh " ||
            stp_fail "status --fleet: $n.test is not said fetched by $fh"
    done
}

# cold_fleet H...: the hosts, started at once with empty stores (and an
# empty fleet), staple both names after one request per certificate for
# all of them; sets T0 (when they were started).
cold_fleet() {
    local h n
    for h in "$@"; do host_conf "$h"; done
    mark "$@" # nothing held yet
    T0=$(date +%s)
    start_hosts "$@"
    for h in "$@"; do hooked "$h"; done
    staples "$@"
    fleet_round "cold fleet of $#" "$@"
    for n in "${NAMES[@]}"; do
        fleet_keys "$n" "$(fetcher "$n")" "$T0" "$@"
    done
    stp_ok "cold fleet of $# ($*): both names stapled everywhere, one request per certificate (fetched by $(fetcher good), $(fetcher ecdsa))"
}

# no_forged_staple FILE H...: one handshake per host and name: each
# stapled with its own verified good response, and good.test's staple is
# not FILE's (its thisUpdate; a 1-day response is not the hosts' 120 s one).
no_forged_staple() {
    local f=$1 h tu=
    shift
    if "$STP_CLI" show "$f" >/dev/null 2>&1; then
        tu=$(stp_file_this_update "$f")
    fi
    for h in "$@"; do
        stp_probe "${HPORT[$h]}" --servername good.test "${CA[@]}" --require-staple
        stp_expect_probe 0 "$h: good.test stapled, verified"
        stp_verified good.test
        [ -z "$tu" ] || [ "$(stp_probe_this_update)" != "$tu" ] ||
            stp_fail "$h staples the forged response ($f, thisUpdate $tu)"
        stp_assert_eq "$(stp_probe_days)" 0 "$h: good.test's staple is a 120 s response of the responder"
    done
}

# ---- the scenarios -------------------------------------------------------------

HOOK_ERRORS_OK= # ERROR lines a scenario expects in the hook logs (grep -E)
case $SCEN in
cold | join)
    stp_redis_start "$T/redis" 0
    cold_fleet hostA hostB hostC
    no_master_connection
    status_fleet hostB
    if [ "$SCEN" = join ]; then
        host_conf hostD
        start_hosts hostD
        hooked hostD
        # its refresher's first pass takes both responses from the fleet
        took_both() { [ "$(took hostD good)" -ge 1 ] && [ "$(took hostD ecdsa)" -ge 1 ]; }
        STP_WAIT=10 stp_wait_for took_both || {
            _stp_show "$T/hostD/hook.log"
            stp_fail "hostD did not take both responses from the fleet"
        }
        for n in "${NAMES[@]}"; do
            stp_assert_eq "$(der_sum hostD "$n")" "$(fleet_sum "$n")" \
                "hostD stored the fleet's response for $n.test"
            # its first handshake for the name
            stp_probe "${HPORT[hostD]}" --servername "$n.test" "${CA[@]}" --require-staple
            stp_expect_probe 0 "hostD's first $n.test handshake is stapled"
            stp_verified "$n.test"
            assert_req "$n" 1 "hostD joined with no request for $n.test"
        done
        stp_ok "hostD joined the warm fleet: its first handshakes stapled, 0 requests"
    fi
    ;;
outage)
    stp_redis_start "$T/redis" 0
    cold_fleet hostA hostB hostC
    # Redis dies: every host fetches for itself, round after round
    mark "${HOSTS[@]}"
    stp_redis_kill
    t_kill=$(stp_ms)
    for round in 1 2; do
        round $((ROUND + 8)) "outage round $round" "${HOSTS[@]}"
        if [ "$round" = 1 ]; then
            echo "every host fetched for itself $(($(stp_ms) - t_kill)) ms after Redis died" >&2
        fi
        for n in "${NAMES[@]}"; do
            assert_req "$n" $((REQ0[$n] + 3)) "outage round $round: each host fetched $n.test for itself"
        done
        staples "${HOSTS[@]}"
        for h in "${HOSTS[@]}"; do
            stp_assert_eq "$(log_lines "$h" WARN fleet unreachable)" 1 \
                "outage round $round: $h said once that the fleet is unreachable"
        done
        settle "${HOSTS[@]}"
    done
    stp_ok "Redis down: every host staples and fetches for itself, each said so once"
    # Redis back on its port: each host says so once (at its next round),
    # and from the round after the last one did, one fetcher again
    stp_redis_start "$T/redis" "$REDIS_PORT"
    t_back=$(stp_ms)
    back() {
        local h
        for h in "${HOSTS[@]}"; do
            [ "$(log_lines "$h" "" fleet "reachable again")" -ge 1 ] || return 1
        done
    }
    STP_WAIT=$((30 + 2 * ROUND)) stp_wait_for back || {
        why_requests
        stp_fail "not every host found the fleet again"
    }
    echo "every host found the fleet again $(($(stp_ms) - t_back)) ms after Redis restarted" >&2
    settle "${HOSTS[@]}"
    fleet_round "a round after Redis came back" "${HOSTS[@]}"
    staples "${HOSTS[@]}"
    for h in "${HOSTS[@]}"; do
        stp_assert_eq "$(log_lines "$h" WARN fleet unreachable)" 1 "$h: unreachable said once"
        stp_assert_eq "$(log_lines "$h" "" fleet "reachable again")" 1 "$h: reachable again said once"
    done
    stp_ok "Redis back: each host said so once, one request per certificate per round"
    ;;
forged)
    # the forgeries: garbage; ecdsa.test's valid response; good.test's own
    # valid response (1 day), made before the hosts' first fetch
    head -c 900 /dev/urandom >"$T/garbage.der"
    stp_own_response ecdsa "$T/foreign.der" 1
    stp_own_response good "$T/older.der" 1
    stp_next_second # every response fetched from now on is newer
    stp_redis_start "$T/redis" 0
    cold_fleet hostA hostB hostC
    # while_forged FILE: until the round is over (every host renewed both
    # responses), every handshake is stapled with a good.test response that
    # is not FILE's
    while_forged() {
        no_forged_staple "$1" "${HOSTS[@]}"
        renewed "${HOSTS[@]}"
    }
    for kind in garbage foreign older; do
        f=$T/$kind.der
        settle "${HOSTS[@]}"
        declare -A W0=()
        for h in "${HOSTS[@]}"; do W0[$h]=$(log_lines "$h" WARN fleet refused); done
        stp_redis_set_file "$PREFIX""resp:${CID[good]}" "$f"
        STP_WAIT=$((ROUND + 8)) stp_wait_for while_forged "$f" || {
            why_requests
            stp_fail "$kind: not every host renewed its responses in the round"
        }
        # one host refused it, fetched and overwrote it; the others took
        # that (or refused it too, and waited for the lease holder's)
        one_fetch "$kind" "${HOSTS[@]}"
        cmp -s "$T/fleet.good.der" "$f" && stp_fail "$kind: the fleet still holds the forged value"
        said=0
        for h in "${HOSTS[@]}"; do
            cmp -s "$T/$h/store/${CID[good]}.der" "$f" && stp_fail "$kind: $h stored the forged value"
            w=$(($(log_lines "$h" WARN fleet refused) - W0[$h]))
            [ "$w" -le 1 ] || stp_fail "$kind: $h said $w times that it refused the fleet's value"
            said=$((said + w))
        done
        [ "$said" -ge 1 ] || {
            why_requests
            stp_fail "$kind: no host said (WARN, fleet, refused) that it refused the forged value"
        }
        no_forged_staple "$f" "${HOSTS[@]}"
        stp_ok "$kind value in the fleet: refused ($said host(s) said so), never stored nor stapled, replaced with one request"
    done
    grep -hE " WARN fleet: .*refused" "$T"/host?/hook.log >&2 || true
    ;;
lease)
    stp_redis_start "$T/redis" 0
    for h in hostA hostB hostC; do host_conf "$h"; done
    [ "$(r SET "$PREFIX""lease:${CID[good]}" x PX 4000)" = OK ] || stp_fail "SET lease"
    t_set=$(stp_ms)
    start_hosts hostA hostB hostC
    for h in "${HOSTS[@]}"; do hooked "$h"; done
    # ecdsa.test (no lease) is fetched at once, once
    for h in "${HOSTS[@]}"; do
        stp_wait_staple "${HPORT[$h]}" --servername ecdsa.test "${CA[@]}"
        stp_verified ecdsa.test
    done
    held_ms=$(r PTTL "$PREFIX""lease:${CID[good]}")
    [ "$held_ms" -gt 0 ] || stp_fail "the dead host's lease expired before ecdsa.test was stapled on every host ($(($(stp_ms) - t_set)) ms): too slow to tell"
    echo "ecdsa.test stapled on every host with ${held_ms} ms left on good.test's dead lease" >&2
    # no request for good.test while the dead host's lease lives
    # (counted before the lease is read: a request counted then came
    # while it still lived)
    lease_gone() {
        local c v
        c=$(req_for good)
        v=$(r GET "$PREFIX""lease:${CID[good]}")
        if [ "$v" = x ]; then
            [ "$c" = 0 ] || {
                why_requests
                stp_fail "a request for good.test while the dead host's lease lived"
            }
            return 1
        fi
    }
    STP_WAIT=10 stp_wait_for lease_gone || stp_fail "the lease did not expire"
    t_exp=$(stp_ms)
    assert_req ecdsa 1 "one request for ecdsa.test"
    for h in "${HOSTS[@]}"; do
        STP_WAIT=10 stp_wait_staple "${HPORT[$h]}" --servername good.test "${CA[@]}"
        stp_verified good.test
    done
    echo "good.test stapled on every host $(($(stp_ms) - t_exp)) ms after the lease expired ($((t_exp - t_set)) ms after it was set)" >&2
    wait_synced good - 10 "${HOSTS[@]}"
    assert_req good 1 "exactly one request for good.test after the lease expired"
    fleet_keys good "$(fetcher good)" "$(((t_set + 999) / 1000))" "${HOSTS[@]}"
    stp_ok "a dead host's lease: no request while it lived, one after, every host stapled"
    ;;
auth)
    PASS="fleet-pw-4711"
    WRONG="not-the-pw-0815"
    ACLPASS="acl-pw-2342"
    stp_redis_start "$T/redis" 0 --requirepass "$PASS"
    printf '%s\n' "$WRONG" >"$T/auth.wrong"
    printf '%s\n' "$PASS" >"$T/auth.right"
    printf 'fleetuser %s\n' "$ACLPASS" >"$T/auth.acl"
    printf '%s\n' "$PASS" >"$T/auth.open"
    # root's 0600 (the servers read it before they drop privileges), the
    # workers' user's 0400; others may read auth.open: refused
    chmod 0600 "$T/auth.wrong" "$T/auth.right"
    chmod 0400 "$T/auth.acl"
    chmod 0644 "$T/auth.open"
    chown "$RUN_USER:" "$T/auth.acl"
    # a wrong password: each host says so and goes on alone; so does a host
    # whose file others may read
    AUTH_FILE=$T/auth.open
    host_conf hostP
    AUTH_FILE=$T/auth.wrong
    for h in hostA hostB hostC; do host_conf "$h"; done
    start_hosts hostA hostB hostC hostP
    for h in "${HOSTS[@]}"; do hooked "$h"; done
    staples "${HOSTS[@]}"
    said_auth() {
        local h
        for h in hostA hostB hostC; do
            [ "$(log_lines "$h" "" fleet AUTH)" -ge 1 ] || return 1
        done
        grep -qE " ERROR fleet: fleet_auth_file $T/auth.open: mode 0644 .*refused" "$T/hostP/hook.log"
    }
    STP_WAIT=10 stp_wait_for said_auth || {
        why_requests
        stp_fail "not every host said that the fleet refused its AUTH (hostA-C) or that its fleet_auth_file is refused (hostP)"
    }
    for h in hostA hostB hostC; do
        grep -iF fleet "$T/$h/hook.log" | grep -F AUTH >&2
        stp_assert_eq "$(log_lines "$h" "" fleet AUTH)" 1 "$h said once that AUTH failed"
    done
    stp_assert_eq "$(log_lines hostP "" fleet AUTH)" 0 "hostP did not try the fleet"
    for n in "${NAMES[@]}"; do
        assert_req "$n" 4 "a wrong password (3 hosts), a refused file (1): each host fetched $n.test for itself"
    done
    stp_assert_eq "$(r --scan --pattern "$PREFIX*" | wc -l)" 0 "nothing in the fleet"
    for h in hostA hostB hostC hostP; do stop_host "$h"; done
    stp_ok "a wrong password: AUTH said once per host, each staples alone"
    # the right one: a fleet again (new hosts, cold)
    AUTH_FILE=$T/auth.right
    cold_fleet hostD hostE hostF
    # an ACL user limited to the prefix's keys ("USER PASSWORD", 0400)
    [ "$(stp_redis ACL SETUSER fleetuser on ">$ACLPASS" "~$PREFIX*" '+@all')" = OK ] ||
        stp_fail "ACL SETUSER"
    AUTH_FILE=$T/auth.acl
    host_conf hostG
    start_hosts hostG
    hooked hostG
    wait_synced good - 10 hostG
    wait_synced ecdsa - 10 hostG
    staples hostG
    for n in "${NAMES[@]}"; do
        assert_req "$n" 5 "the ACL user's host joined with no request for $n.test"
        [ "$(took hostG "$n")" -ge 1 ] || stp_fail "hostG did not take $n.test from the fleet"
    done
    # no password in any log
    for f in "$T"/host?/hook.log "$T"/host?/nginx/error.log "$T"/host?/nginx/stderr; do
        for w in "$PASS" "$WRONG" "$ACLPASS"; do
            ! grep -qF -- "$w" "$f" || stp_fail "a password is written in $f"
        done
    done
    HOOK_ERRORS_OK="fleet: fleet_auth_file $T/auth.open: mode 0644"
    stp_ok "the right password and an ACL user: one request per certificate for the fleet"
    ;;
cli)
    stp_redis_start "$T/redis" 0
    cold_fleet hostA
    # a second store (the CLI's "host", hostE) with hostA's response of now
    host_conf hostE
    for n in "${NAMES[@]}"; do
        cp -p "$T/hostA/store/${CID[$n]}.der" "$T/hostA/store/${CID[$n]}.pem" "$T/hostE/store/"
    done
    # hostA's next round: the fleet holds a newer response than hostE's
    settle hostA
    fleet_round "hostA's first refresh" hostA
    rg=$(req_for good)
    re=$(req_for ecdsa)
    OCSPSTAPLE_DEBUG=level:info stp_cli refresh --conf "$T/hostE/stp.cnf"
    stp_assert_eq "$RC" 0 "refresh (hostE)"
    for n in "${NAMES[@]}"; do
        stp_assert_eq "$(der_sum hostE "$n")" "$(fleet_sum "$n")" "refresh took the fleet's $n.test response"
    done
    for n in "${NAMES[@]}"; do
        grep -qx "${CID[$n]:0:12}: $n.test: good (taken from the fleet)" "$OUT" ||
            stp_fail "refresh does not say it took $n.test from the fleet"
    done
    grep -qE "took the fleet's ([a-z]+ )?response" "$ERR" ||
        stp_fail "refresh does not log that it took the fleet's responses"
    stp_assert_eq "$(req_for good) $(req_for ecdsa)" "$rg $re" "refresh asked the responder nothing"
    stp_ok "ocspstaple refresh took the fleet's newer responses, no request"
    # hostA stopped: when hostE's response is due, the fleet holds the same
    # one; refresh fetches, publishes, releases the lease
    stop_host hostA
    nu=$(stp_file_this_update "$T/hostE/store/${CID[good]}.der")
    due_at=$(($(date -d "$nu" +%s) + ROUND + 1))
    is_due() { [ "$(date +%s)" -ge "$due_at" ]; }
    STP_WAIT=$((ROUND + 5)) stp_wait_for is_due
    t0=$(date +%s)
    OCSPSTAPLE_DEBUG=level:info stp_cli refresh --conf "$T/hostE/stp.cnf"
    stp_assert_eq "$RC" 0 "refresh (hostE, due)"
    for n in "${NAMES[@]}"; do
        grep -qx "${CID[$n]:0:12}: $n.test: good (fetched)" "$OUT" ||
            stp_fail "refresh does not say it fetched $n.test"
    done
    for n in "${NAMES[@]}"; do
        stp_assert_eq "$(der_sum hostE "$n")" "$(fleet_sum "$n")" "refresh published its $n.test response"
    done
    assert_req good $((rg + 1)) "refresh fetched good.test"
    assert_req ecdsa $((re + 1)) "refresh fetched ecdsa.test"
    for n in "${NAMES[@]}"; do
        stp_assert_eq "$(fetcher "$n")" hostE "$n.test: meta host"
        stp_assert_eq "$(r EXISTS "$PREFIX""lease:${CID[$n]}")" 0 "$n.test: refresh released its lease"
        at=$(r HGET "$PREFIX""meta:${CID[$n]}" at)
        [ "$at" -ge "$t0" ] || stp_fail "$n.test: meta at $at, before the refresh ($t0)"
    done
    status_fleet hostE
    stp_ok "ocspstaple refresh fetched, published as hostE, released the lease"
    ;;
esac

# ---- every scenario: stop the hosts, then their logs -------------------------

for h in "${HOSTS[@]}"; do stop_host "$h"; done
for h in "${EVER[@]}"; do
    if [ -z "$HOOK_ERRORS_OK" ]; then
        stp_no_errors "$T/$h/hook.log"
    else
        grep " ERROR " "$T/$h/hook.log" | grep -Ev "$HOOK_ERRORS_OK" >"$T/errors" || true
        [ ! -s "$T/errors" ] || {
            _stp_show "$T/errors"
            stp_fail "$h: ERROR lines in the hook log besides the expected ones"
        }
    fi
    stp_assert_file_lacks "$T/$h/nginx/error.log" '\[(warn|error|crit|alert|emerg)\]' \
        "$h: nothing alarming in nginx's error.log"
    stp_assert_file_lacks "$T/$h/nginx/stderr" 'emerg|alert|crit|error|warn' \
        "$h: nothing alarming on nginx's stderr"
    stp_assert_file_lacks "$T/$h/nginx/error.log" 'Sanitizer|runtime error:' \
        "$h: no sanitizer report"
done
stp_ok "fleet $SCEN $ROUTE (${#EVER[@]} hosts)"
