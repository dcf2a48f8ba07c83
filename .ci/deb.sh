#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# .ci/deb.sh GCC_BUILD: the Debian package, end to end, as an operator of a
# Debian 12 host would use it, without touching this host:
#   - build-deb/ (prefix /usr) makes ocspstaple_<version>_<arch>.deb (cpack);
#   - in a private mount namespace whose / is an overlay of this host's
#     (writes go to a tmpfs that disappears with the namespace):
#     `apt-get install ./ocspstaple_*.deb`; the files are where Debian looks
#     (the module in OpenSSL's modules directory, the man pages found by
#     man); the operator enables it in Debian's /etc/ssl/openssl.cnf as
#     README says, `ocspstaple check` says OK; Debian's nginx on its
#     packaged /etc/nginx/nginx.conf (workers as www-data) with one TLS site
#     staples a verified response from the test responder (GCC_BUILD's) and
#     `ocspstaple status` names nginx as its user; then the section is taken
#     out again, `apt-get remove --purge ocspstaple` removes every file, and
#     openssl still works;
#   - afterwards this host has no ocspstaple package and its openssl.cnf is
#     byte for byte what it was.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
GCC_BUILD=$(cd "${1:?usage: .ci/deb.sh GCC_BUILD}" && pwd)
export STP_SUPPORT=$ROOT/test/support
export STP_RESPONDER=$GCC_BUILD/test/stp_test_responder
# shellcheck source-path=SCRIPTDIR source=../test/support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../test/support/servers.sh
source "$STP_SUPPORT/servers.sh"
stp_need cmake cpack dpkg-deb apt-get unshare chroot nginx openssl sha256sum
[ "$(id -u)" -eq 0 ] || stp_fail "needs root (a mount namespace, apt-get)"

B=$ROOT/build-deb
L=$B/stage.log
mkdir -p "$B"
cmake -S "$ROOT" -B "$B" -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOCSPSTAPLE_BUILD_TESTS=OFF -DOCSPSTAPLE_WERROR=ON >"$L" 2>&1 ||
    { cat "$L" >&2; stp_fail "configure of $B"; }
cmake --build "$B" -j2 >>"$L" 2>&1 || { tail -n 40 "$L" >&2; stp_fail "build of $B"; }
rm -f "$B"/ocspstaple_*.deb
(cd "$B" && cpack -G DEB) >>"$L" 2>&1 || { tail -n 20 "$L" >&2; stp_fail "cpack"; }
DEB=$(ls "$B"/ocspstaple_*.deb)
dpkg-deb -I "$DEB" >&2
stp_ok "built $DEB"

host_sum=$(sha256sum /etc/ssl/openssl.cnf)
dpkg-query -W -f='${Status}' ocspstaple 2>/dev/null | grep -q "install ok installed" &&
    stp_fail "ocspstaple is installed on this host: this stage would not prove anything"

stp_setup
chmod 711 "$T"
P=$T/pki
stp_start_responder "$P"
stp_mkpki "$P" "$RESPONDER_PORT"
PORT=$(stp_free_port)

# ---- what runs inside the overlay root ----------------------------------------
cat >"$T/inside.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin
say() { printf 'deb: %s\n' "\$*" >&2; }
fail() { stp_fail "deb: \$*"; }
# the project's test helpers (stp_stop_pid, stp_wait_for, stp_wait_staple):
# the same paths inside this root
export STP_SUPPORT=$STP_SUPPORT STP_CLI=/usr/bin/ocspstaple
source "$STP_SUPPORT/lib.sh"
source "$STP_SUPPORT/hook.sh"
# nginx started here stops with this script: its master (the pid file, in
# this root's own /run) and the master's workers, by pid
stop_nginx() {
    local m w p
    [ -s /run/nginx.pid ] || return 0
    m=\$(cat /run/nginx.pid)
    w=\$(pgrep -P "\$m" || true)
    # the master first (it stops its workers; a worker killed alone is
    # started again), then whatever of them is left
    for p in "\$m" \$w; do
        stp_stop_pid "\$p"
    done
    rm -f /run/nginx.pid
}
trap stop_nginx EXIT
trap "exit 143" TERM INT

apt-get install -y -q "$DEB" >&2 || fail "apt-get install $DEB"
dpkg-query -W -f='\${Status}' ocspstaple | grep -q "install ok installed" || fail "not installed"
mod=\$(openssl version -m | sed 's/^MODULESDIR: "\\(.*\\)"\$/\\1/')/ocspstaple.so
[ -f "\$mod" ] || fail "the module is not in OpenSSL's modules directory (\$mod)"
man -w ocspstaple >/dev/null && man -w provider-ocspstaple >/dev/null || fail "man pages not found"
[ -f /usr/lib/systemd/system/ocspstaple-refresh.timer ] || fail "no timer"
ocspstaple version >&2
say "installed: \$(dpkg -L ocspstaple | grep -c .) paths, the module at \$mod"

