#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_cli.sh SCENARIO: the CLI's fetch -> verify -> store path against the real
# `openssl ocsp` responder logic (test/support/ocsp_responder.c) on
# 127.0.0.1, with a PKI built for this run. One scenario per ctest case.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"

stp_need openssl sha256sum cmp
stp_setup
P=$T/pki
S=$T/store
mkdir -p "$P"
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
URL="http://127.0.0.1:$RESPONDER_PORT/"
# the policy status and refresh read: the store ($T/store), and the PKI's
# root as ca_file (a private PKI's anchor is not in the system's store)
CONF=$T/cli.cnf
stp_conf "$CONF" preload "ca_file = $P/root.pem"

# fetch NAME [ARGS...]: fetch the chain of leaf NAME into $S.
fetch() {
    local name=$1
    shift
    stp_cli fetch "$P/$name.chain.pem" --store-dir "$S" "$@"
}

# openssl_verify NAME: the stored response, checked by openssl itself.
openssl_verify() {
    openssl ocsp -respin "$S/$(stp_id "$1").der" -issuer "$P/int.pem" \
        -CAfile "$P/root.pem" -cert "$P/$1.pem" -no_nonce 2>&1
}

requests() { stp_responder_requests "$P"; }

# www_data_store: $S, a store of the user www-data's (as nginx's workers
# make it), reachable through $T; skips the scenario without root or
# www-data.
www_data_store() {
    if [ "$(id -u)" -ne 0 ] || ! id -u www-data >/dev/null 2>&1; then
        echo "SKIP: needs root and the user www-data" >&2
        exit 77
    fi
    chmod 711 "$T"
    mkdir "$S"
    chown www-data:www-data "$S"
}

# flip_last_byte FILE: corrupts a file in place.
flip_last_byte() {
    local size last
    size=$(stat -c %s "$1")
    last=$(tail -c 1 "$1" | od -An -tu1 | tr -d ' ')
    # shellcheck disable=SC2059
    printf "\\$(printf '%03o' $((last ^ 1)))" |
        dd of="$1" bs=1 seek=$((size - 1)) conv=notrunc status=none
}

case "${1:?scenario}" in
good)
    fetch good
    stp_assert_eq "$RC" 0 "exit status of a good fetch"
    stp_assert_file_contains "$OUT" "good.test: good" "fetch prints the status"
    f=$S/$(stp_id good).der
    [ -s "$f" ] || stp_fail "no response stored at $f"
    v=$(openssl_verify good)
    echo "$v" | grep -q "Response verify OK" || stp_fail "openssl does not verify the stored file: $v"
    echo "$v" | grep -q "good.pem: good" || stp_fail "openssl does not read good: $v"
    stp_assert_eq "$(requests)" 1 "one responder request"
    grep -q '^failures=0$' "$S/$(stp_id good).state" || stp_fail "state not reset"
    grep -q "^url=$URL\$" "$S/$(stp_id good).state" || stp_fail "state lacks the URL"
    # RFC 5019: the short request went as GET
    stp_assert_file_contains "$P/responder.log" " GET " "request sent as GET"
    # a second fetch reuses the fresh stored response: no new request
    fetch good
    stp_assert_eq "$RC" 0 "exit status of the reuse"
    stp_assert_file_contains "$OUT" "still fresh" "reuse is reported"
    stp_assert_eq "$(requests)" 1 "no request while the stored response is fresh"
    # --force fetches anyway
    fetch good --force
    stp_assert_eq "$(requests)" 2 "--force fetches"
    stp_cli status --conf "$CONF"
    stp_assert_eq "$RC" 0 "status exit"
    stp_assert_file_contains "$OUT" "CN=good.test" "status shows the subject"
    stp_assert_file_contains "$OUT" " good " "status shows good"
    stp_cli status --conf "$CONF" --json
    stp_assert_file_contains "$OUT" '"status": "good"' "json status"
    stp_assert_file_contains "$OUT" '"verified": true' "json verified"
    stp_cli show "$f" --cert "$P/good.pem" --issuer "$P/int.pem"
    stp_assert_eq "$RC" 0 "show verifies"
    stp_assert_file_contains "$OUT" "Verified: good" "show says verified"
    stp_assert_file_contains "$OUT" "Cert Status: good" "show decodes"
    ;;
