#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_store_faults.sh CASE: faults of, and attacks on, the store directory,
# with an unmodified `openssl s_server` under the hook (LD_PRELOAD route)
# and/or the CLI. In every case nothing invalid is served (`ocspstaple probe`
# never exits 7), the server keeps serving TLS, and the hook (or the CLI)
# says in a line that names the file or directory what is wrong with it.
#
# Cases: truncated garbage foreign replay missing unreadable readonly
# worldwritable tmplink targetlink diskfull killwrite.
# As root: permissions do not stop root, so "unreadable" runs the server and
# the CLI as nobody (setpriv); "readonly" uses a read-only bind mount and
# "diskfull" a 64 KiB tmpfs (RLIMIT_FSIZE when mount is not permitted).
# "tmplink" and "killwrite" use strace to hold a writer at a chosen system
# call (and to make getrandom fail, for predictable temp names).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/servers.sh
source "$STP_SUPPORT/servers.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

CASE=${1:?case}
stp_need openssl sha256sum cmp stat
stp_hook_need
stp_setup
MOUNTS=()

# Servers first (they hold files in the mounts), then the mounts, then
# lib.sh's cleanup with the test's exit status.
_faults_exit() {
    local rc=$? i
    set +e
    for ((i = ${#STP_PIDS[@]} - 1; i >= 0; i--)); do
        stp_stop_pid "${STP_PIDS[i]}"
    done
    STP_PIDS=()
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}"
    done
    (exit "$rc")
    _stp_on_exit
}
trap _faults_exit EXIT

P=$T/pki
S=$T/store
K=$P # where the server reads its certificates and keys
CONF=$T/stp.cnf
# what status reads besides the store: the PKI's root as ca_file (a stored
# chain is believed only if it reaches a trust anchor in force)
SCONF=$T/status.cnf
RUN_AS= # user of the server and of the CLI (run_as), when set
mkdir -p "$P"
RESP_ARGS=()
if [ "$CASE" = replay ]; then
    RESP_ARGS=(--nmin 2) # responses valid 2 minutes
fi
stp_start_responder "$P" "${RESP_ARGS[@]}"
stp_mkpki "$P" "$RESPONDER_PORT"
stp_conf "$SCONF" preload "ca_file = $P/root.pem"
chmod 0644 "$SCONF" "$P/root.pem"
ID=$(stp_id good)
EID=$(stp_id ecdsa)
DER=$S/$ID.der

# run_as USER: the server and the CLI (stp_cli) run as USER from now on,
# with no supplementary groups (lib.sh's STP_AS).
run_as() {
    RUN_AS=$1
    STP_AS=(setpriv --reuid="$RUN_AS" --regid=nogroup --clear-groups --)
}

# as_user CMD...: CMD as $RUN_AS when set, else as is.
as_user() {
    "${STP_AS[@]}" "$@"
}

# serve_dual: s_server (stp_serve_s_server, as $RUN_AS when set) with good
# (RSA) and ecdsa as the context's second certificate.
serve_dual() {
    stp_serve_s_server preload "$CONF" "$K/good" -- -dcert "$K/ecdsa.pem" \
        -dkey "$K/ecdsa.key" -dcert_chain "$K/int.pem"
}

# stop_server [LOGNAME]: stops the server; its hook log moves to $T/LOGNAME.
stop_server() {
    stp_stop_pid "$S_SERVER_PID"
    stp_forget_pid "$S_SERVER_PID"
    if [ -n "${1:-}" ] && [ -f "$T/hook.log" ]; then
        mv "$T/hook.log" "$T/$1"
    fi
}

# LeakSanitizer (ASan builds) cannot run under ptrace: off for strace runs
NOLSAN=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
RSA=(--sigalgs "RSA-PSS+SHA256:RSA+SHA256")
EC=(--sigalgs "ECDSA+SHA256")

# check_probe [ARGS...]: one handshake: TLS works (never 1) and nothing
# invalid is stapled (never 7).
check_probe() {
    stp_probe "$PORT" "$@"
    [ "$RC" -ne 7 ] || stp_fail "an invalid staple was served: $PROBE"
    [ "$RC" -ne 1 ] || stp_fail "the server stopped serving TLS: $PROBE"
}

# wait_staple [ARGS...]: handshakes until a staple arrives (STP_WAIT
# seconds, default 15), none of them invalid.
wait_staple() {
    local i
    for ((i = 0; i < ${STP_WAIT:-15} * 10; i++)); do
        check_probe --require-staple "$@"
        [ "$RC" -eq 6 ] || return 0
        sleep 0.1
    done
    stp_fail "no staple from 127.0.0.1:$PORT within ${STP_WAIT:-15} s"
}

# unstapled N [ARGS...]: N handshakes 0.1 s apart, none stapled.
unstapled() {
    local n=$1 i
    shift
    for ((i = 0; i < n; i++)); do
        check_probe "$@"
        stp_expect_line "stapled=no" "nothing to staple yet"
        sleep 0.1
    done
}

# verified_good [ARGS...]: a good, verified staple for good.test now.
verified_good() {
    check_probe --require-staple --CAfile "$P/root.pem" "$@"
    stp_expect_probe 0 "a staple"
    stp_verified good
}

# respin_ok FILE NAME: openssl itself parses and verifies FILE for leaf NAME.
respin_ok() {
    local v
    v=$(openssl ocsp -respin "$1" -issuer "$P/int.pem" -CAfile "$P/root.pem" \
        -cert "$P/$2.pem" -no_nonce 2>&1) ||
        stp_fail "openssl ocsp -respin $1: $v"
    grep -q "Response verify OK" <<<"$v" || stp_fail "$1 does not verify: $v"
    grep -q "$2.pem: good" <<<"$v" || stp_fail "$1 is not good for $2: $v"
}

# names_fault LOG NAME CAUSE MSG: one line of LOG names NAME (a file or
# directory, fixed string) and gives CAUSE (extended regex).
names_fault() {
    [ -f "$1" ] || stp_fail "$4: no log $1"
    if ! grep -F -- "$2" "$1" | grep -Eq -- "$3"; then
        _stp_show "$1"
        stp_fail "$4: no line of $1 names '$2' with /$3/"
    fi
}

# tmp_count DIR: the temp files in DIR (.<name>.XXXXXXXX.tmp), links aside.
tmp_count() {
    find "$1" -maxdepth 1 -name '.*.tmp' ! -type l | wc -l
}

# regular FILE: FILE is a regular file, not a link.
regular() {
    [ -f "$1" ] && [ ! -L "$1" ]
}

need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: $CASE needs root (mounts, another user)" >&2
        exit 77
    fi
}

# A stored file that does not verify: the CLI shows it as invalid, the
# server never staples it (the responder fails at first, so that nothing
# replaces it), says why naming the file, and repairs it once the
# responder answers.
bad_file() {
    local corrupt=$1 code=$2 cause=$3
    stp_warm good
    cp "$DER" "$T/good.der"
    "$corrupt"
    stp_cli status --conf "$SCONF" --store-dir "$S"
    stp_assert_eq "$RC" 7 "status: a corrupt stored file (exit 7)"
    stp_assert_file_contains "$OUT" "invalid:$code" "status: invalid:$code"
    stp_responder_mode "$P" http500
    stp_conf "$CONF" preload "retry_base = 1s" "retry_max = 2s"
    stp_serve_s_server preload "$CONF" "$K/good"
    unstapled 5
    stp_assert_file_contains "$T/hook.log" "tracking certificate" "hook loaded"
    stp_responder_mode "$P" normal
    STP_WAIT=15 wait_staple --CAfile "$P/root.pem"
    verified_good
    respin_ok "$DER" good
    cmp -s "$T/good.der" "$DER" && stp_fail "the stored file was not replaced"
    stp_no_errors "$T/hook.log"
    names_fault "$T/hook.log" "$ID.der" "$cause" \
        "the hook names the rejected file and the cause"
}

truncate_der() {
    local size
    size=$(stat -c %s "$T/good.der")
    head -c $((size / 2)) "$T/good.der" >"$DER"
}

garbage_der() {
    head -c 700 /dev/urandom >"$DER"
}

foreign_der() {
    stp_warm ecdsa
    cp "$S/$EID.der" "$DER"
}

case $CASE in
truncated)
    bad_file truncate_der malformed "not a DER OCSP response"
    ;;
