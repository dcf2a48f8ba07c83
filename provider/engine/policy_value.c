/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy value syntax: converts one trimmed configuration string into a
 * number, string or list, describes what each value type accepts, and
 * measures how far a misspelt name is from a valid one. ASCII-only and
 * locale-independent. Knows no key names, emits no diagnostics and keeps no
 * state; the key table lives in policy.c.
 */
#include "engine/policy_value.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static const struct stp_pv_name bool_names[] = {
    { "yes", 1 },   { "true", 1 }, { "on", 1 }, { "1", 1 },  { "no", 0 },
    { "false", 0 }, { "off", 0 },  { "0", 0 },  { NULL, 0 },
};

int stp_pv_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int stp_pv_edit_distance(const char *a, size_t la, const char *b)
{
    int d[65][65];
    size_t lb = strlen(b), i, j;
    int cost, best;

    if (la > 64 || lb > 64)
        return INT_MAX;
    for (i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            cost = stp_pv_lower((unsigned char)a[i - 1])
                   != stp_pv_lower((unsigned char)b[j - 1]);
            best = d[i - 1][j - 1] + cost;
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
                && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

static int is_space(int c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* ASCII only, so that a server's locale cannot change what "ON" means. */
static int ascii_ncaseeq(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (stp_pv_lower((unsigned char)a[i])
            != stp_pv_lower((unsigned char)b[i]))
            return 0;
        if (a[i] == '\0')
            return 1;
    }
    return 1;
}

static int ascii_caseeq(const char *a, const char *b)
{
    return strlen(a) == strlen(b) && ascii_ncaseeq(a, b, strlen(a));
}

/* Shortest exact spelling: 0s, 500ms, 60s, 1h, 30d. Minutes read badly. */
void stp_pv_fmt_duration(long long ms, char *buf, size_t len)
{
    if (ms != 0 && ms % STP_PV_DAY_MS == 0)
        snprintf(buf, len, "%lldd", ms / STP_PV_DAY_MS);
    else if (ms != 0 && ms % STP_PV_HOUR_MS == 0)
        snprintf(buf, len, "%lldh", ms / STP_PV_HOUR_MS);
    else if (ms % STP_PV_SEC_MS == 0)
        snprintf(buf, len, "%llds", ms / STP_PV_SEC_MS);
    else
        snprintf(buf, len, "%lldms", ms);
}

static void fmt_names(const struct stp_pv_name *names, char *buf, size_t len)
{
    size_t i, j, off;
    int seen;

    off = (size_t)snprintf(buf, len, "one of");
    for (i = 0; names[i].name != NULL && off < len; i++) {
        for (seen = 0, j = 0; j < i; j++)
            seen |= names[j].val == names[i].val;
        if (!seen)
            off += (size_t)snprintf(buf + off, len - off, "%s %s",
                                    i == 0 ? "" : ",", names[i].name);
    }
}

void stp_pv_describe(const struct stp_pv_spec *spec, char *buf, size_t len)
{
    char lo[32], hi[32];

    switch (spec->type) {
    case STP_PV_ENUM:
        fmt_names(spec->names, buf, len);
        break;
    case STP_PV_BOOL:
        snprintf(buf, len, "a boolean: yes/no, true/false, on/off, 1/0");
        break;
    case STP_PV_DURATION:
        stp_pv_fmt_duration(spec->min, lo, sizeof(lo));
        stp_pv_fmt_duration(spec->max, hi, sizeof(hi));
        snprintf(buf, len, "a duration from %s to %s", lo, hi);
        break;
    case STP_PV_SIZE:
        snprintf(buf, len, "a size from %lldk to %lldm (k = KiB, m = MiB)",
                 spec->min / STP_PV_KIB, spec->max / (STP_PV_KIB * STP_PV_KIB));
        break;
    case STP_PV_PERCENT:
        snprintf(buf, len, "a percentage from %lld to %lld", spec->min,
                 spec->max);
        break;
    case STP_PV_COUNT:
        snprintf(buf, len, "a whole number from %lld to %lld", spec->min,
                 spec->max);
        break;
    case STP_PV_URL:
        snprintf(buf, len, "an http:// or https:// URL with a host");
        break;
    case STP_PV_PATH:
        snprintf(buf, len, "an absolute path");
        break;
    case STP_PV_LIST:
        snprintf(buf, len, "program name patterns separated by commas");
        break;
    case STP_PV_NAME:
        snprintf(buf, len, "a group name (letters, digits, '.', '_', '-')");
        break;
    case STP_PV_REDIS:
        snprintf(buf, len,
                 "redis://HOST[:PORT][/DB] without credentials (those go in "
                 "fleet_auth_file)");
        break;
    case STP_PV_WORD:
        snprintf(buf, len, "1 to 64 printable characters without spaces");
        break;
    }
}

const char *stp_pv_problem(enum stp_pv_type type, enum stp_pv_res r)
{
    static const char *const syntax[] = {
        [STP_PV_ENUM] = "is not valid",
        [STP_PV_BOOL] = "is not a boolean",
        [STP_PV_DURATION] = "is not a duration like 90s, 5m or 1h",
        [STP_PV_SIZE] = "is not a size like 4096, 64k or 1m",
        [STP_PV_PERCENT] = "is not a percentage like 25 or 25%",
        [STP_PV_COUNT] = "is not a whole number",
        [STP_PV_URL] = "is not a valid URL",
        [STP_PV_PATH] = "is not an absolute path",
        [STP_PV_LIST] = "is not valid",
        [STP_PV_NAME] = "is not a group name",
        [STP_PV_REDIS] = "is not a redis:// URL without credentials",
        [STP_PV_WORD] = "is not a word of printable characters",
    };

    switch (r) {
    case STP_PV_EMPTY:
        return "is empty";
    case STP_PV_RANGE:
        return "is out of range";
    case STP_PV_WHOLE:
        return "is not a whole number of seconds";
    case STP_PV_NOMEM:
        return "could not be stored (out of memory)";
    default:
        return syntax[type];
    }
}

char *stp_pv_trim_dup(const char *s)
{
    size_t len;

    while (is_space((unsigned char)*s))
        s++;
    len = strlen(s);
    while (len > 0 && is_space((unsigned char)s[len - 1]))
        len--;
    return OPENSSL_strndup(s, len);
}

/* Strict decimal: digits only, no sign, no overflow; *end after them. */
static enum stp_pv_res parse_digits(const char *s, long long *out, char **end)
{
    if (!is_digit((unsigned char)*s))
        return STP_PV_SYNTAX;
    errno = 0;
    *out = strtoll(s, end, 10);
    if (errno == ERANGE)
        return STP_PV_RANGE;
    return STP_PV_OK;
}

static enum stp_pv_res parse_enum(const struct stp_pv_name *names,
                                  const char *s, long long *out)
{
    size_t i;

    for (i = 0; names[i].name != NULL; i++) {
        if (ascii_caseeq(s, names[i].name)) {
            *out = names[i].val;
            return STP_PV_OK;
        }
    }
    return STP_PV_SYNTAX;
}

static enum stp_pv_res parse_duration(const struct stp_pv_spec *spec,
                                      const char *s, long long *out)
{
    static const struct {
        const char *sfx;
        long long ms;
    } units[] = { { "", STP_PV_SEC_MS },   { "ms", 1 },
                  { "s", STP_PV_SEC_MS },  { "m", STP_PV_MIN_MS },
                  { "h", STP_PV_HOUR_MS }, { "d", STP_PV_DAY_MS } };
    long long n, mult = 0;
    char *end;
    enum stp_pv_res r;
    size_t i;

    r = parse_digits(s, &n, &end);
    if (r != STP_PV_OK)
        return r;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ascii_caseeq(end, units[i].sfx))
            mult = units[i].ms;
    }
    if (mult == 0)
        return STP_PV_SYNTAX;
    if (n > LLONG_MAX / mult || n * mult < spec->min || n * mult > spec->max)
        return STP_PV_RANGE;
    if (n * mult % spec->unit != 0)
        return STP_PV_WHOLE;
    *out = n * mult / spec->unit;
    return STP_PV_OK;
}

