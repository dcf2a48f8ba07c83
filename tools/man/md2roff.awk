# md2roff.awk: the pieces of docs/policy.md the man page takes, in roff.
#   awk -f md2roff.awk -v part=keys docs/policy.md: the Keys table, one .TP
#   entry per key: its name, then type, default, range and whether it can
#   be set per certificate, then its meaning.
# Inline markdown: `code` bold, **strong** bold, [text](link) the text.
function inline(s,    out, i, c, code) {
    gsub(/\\/, "\\e", s)
    while (match(s, /\[[^]]*\]\([^)]*\)/)) {
        t = substr(s, RSTART, RLENGTH)
        sub(/\]\([^)]*\)$/, "", t)
        s = substr(s, 1, RSTART - 1) substr(t, 2) substr(s, RSTART + RLENGTH)
    }
    while (match(s, /\*\*[^*]+\*\*/))
        s = substr(s, 1, RSTART - 1) "\\fB" substr(s, RSTART + 2, RLENGTH - 4) \
            "\\fR" substr(s, RSTART + RLENGTH)
    out = ""
    code = 0
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c == "`") {
            out = out (code ? "\\fR" : "\\fB")
            code = !code
        } else {
            out = out c
        }
    }
    if (code)
        out = out "\\fR"
    if (out ~ /^[.']/)
        out = "\\&" out
    return out
}
function cell(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}
part == "keys" && /^## Keys/ { on = 1; next }
part == "keys" && on && /^## / { on = 0 }
part == "keys" && on && /^\| `/ {
    n = split($0, f, /\|/)
    # f[2] key, f[3] type, f[4] default, f[5] range, f[6] per cert, f[7] meaning
    printf ".TP\n%s\n", inline(cell(f[2]))
    line = cell(f[3]) "; default " cell(f[4])
    if (cell(f[5]) != "")
        line = line "; " cell(f[5])
    if (cell(f[6]) == "yes")
        line = line "; also per certificate"
    printf "%s\n.br\n%s\n", inline(line), inline(cell(f[7]))
}