garbage)
    bad_file garbage_der malformed "not a DER OCSP response"
    ;;
foreign)
    # a valid response for another certificate renamed into place
    bad_file foreign_der certid "not for this certificate"
    ;;
replay)
    # an older valid response put back over a newer one, in the store and
    # by the responder. Short responses (2 min) and a short schedule make
    # the server read the store again within the test.
    stp_conf "$CONF" preload "refresh_margin = 90" "refresh_min = 10s" \
        "refresh_jitter = 0" "clock_skew = 5s" "retry_base = 1s" \
        "ca_file = $P/root.pem"
    stp_cli fetch "$P/good.chain.pem" --conf "$CONF"
    stp_assert_eq "$RC" 0 "first fetch"
    cp "$DER" "$T/r1.der"
    stp_next_second
    stp_cli fetch "$P/good.chain.pem" --conf "$CONF" --force
    stp_assert_eq "$RC" 0 "second fetch"
    cp "$DER" "$T/r2.der"
    cmp -s "$T/r1.der" "$T/r2.der" && stp_fail "the second fetch stored nothing new"
    r1=$(stp_file_this_update "$T/r1.der")
    r2=$(stp_file_this_update "$T/r2.der")
    # the CLI: the responder replays r1; the newer r2 stays
    cp "$T/r1.der" "$P/responder.replay.der"
    stp_responder_mode "$P" replay
    stp_cli fetch "$P/good.chain.pem" --conf "$CONF" --force
    stp_assert_eq "$RC" 1 "fetch refuses the older response"
    stp_assert_file_contains "$ERR" "older than the stored one" "fetch says why"
    stp_cli refresh --conf "$CONF" --force
    stp_assert_eq "$RC" 1 "refresh refuses the older response"
    stp_assert_file_contains "$OUT" "older than the stored one" "refresh says why"
    cmp -s "$T/r2.der" "$DER" || stp_fail "the CLI replaced the newer response"
    # the server holds r2; r1 is put back into the store and the responder
    # keeps replaying it
    stp_serve_s_server preload "$CONF" "$K/good"
    t0=$(date +%s)
    verified_good
    stp_assert_eq "$(stp_probe_this_update)" "$r2" "the server serves r2"
    cp "$T/r1.der" "$S/.replay"
    mv -f "$S/.replay" "$DER"
    # the refresher reads the store again 10 to 12 s after its first pass
    while [ "$(date +%s)" -lt $((t0 + 14)) ]; do
        verified_good
        stp_assert_eq "$(stp_probe_this_update)" "$r2" "r2 is kept, not r1"
        sleep 0.5
    done
    verified_good
    stp_assert_eq "$(stp_probe_this_update)" "$r2" "r2 is kept after the re-read"
    stop_server replay1.log
    # restarted with only r1 stored, still valid: r1 is served
    stp_responder_mode "$P" http500
    cp "$T/r1.der" "$DER"
    stp_serve_s_server preload "$CONF" "$K/good"
    verified_good
    stp_assert_eq "$(stp_probe_this_update)" "$r1" "a restart serves the valid r1"
    stop_server replay2.log
    # restarted with only r1 stored, expired (the server's clock is a day
    # later): nothing is served
    stp_serve_s_server preload "$CONF" "$K/good" \
        "OCSPSTAPLE_FAKE_TIME=$(($(date +%s) + 86400))"
    unstapled 3
    stop_server replay3.log
    for f in replay1.log replay2.log replay3.log; do
        stp_no_errors "$T/$f"
    done
    names_fault "$T/replay1.log" "$ID.der" "older" \
        "the hook says the stored file is older than the staple it holds"
    ;;