static enum stp_pv_res parse_size(const struct stp_pv_spec *spec, const char *s,
                                  long long *out)
{
    long long n, mult;
    char *end;
    enum stp_pv_res r;

    r = parse_digits(s, &n, &end);
    if (r != STP_PV_OK)
        return r;
    if (*end == '\0')
        mult = 1;
    else if (ascii_caseeq(end, "k"))
        mult = STP_PV_KIB;
    else if (ascii_caseeq(end, "m"))
        mult = STP_PV_KIB * STP_PV_KIB;
    else
        return STP_PV_SYNTAX;
    if (n > LLONG_MAX / mult || n * mult < spec->min || n * mult > spec->max)
        return STP_PV_RANGE;
    *out = n * mult;
    return STP_PV_OK;
}

static enum stp_pv_res parse_percent(const struct stp_pv_spec *spec,
                                     const char *s, long long *out)
{
    long long n;
    char *end;
    enum stp_pv_res r;

    r = parse_digits(s, &n, &end);
    if (r != STP_PV_OK)
        return r;
    if (strcmp(end, "") != 0 && strcmp(end, "%") != 0)
        return STP_PV_SYNTAX;
    if (n < spec->min || n > spec->max)
        return STP_PV_RANGE;
    *out = n;
    return STP_PV_OK;
}

