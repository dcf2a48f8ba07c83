#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_faults.sh MODE: an unmodified `openssl s_server` under the hook
# (LD_PRELOAD route, small timeouts and backoff in the policy) while the
# loopback responder misbehaves in one way (test/support/ocsp_responder.c's
# fault modes; `stopped` stops it, `revoked` revokes the leaf in its index).
# The leaf is Must-Staple, so the first handshakes may wait, bounded, for
# the first fetch. Three phases, each with its own server:
#   cold:  no response stored, the fault from the start. 20 handshakes, each
#          within a bound; nothing invalid stapled (probe never exits 7);
#          retries spaced by the backoff (counted over a window, and the
#          state file's failures= grows); one log line per failure naming the
#          certificate and the cause, not one per handshake. Then the
#          responder heals and the hook staples within the backoff cap.
#   warm:  a good response stored (valid 60 s: the responder runs with
#          --nmin 1, so it is due for refresh at once), then the fault: the
#          last good staple is served, verified, while the retries fail.
#   late:  a server whose clock (OCSPSTAPLE_FAKE_TIME) is past that
#          response's nextUpdate staples nothing, or only a response valid
#          at its time; for MODE expired the warm server itself is watched
#          until the real nextUpdate passes.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

MODE=${1:?mode}
stp_need openssl sha256sum
stp_hook_need

# ---- what each mode is ------------------------------------------------------
# RMODE: the responder's mode line; CAUSE: the failure as the hook logs it
# (grep -E); KIND: fail (no usable answer), valid (a valid answer: stapled),
# unknown, revoked; REACH: 0 when no request reaches the responder.
RMODE=$MODE
CAUSE=
KIND=fail
REACH=1
RARGS=(--nmin 1)
case $MODE in
refuse | stopped)
    CAUSE="Couldn't connect|Connection refused|Failed to connect"
    REACH=0
    ;;
reset | close) CAUSE="reset by peer|Recv failure|Empty reply|Couldn't connect" ;;
hang | slow) CAUSE="timed out|Timeout" ;;
http500) CAUSE="HTTP status 500" ;;
http404) CAUSE="HTTP status 404" ;;
redirect_file)
    RMODE="redirect file:///etc/passwd"
    CAUSE="[Pp]rotocol.*file|file.*not supported|redirect"
    ;;
redirect_loopback)
    # 127.0.0.2 is loopback on Linux: the responder listens there too
    RARGS+=(--alt-addr 127.0.0.2)
    KIND=valid
    ;;
garbage | truncated) CAUSE="not a DER OCSP response" ;;
huge) CAUSE="over the size cap|[Mm]aximum file size" ;;
malformed) CAUSE="responder answered malformedrequest" ;;
internalerror) CAUSE="responder answered internalerror" ;;
trylater) CAUSE="responder answered trylater" ;;
sigrequired) CAUSE="responder answered sigrequired" ;;
unauthorized) CAUSE="responder answered unauthorized" ;;
replay) CAUSE="not for this certificate" ;;
rogue | noeku) CAUSE="signature or responder authorisation check failed" ;;
expired)
    stp_need faketime
    CAUSE="response expired"
    ;;
notyet)
    stp_need faketime
    CAUSE="thisUpdate is [0-9]+s in the future"
    ;;
nonext) KIND=valid ;;
unknown) KIND=unknown ;;
revoked)
    RMODE=normal
    KIND=revoked
    ;;
*) stp_fail "unknown mode $MODE" ;;
esac

stp_setup
P=$T/pki
mkdir -p "$P"
stp_start_responder "$P" "${RARGS[@]}"
stp_mkpki "$P" "$RESPONDER_PORT"
case $MODE in
redirect_loopback) RMODE="redirect http://127.0.0.2:$RESPONDER_PORT/" ;;
replay)
    # a valid response, for another certificate
    stp_own_response good "$P/responder.replay.der" 1
    ;;
esac
LEAF=muststaple
CN=$LEAF.test
ID=$(stp_id "$LEAF")
STATE=$T/store/$ID.state
CONF=$T/stp.cnf
POLICY=("timeout = 2s" "connect_timeout = 2s" "retry_base = 1s" "retry_max = 4s"
    "refresh_min = 10s" "must_staple_wait = 1s")