missing)
    # 1. store_dir cannot be created: one ERROR line; the server fetches
    # for itself and staples from memory
    : >"$T/afile"
    bad=$T/afile/store
    stp_conf "$CONF" preload "retry_base = 1s"
    sed -i "s#^store_dir = .*#store_dir = $bad#" "$CONF"
    stp_serve_s_server preload "$CONF" "$K/good"
    wait_staple --CAfile "$P/root.pem"
    verified_good
    # a window for what must not happen: a retry (retry_base 1 s) that
    # would fetch again, or say the store problem again
    sleep 1
    verified_good
    stp_assert_requests 1 "one fetch, for this process"
    stp_assert_eq "$(grep -c "store_dir '$bad': cannot create" "$T/hook.log")" 1 \
        "said once, naming the directory"
    names_fault "$T/hook.log" "$bad" "Not a directory" "the hook says why"
    stp_cli fetch "$P/good.chain.pem" --store-dir "$bad"
    stp_assert_eq "$RC" 1 "the CLI cannot fetch into it"
    names_fault "$ERR" "$bad" "cannot create: Not a directory" "the CLI says why"
    stp_cli status --conf "$SCONF" --store-dir "$bad"
    stp_assert_eq "$RC" 1 "status fails"
    names_fault "$ERR" "$bad" "cannot open: Not a directory" "status says why"
    stop_server missing1.log
    # 2. store_dir missing, parents too: created (0755) and used
    sed -i "s#^store_dir = .*#store_dir = $S/a/b#" "$CONF"
    stp_serve_s_server preload "$CONF" "$K/good"
    wait_staple --CAfile "$P/root.pem"
    verified_good
    stp_assert_eq "$(stat -c %a "$S/a/b")" 755 "created with mode 0755"
    respin_ok "$S/a/b/$ID.der" good
    stop_server missing2.log
    stp_no_errors "$T/missing2.log"
    # 3. store_dir removed while a server runs, after it opened it: it is
    # created again and used (the responder fails until then, so that the
    # server has something to write)
    rm -rf "$S/a"
    stp_responder_mode "$P" http500
    stp_serve_s_server preload "$CONF" "$K/good"
    unstapled 2
    stp_wait_for grep -q "HTTP status 500" "$T/hook.log" ||
        stp_fail "no first, failed attempt"
    rm -rf "$S/a"
    stp_responder_mode "$P" normal
    STP_WAIT=20 wait_staple --CAfile "$P/root.pem"
    verified_good
    [ -d "$S/a/b" ] || stp_fail "the removed store_dir was not created again"
    respin_ok "$S/a/b/$ID.der" good
    stop_server missing3.log
    stp_no_errors "$T/missing3.log"
    ;;
