#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs, from Debian's packages, everything the build, the demo and the
# test suite use. Safe to run again; needs root (apt-get).
set -euo pipefail

PKGS=(build-essential cmake pkg-config openssl libssl-dev libcurl4-openssl-dev libhiredis-dev
      ca-certificates curl gnutls-bin clang llvm shellcheck procps strace
      nginx apache2 haproxy lighttpd lighttpd-mod-openssl stunnel4 faketime
      groff-base man-db systemd debootstrap redis-server redis-tools python3)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # Installing a server must not start it (on port 80, on every address):
    # the tests start their own instances on 127.0.0.1.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