HS_TIMEOUT=2  # s, bound on one handshake (must_staple_wait + 1 s)
HS_TOTAL=6000 # ms, bound on 20 handshakes (one fetch timeout + 20 fast ones)
export OPENSSL_CONF=/dev/null

# ---- helpers ----------------------------------------------------------------

fault_on() {
    if [ "$MODE" = stopped ]; then
        stp_stop_pid "$RESPONDER_PID"
        stp_forget_pid "$RESPONDER_PID"
    else
        stp_responder_mode "$P" "$RMODE"
    fi
}

fault_off() {
    if [ "$MODE" = stopped ]; then
        kill -0 "$RESPONDER_PID" 2>/dev/null ||
            stp_start_responder "$P" "${RARGS[@]}" --port "$RESPONDER_PORT"
    fi
    stp_responder_mode "$P" normal
}

# stop PHASE: stops the server (it must still run: no crash, and no
# sanitizer report in a sanitizer build) and keeps its log as
# $T/hook.PHASE.log.
stop() {
    kill -0 "$S_SERVER_PID" 2>/dev/null || stp_fail "$1: the server died"
    stp_stop_pid "$S_SERVER_PID"
    stp_forget_pid "$S_SERVER_PID"
    stp_assert_file_lacks "$T/s_server.out.err" "AddressSanitizer|runtime error" \
        "$1: no sanitizer report"
    mv "$T/hook.log" "$T/hook.$1.log"
}

# defer MSG: a failure reported at the end, so that the phases after it
# still run (and show what else holds); deferred: fail if any.
DEFERRED=()
defer() {
    echo "FAIL (deferred): $*" >&2
    DEFERRED+=("$*")
}

deferred() {
    if [ "${#DEFERRED[@]}" -gt 0 ]; then
        local IFS='|'
        stp_fail "${#DEFERRED[@]} deferred failure(s): ${DEFERRED[*]}"
    fi
}

# good_staple: the last probe got a good, verified staple for $LEAF.
good_staple() {
    stp_expect_line "status=good verified=yes" "$LEAF: a good, verified staple"
    stp_expect_line "subject=CN=$CN" "$LEAF: its own certificate"
}

failures() { stp_state_get "$STATE" failures 0; }

# attempts: what counts the hook's attempts: the responder's requests, or
# (when none reaches it) the failures recorded in the state file.
attempts() {
    if [ "$REACH" = 1 ]; then stp_requests; else failures; fi
}

# sample OUT SECONDS: every 50 ms, "<ms since start> <attempts>" (bounded).
sample() {
    local out=$1 n=$(($2 * 20)) i t0
    t0=$(stp_ms)
    for ((i = 0; i < n; i++)); do
        echo "$(($(stp_ms) - t0)) $(attempts)" >>"$out"
        sleep 0.05
    done
}

# start_sampler OUT SECONDS: sample in the background (modes that fail).
start_sampler() {
    SAMPLER=
    if [ "$KIND" = fail ]; then
        : >"$1"
        sample "$1" "$2" &
        SAMPLER=$!
        stp_register_pid "$SAMPLER"
    fi
}

wait_sampler() {
    if [ -n "$SAMPLER" ]; then
        wait "$SAMPLER" || true
        stp_forget_pid "$SAMPLER"
    fi
}