unreadable)
    # chmod 000 stops everyone but root: the server and the CLI run as
    # nobody, with their certificates, keys and log readable by nobody
    need_root
    stp_need setpriv
    run_as nobody
    stp_warm good
    chmod 0711 "$T"
    K=$T/keys
    mkdir -p "$K"
    cp "$P/good.pem" "$P/good.key" "$P/int.pem" "$K/"
    chown -R nobody:nogroup "$K" "$S"
    : >"$T/hook.log"
    chown nobody:nogroup "$T/hook.log"
    for f in "$STP_HOOK" "$STP_CLI" "$K/good.key"; do
        as_user test -r "$f" ||
            { echo "SKIP: nobody cannot read $f" >&2 && exit 77; }
    done
    stp_conf "$CONF" preload "retry_base = 1s" "retry_max = 1s"
    chmod 0644 "$CONF"
    chmod 000 "$S"
    # the server cannot use the store: it fetches for itself, staples from
    # memory, and says so once
    stp_serve_s_server preload "$CONF" "$K/good"
    wait_staple --CAfile "$P/root.pem"
    verified_good
    # a window for what must not happen: a retry (retry_base 1 s) that
    # would fetch again, or say the store problem again
    sleep 1
    verified_good
    stp_assert_file_contains "$T/hook.log" "tracking certificate" "hook loaded"
    stp_assert_requests 2 "the warm fetch, and this process's own"
    stp_assert_eq "$(grep -c "store_dir '$S'" "$T/hook.log")" 1 \
        "said once, naming the directory"
    names_fault "$T/hook.log" "$S" "cannot open: Permission denied" \
        "the hook says why"
    stp_cli status --conf "$SCONF" --store-dir "$S"
    stp_assert_eq "$RC" 1 "status as nobody fails"
    names_fault "$ERR" "$S" "Permission denied" "status says why"
    stp_cli fetch "$P/good.chain.pem" --store-dir "$S" --force
    stp_assert_eq "$RC" 1 "fetch as nobody fails"
    names_fault "$ERR" "$S" "Permission denied" "fetch says why"
    # readable again: the CLI as nobody reads it
    chmod 0755 "$S"
    stp_cli status --conf "$SCONF" --store-dir "$S"
    stp_assert_eq "$RC" 0 "status as nobody"
    stp_assert_file_contains "$OUT" " good " "status: good"
    ;;
