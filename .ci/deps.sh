#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# Installs, from Debian's packages, everything the build, the demo and the
# test suite use. Safe to run again; needs root (apt-get).
set -euo pipefail

PKGS=(build-essential cmake pkg-config openssl libssl-dev libcurl4-openssl-dev
      ca-certificates curl gnutls-bin clang llvm shellcheck procps)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