# enabled as README says, in Debian's own openssl.cnf
cp /etc/ssl/openssl.cnf /etc/ssl/openssl.cnf.orig
sed -i 's/^# providers = provider_sect\$/providers = provider_sect/' /etc/ssl/openssl.cnf
grep -q '^providers = provider_sect\$' /etc/ssl/openssl.cnf || fail "Debian's openssl.cnf changed shape"
cat >>/etc/ssl/openssl.cnf <<CNF

[provider_sect]
default = default_sect
ocspstaple = ocspstaple_sect

[default_sect]
activate = 1

[ocspstaple_sect]
module = \$mod
activate = 1
programs = nginx
ca_file = $P/root.pem
store_dir = /var/cache/ocspstaple
CNF
install -d -o www-data -g www-data -m 0755 /var/cache/ocspstaple
ocspstaple check >&2 || fail "ocspstaple check"
openssl version >/dev/null || fail "openssl no longer starts"

# Debian's nginx, its packaged nginx.conf, one TLS site
rm -f /etc/nginx/sites-enabled/default
cat >/etc/nginx/sites-enabled/ocspstaple-ci <<SITE
server {
    listen 127.0.0.1:$PORT ssl;
    server_name good.test;
    ssl_certificate $P/good.chain.pem;
    ssl_certificate_key $P/good.key;
    location / { return 200 "ok\\n"; }
}
SITE
nginx -t >&2 || fail "nginx -t"
nginx || fail "nginx did not start"
STP_WAIT=20 stp_wait_staple $PORT --servername good.test --CAfile $P/root.pem
stp_verified good.test
say "Debian's nginx staples through the package"
used_by_nginx() { ocspstaple status >/tmp/status.out 2>&1 && grep -q "nginx\\[" /tmp/status.out; }
STP_WAIT=15 stp_wait_for used_by_nginx || { cat /tmp/status.out >&2; fail "status does not name nginx as the staple's user"; }

# turned off, then removed
stop_nginx
cp /etc/ssl/openssl.cnf.orig /etc/ssl/openssl.cnf
apt-get remove -y -q --purge ocspstaple >&2 || fail "apt-get remove"
if dpkg-query -W -f='\${Status}' ocspstaple 2>/dev/null | grep -q "install ok installed"; then
    fail "still installed"
fi
for f in /usr/bin/ocspstaple "\$mod" /usr/lib/x86_64-linux-gnu/libocspstaple.so.0 \\
    /usr/share/man/man1/ocspstaple.1 /usr/lib/systemd/system/ocspstaple-refresh.service; do
    [ ! -e "\$f" ] || fail "left behind: \$f"
done
openssl version >/dev/null || fail "openssl does not start after the removal"
say "removed cleanly"
EOF

# ---- the namespace: / an overlay of this host's ---------------------------------
cat >"$T/ns.sh" <<'EOF'
#!/usr/bin/env bash
set -euo pipefail
O=$1
mount -t tmpfs tmpfs "$O"
mkdir -p "$O/upper" "$O/work" "$O/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$O/upper,workdir=$O/work" "$O/root"
mount -t proc proc "$O/root/proc"
mount --rbind /dev "$O/root/dev"
mount --rbind /sys "$O/root/sys"
mount -t tmpfs tmpfs "$O/root/run"
mkdir -p "$O/root/run/nginx" "$O/root/run/lock"
exec chroot "$O/root" bash "$2"
EOF
mkdir -p "$T/ov"
set +e
timeout 300 unshare -m --propagation private bash "$T/ns.sh" "$T/ov" "$T/inside.sh"
rc=$?
set -e
[ "$rc" -eq 0 ] || stp_fail "the package stage failed inside the namespace (exit $rc)"

# ---- this host is untouched ----------------------------------------------------
stp_assert_eq "$(sha256sum /etc/ssl/openssl.cnf)" "$host_sum" "this host's openssl.cnf is unchanged"
if dpkg-query -W -f='${Status}' ocspstaple 2>/dev/null | grep -q "install ok installed"; then
    stp_fail "ocspstaple got installed on this host"
fi
[ ! -e /usr/bin/ocspstaple ] || stp_fail "/usr/bin/ocspstaple on this host"
stp_ok "the .deb: installed, used by Debian's nginx, removed; this host untouched"