# backoff SAMPLES WHAT: the attempts seen in SAMPLES are spaced by the
# backoff: retry_base 1s doubling to retry_max 4s, scheduled on whole
# seconds (so each gap may be up to 1 s short) and never closer than an
# attempt lasts. At most 4 in the 6 s after the first, and at least 2.
backoff() {
    local samples=$1 what=$2 ev
    ev=$(awk '
        NR == 1 { base = $2; last = $2; next }
        $2 > last { for (k = last; k < $2; k++) print $1; last = $2 }
    ' "$samples")
    local times=() t
    for t in $ev; do times+=("$t"); done
    local n=${#times[@]} in6=0 i gap want
    [ "$n" -ge 2 ] || stp_fail "$what: $n attempt(s) in the window: no retry"
    for ((i = 0; i < n; i++)); do
        if [ $((times[i] - times[0])) -le 6000 ]; then in6=$((in6 + 1)); fi
    done
    [ "$in6" -le 4 ] || stp_fail "$what: $in6 attempts within 6 s (${times[*]} ms)"
    for ((i = 2; i < n; i++)); do
        gap=$((times[i] - times[i - 1]))
        want=$((1000 * (1 << (i - 1))))
        if [ "$want" -gt 4000 ]; then want=4000; fi
        [ "$gap" -ge $((want - 1200)) ] ||
            stp_fail "$what: attempt $((i + 1)) came ${gap} ms after the one before (backoff $((want / 1000)) s)"
    done
    stp_ok "$what: $n attempts at ${times[*]} ms ($in6 within 6 s of the first)"
}

# cause_lines LOG: the log lines naming the certificate and the cause.
cause_lines() {
    { grep -E -- " WARN refresh: $CN: .*($CAUSE)" "$1" || true; } | wc -l
}

# cert_lines LOG: every line that names the certificate.
cert_lines() {
    { grep -F -- "$CN" "$1" || true; } | wc -l
}

# handshakes WHAT [ARGS...]: 20 handshakes, each bounded by HS_TIMEOUT,
# all completing within HS_TOTAL ms; a staple that does not verify (exit
# 7) is a failure whatever the mode. Sets HS_STAPLED.
handshakes() {
    local what=$1 ms
    shift
    stp_probe "$PORT" --count 20 --timeout "$HS_TIMEOUT" "$@"
    [ "$RC" -ne 7 ] || stp_fail "$what: a staple that does not verify: $PROBE"
    if grep -q "verified=no" <<<"$PROBE"; then
        stp_fail "$what: an unverified staple: $PROBE"
    fi
    grep -q "handshakes=20 " <<<"$PROBE" ||
        stp_fail "$what: not every handshake completed: $PROBE"
    ms=$(sed -n 's/.*elapsed_ms=\([0-9]*\).*/\1/p' <<<"$PROBE")
    if [ -z "$ms" ] || [ "$ms" -gt "$HS_TOTAL" ]; then
        stp_fail "$what: 20 handshakes took ${ms:-?} ms (bound $HS_TOTAL)"
    fi
    HS_STAPLED=$(sed -n 's/.*stapled=\([0-9]*\) verified=.*/\1/p' <<<"$PROBE")
    stp_ok "$what: 20 handshakes in $ms ms, $HS_STAPLED stapled, rc $RC"
}

# settled LOG: sets FAILS (the state file's failures=) and CAUSES (cause
# lines in LOG) once they agree: the state is written just before the log
# line, so a read between the two sees one line less (bounded: 2 s).
settled() {
    local i
    for ((i = 0; i < 40; i++)); do
        FAILS=$(failures)
        CAUSES=$(cause_lines "$1")
        [ "$CAUSES" -eq "$FAILS" ] && return 0
        sleep 0.05
    done
    return 1
}

# no_flood PHASE LOG: each failure is logged once, naming the certificate
# and the cause, and 20 more handshakes add no line.
no_flood() {
    local phase=$1 log=$2 f0 c0 l0 l1
    settled "$log" ||
        stp_fail "$phase: $CAUSES lines name $CN and /$CAUSE/ for failures=$FAILS"
    f0=$FAILS
    c0=$CAUSES
    l0=$(cert_lines "$log")
    [ "$c0" -gt 0 ] || stp_fail "$phase: no log line names $CN and /$CAUSE/"
    handshakes "$phase: 20 more"
    l1=$(cert_lines "$log")
    settled "$log" ||
        stp_fail "$phase: $CAUSES lines name $CN and /$CAUSE/ for failures=$FAILS"
    # lines naming the certificate: at most 3 per failed attempt in between
    [ $((l1 - l0)) -le $((3 * (FAILS - f0) + 1)) ] ||
        stp_fail "$phase: 20 handshakes added $((l1 - l0)) lines naming $CN (failures $f0 -> $FAILS)"
    stp_ok "$phase: one log line per failure ($c0 for $f0, then $CAUSES for $FAILS); 20 handshakes added $((l1 - l0)) lines naming $CN"
}

# fixture_get [CURL ARGS...]: one GET of $LEAF's request from the
# responder by curl (bounded): sets FIX_RC, body in $T/fix.body, head in
# $T/fix.head.
fixture_get() {
    local enc
    if [ ! -s "$T/fix.req" ]; then
        openssl ocsp -issuer "$P/int.pem" -cert "$P/$LEAF.pem" -no_nonce \
            -reqout "$T/fix.req" >/dev/null 2>&1 || stp_fail "openssl ocsp -reqout"
    fi
    enc=$(base64 -w0 "$T/fix.req" | sed 's/+/%2B/g; s|/|%2F|g; s/=/%3D/g')
    : >"$T/fix.body"
    : >"$T/fix.head"
    FIX_RC=0
    curl -sS --max-time 3 "$@" -D "$T/fix.head" -o "$T/fix.body" \
        "http://127.0.0.1:$RESPONDER_PORT/fixture/$enc" 2>"$T/fix.err" || FIX_RC=$?
}

# fixture_text: openssl's own reading of the body against $LEAF.
fixture_text() {
    openssl ocsp -respin "$T/fix.body" -issuer "$P/int.pem" -cert "$P/$LEAF.pem" \
        -CAfile "$P/root.pem" -no_nonce -resp_text 2>&1 || true
}

# fixture_expect WHAT CONDITION...: CONDITION holds, or the fixture is wrong.
fixture_expect() {
    local what=$1
    shift
    if ! "$@"; then
        echo "--- curl exit $FIX_RC; head:" >&2
        cat "$T/fix.head" "$T/fix.err" >&2
        fixture_text | head -20 >&2
        stp_fail "fixture: the responder does not do '$RMODE': $what"
    fi
}

has() { grep -Eq -- "$1" "$2"; }
text_has() { fixture_text | grep -Eq -- "$1"; }
text_lacks() { ! fixture_text | grep -Eq -- "$1"; }
rc_in() {
    local r
    for r in "$@"; do [ "$FIX_RC" -eq "$r" ] && return 0; done
    return 1
}
# der_length FILE: the length of the DER SEQUENCE FILE starts with,
# header included (short form, or long form on 1 to 3 bytes).
der_length() {
    local b
    read -r -a b <<<"$(od -An -tu1 -N5 "$1")"
    if [ "${#b[@]}" -lt 2 ]; then
        echo 0
    elif [ "${b[1]}" -lt 128 ]; then
        echo $((2 + b[1]))
    elif [ "${b[1]}" -eq 129 ]; then
        echo $((3 + b[2]))
    elif [ "${b[1]}" -eq 130 ]; then
        echo $((4 + b[2] * 256 + b[3]))
    else
        echo $((5 + b[2] * 65536 + b[3] * 256 + b[4]))
    fi
}

# fixture_raw SECONDS: what a raw GET of / reads in SECONDS ($T/fix.raw).
fixture_raw() {
    : >"$T/fix.raw"
    # shellcheck disable=SC2016 # $1 expands in the inner shell
    timeout "$1" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" &&
        printf "GET / HTTP/1.0\r\n\r\n" >&3 && cat <&3' _ "$RESPONDER_PORT" \
        >"$T/fix.raw" 2>/dev/null || true
}

trickled() {
    local n
    n=$(stat -c %s "$T/fix.raw")
    [ "$n" -ge 2 ] && [ "$n" -le 10 ] && [ "$(head -c 2 "$T/fix.raw")" = HT ]
}

head_empty() { [ ! -s "$T/fix.head" ]; }
size_is() { [ "$(stat -c %s "$T/fix.body")" -eq "$1" ]; }

# fixture: one request shows that the responder really misbehaves as MODE
# says, the way a plain HTTP client and `openssl ocsp` see it.
fixture() {
    local full
    case $MODE in
    refuse | stopped)
        # the responder reads its mode file every 100 ms and resets what it
        # accepts until then: wait (bounded) for the listener to be gone
        refused() {
            fixture_get
            [ "$FIX_RC" -eq 7 ]
        }
        stp_wait_for refused || true
        fixture_expect "connection refused" rc_in 7
        ;;
    reset | close)
        fixture_get
        # 55: the reset came while curl was still sending (a loaded host)
        fixture_expect "no answer" rc_in 7 52 55 56
        fixture_expect "no bytes" size_is 0
        ;;
    hang)
        fixture_get --max-time 1
        fixture_expect "client timeout" rc_in 28
        fixture_expect "nothing sent" head_empty
        fixture_expect "no bytes" size_is 0
        ;;
    slow)
        fixture_get --max-time 1
        fixture_expect "client timeout" rc_in 28
        # the first bytes of the head trickle in: one per 200 ms
        fixture_raw 1.1
        fixture_expect "a few bytes in 1.1 s" trickled
        ;;
    http500 | http404)
        fixture_get
        fixture_expect "status ${MODE#http}" has "^HTTP/1.0 ${MODE#http} " "$T/fix.head"
        ;;
    redirect_file)
        fixture_get
        fixture_expect "302" has '^HTTP/1.0 302 ' "$T/fix.head"
        fixture_expect "to file:" has '^Location: file:///etc/passwd' "$T/fix.head"
        ;;
    redirect_loopback)
        fixture_get
        fixture_expect "302 to 127.0.0.2" has \
            "^Location: http://127\\.0\\.0\\.2:$RESPONDER_PORT/fixture/" "$T/fix.head"
        fixture_get -L --max-redirs 1
        fixture_expect "answered there" text_has "^Response verify OK"
        fixture_expect "good there" text_has "$LEAF\\.pem: good"
        ;;
    garbage)
        fixture_get
        fixture_expect "64 bytes" size_is 64
        fixture_expect "not DER" text_lacks "Response verify OK|OCSP Response Status"
        ;;
    truncated)
        stp_responder_mode "$P" normal
        fixture_get
        fixture_expect "a DER response first" text_has "^Response verify OK"
        stp_responder_mode "$P" "$RMODE"
        fixture_get
        full=$(der_length "$T/fix.body")
        fixture_expect "half of the $full bytes its header announces" \
            size_is $((full / 2))
        fixture_expect "not DER" text_lacks "Response verify OK|OCSP Response Status"
        ;;
    huge)
        fixture_get
        fixture_expect "10 MiB" size_is 10485760
        ;;
    malformed | internalerror | trylater | sigrequired | unauthorized)
        fixture_get
        fixture_expect "responseStatus $MODE" text_has "Responder Error: $MODE"
        ;;
    replay)
        fixture_get
        fixture_expect "another certificate" text_has "No Status found"
        ;;
    rogue)
        fixture_get
        fixture_expect "unverifiable" text_has "Response Verify Failure"
        fixture_expect "signer unrelated to the PKI" text_has "unable to get local issuer"
        ;;
    noeku)
        fixture_get
        fixture_expect "unverifiable" text_has "Response Verify Failure"
        fixture_expect "signer without the EKU" text_has "missing ocspsigning usage"
        ;;
    expired)
        fixture_get
        fixture_expect "expired" text_has "status expired"
        ;;
    notyet)
        fixture_get
        fixture_expect "not yet valid" text_has "status not yet valid"
        ;;
    nonext)
        fixture_get
        fixture_expect "verifies" text_has "^Response verify OK"
        fixture_expect "no nextUpdate" text_lacks "Next Update"
        ;;
    unknown)
        fixture_get
        fixture_expect "unknown" text_has "$LEAF\\.pem: unknown"
        ;;
    revoked)
        fixture_get
        fixture_expect "revoked" text_has "$LEAF\\.pem: revoked"
        ;;
    esac
    stp_ok "fixture: responder mode '$RMODE' does what it says (curl exit $FIX_RC)"
}