readonly)
    # a read-only bind mount: read-only for root too
    need_root
    stp_warm good
    cp "$DER" "$T/good.der"
    mount --bind "$S" "$S" ||
        { echo "SKIP: mount --bind not permitted" >&2 && exit 77; }
    MOUNTS+=("$S")
    mount -o remount,bind,ro "$S"
    if touch "$S/probe" 2>/dev/null; then
        stp_fail "$S is still writable"
    fi
    stp_cli fetch "$P/good.chain.pem" --store-dir "$S" --force
    stp_assert_eq "$RC" 1 "fetch into a read-only store fails"
    names_fault "$ERR" "$S/$ID" "Read-only file system" "fetch says why"
    cmp -s "$T/good.der" "$DER" || stp_fail "the stored response changed"
    stp_cli status --conf "$SCONF" --store-dir "$S"
    stp_assert_eq "$RC" 0 "status reads a read-only store"
    stp_assert_file_contains "$OUT" " good " "status: good"
    # the server staples what is stored (good); ecdsa's response cannot be
    # stored: it is fetched and held in memory, with one line saying why
    stp_conf "$CONF" preload "retry_base = 1s" "retry_max = 1s"
    serve_dual
    verified_good "${RSA[@]}"
    wait_staple "${EC[@]}" --CAfile "$P/root.pem"
    stp_expect_line "status=good verified=yes" "ecdsa: held in memory, verified"
    stp_expect_line "cert_key=EC" "the ECDSA certificate"
    verified_good "${RSA[@]}"
    stp_no_errors "$T/hook.log"
    names_fault "$T/hook.log" "$S/$EID" "Read-only file system" \
        "the hook names the file and the cause"
    cmp -s "$T/good.der" "$DER" || stp_fail "the stored response changed"
    ;;
worldwritable)
    # mode 0777 without the sticky bit: the hook warns once; a file
    # planted there is verified like any other
    stp_warm ecdsa
    mkdir -p "$S"
    cp "$S/$EID.der" "$DER"
    chmod 0777 "$S"
    stp_responder_mode "$P" http500
    stp_conf "$CONF" preload "retry_base = 1s" "retry_max = 2s"
    stp_serve_s_server preload "$CONF" "$K/good"
    unstapled 5
    stp_responder_mode "$P" normal
    STP_WAIT=15 wait_staple --CAfile "$P/root.pem"
    verified_good
    respin_ok "$DER" good
    stp_assert_file_contains "$T/hook.log" "not for this certificate" \
        "the planted response was rejected"
    stp_assert_eq "$(grep -c "store_dir '$S' is writable by every user" "$T/hook.log")" 1 \
        "warned once, naming the directory"
    stp_no_errors "$T/hook.log"
    ;;
