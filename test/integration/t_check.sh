#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_check.sh: `ocspstaple check` and `--conf` on real openssl.cnf files: a
# valid file passes, every problem is reported naming file, key and value,
# and the policy of the file drives `fetch` (store_dir, responder override).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"

stp_need openssl
stp_setup
# the store as a host acting in nginx alone has it: its workers' user
# (www-data) owns it, and can reach it
chmod 0711 "$T"
if [ "$(id -u)" = 0 ]; then
    install -d -o www-data -m 0750 "$T/store"
fi

# conf FILE [extra lines for the ocspstaple section...]: acting in nginx
# alone unless the lines set programs
conf() {
    local file=$1 progs="programs = nginx"
    shift
    case " $* " in *" programs = "*) progs= ;; esac
    {
        printf 'openssl_conf = openssl_init\n[openssl_init]\nproviders = prov\n'
        printf '[prov]\ndefault = default_sect\nocspstaple = stp_sect\n'
        printf '[default_sect]\nactivate = 1\n'
        printf '[stp_sect]\nactivate = 1\nstore_dir = %s\n' "$T/store"
        printf '%s\n' "$progs" "$@"
    } >"$file"
}

conf "$T/ok.cnf" "mode = must" "cache_ttl = 2h" "certs = certs" \
    "[certs]" "www = cert_www" "[cert_www]" "match = name:good.test" \
    "responder_url = http://127.0.0.1:9/"
stp_cli check --conf "$T/ok.cnf"
stp_assert_eq "$RC" 0 "a valid file passes"
stp_assert_file_contains "$OUT" "OK: .* mode must, .*1 per-certificate" "summary"

conf "$T/bad.cnf" "cache_ttl = 30" "cache_tll = 5" "mode = sometimes" \
    "responder_url = ftp://127.0.0.1/"
stp_cli check --conf "$T/bad.cnf"
stp_assert_eq "$RC" 1 "problems fail the check"
stp_assert_file_contains "$ERR" "bad.cnf \\[stp_sect\\]: key 'cache_ttl': value '30' is out of range" "range"
stp_assert_file_contains "$ERR" "unknown key 'cache_tll' \\(did you mean 'cache_ttl'\\?\\)" "typo"
stp_assert_file_contains "$ERR" "key 'mode': value 'sometimes'.*auto" "enum"
stp_assert_file_contains "$ERR" "key 'responder_url': value 'ftp://127.0.0.1/'" "url"
stp_assert_file_contains "$ERR" "4 problem" "all four reported"

# keys that are parsed but have no effect are problems, not OK: the
# client_ocsp_* keys while client_ocsp is off
conf "$T/inert.cnf" "client_ocsp_responder = http://127.0.0.1:9/" \
    "client_ocsp_fail = open" "client_ocsp_timeout = 1s" "client_ocsp_unknown = allow" \
    "client_ocsp_no_url = refuse" "client_ocsp_nonce = yes"
stp_cli check --conf "$T/inert.cnf"
stp_assert_eq "$RC" 1 "keys without effect fail the check"
for k in client_ocsp_responder client_ocsp_fail client_ocsp_timeout client_ocsp_unknown \
    client_ocsp_no_url client_ocsp_nonce; do
    stp_assert_file_contains "$ERR" "key '$k' has no effect while client_ocsp is off: client certificates are not checked" \
        "$k is said to do nothing"
done
# with client_ocsp on they act, and their defaults written out are fine
conf "$T/client_on.cnf" "metrics_file = $T/ocspstaple.prom" "client_ocsp = chain" \
    "client_ocsp_default_responder = http://127.0.0.1:9/" \
    "client_ocsp_fail = open" "client_ocsp_timeout = 1s" "client_ocsp_unknown = allow" \
    "client_ocsp_no_url = refuse"
stp_cli check --conf "$T/client_on.cnf"
stp_assert_eq "$RC" 0 "client_ocsp keys act when client_ocsp is on (and metrics_file acts)"
conf "$T/inert_off.cnf" "client_ocsp = off" "client_ocsp_fail = closed"
stp_cli check --conf "$T/inert_off.cnf"
stp_assert_eq "$RC" 0 "client_ocsp = off is fine"
# the override and the default responder are one or the other
conf "$T/both.cnf" "client_ocsp = leaf" "client_ocsp_responder = http://127.0.0.1:9/" \
    "client_ocsp_default_responder = http://127.0.0.1:9/"
stp_cli check --conf "$T/both.cnf"
stp_assert_eq "$RC" 1 "both responders fail the check"
stp_assert_file_contains "$ERR" "keys 'client_ocsp_responder' and 'client_ocsp_default_responder': both are set" \
    "names both keys"

# as root: the users of the installed servers the policy acts in (nginx:
# www-data) can write store_dir; another (--user) cannot, and is told how
if [ "$(id -u)" = 0 ] && [ -x /usr/sbin/nginx ] && id haproxy >/dev/null 2>&1; then
    stp_cli check --conf "$T/ok.cnf"
    stp_assert_file_contains "$OUT" "store_dir checked for the users of the installed servers: www-data" \
        "www-data (nginx) was checked"
    stp_cli check --conf "$T/ok.cnf" --user haproxy
    stp_assert_eq "$RC" 1 "a server user that cannot write store_dir fails the check"
    stp_assert_file_contains "$ERR" "store_dir '$T/store': user haproxy \\(--user\\) cannot write it .*chgrp GROUP '$T/store' && chmod 2770" \
        "names the user and the fix"
    conf "$T/nostore.cnf"
    sed -i "s|^store_dir = .*|store_dir = $T/root-only/store|" "$T/nostore.cnf"
    install -d -m 0700 "$T/root-only"
    stp_cli check --conf "$T/nostore.cnf"
    stp_assert_eq "$RC" 1 "a store_dir www-data cannot create fails the check"
    stp_assert_file_contains "$ERR" "does not exist and user www-data \(nginx\) cannot create it in '$T/root-only'; fix: install -d -o www-data" \
        "names the user, the parent and the fix"