# ---- revoked after good --------------------------------------------------------

if [ "$KIND" = revoked ]; then
    # refresh every refresh_min (10 s) while the 60 s response is good
    stp_conf "$CONF" preload "${POLICY[@]}" "clock_skew = 5s" \
        "refresh_margin = 90" "refresh_jitter = 0s"
    stp_serve_s_server preload "$CONF" "$LEAF"
    stp_wait_staple "$PORT"
    good_staple
    STP_SAN=DNS:unused.test openssl ca -config "$P/ca/pki.cnf" -name CA_int \
        -revoke "$P/$LEAF.pem" \
        -crl_reason keyCompromise 2>/dev/null || stp_fail "openssl ca -revoke"
    t0=$(stp_ms)
    stp_ok "revoked in the responder's index"
    fixture
    # refresh_min is 10 s: the revocation must be stapled within 15 s; wait
    # (bounded) beyond that only to check the rest
    for ((i = 0; i < 130; i++)); do
        stp_probe "$PORT" --timeout "$HS_TIMEOUT"
        case $RC in
        0) good_staple ;;
        3) break ;;
        *) stp_fail "revoked after good: probe exit $RC: $PROBE" ;;
        esac
        sleep 0.5
    done
    [ "$RC" -eq 3 ] || stp_fail "the revocation was not stapled within 65 s"
    lat=$(($(stp_ms) - t0))
    stp_ok "the revoked response is stapled $lat ms after the revocation ($(stp_requests) requests)"
    if [ "$lat" -gt 15000 ]; then
        defer "revoked after good: stapled after $lat ms, not within refresh_min 10 s + 5 s"
    fi
    handshakes "revoked (auto)"
    if [ "$RC" -ne 3 ] || [ "$HS_STAPLED" -ne 20 ]; then
        stp_fail "auto: 20 verified revoked staples expected: $PROBE"
    fi
    if grep -q "status=good" <<<"$PROBE"; then
        stp_fail "the good response came back after the revoked one: $PROBE"
    fi
    [ "$(failures)" -eq 0 ] || stp_fail "failures recorded for a valid answer"
    stop auto
    # mode must: the handshakes that select a revoked certificate are refused
    stp_conf "$CONF" preload "${POLICY[@]}" "mode = must"
    stp_serve_s_server preload "$CONF" "$LEAF"
    stp_probe "$PORT" --count 20 --timeout "$HS_TIMEOUT"
    stp_expect_probe 1 "mode must refuses the revoked certificate"
    for ((i = 0; i < 19; i++)); do
        stp_probe "$PORT" --timeout "$HS_TIMEOUT"
        stp_expect_probe 1 "mode must keeps refusing"
    done
    stp_assert_eq "$(grep -c "$CN: certificate is revoked: refusing" "$T/hook.log")" 1 \
        "the refusal is logged once, not per handshake"
    stop must
    deferred
    stp_ok "$MODE"
    exit 0