tmplink)
    # symlinks planted at guessed temp names (.<name>.XXXXXXXX.tmp, 32
    # random bits) are never followed: temp files are created with
    # O_EXCL|O_NOFOLLOW (a name that exists is never reused), and what a
    # dead writer left (links included) is removed, not written through
    stp_need perl strace
    stp_warm good
    cp "$DER" "$T/good.der"
    victim=$T/victim
    echo "not to be overwritten" >"$victim"
    chmod 0644 "$victim"
    vsum=$(sha256sum <"$victim")
    vtime=$(stat -c %Y "$victim")
    perl -e 'my ($dir, $id, $v) = @ARGV; my $n = 0;
        for my $sfx (".der", ".state", ".pem") {
            for (1 .. 2048) {
                $n++ if symlink($v, sprintf("%s/.%s%s.%08x.tmp", $dir, $id,
                    $sfx, int(rand(4294967296))));
            }
        }
        print "$n\n";' "$S" "$ID" "$victim" >"$T/planted"
    planted=$(<"$T/planted")
    [ "$planted" -gt 6000 ] || stp_fail "planted only $planted links"
    stp_next_second
    set +e
    ASAN_OPTIONS=$NOLSAN strace -f -qq -o "$T/strace.out" \
        -e trace=openat,rename,renameat,renameat2 "$STP_CLI" fetch "$P/good.chain.pem" --store-dir "$S" --force \
        >"$T/cli.out" 2>"$T/cli.err"
    RC=$?
    set -e
    tail -n 3 "$T/cli.out" "$T/cli.err" >&2
    stp_assert_eq "$RC" 0 "fetch among planted links"
    grep -E "openat\(.*\.$ID\.der\.[0-9a-f]{8}\.tmp\", O_WRONLY\|O_CREAT\|O_EXCL\|O_NOFOLLOW" \
        "$T/strace.out" >&2 || stp_fail "the temp file is not opened O_EXCL|O_NOFOLLOW"
    regular "$DER" || stp_fail "$DER is not a regular file"
    cmp -s "$T/good.der" "$DER" && stp_fail "nothing new was stored"
    respin_ok "$DER" good
    # what is left: the four files of the certificate and the store's
    # "changed" (the CLI tells running servers), and links to the victim
    # that were not removed (none was replaced by a file)
    stp_assert_eq "$(find "$S" -maxdepth 1 -type f | sort | xargs -n1 basename | paste -sd' ')" \
        "$(printf '%s\n' "$ID.der" "$ID.lock" "$ID.pem" "$ID.state" changed | sort | paste -sd' ')" \
        "only the certificate's files are files"
    stp_assert_eq "$(find "$S" -maxdepth 1 -type l ! -lname "$victim" | wc -l)" 0 \
        "no planted link was repointed"
    echo "planted $planted links; left: $(find "$S" -maxdepth 1 -type l | wc -l)" >&2
    stp_assert_eq "$(sha256sum <"$victim")" "$vsum" "the victim is untouched"
    # The fallback names (used when getrandom fails) are predictable: the
    # writer's own pid. Plant exactly those (all 16 attempts) while the
    # writer fetches (after it took its lock and cleaned up), then let it
    # go on: it must give up writing, not follow a link.
    cp "$DER" "$T/before.der"
    sentinel=$S/.$ID.sentinel.tmp # a dead writer's leftover, for the cleanup
    ln -s "$victim" "$sentinel"
    set +e
    ASAN_OPTIONS=$NOLSAN strace -f -qq -o /dev/null -e trace=getrandom,connect \
        -e inject=getrandom:error=ENOSYS -e inject=connect:delay_exit=5000000 \
        "$STP_CLI" fetch "$P/good.chain.pem" --store-dir "$S" --force \
        >"$T/cli.out" 2>"$T/cli.err" &
    spid=$!
    set -e
    stp_register_pid "$spid"
    # The writer has its lock and has cleaned up when it says so (its
    # cleanup's INFO line, after the whole directory is gone through; the
    # sentinel gone says only that the cleanup has begun). Its connect is
    # then delayed 5 s: plant then, at the names of the pid in that line,
    # the pid the writer sees (in a pid namespace, not the one /proc shows).
    cleaned() {
        grep -q "INFO store: $S: removed [0-9]* temp file(s)" "$T/cli.err"
    }
    STP_WAIT=10 stp_wait_for cleaned || stp_fail "the writer did not clean up within 10 s"
    [ ! -L "$sentinel" ] || stp_fail "the writer's cleanup left the sentinel"
    wpid=$(sed -n 's/.* ocspstaple\[\([0-9]*\):[0-9]*\] INFO store: .*removed.*/\1/p' "$T/cli.err")
    [ -n "$wpid" ] || stp_fail "no pid in the writer's cleanup line"
    echo "the writer: pid $wpid (seen from here: $(pgrep -P "$spid" || echo none))" >&2
    # in one process: 48 forks of ln could outlast the writer's delayed
    # connect on a loaded machine (then it wrote before they existed)
    perl -e 'my ($dir, $id, $v, $pid) = @ARGV;
        for my $a (0 .. 15) {
            my $r = sprintf("%08x", ($pid * 2654435761 + $a) & 0xffffffff);
            for my $sfx ("der", "state", "pem") {
                symlink($v, "$dir/.$id.$sfx.$r.tmp") or die "symlink: $!";
            }
        }' "$S" "$ID" "$victim" "$wpid" || stp_fail "planting the fallback names"
    set +e
    wait "$spid"
    RC=$?
    set -e
    stp_forget_pid "$spid"
    cat "$T/cli.out" "$T/cli.err" >&2
    stp_assert_eq "$RC" 1 "every temp name taken: the write fails"
    cmp -s "$T/before.der" "$DER" || stp_fail "the stored response changed"
    names_fault "$T/cli.err" "$S/$ID.der" "cannot create a temp file: File exists" \
        "the CLI names the directory and the cause"
    stp_assert_eq "$(sha256sum <"$victim")" "$vsum" "the victim is untouched"
    stp_assert_eq "$(stat -c %Y "$victim")" "$vtime" "the victim was not written"
    stp_assert_eq "$(find "$S" -maxdepth 1 -type l -lname "$victim" | wc -l)" 48 \
        "the 48 links at the writer's names are still links"
    # a server on this store still staples, and logs no error
    stp_conf "$CONF" preload
    stp_serve_s_server preload "$CONF" "$K/good"
    verified_good
    stp_no_errors "$T/hook.log"
    ;;
