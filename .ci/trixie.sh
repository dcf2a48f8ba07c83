#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# .ci/trixie.sh: Debian 13 (trixie: OpenSSL 3.5, gcc 14, nginx 1.26, Apache
# 2.4.71, HAProxy 3.0) as well as Debian 12. A trixie root made with
# debootstrap from Debian's packages (kept in $STP_TRIXIE_CACHE, default
# /var/cache/ocspstaple-ci, and made again when a week old or when the list
# of packages below changed) gets the tracked files of this checkout's HEAD;
# inside it, in a private mount namespace, chroot runs: the build with
# -Werror, the demo (README's first command), and the server tests
# (it/nginx_*, it/apache_*, it/haproxy_*, it/s_server_*), on trixie's own
# packaged servers (`.ci/trixie.sh bench-haproxy` runs bench-haproxy there
# instead, results in $BENCH_OUT, default /tmp). stunnel is left out: trixie's 5.74 staples by itself
# (server-side stapling came with 5.71) and its callback is left alone.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${STP_TRIXIE_CACHE:-/var/cache/ocspstaple-ci}
R=$CACHE/trixie-root
MIRROR=${STP_TRIXIE_MIRROR:-http://deb.debian.org/debian}
PKGS=(build-essential cmake pkg-config libssl-dev libcurl4-openssl-dev libhiredis-dev openssl
      ca-certificates curl gnutls-bin procps iproute2 util-linux strace faketime
      nginx apache2 haproxy python3)
TESTS='^it/(nginx|apache|haproxy|s_server)_'

[ "$(id -u)" -eq 0 ] || { echo "FAIL: .ci/trixie.sh needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null

# in_root DIR CMD: CMD (bash) chrooted in DIR, in a mount namespace of its
# own with /proc, /dev, /sys and a fresh /tmp and /run (the namespace and
# everything mounted in it end with CMD)
in_root() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    unshare -m --propagation private bash -c '
        set -e
        r=$1
        mount --bind "$r" "$r" # / of the chroot is a mount point (unshare inside)
        mount -t proc proc "$r/proc"
        mount --rbind /dev "$r/dev"
        mount --rbind /sys "$r/sys"
        mount -t tmpfs tmpfs "$r/tmp"
        mount -t tmpfs tmpfs "$r/run"
        mkdir -p "$r/run/lock" "$r/run/haproxy"
        exec chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
            HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive bash -c "$2"
    ' _ "$1" "$2"
}

want="${PKGS[*]}"
if [ ! -f "$R/.stp-pkgs" ] || [ "$(cat "$R/.stp-pkgs")" != "$want" ] ||
    [ -n "$(find "$R/.stp-pkgs" -mtime +7)" ]; then
    echo "== making the trixie root in $R (debootstrap, then ${#PKGS[@]} packages)"
    mkdir -p "$CACHE"
    rm -rf "$R.new"
    debootstrap --variant=minbase trixie "$R.new" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
        { tail -n 30 "$CACHE/debootstrap.log" >&2; exit 1; }
    cp /etc/resolv.conf "$R.new/etc/resolv.conf"
    in_root "$R.new" "apt-get update -qq && apt-get install -y -qq --no-install-recommends $want >/dev/null"
    printf '%s' "$want" >"$R.new/.stp-pkgs"
    rm -rf "$R"
    mv "$R.new" "$R"
fi
# shellcheck disable=SC2016 # dpkg-query's own format
in_root "$R" 'dpkg-query -W -f="\${Package} \${Version}\n" openssl gcc-14 cmake nginx apache2 haproxy'

echo "== trixie: this checkout's HEAD, built with -Werror"
rm -rf "$R/src"
mkdir -p "$R/src"
git -C "$ROOT" archive HEAD | tar -x -C "$R/src"
in_root "$R" 'cd /src && cmake -S . -B build -DOCSPSTAPLE_WERROR=ON >/tmp/configure.log 2>&1 ||
    { cat /tmp/configure.log; exit 1; }; cmake --build build -j2 2>&1 | grep -E "warning|error|Error" && exit 1
    test -x build/ocspstaple'

echo "== trixie: the demo (README's first command)"
in_root "$R" 'cd /src && tools/demo.sh build'

if [ "${1:-}" = bench-haproxy ]; then
    # not CI: HAProxy 3.0's ocsp-update against ours (BENCHMARKS.md)
    echo "== trixie: bench-haproxy (BENCH_N=${BENCH_N:-200})"
    in_root "$R" "cd /src && BENCH_N=${BENCH_N:-200} cmake --build build --target bench-haproxy"
    cp "$R/src/build/bench-haproxy-results.txt" "$R/src/build/bench-haproxy-results.log" \
        "${BENCH_OUT:-/tmp}/"
    exit 0
fi

echo "== trixie: the server tests ($TESTS)"
in_root "$R" "cd /src && ctest --test-dir build --output-on-failure -j2 -R '$TESTS'"