static enum stp_pv_res parse_count(const struct stp_pv_spec *spec,
                                   const char *s, long long *out)
{
    long long n;
    char *end;
    enum stp_pv_res r = parse_digits(s, &n, &end);

    if (r != STP_PV_OK)
        return r;
    if (*end != '\0')
        return STP_PV_SYNTAX;
    if (n < spec->min || n > spec->max)
        return STP_PV_RANGE;
    *out = n;
    return STP_PV_OK;
}

/* ":<1..65535>" or nothing, between <p> and <end>. */
static int valid_port(const char *p, const char *end)
{
    long port = 0;

    if (p == end)
        return 1;
    if (*p++ != ':' || p == end || end - p > 5)
        return 0;
    for (; p < end; p++) {
        if (!is_digit((unsigned char)*p))
            return 0;
        port = port * 10 + (*p - '0');
    }
    return port >= 1 && port <= 65535;
}

/* http(s)://[userinfo@]host[:port][/...]; host may be [IPv6]. */
static int valid_url(const char *s)
{
    const char *p, *end, *host, *q, *hend;

    for (p = s; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return 0;
    }
    if (ascii_ncaseeq(s, "http://", 7))
        p = s + 7;
    else if (ascii_ncaseeq(s, "https://", 8))
        p = s + 8;
    else
        return 0;
    end = p + strcspn(p, "/?#");
    host = p;
    for (q = p; q < end; q++) {
        if (*q == '@')
            host = q + 1;
    }
    if (*host == '[') {
        hend = memchr(host, ']', (size_t)(end - host));
        if (hend == NULL || hend == host + 1)
            return 0;
        return valid_port(hend + 1, end);
    }
    hend = memchr(host, ':', (size_t)(end - host));
    if (hend == NULL)
        hend = end;
    return hend > host && valid_port(hend, end);
}

void stp_pv_free_list(char **list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        OPENSSL_free(list[i]);
    OPENSSL_free(list);
}

/* Splits on commas and white space; empty items vanish. */
static enum stp_pv_res split_list(const char *s, char ***out, size_t *out_n)
{
    static const char delim[] = ", \t\n\v\f\r";
    const char *p;
    size_t n = 0, len;
    char **list;

    for (p = s + strspn(s, delim); *p != '\0';
         p += len + strspn(p + len, delim)) {
        len = strcspn(p, delim);
        n++;
    }
    list = OPENSSL_zalloc((n > 0 ? n : 1) * sizeof(*list));
    if (list == NULL)
        return STP_PV_NOMEM;
    n = 0;
    for (p = s + strspn(s, delim); *p != '\0';
         p += len + strspn(p + len, delim)) {
        len = strcspn(p, delim);
        list[n] = OPENSSL_strndup(p, len);
        if (list[n++] == NULL) {
            stp_pv_free_list(list, n);
            return STP_PV_NOMEM;
        }
    }
    *out = list;
    *out_n = n;
    return STP_PV_OK;
}

/* 1 to 64 printable ASCII characters, none of them a space. */
static int valid_word(const char *s)
{
    size_t n = strlen(s), i;

    if (n == 0 || n > 64)
        return 0;
    for (i = 0; i < n; i++) {
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return 0;
    }
    return 1;
}

/* A decimal number of 1 to <digits> digits in [p, end) into *out. */
static int whole_in(const char *p, const char *end, int digits, int *out)
{
    int v = 0;

    if (p == end || end - p > digits)
        return 0;
    for (; p < end; p++) {
        if (!is_digit((unsigned char)*p))
            return 0;
        v = v * 10 + (*p - '0');
    }
    *out = v;
    return 1;
}

int stp_pv_redis_url(const char *s, struct stp_pv_redis *out)
{
    const char *p, *end, *hend, *port;
    size_t hlen;

    memset(out, 0, sizeof(*out));
    out->port = 6379;
    for (p = s; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return 0;
    }
    if (!ascii_ncaseeq(s, "redis://", 8))
        return 0;
    p = s + 8;
    end = p + strcspn(p, "/");
    if (memchr(p, '@', (size_t)(end - p)) != NULL)
        return 0; /* credentials: refused */
    if (*p == '[') {
        hend = memchr(p, ']', (size_t)(end - p));
        if (hend == NULL || hend == p + 1)
            return 0;
        hlen = (size_t)(hend - p - 1);
        port = hend + 1;
        p++;
    } else {
        hend = memchr(p, ':', (size_t)(end - p));
        if (hend == NULL)
            hend = end;
        hlen = (size_t)(hend - p);
        port = hend;
    }
    if (hlen == 0 || hlen >= sizeof(out->host))
        return 0;
    memcpy(out->host, p, hlen);
    out->host[hlen] = '\0';
    if (port != end
        && (*port != ':' || !whole_in(port + 1, end, 5, &out->port)
            || out->port < 1 || out->port > 65535))
        return 0;
    if (*end == '/' && end[1] != '\0')
        return whole_in(end + 1, end + strlen(end), 4, &out->db);
    return 1;
}

