#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# mkman.sh TEMPLATE OUT POLICY_MD CLI: a man page from its template, with
#   @KEYS@      every key of the policy (docs/policy.md's Keys table),
#   @COMMANDS@  every subcommand's --help, as the built CLI prints it,
#   @VERSION@   the CLI's version,
# so that the pages say what the code and docs/policy.md say.
set -euo pipefail
template=$1 out=$2 policy=$3 cli=$4
here=$(cd "$(dirname "$0")" && pwd)
tmp=$out.tmp.$$
trap 'rm -f "$tmp" "$tmp".*' EXIT

# roff-safe literal text: backslashes escaped, no line taken for a request
literal() {
    sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"
}

awk -f "$here/md2roff.awk" -v part=keys "$policy" >"$tmp.keys"
[ -s "$tmp.keys" ] || { echo "mkman.sh: no keys found in $policy" >&2; exit 1; }
: >"$tmp.cmds"
for c in fetch refresh status metrics prune show check probe; do
    {
        printf '.SS %s\n.nf\n' "$c"
        "$cli" "$c" --help | sed -e 's/^usage: //' | literal
        printf '.fi\n'
    } >>"$tmp.cmds"
done
version=$("$cli" version | awk '{ print $2; exit }')
awk -v keys="$tmp.keys" -v cmds="$tmp.cmds" -v version="$version" '
    /^@KEYS@$/ { while ((getline l < keys) > 0) print l; next }
    /^@COMMANDS@$/ { while ((getline l < cmds) > 0) print l; next }
    { gsub(/@VERSION@/, version); print }
' "$template" >"$tmp"
mv "$tmp" "$out"