targetlink)
    # <id>.der (and .state, .pem) planted as symlinks: the reader refuses
    # them (even to a valid response), the writer replaces the links, and
    # their targets are untouched
    victim=/etc/hostname
    [ -f "$victim" ] || victim=/etc/os-release
    vsum=$(sha256sum <"$victim")
    vtime=$(stat -c %Y "$victim")
    stp_own_response good "$T/outside.der" 7
    mkdir -p "$S"
    ln -s "$T/outside.der" "$DER"
    ln -s "$victim" "$S/$ID.state"
    ln -s "$victim" "$S/$ID.pem"
    stp_responder_mode "$P" http500
    stp_conf "$CONF" preload "retry_base = 1s" "retry_max = 2s"
    stp_serve_s_server preload "$CONF" "$K/good"
    unstapled 5
    names_fault "$T/hook.log" "$DER" "Too many levels of symbolic links" \
        "the hook names the link and the cause"
    [ -L "$DER" ] || stp_fail "the link was removed without a response to store"
    # the writer: the .der link now points at the victim too
    ln -sfn "$victim" "$DER"
    stp_responder_mode "$P" normal
    STP_WAIT=15 wait_staple --CAfile "$P/root.pem"
    verified_good
    stp_assert_eq "$(stp_probe_days)" 1 "the fetched response, not outside.der"
    for f in "$DER" "$S/$ID.state" "$S/$ID.pem"; do
        regular "$f" || stp_fail "$f was not replaced by a file"
    done
    respin_ok "$DER" good
    stp_no_errors "$T/hook.log"
    # the CLI replaces a link as well
    ln -sfn "$victim" "$DER"
    stp_cli fetch "$P/good.chain.pem" --store-dir "$S" --force
    stp_assert_eq "$RC" 0 "fetch over a link"
    regular "$DER" || stp_fail "the CLI wrote through the link"
    respin_ok "$DER" good
    stp_assert_eq "$(sha256sum <"$victim")" "$vsum" "$victim is untouched"
    stp_assert_eq "$(stat -c %Y "$victim")" "$vtime" "$victim was not written"
    ;;
diskfull)
    need_root
    mkdir -p "$S"
    if [ -z "${STP_FAULTS_NO_MOUNT:-}" ] &&
        mount -t tmpfs -o size=64k,mode=0755 tmpfs "$S" 2>/dev/null; then
        MOUNTS+=("$S")
        stp_warm good
        cp "$DER" "$T/good.der"
        dd if=/dev/zero of="$S/filler" bs=1k count=128 status=none 2>/dev/null || true
        cause="No space left on device"
        stp_cli fetch "$P/good.chain.pem" --store-dir "$S" --force
    else
        # no mount: a file size limit, SIGXFSZ ignored (EFBIG instead); the
        # CLI's stderr is a pipe, which the limit does not affect
        echo "note: mount not permitted, using RLIMIT_FSIZE" >&2
        stp_warm good
        cp "$DER" "$T/good.der"
        cause="File too large"
        set +e
        (
            trap '' XFSZ
            ulimit -f 0
            exec timeout 30 "$STP_CLI" fetch "$P/good.chain.pem" \
                --store-dir "$S" --force 2>&1 >/dev/null
        ) | cat >"$T/cli.err"
        RC=${PIPESTATUS[0]}
        set -e
        ERR=$T/cli.err
        cat "$ERR" >&2
    fi
    stp_assert_eq "$RC" 1 "a full disk is an error"
    names_fault "$ERR" "$S/$ID.der" "write failed: $cause" "the CLI says why"
    cmp -s "$T/good.der" "$DER" || stp_fail "the stored response was damaged"
    respin_ok "$DER" good
    stp_assert_eq "$(tmp_count "$S")" 0 "no temp file left"
    if [ "$cause" = "File too large" ]; then
        stp_ok "$CASE (RLIMIT_FSIZE; no server part)"
        exit 0
    fi
    # a server: the stored staple is served; ecdsa's response cannot be
    # stored: it is held in memory, with one line saying why
    stp_conf "$CONF" preload "retry_base = 1s" "retry_max = 1s"
    serve_dual
    verified_good "${RSA[@]}"
    wait_staple "${EC[@]}" --CAfile "$P/root.pem"
    stp_expect_line "status=good verified=yes" "ecdsa: held in memory, verified"
    stp_expect_line "cert_key=EC" "the ECDSA certificate"
    names_fault "$T/hook.log" "$S/$EID.der" "$cause" \
        "the hook names the file and the cause"
    stp_no_errors "$T/hook.log"
    stp_assert_eq "$(tmp_count "$S")" 0 "no temp file left"
    cmp -s "$T/good.der" "$DER" || stp_fail "the stored response was damaged"
    # space again: the CLI stores ecdsa's response
    rm -f "$S/filler"
    stp_cli fetch "$P/ecdsa.chain.pem" --store-dir "$S" --force
    stp_assert_eq "$RC" 0 "fetch with space again"
    respin_ok "$S/$EID.der" ecdsa
    stp_assert_eq "$(tmp_count "$S")" 0 "no temp file left"
    ;;