ecdsa | muststaple | multiurl)
    fetch "$1"
    stp_assert_eq "$RC" 0 "exit status for $1"
    openssl_verify "$1" | grep -q "$1.pem: good" || stp_fail "openssl check of $1"
    ;;
issuer)
    # leaf alone: the issuer is missing, then given with --issuer
    stp_cli fetch "$P/good.pem" --store-dir "$S"
    stp_assert_eq "$RC" 1 "no issuer is an error"
    stp_assert_file_contains "$ERR" "issuer certificate not found" "names the cause"
    stp_assert_eq "$(requests)" 0 "no request without an issuer"
    stp_cli fetch "$P/good.pem" --issuer "$P/int.pem" --store-dir "$S"
    stp_assert_eq "$RC" 0 "--issuer works"
    ;;
revoked)
    fetch revoked
    stp_assert_eq "$RC" 3 "exit status of a revoked certificate"
    stp_assert_file_contains "$OUT" "revoked.test: revoked" "prints revoked"
    stp_cli status --conf "$CONF"
    stp_assert_eq "$RC" 3 "status: a revoked certificate (exit 3)"
    # without --conf, the file check and the servers read: $OPENSSL_CONF
    # (its store_dir and ca_file); one without ocspstaple: the defaults
    OPENSSL_CONF=$CONF stp_cli status
    stp_assert_eq "$RC" 3 "status reads \$OPENSSL_CONF without --conf"
    stp_assert_file_contains "$OUT" "CN=revoked.test .* revoked " "and lists this store"
    printf 'openssl_conf = init\n[init]\n' >"$T/plain.cnf"
    OPENSSL_CONF=$T/plain.cnf stp_cli status --store-dir "$S"
    stp_assert_eq "$RC" 6 "an openssl.cnf without ocspstaple: the defaults (no ca_file: unverified)"
    openssl_verify revoked | grep -q "revoked.pem: revoked" || stp_fail "stored response is not revoked"
    ;;