enum stp_pv_res stp_pv_convert(const struct stp_pv_spec *spec, char *s,
                               struct stp_pv_value *out)
{
    switch (spec->type) {
    case STP_PV_ENUM:
        return parse_enum(spec->names, s, &out->num);
    case STP_PV_BOOL:
        return parse_enum(bool_names, s, &out->num);
    case STP_PV_DURATION:
        return parse_duration(spec, s, &out->num);
    case STP_PV_SIZE:
        return parse_size(spec, s, &out->num);
    case STP_PV_PERCENT:
        return parse_percent(spec, s, &out->num);
    case STP_PV_COUNT:
        return parse_count(spec, s, &out->num);
    case STP_PV_URL:
        if (!valid_url(s))
            return STP_PV_SYNTAX;
        out->str = s;
        return STP_PV_OK;
    case STP_PV_PATH:
        if (s[0] != '/')
            return STP_PV_SYNTAX;
        out->str = s;
        return STP_PV_OK;
    case STP_PV_LIST:
        return split_list(s, &out->list, &out->nlist);
    case STP_PV_REDIS: {
        struct stp_pv_redis r;

        if (!stp_pv_redis_url(s, &r))
            return STP_PV_SYNTAX;
        out->str = s;
        return STP_PV_OK;
    }
    case STP_PV_WORD:
        if (!valid_word(s))
            return STP_PV_SYNTAX;
        out->str = s;
        return STP_PV_OK;
    case STP_PV_NAME:
        if (s[0] == '-' || strlen(s) > 32
            || strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789._-")
                   != strlen(s))
            return STP_PV_SYNTAX;
        out->str = s;
        return STP_PV_OK;
    }
    return STP_PV_SYNTAX;
}

void stp_pv_value_clear(struct stp_pv_value *v)
{
    OPENSSL_free(v->str);
    stp_pv_free_list(v->list, v->nlist);
    memset(v, 0, sizeof(*v));
}

static int hexval(int c)
{
    if (is_digit(c))
        return c - '0';
    c = stp_pv_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* 64 hex digits, or 32 colon-separated pairs as openssl x509 prints them. */
static int parse_sha256(const char *s, unsigned char out[32])
{
    size_t len = strlen(s), i;
    int colons = len == 95, hi, lo;

    if (len != 64 && !colons)
        return 0;
    for (i = 0; i < 32; i++) {
        const char *p = s + i * (colons ? 3 : 2);

        hi = hexval((unsigned char)p[0]);
        lo = hexval((unsigned char)p[1]);
        if (hi < 0 || lo < 0 || (colons && i < 31 && p[2] != ':'))
            return 0;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 1;
}

/* A DNS name, optionally "*." + name; letters, digits, '-', '_'. */
static int valid_dns_pattern(const char *s)
{
    size_t label = 0;
    const char *p = s;
    int c;

    if (strlen(s) > 253)
        return 0;
    if (p[0] == '*' && p[1] == '.')
        p += 2;
    for (; *p != '\0'; p++) {
        c = stp_pv_lower((unsigned char)*p);
        if (c == '.' && label == 0)
            return 0;
        if (c == '.') {
            label = 0;
            continue;
        }
        if (!is_digit(c) && !(c >= 'a' && c <= 'z') && c != '-' && c != '_')
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0;
}

int stp_pv_parse_match(const char *s, enum stp_match_kind *kind,
                       unsigned char sha256[32], char **name)
{
    char *p;

    if (ascii_ncaseeq(s, "sha256:", 7) && parse_sha256(s + 7, sha256)) {
        *kind = STP_MATCH_SHA256;
        return 1;
    }
    if (ascii_ncaseeq(s, "name:", 5) && valid_dns_pattern(s + 5)) {
        *kind = STP_MATCH_NAME;
        *name = OPENSSL_strdup(s + 5);
        for (p = *name; p != NULL && *p != '\0'; p++)
            *p = (char)stp_pv_lower((unsigned char)*p);
        return *name != NULL;
    }
    return 0;
}