killwrite)
    # kill -9 of `ocspstaple fetch --force` in mid-write, again and again:
    # at random short delays, and pinned in the write window (strace delays
    # its fsync, or its rename, while its temp file exists). Readers see
    # the old file or the new one, never a torn one; the temp files of the
    # killed writers are removed by the next writer.
    KILLS=${STP_KILLS:-50}
    stp_warm good
    stp_conf "$CONF" preload
    stp_serve_s_server preload "$CONF" "$K/good"
    verified_good
    pinned=0
    most=0
    can_strace=1
    strace -o /dev/null -qq true 2>/dev/null || can_strace=0
    shopt -s nullglob
    for ((k = 1; k <= KILLS; k++)); do
        declare -A old=()
        for f in "$S"/."$ID".der.*.tmp; do old[$f]=1; done
        how=$((can_strace ? k % 3 : 0))
        case $how in
        0)
            "$STP_CLI" fetch "$P/good.chain.pem" --store-dir "$S" --force \
                >/dev/null 2>&1 &
            wpid=$!
            sleep "0.0$((RANDOM % 90 + 10))"
            kill -KILL "$wpid" 2>/dev/null || true
            wait "$wpid" 2>/dev/null || true
            ;;
        *)
            if [ "$how" -eq 1 ]; then
                inj=fsync:delay_enter=400000 # written, not yet renamed
            else
                inj=rename,renameat,renameat2:delay_enter=400000
            fi
            ASAN_OPTIONS=$NOLSAN strace -f -qq -o /dev/null \
                -e trace=fsync,rename,renameat,renameat2 \
                -e inject="$inj" "$STP_CLI" fetch "$P/good.chain.pem" \
                --store-dir "$S" --force >/dev/null 2>&1 &
            spid=$!
            stp_register_pid "$spid"
            # wait (5 s at most) for a temp file of this writer's response
            fresh=
            for ((i = 0; i < 500; i++)); do
                for f in "$S"/."$ID".der.*.tmp; do
                    [ -n "${old[$f]:-}" ] || fresh=$f
                done
                [ -z "$fresh" ] || break
                sleep 0.01
            done
            [ -z "$fresh" ] || pinned=$((pinned + 1))
            child=$(pgrep -P "$spid" || true)
            if [ -n "$child" ]; then
                kill -KILL "$child" 2>/dev/null || true
            fi
            wait "$spid" 2>/dev/null || true
            stp_forget_pid "$spid"
            ;;
        esac
        unset old
        left=$(tmp_count "$S")
        [ "$left" -le "$most" ] || most=$left
        # a reader sees a whole response, the old or the new
        [ -f "$DER" ] || stp_fail "kill $k: $DER is gone"
        respin_ok "$DER" good
        stp_cli status --conf "$SCONF" --store-dir "$S"
        stp_assert_eq "$RC" 0 "kill $k: status"
        stp_assert_file_contains "$OUT" " good " "kill $k: status good"
        verified_good
    done
    left=$(tmp_count "$S")
    echo "kills=$KILLS pinned_in_write_window=$pinned most_temp_files=$most temp_files_before_last_write=$left" >&2
    [ "$pinned" -ge $((KILLS / 3)) ] || [ "$can_strace" -eq 0 ] ||
        stp_fail "only $pinned kills landed in the write window"
    # the next successful write removes what the killed writers left
    OCSPSTAPLE_DEBUG=level:info stp_cli fetch "$P/good.chain.pem" --store-dir "$S" --force
    stp_assert_eq "$RC" 0 "a fetch after the kills"
    respin_ok "$DER" good
    if [ "$(tmp_count "$S")" -ne 0 ]; then
        ls -la "$S" >&2
        stp_fail "$(tmp_count "$S") temp files of killed writers remain after a successful write"
    fi
    if [ "$left" -gt 0 ]; then
        names_fault "$ERR" "$S: removed" "temp file\\(s\\) left by writers that died" \
            "the writer names what it removed"
    fi
    stp_no_errors "$T/hook.log"
    ;;
*)
    stp_fail "unknown case $CASE"
    ;;
esac
stp_ok "store $CASE"