prune)
    # ecdsa's entry not written for 10 days: no server uses it
    fetch good
    fetch ecdsa
    e=$(stp_id ecdsa)
    touch -d '10 days ago' "$S/$e.der" "$S/$e.state"
    stp_cli prune --conf "$CONF" --dry-run
    stp_assert_eq "$RC" 0 "prune --dry-run"
    stp_assert_file_contains "$OUT" "^$e: would be pruned" "lists ecdsa's entry"
    [ -e "$S/$e.der" ] || stp_fail "--dry-run removed something"
    stp_cli prune --conf "$CONF" --older-than 30
    stp_assert_file_contains "$OUT" "^0 entries pruned, 2 kept" "nothing older than 30 days"
    stp_cli prune --conf "$CONF"
    stp_assert_eq "$RC" 0 "prune"
    stp_assert_file_contains "$OUT" "^1 entry pruned, 1 kept" "one pruned, one kept"
    for f in der state pem lock; do
        [ ! -e "$S/$e.$f" ] || stp_fail "$e.$f is still there"
    done
    [ -s "$S/$(stp_id good).der" ] || stp_fail "good's entry was removed"
    stp_cli status --conf "$CONF"
    stp_assert_file_lacks "$OUT" "^${e:0:12}" "status no longer lists it"
    # an entry whose lock a writer holds is not removed
    g=$(stp_id good)
    touch -d '10 days ago' "$S/$g.der" "$S/$g.state"
    flock "$S/$g.lock" -c "\"$STP_CLI\" prune --conf \"$CONF\" >\"$T/held.out\" 2>&1" ||
        true
    stp_assert_file_contains "$T/held.out" "held by another process" "a held entry is said busy"
    [ -s "$S/$g.der" ] || stp_fail "a held entry was removed"
    # good's entry (10 days old) used by a running server: kept, and status
    # names the server's process
    stp_hook_need
    stp_conf "$T/srv.cnf" preload "fetch = no"
    stp_serve_s_server preload "$T/srv.cnf" good
    stp_probe "$PORT" --servername good.test # its first SSL_new tracks good
    listed() {
        "$STP_CLI" status --conf "$CONF" --json >"$T/status.json" 2>/dev/null
        grep -q "{\"pid\": $S_SERVER_PID, \"program\": \"openssl\"}" "$T/status.json"
    }
    STP_WAIT=15 stp_wait_for listed || stp_fail "status --json does not list s_server $S_SERVER_PID: $(cat "$T/status.json")"
    stp_cli status --conf "$CONF"
    stp_assert_file_contains "$OUT" "^${g:0:12} .* openssl\[$S_SERVER_PID\] " \
        "status's USED BY names s_server"
    # check --program: the settings for a program and each certificate its
    # running processes use, with the section that sets them
    stp_conf "$T/prog.cnf" preload "skip_programs = nginx" "certs = c" "[c]" \
        "g = c_g" "[c_g]" "match = name:good.test" "timeout = 7s"
    "$STP_CLI" check --conf "$T/prog.cnf" --program openssl >"$T/prog.out" 2>/dev/null || true
    stp_assert_file_contains "$T/prog.out" "^program openssl: ocspstaple acts in it$" \
        "check --program says it acts in openssl"
    stp_assert_file_contains "$T/prog.out" "^  ${g:0:12} CN=good.test: mode auto.*timeout 7s.* \(section g\)$" \
        "and good.test's settings, from its section"
    "$STP_CLI" check --conf "$T/prog.cnf" --program nginx >"$T/prog.out" 2>/dev/null || true
    stp_assert_file_contains "$T/prog.out" "^program nginx: ocspstaple does not act in it" \
        "and not in nginx (skip_programs)"
    stp_assert_file_contains "$T/prog.out" "no certificate used by a running nginx process" \
        "no nginx process uses a certificate"
    # lists of processes that are gone: a pid that does not run, and a
    # running pid (ours) with another start time (a reused pid)
    printf 'program ghost\n%s staple\n' "$g" >"$S/uses-999999999-1"
    printf 'program ghost\n%s staple\n' "$g" >"$S/uses-$$-1"
    stp_cli prune --conf "$CONF"
    stp_assert_eq "$RC" 0 "prune with a server running"
    stp_assert_file_contains "$OUT" "^0 entries pruned, 1 kept" "the used entry is kept"
    stp_assert_file_contains "$OUT" "^2 lists of processes that are gone removed" \
        "the gone processes' lists are removed"
    [ -s "$S/$g.der" ] || stp_fail "a used entry was removed"
    if [ -e "$S/uses-999999999-1" ] || [ -e "$S/uses-$$-1" ]; then
        stp_fail "a gone process's list is still there"
    fi
    [ -n "$(find "$S" -name "uses-$S_SERVER_PID-*")" ] ||
        stp_fail "the server's own list was removed"
    # once the server is gone (killed: no exit handler ran), so is its list,
    # and the entry is pruned
    stp_stop_pid "$S_SERVER_PID"
    stp_forget_pid "$S_SERVER_PID"
    stp_cli prune --conf "$CONF"
    stp_assert_file_contains "$OUT" "^1 list of processes that are gone removed" \
        "the killed server's list is removed"
    stp_assert_file_contains "$OUT" "^1 entry pruned, 0 kept" "then it is pruned"
    ;;
