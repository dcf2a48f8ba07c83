#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# t_install.sh: `cmake --install BUILD --prefix DIR` puts everything under DIR
# and the installed tree works where it is:
#   - the CLI, the hook library, the provider module (in DIR's
#     ossl-modules), the headers, the man pages ocspstaple(1) and
#     provider-ocspstaple(7), the systemd refresh service and timer, the
#     docs; nothing outside DIR;
#   - the installed module finds the installed library (its RUNPATH is
#     relative to itself), not the build tree's;
#   - the man pages render without a warning; the service and timer pass
#     `systemd-analyze verify`, the service running the installed CLI;
#   - it/s_server's cold scenario passes with the installed module, hook
#     and CLI, through both routes, and `check` says the installed module
#     loads;
#   - the uninstall (tools/uninstall.cmake over the install manifest)
#     leaves no file behind.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../support/lib.sh
source "$STP_SUPPORT/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../support/hook.sh
source "$STP_SUPPORT/hook.sh"

stp_need cmake openssl groff man systemd-analyze readelf ldd
if [ -z "${STP_BUILD:-}" ] || [ ! -f "$STP_BUILD/CMakeCache.txt" ]; then
    stp_fail "STP_BUILD is not a build directory: '${STP_BUILD:-}'"
fi
SRC=$(cd "$STP_SUPPORT/../.." && pwd)
# a modules directory given absolute stays where it was given: --prefix
# would not move it, and this test would write outside its prefix
moddir=$(sed -n 's/^OCSPSTAPLE_MODULESDIR:[A-Z]*=//p' "$STP_BUILD/CMakeCache.txt")
case $moddir in
/*)
    echo "SKIP: OCSPSTAPLE_MODULESDIR is absolute ($moddir) in $STP_BUILD (an older configure: cmake -U OCSPSTAPLE_MODULESDIR $STP_BUILD)" >&2
    exit 77
    ;;
esac
stp_setup
R=$T/root
cmake --install "$STP_BUILD" --prefix "$R" >"$T/install.out" 2>&1 || {
    cat "$T/install.out" >&2
    stp_fail "cmake --install failed"
}
cp "$STP_BUILD/install_manifest.txt" "$T/manifest"

# ---- the files, all under $R ---------------------------------------------
outside=$(grep -v "^$R/" "$T/manifest" || true)
stp_assert_eq "$outside" "" "nothing installed outside the prefix"
mod=$(find "$R" -name ocspstaple.so -path '*/ossl-modules/*')
lib=$(find "$R" -name libocspstaple.so.0)
[ -n "$mod" ] || stp_fail "no ossl-modules/ocspstaple.so under $R"
[ -n "$lib" ] || stp_fail "no libocspstaple.so.0 under $R"
for f in bin/ocspstaple include/ocspstaple/ocspstaple.h \
    share/man/man1/ocspstaple.1 share/man/man7/provider-ocspstaple.7 \
    lib/systemd/system/ocspstaple-refresh.service \
    lib/systemd/system/ocspstaple-refresh.timer \
    share/doc/ocspstaple/openssl.cnf.example; do
    [ -e "$R/$f" ] || stp_fail "not installed: $R/$f"
done
stp_ok "installed under $R: $(wc -l <"$T/manifest") files"

# ---- the module finds the installed library --------------------------------
ldd "$mod" >"$T/ldd.out"
stp_assert_file_contains "$T/ldd.out" "libocspstaple.so.0 => $R/" \
    "the installed module loads the installed libocspstaple.so.0"
readelf -d "$mod" >"$T/readelf.out"
stp_assert_file_contains "$T/readelf.out" "RUNPATH.*\\[\\\$ORIGIN" \
    "its RUNPATH is relative to the module"

# ---- man pages, systemd units ----------------------------------------------
for page in "$R/share/man/man1/ocspstaple.1" "$R/share/man/man7/provider-ocspstaple.7"; do
    groff -man -Tutf8 -ww -z "$page" 2>"$T/groff.err" || stp_fail "groff failed on $page"
    [ ! -s "$T/groff.err" ] || {
        cat "$T/groff.err" >&2
        stp_fail "groff warns about $page"
    }
    MANWIDTH=80 man -l "$page" >"$T/man.out" 2>&1 || stp_fail "man -l $page"
    stp_assert_file_contains "$T/man.out" "^NAME" "$page renders"
done
stp_assert_file_contains "$T/man.out" "fetch_per_host_total" "provider-ocspstaple(7) lists the keys"
MANWIDTH=80 man -l "$R/share/man/man1/ocspstaple.1" >"$T/man1.out" 2>&1
for c in fetch refresh status metrics prune show check probe; do
    stp_assert_file_contains "$T/man1.out" "^   $c\$" "ocspstaple(1) has $c"
done
U=$R/lib/systemd/system
stp_assert_file_contains "$U/ocspstaple-refresh.service" "^ExecStart=$R/bin/ocspstaple refresh" \
    "the service runs the installed CLI"
systemd-analyze verify --man=no "$U/ocspstaple-refresh.service" \
    "$U/ocspstaple-refresh.timer" >"$T/verify.out" 2>&1 || {
    cat "$T/verify.out" >&2
    stp_fail "systemd-analyze verify refuses the units"
}

# ---- the installed tree at work ---------------------------------------------
for route in provider preload; do
    STP_MODULE=$mod STP_HOOK=$lib STP_CLI=$R/bin/ocspstaple \
        bash "$SRC/test/integration/t_s_server.sh" cold "$route" >"$T/s_server.$route" 2>&1 || {
        tail -n 30 "$T/s_server.$route" >&2
        stp_fail "it/s_server cold $route with the installed files"
    }
    stp_ok "openssl s_server staples through the installed files ($route)"
done
STP_MODULE=$mod stp_conf "$T/inst.cnf" provider "programs = openssl"
set +e
"$R/bin/ocspstaple" check --conf "$T/inst.cnf" >"$T/check.out" 2>&1
rc=$?
set -e
cat "$T/check.out" >&2
stp_assert_eq "$rc" 0 "check of a policy naming the installed module"
stp_assert_file_lacks "$T/check.out" "cannot be loaded|not load" "the installed module loads"

# ---- uninstall ----------------------------------------------------------------
cmake -DMANIFEST="$T/manifest" -P "$SRC/tools/uninstall.cmake" >"$T/uninstall.out" 2>&1 || {
    cat "$T/uninstall.out" >&2
    stp_fail "uninstall failed"
}
left=$(find "$R" \( -type f -o -type l \) -printf '%P\n')
stp_assert_eq "$left" "" "the uninstall leaves no file"
stp_ok "install, use and uninstall under a prefix"