fi

# ---- cold: the fault from the start -------------------------------------------

fault_on
fixture
REQ0=$(stp_requests)
stp_conf "$CONF" preload "${POLICY[@]}"
start_sampler "$T/samples.cold" 8
stp_serve_s_server preload "$CONF" "$LEAF"
handshakes "cold, $MODE"
case $KIND in
fail)
    [ "$HS_STAPLED" -eq 0 ] || stp_fail "cold: stapled in mode $MODE: $PROBE"
    wait_sampler
    backoff "$T/samples.cold" "cold, $MODE"
    f3=$(failures)
    [ "$f3" -ge 2 ] || stp_fail "cold: failures=$f3 after 8 s"
    no_flood "cold, $MODE" "$T/hook.log"
    # 40 handshakes without a staple: one ERROR, not one per handshake
    stp_assert_eq "$(grep -c " ERROR hook: $CN: a Must-Staple certificate served without a staple" "$T/hook.log")" 1 \
        "cold: the Must-Staple certificate served without a staple is said once"
    if [ "$REACH" = 0 ]; then
        stp_assert_requests "$REQ0" "no request reaches the responder"
    fi
    # failures= keeps growing while the fault lasts
    for ((i = 0; i < 60; i++)); do
        [ "$(failures)" -gt "$f3" ] && break
        sleep 0.1
    done
    [ "$(failures)" -gt "$f3" ] || stp_fail "cold: failures= stays at $f3"
    stp_ok "cold: state failures= $f3 -> $(failures)"
    # the responder heals: stapled within the backoff cap (4 s + jitter)
    fault_off
    t0=$(stp_ms)
    STP_WAIT=10 stp_wait_staple "$PORT"
    good_staple
    stp_ok "cold: healed, stapled $(($(stp_ms) - t0)) ms after the responder"
    stp_assert_eq "$(failures)" 0 "failures= reset by the success"
    ;;
