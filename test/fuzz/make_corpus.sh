#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# make_corpus.sh [OUTDIR]: regenerate the fuzz seed corpus and fuzz_pki.c.
# Builds a throwaway PKI with test/support/mkpki.sh, asks `openssl ocsp`
# (the real responder logic, fed request files, no network) for responses in
# every shape the verifier distinguishes, and writes:
#   OUTDIR/fuzz_pki.c           that PKI (certificates and signing keys) and
#                               the instant the seeds are verified at, so that
#                               seed signatures and CertIDs match the targets
#   OUTDIR/corpus/verify/       DER OCSP responses
#   OUTDIR/corpus/store/        the same kind of bytes, and <id>.state files
#   OUTDIR/corpus/certinfo/     DER certificates
#   OUTDIR/corpus/policy/       "P" key=value policies, "C" openssl.cnf files
# OUTDIR defaults to this script's directory. Files named regress-* (inputs
# that once crashed a target) are kept; every other corpus file is replaced.
# Keys and signatures are random, so a rerun changes bytes, not shapes.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE}
OPENSSL=${OPENSSL:-openssl}
SUPPORT=$HERE/../support
PORT=8080 # only written into the AIA; nothing listens

for tool in "$OPENSSL" xxd; do
    command -v "$tool" >/dev/null 2>&1 ||
        { echo "make_corpus.sh: $tool not found" >&2; exit 1; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stp-corpus.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
P=$WORK/pki

T0=$(date +%s)
bash "$SUPPORT/mkpki.sh" "$P" "$PORT" >/dev/null
# The targets verify at T0 + 30 min: -ndays 1 responses are valid then,
# -nmin 5 ones have expired, and one without nextUpdate is valid with a
# cache_ttl of 1 h but not of 1 min.
NOW=$((T0 + 1800))

for t in verify store certinfo policy; do
    mkdir -p "$OUT/corpus/$t"
    find "$OUT/corpus/$t" -maxdepth 1 -type f ! -name 'regress-*' -delete
done
V=$OUT/corpus/verify
S=$OUT/corpus/store
C=$OUT/corpus/certinfo
Y=$OUT/corpus/policy

# --- OCSP responses ------------------------------------------------------

# request OUT CERT... [-- OPTS...]: an OCSP request for CERTs issued by int
# (OPTS come first: a digest option applies to the -cert options after it).
request() {
    local out=$1 args=()
    shift
    while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
        args+=(-cert "$P/$1.pem")
        shift
    done
    if [ "$#" -gt 0 ]; then
        shift
    fi
    "$OPENSSL" ocsp -issuer "$P/int.pem" "$@" "${args[@]}" \
        -reqout "$WORK/$out.req" 2>/dev/null
}

# respond NAME REQ SIGNER [OPTS...]: answer REQ as `openssl ocsp -index`
# does, signed by SIGNER (a name in the PKI), into verify/NAME.der.
respond() {
    local name=$1 req=$2 signer=$3
    shift 3
    "$OPENSSL" ocsp -index "$P/index.txt" -CA "$P/int.pem" \
        -rsigner "$P/$signer.pem" -rkey "$P/$signer.key" \
        -reqin "$WORK/$req.req" -respout "$V/$name.der" "$@" 2>/dev/null
}

# asn1 NAME: verify/NAME.der from an `openssl asn1parse -genconf` text on stdin.
asn1() {
    cat >"$WORK/$1.cnf"
    "$OPENSSL" asn1parse -genconf "$WORK/$1.cnf" -noout -out "$V/$1.der" \
        >/dev/null
}

request ecdsa ecdsa -- -no_nonce
request nonce ecdsa -- -nonce
request multi ecdsa revoked unknown muststaple -- -no_nonce
request revoked revoked -- -no_nonce
request unknown unknown -- -no_nonce
request sha256 ecdsa -- -no_nonce -sha256

respond good-delegated ecdsa ocsp -ndays 1
respond good-issuer ecdsa int -ndays 1
respond good-issuer-keyid-nocerts ecdsa int -ndays 1 -resp_key_id \
    -resp_no_certs
respond good-delegated-nocerts ecdsa ocsp -ndays 1 -resp_no_certs
respond good-delegated-rother ecdsa ocsp -ndays 1 -rother "$P/root.pem"
respond good-sha384 ecdsa ocsp -ndays 1 -rmd sha384
respond good-nonce nonce ocsp -ndays 1
respond good-no-next-update ecdsa ocsp
respond good-expired ecdsa ocsp -nmin 5
respond good-badsig ecdsa ocsp -ndays 1 -badsig
respond multi multi ocsp -ndays 1
respond revoked revoked ocsp -ndays 1
respond unknown unknown ocsp -ndays 1
respond certid-sha256 sha256 ocsp -ndays 1 -rcid sha256
respond signer-noeku ecdsa noeku -ndays 1
respond signer-rogue ecdsa rogue-ocsp -ndays 1
respond signer-leaf ecdsa ecdsa -ndays 1
"$OPENSSL" ocsp -index "$P/index.txt" -CA "$P/root.pem" \
    -rsigner "$P/ocsp.pem" -rkey "$P/ocsp.key" -ndays 1 \
    -reqin "$WORK/ecdsa.req" -respout "$V/other-ca.der" 2>/dev/null

# Trailing bytes after a valid response (strict DER must refuse them).
cat "$V/good-delegated.der" >"$V/trailing-byte.der"
printf '\0' >>"$V/trailing-byte.der"
# Truncated in the middle of the signature.
head -c 300 "$V/good-delegated.der" >"$V/truncated.der"
: >"$V/empty.der"

# Every responseStatus other than successful, with no responseBytes.
for s in 1:malformed-request 2:internal-error 3:try-later 4:unused \
    5:sig-required 6:unauthorized; do
    printf '%b' "\\x30\\x03\\x0a\\x01\\x0${s%%:*}" >"$V/status-${s#*:}.der"
done
# successful without responseBytes.
printf '\x30\x03\x0a\x01\x00' >"$V/status-successful-empty.der"

# responseBytes of a type other than id-pkix-ocsp-basic.
basic_hex=$(xxd -p "$V/good-issuer.der" | tr -d '\n')
asn1 not-basic <<EOF
asn1 = SEQUENCE:resp
[resp]
status = ENUMERATED:0
bytes = EXPLICIT:0,SEQUENCE:rbytes
[rbytes]
type = OID:1.3.6.1.5.5.7.48.1.2
response = FORMAT:HEX,OCTETSTRING:$basic_hex
EOF
# A basic response whose body is not a BasicOCSPResponse.
asn1 basic-garbage <<EOF
asn1 = SEQUENCE:resp
[resp]
status = ENUMERATED:0
bytes = EXPLICIT:0,SEQUENCE:rbytes
[rbytes]
type = OID:1.3.6.1.5.5.7.48.1.1
response = OCTETSTRING:not a basic response
EOF

# The store target reads the same bytes as <id>.der; a few of each shape.
for f in good-delegated good-issuer-keyid-nocerts good-no-next-update \
    good-expired revoked signer-rogue status-try-later truncated empty; do
    cp "$V/$f.der" "$S/der-$f"
done

# --- Store state files (the format stp_store_write_state() writes) -------

subject=$("$OPENSSL" x509 -in "$P/ecdsa.pem" -noout -subject -nameopt RFC2253)
serial=$("$OPENSSL" x509 -in "$P/ecdsa.pem" -noout -serial)
cat >"$S/state-ok" <<EOF
last_attempt=$T0
last_success=$T0
next_attempt=$((T0 + 64800))
failures=0
last_error=
url=http://127.0.0.1:$PORT/
subject=${subject#subject=}
serial=${serial#serial=}
EOF
cat >"$S/state-failing" <<EOF
last_attempt=$T0
last_success=$((T0 - 86400))
next_attempt=$((T0 + 480))
failures=3
last_error=http: HTTP 500 from http://127.0.0.1:$PORT/
url=http://127.0.0.1:$PORT/
subject=${subject#subject=}
serial=${serial#serial=}
EOF
printf 'last_attempt=-1\nfailures=-1\nnext_attempt=99999999999999999999\n%s\n' \
    'last_success=0x10' >"$S/state-numbers"
printf 'url=http://a/\r\nlast_error=tab\there=and=more\nsubject\n=\n\n' \
    >"$S/state-odd"
printf 'serial=%0200d\nurl=%0600d\n' 7 1 >"$S/state-long"

# --- Certificates ---------------------------------------------------------

for c in root int ocsp noeku rogue rogue-ocsp good ecdsa muststaple revoked \
    unknown noaia multiurl; do
    "$OPENSSL" x509 -in "$P/$c.pem" -outform DER -out "$C/$c.der"
done

# extra NAME EXT...: a certificate issued by int with the given extensions.
extra() {
    local name=$1 args=()
    shift
    for e in "$@"; do
        args+=(-addext "$e")
    done
    "$OPENSSL" req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$WORK/$name.key" -subj "/CN=$name.test" "${args[@]}" \
        -out "$WORK/$name.csr" 2>/dev/null
    "$OPENSSL" x509 -req -in "$WORK/$name.csr" -CA "$P/int.pem" \
        -CAkey "$P/int.key" -set_serial "0x$(printf '%x' "$RANDOM")" \
        -days 10 -copy_extensions copyall -outform DER \
        -out "$C/$name.der" 2>/dev/null
}

extra tlsfeature-v2 "tlsfeature = status_request_v2"
extra tlsfeature-other "tlsfeature = 1, 99"
extra tlsfeature-broken "1.3.6.1.5.5.7.1.24 = DER:0101FF"
extra aia-odd-urls "authorityInfoAccess = OCSP;URI:ldap://x/, \
OCSP;URI:http://, OCSP;URI:HTTPS://127.0.0.1:$PORT/ocsp, \
OCSP;URI:http://127.0.0.1:$PORT/"
extra aia-no-usable "authorityInfoAccess = OCSP;URI:http:///path, \
OCSP;URI:https://:443/, caIssuers;URI:http://127.0.0.1/int.der"
extra san-wildcard "subjectAltName = DNS:*.wild.test, DNS:WWW.Ecdsa.TEST, \
IP:127.0.0.1, email:a@b.test"
"$OPENSSL" req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -nodes -keyout "$WORK/nocn.key" -subj "/O=no common name" -days 10 \
    -outform DER -out "$C/self-signed-nocn.der" 2>/dev/null

# --- Policies: "P" then key=value lines ----------------------------------

fp=$("$OPENSSL" x509 -in "$P/ecdsa.pem" -noout -fingerprint -sha256)
fp=${fp#*=}
fphex=$(printf '%s' "$fp" | tr -d ':' | tr 'A-F' 'a-f')

policy() {
    { echo P; cat; } >"$Y/$1"
}

policy p-minimal <<EOF
mode=auto
EOF
policy p-all-keys <<EOF
module=/usr/lib/x86_64-linux-gnu/ossl-modules/ocspstaple.so
activate=1
mode=must
staple_all=no
revoked_action=exit
must_staple_wait=1500ms
responder_url=http://127.0.0.1:$PORT/ocsp
skip_verify=off
cache_ttl=2h
ca_file=/etc/ssl/certs/ca-certificates.crt
clock_skew=5m
timeout=30s
connect_timeout=2000ms
max_response_size=128k
fetch=true
store_dir=/var/cache/ocspstaple
refresh_margin=30%
refresh_jitter=0
refresh_min=1m
refresh_max=2d
retry_base=30
retry_max=1h
client_ocsp=leaf
client_ocsp_responder=https://[::1]:8443/
client_ocsp_fail=open
log_level=warning
log_file=/var/log/ocspstaple.log
metrics_file=/run/ocspstaple.metrics
programs=nginx, apache2 haproxy,s_*
skip_programs=openssl
EOF
policy p-certs <<EOF
mode=auto
certs.www.match=name:ecdsa.test
certs.www.mode=always
certs.www.responder_url=http://127.0.0.1:9/
certs.wild.match=name:*.test
certs.wild.skip_verify=yes
certs.fp.match=sha256:$fphex
certs.fp.cache_ttl=1d
certs.fp.timeout=5
certs.colon.match=SHA256:$fp
certs.ca.match=name:stp test intermediate ca
EOF
policy p-cert-errors <<EOF
certs=ocspstaple_certs
certs.a.match=name:*.*.test
certs.a.ca_file=/x
certs.b.mode=always
certs..match=name:x.test
certs.c.d.match=name:x.test
certs.e.macth=name:x.test
certs.f.match=sha256:1234
cert.g.match=name:g.test
certs.h=section
EOF
policy p-value-errors <<EOF
mode=sometimes
staple_all=maybe
must_staple_wait=11s
responder_url=ftp://x/
cache_ttl=30
timeout=1500ms
clock_skew=-1
connect_timeout=20s
max_response_size=2m
store_dir=relative/dir
refresh_margin=95%
refresh_min=2d
refresh_max=1d
retry_base=2h
retry_max=1m
log_level=loud
client_ocsp_responder=http://h:0/
cache_tll=1h
moed=auto
EOF
policy p-duplicates <<EOF
mode=auto
mode=never
certs.x.match=name:x.test
certs.x.match=name:y.test
programs=
skip_programs=
EOF
policy p-programs <<EOF
programs=nginx httpd [a-z]*d
skip_programs=*test*, ?
EOF
policy p-no-value <<EOF
mode
=auto
timeout= 10s 
EOF
printf 'P\nstore_dir=/tmp\x01x\nresponder_url=http://h/\x7fp\n' \
    >"$Y/p-control-chars"
{
    echo P
    for i in $(seq 1 260); do
        echo "certs.c$i.match="
    done
} >"$Y/p-too-many-certs"

# --- openssl.cnf files: "C" then the file --------------------------------

conf() {
    { echo C; cat; } >"$Y/$1"
}

{ echo C; cat "$HERE/../../openssl.cnf.example"; } >"$Y/c-example"
conf c-certs <<EOF
openssl_conf = openssl_init
[openssl_init]
providers = provider_sect
[provider_sect]
default = default_sect
ocspstaple = ocspstaple_sect
[default_sect]
activate = 1
[ocspstaple_sect]
module = ocspstaple.so
activate = 1
mode = auto
certs = ocspstaple_certs
[ocspstaple_certs]
www = ocspstaple_www
fp = ocspstaple_fp
[ocspstaple_www]
match = name:*.test
mode = always
[ocspstaple_fp]
match = sha256:$fp
skip_verify = yes
EOF
conf c-identity <<EOF
openssl_conf = init
[init]
providers = provs
alg_section = algs
[provs]
x.default = dflt
y.stapler = stp
[dflt]
activate = 1
[stp]
identity = ocspstaple
module = /opt/lib/ocspstaple.so
store_dir = /tmp/stp
[algs]
default_properties = fips=no
EOF
conf c-module-only <<EOF
openssl_conf = init
[init]
providers = provs
[provs]
first = sect
[sect]
module = /usr/lib/ossl-modules/ocspstaple.so
programs = \$ENV::HOME
EOF
conf c-recursive <<EOF
openssl_conf = init
[init]
providers = provs
[provs]
ocspstaple = a
[a]
mode = auto
nested = b
[b]
back = a
EOF
conf c-missing <<EOF
openssl_conf = init
[init]
providers = provs
[provs]
ocspstaple = nowhere
EOF
conf c-no-openssl-conf <<EOF
[init]
providers = provs
EOF
conf c-syntax-error <<EOF
openssl_conf = init
[init
providers = provs
EOF
conf c-vars <<EOF
dir = /var/cache
openssl_conf = init
[init]
providers = provs
[provs]
ocspstaple = sect
[sect]
store_dir = \$dir/ocspstaple
log_file = \${dir}/log
timeout = 1\\
0
EOF

# --- The fixed PKI, as C -------------------------------------------------

# emit NAME FILE: FILE's PEM text as a C string named fz_pem_NAME.
emit() {
    printf '\nconst char fz_pem_%s[] =\n' "$1"
    sed -e 's/.*/    "&\\n"/' -e '$s/$/;/' "$2"
}

{
    cat <<EOF
/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Generated by test/fuzz/make_corpus.sh: do not edit. The throwaway PKI
 * (test/support/mkpki.sh) that the committed seeds were made with, so that
 * their signatures and CertIDs match what the targets verify against, and
 * the instant at which the targets verify them.
 */
#include "fuzz.h"

const long long fz_now = ${NOW}LL;
EOF
    for c in root int ocsp noeku rogue rogue-ocsp ecdsa revoked unknown \
        muststaple; do
        emit "${c//-/_}" "$P/$c.pem"
    done
    for k in int ocsp noeku rogue-ocsp; do
        "$OPENSSL" pkey -in "$P/$k.key" -out "$WORK/$k.pkcs8"
        emit "${k//-/_}_key" "$WORK/$k.pkcs8"
    done
} >"$OUT/fuzz_pki.c"
if command -v clang-format >/dev/null 2>&1; then
    clang-format -i --style="file:$HERE/../../.clang-format" "$OUT/fuzz_pki.c"
fi

for t in verify store certinfo policy; do
    echo "corpus/$t: $(find "$OUT/corpus/$t" -type f | wc -l) files"
done