stale)
    # a good response, then a refresh that fails: fine while the response
    # is young, "past its refresh point with failing refreshes" (exit 8)
    # once less than refresh_margin (25%) of its validity is left
    stp_need faketime
    fetch good
    stp_responder_mode "$P" http500
    fetch good --force
    stp_assert_eq "$RC" 1 "the refresh fails"
    grep -q '^failures=1$' "$S/$(stp_id good).state" || stp_fail "failure not recorded"
    stp_cli status --conf "$CONF"
    stp_assert_eq "$RC" 0 "status: a young response with a failed refresh is fine"
    set +e
    faketime -f +23h "$STP_CLI" status --conf "$CONF" >"$OUT" 2>"$ERR"
    RC=$?
    set -e
    stp_assert_eq "$RC" 8 "status 23 h later: past the refresh point, refreshes failing (exit 8)"
    stp_assert_file_contains "$OUT" " good " "the response itself is still good"
    ;;
unknown)
    fetch unknown
    stp_assert_eq "$RC" 4 "exit status of an unknown certificate"
    stp_assert_file_contains "$OUT" "unknown.test: unknown" "prints unknown"
    ;;
noaia)
    fetch noaia
    stp_assert_eq "$RC" 5 "exit status without an OCSP URL"
    stp_assert_file_contains "$ERR" "no OCSP responder URL" "says why"
    stp_assert_eq "$(requests)" 0 "no request"
    [ ! -e "$S/$(stp_id noaia).der" ] || stp_fail "stored something for noaia"
    # a responder override makes it applicable
    fetch noaia --url "$URL"
    stp_assert_eq "$RC" 0 "--url override"
    ;;
down)
    stp_stop_pid "$RESPONDER_PID"
    start=$(date +%s)
    fetch good --timeout 3
    end=$(date +%s)
    stp_assert_eq "$RC" 1 "a dead responder is an error"
    stp_assert_file_contains "$ERR" "connect" "names the cause"
    stp_assert_file_contains "$ERR" "127.0.0.1:$RESPONDER_PORT" "names the URL"
    [ $((end - start)) -le 5 ] || stp_fail "took $((end - start))s with a 3s timeout"
    grep -q '^failures=1$' "$S/$(stp_id good).state" || stp_fail "failure not recorded"
    ;;
hang)
    stp_responder_mode "$P" hang
    start=$(date +%s)
    fetch good --timeout 2
    end=$(date +%s)
    stp_assert_eq "$RC" 1 "a silent responder is an error"
    stp_assert_file_contains "$ERR" "timeout" "says timeout"
    [ $((end - start)) -le 5 ] || stp_fail "took $((end - start))s with a 2s timeout"
    ;;
http500 | garbage | trylater | unauthorized)
    fetch good
    stp_assert_eq "$RC" 0 "first fetch"
    cp "$S/$(stp_id good).der" "$T/before.der"
    stp_responder_mode "$P" "$1"
    fetch good --force
    stp_assert_eq "$RC" 1 "$1 is an error"
    case $1 in
    http500) want="http: .*HTTP status 500" ;;
    garbage) want="malformed: not a DER OCSP response" ;;
    trylater) want="tryLater: responder answered trylater" ;;
    unauthorized) want="unauthorized: responder answered unauthorized" ;;
    esac
    stp_assert_file_contains "$ERR" "$want" "distinct error for $1"
    cmp -s "$T/before.der" "$S/$(stp_id good).der" || stp_fail "the good response was lost"
    grep -q '^failures=1$' "$S/$(stp_id good).state" || stp_fail "failure not recorded"
    ;;