valid)
    [ "$HS_STAPLED" -ge 1 ] || stp_fail "cold: a valid answer was not stapled: $PROBE"
    stp_probe "$PORT" --require-staple
    good_staple
    stp_assert_eq "$(failures)" 0 "no failure recorded"
    if [ "$MODE" = redirect_loopback ]; then
        tail -n +$((REQ0 + 1)) "$P/responder.log" >"$T/hook_requests"
        stp_assert_file_contains "$T/hook_requests" " redirect 302 " "redirected"
        stp_assert_file_contains "$T/hook_requests" " alt:normal 200 " \
            "answered on 127.0.0.2"
    fi
    ;;
unknown)
    # valid, but unknown: stapled as unknown (verified) or not at all
    [ "$RC" -eq 0 ] || [ "$RC" -eq 4 ] || stp_fail "cold: probe exit $RC: $PROBE"
    ;;
esac
stop cold

# ---- warm: a good response held, then the fault -------------------------------

rm -rf "$T/store"
fault_off
stp_warm "$LEAF"
TU=$(stp_file_this_update "$T/store/$ID.der")
NU=$(date -d "$("$STP_CLI" show "$T/store/$ID.der" | sed -n 's/.*Next Update: //p' | head -1)" +%s)
fault_on
REQW=$(stp_requests)
start_sampler "$T/samples.warm" 7
stp_serve_s_server preload "$CONF" "$LEAF"
stp_probe "$PORT" --require-staple --timeout "$HS_TIMEOUT"
stp_expect_probe 0 "warm: the first handshake is stapled"
good_staple
case $KIND in
fail | unknown)
    if [ "$KIND" = fail ]; then
        failed_once() { [ "$(failures)" -ge 1 ]; }
        stp_wait_for failed_once || stp_fail "warm: no failed refresh"
    else
        # a refresh was answered, and its outcome logged by the hook
        refreshed() {
            [ "$(stp_requests)" -gt "$REQW" ] &&
                grep -q " refresh: $CN: " "$T/hook.log"
        }
        stp_wait_for refreshed || stp_fail "warm: no refresh"
    fi
    handshakes "warm, $MODE" --require-staple
    if [ "$RC" -ne 0 ] || [ "$HS_STAPLED" -ne 20 ]; then
        defer "warm: the last good staple is not served: $PROBE"
    else
        good_staple
        stp_assert_eq "$(stp_probe_this_update)" "$TU" "warm: the staple is the stored one"
    fi
    wait_sampler
    if [ "$KIND" = fail ]; then
        backoff "$T/samples.warm" "warm, $MODE"
        no_flood "warm, $MODE" "$T/hook.log"
    fi
    ;;