fi
# a module that cannot be loaded (here: not an ELF file; a prefix install's
# missing libocspstaple.so.0 fails the same way) is a problem, not OK
printf 'not a shared object\n' >"$T/bogus.so"
conf "$T/bogus.cnf" "module = $T/bogus.so"
stp_cli check --conf "$T/bogus.cnf"
stp_assert_eq "$RC" 1 "a module that does not load fails the check"
stp_assert_file_contains "$ERR" "module '$T/bogus.so' cannot be loaded: .*bogus.so" "says why"
if [ -n "${STP_MODULE:-}" ]; then
    conf "$T/realmod.cnf" "module = $STP_MODULE"
    stp_cli check --conf "$T/realmod.cnf"
    stp_assert_eq "$RC" 0 "the built module loads"
fi

# a policy file for the LD_PRELOAD route (OCSPSTAPLE_CONF): its section has
# neither module nor activate, OpenSSL is not meant to load the provider
# from it: a note, not a problem; with a module but no activate, it is one
grep -v '^activate = 1$' "$T/ok.cnf" >"$T/preload.cnf"
printf '[default_sect]\nactivate = 1\n' >>"$T/preload.cnf"
stp_cli check --conf "$T/preload.cnf"
stp_assert_eq "$RC" 0 "a preload-only policy file passes"
stp_assert_file_contains "$OUT" "neither 'module' nor 'activate'.*LD_PRELOAD route" \
    "says it is a policy for the preload route"
conf "$T/noactivate.cnf" "module = ${STP_MODULE:-/nonexistent/ocspstaple.so}"
sed -i '/^\[stp_sect\]$/{n;/^activate = 1$/d}' "$T/noactivate.cnf"
stp_cli check --conf "$T/noactivate.cnf"
stp_assert_eq "$RC" 1 "a module without activate fails"
stp_assert_file_contains "$ERR" "has no 'activate = 1': it will not load" "says why"

# programs empty on a host with several TLS servers installed: a warning
# naming them (the policy would act in all of them), not a problem
installed=0
for b in /usr/sbin/nginx /usr/sbin/apache2 /usr/sbin/lighttpd /usr/sbin/haproxy /usr/bin/stunnel4; do
    [ -x "$b" ] && installed=$((installed + 1))
done
conf "$T/noprog.cnf" "programs = "
# (--user: the store is www-data's; the other servers' users are not the point)
stp_cli check --conf "$T/noprog.cnf" --user www-data
stp_assert_eq "$RC" 0 "an empty programs list is not a problem"
if [ "$installed" -ge 2 ]; then
    stp_assert_file_contains "$OUT" "warning: programs is empty: .* $installed TLS servers are installed .*programs = " \
        "warns, naming the $installed installed servers"
    stp_assert_file_contains "$OUT" "OK \(with the warning above\)" "its OK says so"
else
    stp_assert_file_lacks "$OUT" "warning: programs" "no warning with $installed server(s) installed"
fi
stp_cli check --conf "$T/ok.cnf"
stp_assert_file_lacks "$OUT" "warning: programs" "programs = nginx: no warning"

# a providers section without an activated default provider breaks TLS
sed 's/^default = default_sect$//' "$T/ok.cnf" >"$T/nodefault.cnf"
stp_cli check --conf "$T/nodefault.cnf"
stp_assert_eq "$RC" 1 "missing default provider"
stp_assert_file_contains "$ERR" "no 'default' provider is activated before" "names the hazard"

stp_cli check --conf "$T/missing.cnf"
stp_assert_eq "$RC" 1 "missing file"
stp_assert_file_contains "$ERR" "missing.cnf" "names the file"

printf 'openssl_conf = x\n[x\n' >"$T/syntax.cnf"
stp_cli check --conf "$T/syntax.cnf"
stp_assert_eq "$RC" 1 "syntax error"
stp_assert_file_contains "$ERR" "syntax.cnf:2: syntax error" "names the line"

# the policy drives fetch: store_dir from the file, per-certificate override
mkdir -p "$T/pki"
stp_start_responder "$T/pki"
stp_mkpki "$T/pki" "$RESPONDER_PORT"
conf "$T/fetch.cnf" "certs = certs" "[certs]" "x = cert_x" "[cert_x]" \
    "match = name:noaia.test" "responder_url = http://127.0.0.1:$RESPONDER_PORT/"
stp_cli fetch "$T/pki/noaia.chain.pem" --conf "$T/fetch.cnf"
stp_assert_eq "$RC" 0 "per-certificate responder_url makes noaia applicable"
stp_assert_file_contains "$OUT" "$T/store/" "store_dir from the file"
stp_cli fetch "$T/pki/good.chain.pem" --conf "$T/bad.cnf"
stp_assert_eq "$RC" 1 "fetch refuses a bad policy"
stp_assert_eq "$(stp_responder_requests "$T/pki")" 1 "one request in all"
stp_ok check