tampered)
    fetch good
    f=$S/$(stp_id good).der
    flip_last_byte "$f" # inside the signature
    stp_cli status --conf "$CONF"
    stp_assert_file_contains "$OUT" "invalid:signature" "status sees the tampering"
    stp_assert_eq "$RC" 7 "status: a corrupt stored file (exit 7)"
    fetch good
    stp_assert_eq "$RC" 0 "refetch after tampering"
    stp_assert_file_contains "$ERR" "stored response .*/$(stp_id good).der rejected" "the loader names the rejected file"
    stp_assert_eq "$(requests)" 2 "tampered file refetched"
    openssl_verify good | grep -q "Response verify OK" || stp_fail "not repaired"
    # a valid response for another certificate renamed into place
    fetch ecdsa
    cp "$S/$(stp_id good).der" "$S/$(stp_id ecdsa).der"
    fetch ecdsa
    stp_assert_eq "$RC" 0 "refetch after a foreign file"
    stp_assert_file_contains "$ERR" "not for this certificate" "foreign file rejected"
    stp_assert_eq "$(requests)" 4 "foreign file refetched"
    ;;
wrongcert)
    # the responder answers with a valid, signed response for another cert
    fetch good
    cp "$S/$(stp_id good).der" "$P/responder.replay.der"
    stp_responder_mode "$P" replay
    fetch ecdsa
    stp_assert_eq "$RC" 1 "a response for another certificate is an error"
    stp_assert_file_contains "$ERR" "certid: .*not for this certificate" "says why"
    [ ! -e "$S/$(stp_id ecdsa).der" ] || stp_fail "stored a response for another certificate"
    ;;
older)
    fetch good
    cp "$S/$(stp_id good).der" "$T/r1.der"
    # thisUpdate has a resolution of one second: let one pass
    stp_next_second
    fetch good --force
    stp_assert_eq "$RC" 0 "second fetch"
    cmp -s "$T/r1.der" "$S/$(stp_id good).der" && stp_fail "second fetch did not replace"
    cp "$S/$(stp_id good).der" "$T/r2.der"
    cp "$T/r1.der" "$P/responder.replay.der"
    stp_responder_mode "$P" replay
    fetch good --force
    stp_assert_eq "$RC" 1 "an older response is refused"
    stp_assert_file_contains "$ERR" "older than the stored one" "says why"
    cmp -s "$T/r2.der" "$S/$(stp_id good).der" || stp_fail "the newer response was replaced"
    ;;
refresh)
    fetch good
    fetch ecdsa
    stp_cli refresh --conf "$CONF"
    stp_assert_eq "$RC" 0 "refresh exit"
    stp_assert_file_contains "$OUT" "good.test: good \\(stored response not due\\)" "good not due"
    stp_assert_file_contains "$OUT" "2 certificate\\(s\\), 0 failed" "summary"
    stp_assert_eq "$(requests)" 2 "nothing due: no request"
    stp_cli refresh --conf "$CONF" --force
    stp_assert_eq "$(requests)" 4 "--force fetches both"
    stp_assert_file_contains "$OUT" "ecdsa.test: good \\(fetched\\)" "fetched"
    rm "$S/$(stp_id ecdsa).pem"
    stp_cli refresh --conf "$CONF"
    stp_assert_eq "$RC" 1 "a certificate without its chain is a failure"
    stp_assert_file_contains "$OUT" "skipped: no usable" "says why"
    ;;
rootowned)
    # A server's user owns the store (nginx's workers made it as www-data,
    # or the operator gave it to them) and root writes into it: the
    # operator's `ocspstaple fetch`, or a server worker in the moment
    # between its fork and its setuid, when its refresher already runs.
    # Every file root makes there is the directory owner's, so that the
    # server's user can still take the certificate's lock, read its state
    # and replace its files (a lock file root:root 0640 made a worker fetch
    # without the lock: one request more, once in CI).
    www_data_store
    fetch good
    stp_assert_eq "$RC" 0 "fetch as root"
    [ -e "$S/$(stp_id good).lock" ] || stp_fail "fetch took no lock file"
    foreign=$(find "$S" -mindepth 1 \( ! -user www-data -o ! -group www-data \) -printf '%u:%g %f\n')
    stp_assert_eq "$foreign" "" "every file root made in www-data's store is www-data's"
    STP_AS=(setpriv --reuid=www-data --regid=www-data --clear-groups --)
    stp_cli refresh --conf "$CONF" --force
    STP_AS=()
    stp_assert_eq "$RC" 0 "refresh --force as www-data"
    stp_assert_file_lacks "$ERR" "without the lock|ermission denied" \
        "www-data takes the lock and reads the state root wrote"
    stp_assert_requests 2 "one request each"
    ;;