valid)
    stp_probe "$PORT" --require-staple
    good_staple
    stp_assert_eq "$(failures)" 0 "warm: no failure recorded"
    stp_ok "warm: the valid answer is taken: $(stp_probe_this_update) (stored: $TU)"
    ;;
esac
if [ "$MODE" = expired ]; then
    # the running server drops the staple once its nextUpdate has passed
    gone() { [ "$(date +%s)" -gt $((NU + 1)) ]; }
    STP_WAIT=70 stp_wait_for gone || stp_fail "clock"
    handshakes "warm, after nextUpdate"
    [ "$HS_STAPLED" -eq 0 ] || stp_fail "stapled after nextUpdate: $PROBE"
    stp_ok "warm: nothing stapled once nextUpdate has passed"
fi
stop warm

# ---- late: past the stored response's nextUpdate ------------------------------

FAKE=$((NU + 5))
stp_serve_s_server preload "$CONF" "$LEAF" OCSPSTAPLE_FAKE_TIME="$FAKE"
handshakes "late, $MODE"
if [ "$HS_STAPLED" -gt 0 ]; then
    [ "$KIND" != fail ] || stp_fail "late: stapled in mode $MODE: $PROBE"
    nu=$(sed -n 's/.*next_update=\([^ ]*\).*/\1/p' <<<"$PROBE" | head -1)
    [ "$(date -d "$nu" +%s)" -gt "$FAKE" ] ||
        stp_fail "late: a staple past its nextUpdate at the server's time: $PROBE"
    stp_ok "late: stapled a response valid at the server's time (next_update=$nu)"
fi
stop late
deferred
stp_ok "$MODE"