rootlock)
    # A lock file root:root 0640 in www-data's store: what a server worker
    # leaves when its identity changes between creating the file and giving
    # it to the store's owner (or an older version left). www-data cannot
    # open it: it replaces it with its own and takes the lock, instead of
    # fetching without it from then on.
    www_data_store
    STP_AS=(setpriv --reuid=www-data --regid=www-data --clear-groups --)
    fetch good
    stp_assert_eq "$RC" 0 "fetch as www-data"
    lock=$S/$(stp_id good).lock
    rm -f "$lock"
    install -m 0640 -o root -g root /dev/null "$lock"
    stp_cli refresh --conf "$CONF" --force
    STP_AS=()
    stp_assert_eq "$RC" 0 "refresh --force as www-data"
    stp_assert_file_lacks "$ERR" "without the lock|ermission denied" \
        "www-data takes the certificate's lock"
    stp_assert_eq "$(stat -c %U "$lock")" www-data "the lock file is www-data's now"
    stp_assert_requests 2 "one request each"
    ;;
planted)
    # A store writer plants a chain of its own making beside a response: a
    # self-signed "leaf" whose AIA names another server, and a sidecar state
    # that names a subject. status shows neither its state's words nor a
    # verdict; refresh never follows its URL (a blind SSRF as root otherwise).
    fetch good
    stp_start_responder "$T/other"
    OTHER=$RESPONDER_PORT
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$T/planted.key" -out "$T/planted.pem" -days 30 \
        -subj "/CN=planted.test" \
        -addext "authorityInfoAccess=OCSP;URI:http://127.0.0.1:$OTHER/" \
        >/dev/null 2>&1 || stp_fail "planted certificate"
    pid=$(openssl x509 -in "$T/planted.pem" -outform DER | sha256sum | cut -d' ' -f1)
    cat "$T/planted.pem" "$T/planted.pem" >"$S/$pid.pem"
    cp "$S/$(stp_id good).der" "$S/$pid.der"
    printf 'subject=CN=bank.example\nserial=01\n' >"$S/$pid.state"
    stp_cli status --conf "$CONF"
    stp_assert_eq "$RC" 6 "status: a staple that does not verify to the anchors (exit 6)"
    stp_assert_file_lacks "$OUT" "bank.example" "status does not show the sidecar's words"
    grep "^${pid:0:12}" "$OUT" | grep -q "untrusted:chain" ||
        stp_fail "the planted chain is not reported untrusted: $(cat "$OUT")"
    grep "^$(stp_id good | cut -c1-12)" "$OUT" | grep -q "CN=good.test.* good " ||
        stp_fail "the real certificate is not shown from its verified leaf: $(cat "$OUT")"
    stp_cli refresh --conf "$CONF" --force
    stp_assert_eq "$RC" 1 "refresh reports the planted entry"
    stp_assert_file_contains "$OUT" "${pid:0:12}: skipped, not fetching: .*does not verify" \
        "refresh says why it does not fetch"
    stp_assert_eq "$(stp_responder_requests "$T/other")" 0 \
        "refresh never asked the planted certificate's server"
    stp_assert_file_contains "$OUT" "good.test: good \\(fetched\\)" "the real one is refreshed"
    # without ca_file, the private PKI's chain does not verify either
    stp_cli status --store-dir "$S"
    grep "^$(stp_id good | cut -c1-12)" "$OUT" | grep -q "untrusted:chain" ||
        stp_fail "a chain to an anchor not in force is believed"
    ;;
*)
    stp_fail "unknown scenario $1"
    ;;
esac
stp_ok "$1"
