/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy parser: key/value strings in, an immutable struct stp_policy out.
 * One table of keys drives the value syntax, the ranges and the diagnostics;
 * every problem is reported, then the whole policy is refused. Also resolves
 * per-certificate overrides (SHA-256 or DNS name) and the program filter.
 * No I/O, no globals beyond constant tables, no dependency on log.c.
 */
#include "policy.h"

#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "log.h"
#include "ocspstaple/params.h"

#define MAX_CERTS    256
#define MAX_SUGGEST  2 /* largest edit distance that still earns a hint */
#define SEC_MS       1000LL
#define MIN_MS       (60 * SEC_MS)
#define HOUR_MS      (60 * MIN_MS)
#define DAY_MS       (24 * HOUR_MS)
#define KIB          1024LL
#define MATCH_ACCEPT "sha256:<64 hex digits> or name:<dns name>"

/* The overridable keys come first: they share the stp_certpol store. */
enum key_id {
    K_MODE,
    K_STAPLE_ALL,
    K_RESPONDER_URL,
    K_SKIP_VERIFY,
    K_CACHE_TTL,
    K_TIMEOUT,
    K_REVOKED_ACTION,
    K_MUST_STAPLE_WAIT,
    K_CA_FILE,
    K_CLOCK_SKEW,
    K_CONNECT_TIMEOUT,
    K_MAX_RESPONSE,
    K_FETCH,
    K_STORE_DIR,
    K_REFRESH_MARGIN,
    K_REFRESH_JITTER,
    K_REFRESH_MIN,
    K_REFRESH_MAX,
    K_RETRY_BASE,
    K_RETRY_MAX,
    K_CLIENT_OCSP,
    K_CLIENT_RESPONDER,
    K_CLIENT_FAIL,
    K_LOG_LEVEL,
    K_LOG_FILE,
    K_METRICS_FILE,
    K_PROGRAMS,
    K_SKIP_PROGRAMS,
    K_COUNT
};

enum val_type {
    V_ENUM,
    V_BOOL,
    V_DURATION,
    V_SIZE,
    V_PERCENT,
    V_URL,
    V_PATH,
    V_LIST
};

enum vres { VR_OK, VR_EMPTY, VR_SYNTAX, VR_RANGE, VR_WHOLE, VR_NOMEM };

struct name_val {
    const char *name;
    int val;
};

struct keydef {
    const char *name;
    enum val_type type;
    long long min; /* durations in ms, sizes in bytes */
    long long max;
    long long unit; /* durations: ms per stored unit */
    const struct name_val *names;
    unsigned cert_bit; /* STP_SET_* if overridable per certificate */
};

/* A converted value; strings and lists are owned until stored. */
struct value {
    long long num;
    char *str;
    char **list;
    size_t nlist;
};

struct parser {
    struct stp_policy *pol;
    stp_diag_fn diag;
    void *arg;
    int errors;
    int too_many;
    size_t cap_certs;
    unsigned char bad[K_COUNT];
    unsigned char has_match[MAX_CERTS];
};

static const struct name_val mode_names[] = {
    { "auto", STP_MODE_AUTO },
    { "must", STP_MODE_MUST },
    { "always", STP_MODE_ALWAYS },
    { "never", STP_MODE_NEVER },
    { NULL, 0 },
};
static const struct name_val revoked_names[] = {
    { "refuse", STP_REVOKED_REFUSE },
    { "exit", STP_REVOKED_EXIT },
    { NULL, 0 },
};
static const struct name_val client_names[] = {
    { "off", STP_CLIENT_OCSP_OFF },
    { "leaf", STP_CLIENT_OCSP_LEAF },
    { NULL, 0 },
};
static const struct name_val fail_names[] = {
    { "open", STP_FAIL_OPEN },
    { "closed", STP_FAIL_CLOSED },
    { NULL, 0 },
};
/* Same names as stp_log_level_parse(); "warning" is an alias. */
static const struct name_val level_names[] = {
    { "off", STP_LOG_LEVEL_OFF },
    { "error", STP_LOG_LEVEL_ERROR },
    { "warn", STP_LOG_LEVEL_WARN },
    { "info", STP_LOG_LEVEL_INFO },
    { "debug", STP_LOG_LEVEL_DEBUG },
    { "warning", STP_LOG_LEVEL_WARN },
    { NULL, 0 },
};
static const struct name_val bool_names[] = {
    { "yes", 1 },   { "true", 1 }, { "on", 1 }, { "1", 1 },  { "no", 0 },
    { "false", 0 }, { "off", 0 },  { "0", 0 },  { NULL, 0 },
};

static const struct keydef keys[K_COUNT] = {
    [K_MODE] = { OCSPSTAPLE_KEY_MODE, V_ENUM, 0, 0, 0, mode_names,
                 STP_SET_MODE },
    [K_STAPLE_ALL] = { OCSPSTAPLE_KEY_STAPLE_ALL, V_BOOL, 0, 0, 0, NULL,
                       STP_SET_STAPLE_ALL },
    [K_RESPONDER_URL] = { OCSPSTAPLE_KEY_RESPONDER_URL, V_URL, 0, 0, 0, NULL,
                          STP_SET_RESPONDER_URL },
    [K_SKIP_VERIFY] = { OCSPSTAPLE_KEY_SKIP_VERIFY, V_BOOL, 0, 0, 0, NULL,
                        STP_SET_SKIP_VERIFY },
    [K_CACHE_TTL] = { OCSPSTAPLE_KEY_CACHE_TTL, V_DURATION, MIN_MS, 30 * DAY_MS,
                      SEC_MS, NULL, STP_SET_CACHE_TTL },
    [K_TIMEOUT] = { OCSPSTAPLE_KEY_TIMEOUT, V_DURATION, SEC_MS, 300 * SEC_MS,
                    SEC_MS, NULL, STP_SET_TIMEOUT },
    [K_REVOKED_ACTION] = { OCSPSTAPLE_KEY_REVOKED_ACTION, V_ENUM, 0, 0, 0,
                           revoked_names, 0 },
    [K_MUST_STAPLE_WAIT] = { OCSPSTAPLE_KEY_MUST_STAPLE_WAIT, V_DURATION, 0,
                             10 * SEC_MS, 1, NULL, 0 },
    [K_CA_FILE] = { OCSPSTAPLE_KEY_CA_FILE, V_PATH, 0, 0, 0, NULL, 0 },
    [K_CLOCK_SKEW] = { OCSPSTAPLE_KEY_CLOCK_SKEW, V_DURATION, 0, HOUR_MS,
                       SEC_MS, NULL, 0 },
    [K_CONNECT_TIMEOUT] = { OCSPSTAPLE_KEY_CONNECT_TIMEOUT, V_DURATION, SEC_MS,
                            300 * SEC_MS, SEC_MS, NULL, 0 },
    [K_MAX_RESPONSE] = { OCSPSTAPLE_KEY_MAX_RESPONSE, V_SIZE, KIB, KIB *KIB, 1,
                         NULL, 0 },
    [K_FETCH] = { OCSPSTAPLE_KEY_FETCH, V_BOOL, 0, 0, 0, NULL, 0 },
    [K_STORE_DIR] = { OCSPSTAPLE_KEY_STORE_DIR, V_PATH, 0, 0, 0, NULL, 0 },
    [K_REFRESH_MARGIN] = { OCSPSTAPLE_KEY_REFRESH_MARGIN, V_PERCENT, 1, 90, 1,
                           NULL, 0 },
    [K_REFRESH_JITTER] = { OCSPSTAPLE_KEY_REFRESH_JITTER, V_DURATION, 0,
                           HOUR_MS, SEC_MS, NULL, 0 },
    [K_REFRESH_MIN] = { OCSPSTAPLE_KEY_REFRESH_MIN, V_DURATION, 10 * SEC_MS,
                        DAY_MS, SEC_MS, NULL, 0 },
    [K_REFRESH_MAX] = { OCSPSTAPLE_KEY_REFRESH_MAX, V_DURATION, MIN_MS,
                        30 * DAY_MS, SEC_MS, NULL, 0 },
    [K_RETRY_BASE] = { OCSPSTAPLE_KEY_RETRY_BASE, V_DURATION, SEC_MS, HOUR_MS,
                       SEC_MS, NULL, 0 },
    [K_RETRY_MAX] = { OCSPSTAPLE_KEY_RETRY_MAX, V_DURATION, SEC_MS, DAY_MS,
                      SEC_MS, NULL, 0 },
    [K_CLIENT_OCSP] = { OCSPSTAPLE_KEY_CLIENT_OCSP, V_ENUM, 0, 0, 0,
                        client_names, 0 },
    [K_CLIENT_RESPONDER] = { OCSPSTAPLE_KEY_CLIENT_RESPONDER, V_URL, 0, 0, 0,
                             NULL, 0 },
    [K_CLIENT_FAIL] = { OCSPSTAPLE_KEY_CLIENT_FAIL, V_ENUM, 0, 0, 0, fail_names,
                        0 },
    [K_LOG_LEVEL] = { OCSPSTAPLE_KEY_LOG_LEVEL, V_ENUM, 0, 0, 0, level_names,
                      0 },
    [K_LOG_FILE] = { OCSPSTAPLE_KEY_LOG_FILE, V_PATH, 0, 0, 0, NULL, 0 },
    [K_METRICS_FILE] = { OCSPSTAPLE_KEY_METRICS_FILE, V_PATH, 0, 0, 0, NULL,
                         0 },
    [K_PROGRAMS] = { OCSPSTAPLE_KEY_PROGRAMS, V_LIST, 0, 0, 0, NULL, 0 },
    [K_SKIP_PROGRAMS] = { OCSPSTAPLE_KEY_SKIP_PROGRAMS, V_LIST, 0, 0, 0, NULL,
                          0 },
};

/* Keys OpenSSL's provider loader consumes itself (it matches skip_dot()). */
static const char *const openssl_keys[] = { "module", "activate", "identity",
                                            "soft_load", NULL };

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
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
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
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

static void report(struct parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Formats one diagnostic line; control characters become '?'. */
static void report(struct parser *ps, const char *fmt, ...)
{
    va_list ap;
    char *msg, *p;
    int len;

    ps->errors++;
    if (ps->diag == NULL)
        return;
    va_start(ap, fmt);
    len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    msg = OPENSSL_malloc((size_t)len + 1);
    if (msg == NULL) {
        ps->diag(ps->arg, "out of memory while reporting a policy problem");
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, (size_t)len + 1, fmt, ap);
    va_end(ap);
    for (p = msg; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    ps->diag(ps->arg, msg);
    OPENSSL_free(msg);
}

/* Shortest exact spelling: 0s, 500ms, 60s, 1h, 30d. Minutes read badly. */
static void fmt_duration(long long ms, char *buf, size_t len)
{
    if (ms != 0 && ms % DAY_MS == 0)
        snprintf(buf, len, "%lldd", ms / DAY_MS);
    else if (ms != 0 && ms % HOUR_MS == 0)
        snprintf(buf, len, "%lldh", ms / HOUR_MS);
    else if (ms % SEC_MS == 0)
        snprintf(buf, len, "%llds", ms / SEC_MS);
    else
        snprintf(buf, len, "%lldms", ms);
}

static void fmt_names(const struct name_val *names, char *buf, size_t len)
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

/* What a key accepts, for the "(accepted: ...)" part of a diagnostic. */
static void describe(const struct keydef *kd, char *buf, size_t len)
{
    char lo[32], hi[32];

    switch (kd->type) {
    case V_ENUM:
        fmt_names(kd->names, buf, len);
        break;
    case V_BOOL:
        snprintf(buf, len, "a boolean: yes/no, true/false, on/off, 1/0");
        break;
    case V_DURATION:
        fmt_duration(kd->min, lo, sizeof(lo));
        fmt_duration(kd->max, hi, sizeof(hi));
        snprintf(buf, len, "a duration from %s to %s", lo, hi);
        break;
    case V_SIZE:
        snprintf(buf, len, "a size from %lldk to %lldm (k = KiB, m = MiB)",
                 kd->min / KIB, kd->max / (KIB * KIB));
        break;
    case V_PERCENT:
        snprintf(buf, len, "a percentage from %lld to %lld", kd->min, kd->max);
        break;
    case V_URL:
        snprintf(buf, len, "an http:// or https:// URL with a host");
        break;
    case V_PATH:
        snprintf(buf, len, "an absolute path");
        break;
    case V_LIST:
        snprintf(buf, len, "program name patterns separated by commas");
        break;
    }
}

static const char *problem_text(enum val_type type, enum vres r)
{
    static const char *const syntax[] = {
        [V_ENUM] = "is not valid",
        [V_BOOL] = "is not a boolean",
        [V_DURATION] = "is not a duration like 90s, 5m or 1h",
        [V_SIZE] = "is not a size like 4096, 64k or 1m",
        [V_PERCENT] = "is not a percentage like 25 or 25%",
        [V_URL] = "is not a valid URL",
        [V_PATH] = "is not an absolute path",
        [V_LIST] = "is not valid",
    };

    switch (r) {
    case VR_EMPTY:
        return "is empty";
    case VR_RANGE:
        return "is out of range";
    case VR_WHOLE:
        return "is not a whole number of seconds";
    case VR_NOMEM:
        return "could not be stored (out of memory)";
    default:
        return syntax[type];
    }
}

static char *trim_dup(const char *s)
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
static enum vres parse_digits(const char *s, long long *out, char **end)
{
    if (!is_digit((unsigned char)*s))
        return VR_SYNTAX;
    errno = 0;
    *out = strtoll(s, end, 10);
    if (errno == ERANGE)
        return VR_RANGE;
    return VR_OK;
}

static enum vres parse_enum(const struct name_val *names, const char *s,
                            long long *out)
{
    size_t i;

    for (i = 0; names[i].name != NULL; i++) {
        if (ascii_caseeq(s, names[i].name)) {
            *out = names[i].val;
            return VR_OK;
        }
    }
    return VR_SYNTAX;
}

static enum vres parse_duration(const struct keydef *kd, const char *s,
                                long long *out)
{
    static const struct {
        const char *sfx;
        long long ms;
    } units[] = { { "", SEC_MS },  { "ms", 1 },      { "s", SEC_MS },
                  { "m", MIN_MS }, { "h", HOUR_MS }, { "d", DAY_MS } };
    long long n, mult = 0;
    char *end;
    enum vres r;
    size_t i;

    r = parse_digits(s, &n, &end);
    if (r != VR_OK)
        return r;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (ascii_caseeq(end, units[i].sfx))
            mult = units[i].ms;
    }
    if (mult == 0)
        return VR_SYNTAX;
    if (n > LLONG_MAX / mult || n * mult < kd->min || n * mult > kd->max)
        return VR_RANGE;
    if (n * mult % kd->unit != 0)
        return VR_WHOLE;
    *out = n * mult / kd->unit;
    return VR_OK;
}

static enum vres parse_size(const struct keydef *kd, const char *s,
                            long long *out)
{
    long long n, mult;
    char *end;
    enum vres r;

    r = parse_digits(s, &n, &end);
    if (r != VR_OK)
        return r;
    if (*end == '\0')
        mult = 1;
    else if (ascii_caseeq(end, "k"))
        mult = KIB;
    else if (ascii_caseeq(end, "m"))
        mult = KIB * KIB;
    else
        return VR_SYNTAX;
    if (n > LLONG_MAX / mult || n * mult < kd->min || n * mult > kd->max)
        return VR_RANGE;
    *out = n * mult;
    return VR_OK;
}

static enum vres parse_percent(const struct keydef *kd, const char *s,
                               long long *out)
{
    long long n;
    char *end;
    enum vres r;

    r = parse_digits(s, &n, &end);
    if (r != VR_OK)
        return r;
    if (strcmp(end, "") != 0 && strcmp(end, "%") != 0)
        return VR_SYNTAX;
    if (n < kd->min || n > kd->max)
        return VR_RANGE;
    *out = n;
    return VR_OK;
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

static void free_list(char **list, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        OPENSSL_free(list[i]);
    OPENSSL_free(list);
}

/* Splits on commas and white space; empty items vanish. */
static enum vres split_list(const char *s, char ***out, size_t *out_n)
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
        return VR_NOMEM;
    n = 0;
    for (p = s + strspn(s, delim); *p != '\0';
         p += len + strspn(p + len, delim)) {
        len = strcspn(p, delim);
        list[n] = OPENSSL_strndup(p, len);
        if (list[n++] == NULL) {
            free_list(list, n);
            return VR_NOMEM;
        }
    }
    *out = list;
    *out_n = n;
    return VR_OK;
}

/* Converts trimmed, non-empty <s>; on success strings are moved to <out>. */
static enum vres convert(const struct keydef *kd, char *s, struct value *out)
{
    switch (kd->type) {
    case V_ENUM:
        return parse_enum(kd->names, s, &out->num);
    case V_BOOL:
        return parse_enum(bool_names, s, &out->num);
    case V_DURATION:
        return parse_duration(kd, s, &out->num);
    case V_SIZE:
        return parse_size(kd, s, &out->num);
    case V_PERCENT:
        return parse_percent(kd, s, &out->num);
    case V_URL:
        if (!valid_url(s))
            return VR_SYNTAX;
        out->str = s;
        return VR_OK;
    case V_PATH:
        if (s[0] != '/')
            return VR_SYNTAX;
        out->str = s;
        return VR_OK;
    case V_LIST:
        return split_list(s, &out->list, &out->nlist);
    }
    return VR_SYNTAX;
}

static void value_clear(struct value *v)
{
    OPENSSL_free(v->str);
    free_list(v->list, v->nlist);
    memset(v, 0, sizeof(*v));
}

static int parse_value(struct parser *ps, const struct keydef *kd,
                       const char *key, const char *raw, struct value *out)
{
    char accepted[160];
    enum vres r;
    char *s;

    memset(out, 0, sizeof(*out));
    s = trim_dup(raw);
    if (s == NULL) {
        report(ps, "key '%s': out of memory", key);
        return 0;
    }
    r = VR_EMPTY;
    if (*s != '\0' || kd->type == V_LIST)
        r = convert(kd, s, out);
    if (r == VR_OK) {
        if (out->str != s)
            OPENSSL_free(s);
        return 1;
    }
    describe(kd, accepted, sizeof(accepted));
    report(ps, "key '%s': value '%s' %s (accepted: %s)", key, s,
           problem_text(kd->type, r), accepted);
    OPENSSL_free(s);
    value_clear(out);
    return 0;
}

static void move_str(char **dst, struct value *v)
{
    OPENSSL_free(*dst);
    *dst = v->str;
    v->str = NULL;
}

static void store_certpol(struct stp_certpol *c, enum key_id id,
                          struct value *v)
{
    char *url = (char *)c->responder_url;

    switch (id) {
    case K_MODE:
        c->mode = (enum stp_mode)v->num;
        break;
    case K_STAPLE_ALL:
        c->staple_all = (int)v->num;
        break;
    case K_RESPONDER_URL:
        move_str(&url, v);
        c->responder_url = url;
        break;
    case K_SKIP_VERIFY:
        c->skip_verify = (int)v->num;
        break;
    case K_CACHE_TTL:
        c->cache_ttl = (long)v->num;
        break;
    case K_TIMEOUT:
        c->timeout = (long)v->num;
        break;
    default:
        break;
    }
}

static void store_list(char ***list, size_t *n, struct value *v)
{
    free_list(*list, *n);
    *list = v->list;
    *n = v->nlist;
    v->list = NULL;
    v->nlist = 0;
}

static void store(struct stp_policy *p, enum key_id id, struct value *v)
{
    switch (id) {
    case K_REVOKED_ACTION:
        p->revoked_action = (enum stp_revoked_action)v->num;
        break;
    case K_MUST_STAPLE_WAIT:
        p->must_staple_wait_ms = (long)v->num;
        break;
    case K_CA_FILE:
        move_str(&p->ca_file, v);
        break;
    case K_CLOCK_SKEW:
        p->clock_skew = (long)v->num;
        break;
    case K_CONNECT_TIMEOUT:
        p->connect_timeout = (long)v->num;
        break;
    case K_MAX_RESPONSE:
        p->max_response_size = (size_t)v->num;
        break;
    case K_FETCH:
        p->fetch = (int)v->num;
        break;
    case K_STORE_DIR:
        move_str(&p->store_dir, v);
        break;
    case K_REFRESH_MARGIN:
        p->refresh_margin = (int)v->num;
        break;
    case K_REFRESH_JITTER:
        p->refresh_jitter = (long)v->num;
        break;
    case K_REFRESH_MIN:
        p->refresh_min = (long)v->num;
        break;
    case K_REFRESH_MAX:
        p->refresh_max = (long)v->num;
        break;
    case K_RETRY_BASE:
        p->retry_base = (long)v->num;
        break;
    case K_RETRY_MAX:
        p->retry_max = (long)v->num;
        break;
    case K_CLIENT_OCSP:
        p->client_ocsp = (enum stp_client_ocsp)v->num;
        break;
    case K_CLIENT_RESPONDER:
        move_str(&p->client_responder, v);
        break;
    case K_CLIENT_FAIL:
        p->client_fail = (enum stp_fail_mode)v->num;
        break;
    case K_LOG_LEVEL:
        p->log_level = (int)v->num;
        break;
    case K_LOG_FILE:
        move_str(&p->log_file, v);
        break;
    case K_METRICS_FILE:
        move_str(&p->metrics_file, v);
        break;
    case K_PROGRAMS:
        store_list(&p->programs, &p->nprograms, v);
        break;
    case K_SKIP_PROGRAMS:
        store_list(&p->skip_programs, &p->nskip_programs, v);
        break;
    default:
        store_certpol(&p->defaults, id, v);
        break;
    }
}

static int find_key(const char *name)
{
    int i;

    for (i = 0; i < K_COUNT; i++) {
        if (strcmp(keys[i].name, name) == 0)
            return i;
    }
    return -1;
}

/* "module", or "<prefix>.module" as OpenSSL's skip_dot() also reads it. */
static int is_openssl_key(const char *key)
{
    const char *dot = strchr(key, '.');
    const char *name = dot != NULL ? dot + 1 : key;
    size_t i;

    if (dot != NULL && (size_t)(dot - key) == strlen(OCSPSTAPLE_KEY_CERTS)
        && strncmp(key, OCSPSTAPLE_KEY_CERTS, (size_t)(dot - key)) == 0)
        return 0;
    for (i = 0; openssl_keys[i] != NULL; i++) {
        if (strcmp(name, openssl_keys[i]) == 0)
            return 1;
    }
    return 0;
}

/* Optimal string alignment distance (a swap counts 1), case-insensitive. */
static int edit_distance(const char *a, size_t la, const char *b)
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
            cost = lower((unsigned char)a[i - 1])
                   != lower((unsigned char)b[j - 1]);
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

/* The accepted key closest to <name>, or NULL if none is close enough. */
static const char *closest(const char *name, size_t len, int cert_only)
{
    const char *best = NULL;
    int i, dist, best_dist = MAX_SUGGEST + 1;

    if (cert_only
        && edit_distance(name, len, OCSPSTAPLE_KEY_MATCH) < best_dist) {
        best = OCSPSTAPLE_KEY_MATCH;
        best_dist = edit_distance(name, len, best);
    }
    for (i = 0; i < K_COUNT; i++) {
        if (cert_only && keys[i].cert_bit == 0)
            continue;
        dist = edit_distance(name, len, keys[i].name);
        if (dist < best_dist) {
            best = keys[i].name;
            best_dist = dist;
        }
    }
    return best;
}

static void report_unknown(struct parser *ps, const char *key)
{
    static const char certs[] = OCSPSTAPLE_KEY_CERTS;
    const char *dot = strchr(key, '.'), *sub = NULL, *hint = NULL;
    size_t plen = dot != NULL ? (size_t)(dot - key) : 0;
    int in_certs =
        dot != NULL && plen == strlen(certs) && strncmp(key, certs, plen) == 0;

    if (in_certs)
        sub = strchr(dot + 1, '.');
    /* certs.<label>.<typo>: suggest within the per-certificate keys. */
    if (sub != NULL && sub > dot + 1 && strchr(sub + 1, '.') == NULL)
        hint = closest(sub + 1, strlen(sub + 1), 1);
    if (hint != NULL) {
        report(ps, "unknown key '%s' (did you mean '%.*s.%s'?)", key,
               (int)(sub - key), key, hint);
        return;
    }
    /* <typo>.<label>.<key>: a misspelt certs prefix. */
    if (!in_certs && plen > 0
        && edit_distance(key, plen, certs) <= MAX_SUGGEST) {
        report(ps, "unknown key '%s' (did you mean '%s%s'?)", key, certs, dot);
        return;
    }
    hint = closest(key, strlen(key), 0);
    if (hint != NULL)
        report(ps, "unknown key '%s' (did you mean '%s'?)", key, hint);
    else
        report(ps, "unknown key '%s' (accepted keys: see docs/policy.md)", key);
}

static int hexval(int c)
{
    if (is_digit(c))
        return c - '0';
    c = lower(c);
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
        c = lower((unsigned char)*p);
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

static void parse_match(struct parser *ps, struct stp_cert_override *co,
                        const char *key, const char *raw)
{
    char *s = trim_dup(raw), *p;
    int ok = 0;

    if (s == NULL) {
        report(ps, "key '%s': out of memory", key);
        return;
    }
    if (ascii_ncaseeq(s, "sha256:", 7) && parse_sha256(s + 7, co->sha256)) {
        co->kind = STP_MATCH_SHA256;
        ok = 1;
    } else if (ascii_ncaseeq(s, "name:", 5) && valid_dns_pattern(s + 5)) {
        co->kind = STP_MATCH_NAME;
        co->name = OPENSSL_strdup(s + 5);
        for (p = co->name; p != NULL && *p != '\0'; p++)
            *p = (char)lower((unsigned char)*p);
        ok = co->name != NULL;
    }
    if (!ok)
        report(ps, "key '%s': value '%s' %s (accepted: %s)", key, s,
               *s == '\0' ? "is empty" : "is not a valid match", MATCH_ACCEPT);
    OPENSSL_free(s);
}

/* The override for <label>, created on first sight (order of appearance). */
static struct stp_cert_override *cert_slot(struct parser *ps, const char *label,
                                           size_t len, const char *key,
                                           size_t *idx)
{
    struct stp_policy *pol = ps->pol;
    struct stp_cert_override *certs;
    size_t i, cap;

    for (i = 0; i < pol->ncerts; i++) {
        if (strlen(pol->certs[i].label) == len
            && memcmp(pol->certs[i].label, label, len) == 0) {
            *idx = i;
            return &pol->certs[i];
        }
    }
    if (pol->ncerts == MAX_CERTS) {
        if (!ps->too_many)
            report(ps,
                   "key '%s': too many per-certificate sections "
                   "(accepted: at most %d)",
                   key, MAX_CERTS);
        ps->too_many = 1;
        return NULL;
    }
    if (pol->ncerts == ps->cap_certs) {
        cap = ps->cap_certs == 0 ? 8 : ps->cap_certs * 2;
        certs = OPENSSL_realloc(pol->certs, cap * sizeof(*certs));
        if (certs == NULL) {
            report(ps, "key '%s': out of memory", key);
            return NULL;
        }
        pol->certs = certs;
        ps->cap_certs = cap;
    }
    memset(&pol->certs[pol->ncerts], 0, sizeof(pol->certs[0]));
    pol->certs[pol->ncerts].label = OPENSSL_strndup(label, len);
    if (pol->certs[pol->ncerts].label == NULL) {
        report(ps, "key '%s': out of memory", key);
        return NULL;
    }
    *idx = pol->ncerts;
    return &pol->certs[pol->ncerts++];
}

/* certs.<label>.<key>: <label> has no dot; <key> is match or overridable. */
static void parse_cert_key(struct parser *ps, const char *key,
                           const char *value)
{
    const char *label = key + strlen(OCSPSTAPLE_KEY_CERTS) + 1;
    const char *dot = strchr(label, '.'), *sub;
    struct stp_cert_override *co;
    struct value v;
    size_t idx;
    int id = -1;

    if (dot == NULL && *label != '\0') {
        report(ps,
               "key '%s': value '%s' must name a section (accepted: a "
               "section with match and per-certificate keys)",
               key, value);
        return;
    }
    sub = dot != NULL ? dot + 1 : "";
    if (dot == label || *sub == '\0' || strchr(sub, '.') != NULL) {
        report_unknown(ps, key);
        return;
    }
    if (strcmp(sub, OCSPSTAPLE_KEY_MATCH) != 0) {
        id = find_key(sub);
        if (id < 0) {
            report_unknown(ps, key);
            return;
        }
        if (keys[id].cert_bit == 0) {
            report(ps,
                   "key '%s': value '%s' rejected, '%s' cannot be set per "
                   "certificate (accepted: match, mode, staple_all, "
                   "responder_url, skip_verify, cache_ttl, timeout)",
                   key, value, sub);
            return;
        }
    }
    co = cert_slot(ps, label, (size_t)(dot - label), key, &idx);
    if (co == NULL)
        return;
    if (id < 0) {
        ps->has_match[idx] = 1;
        parse_match(ps, co, key, value);
    } else if (parse_value(ps, &keys[id], key, value, &v)) {
        store_certpol(&co->pol, (enum key_id)id, &v);
        co->set |= keys[id].cert_bit;
        value_clear(&v);
    }
}

static int is_duplicate(struct parser *ps, const struct stp_kv *kv, size_t i)
{
    size_t j;

    for (j = 0; j < i; j++) {
        if (kv[j].key != NULL && strcmp(kv[j].key, kv[i].key) == 0) {
            report(ps,
                   "key '%s': value '%s' repeats the key (first value "
                   "'%s'; accepted: each key at most once)",
                   kv[i].key, kv[i].value, kv[j].value);
            return 1;
        }
    }
    return 0;
}

static void parse_entry(struct parser *ps, const char *key, const char *value)
{
    const char *certs = OCSPSTAPLE_KEY_CERTS;
    size_t clen = strlen(certs);
    struct value v;
    int id;

    id = find_key(key);
    if (id >= 0) {
        if (!parse_value(ps, &keys[id], key, value, &v)) {
            ps->bad[id] = 1;
            return;
        }
        store(ps->pol, (enum key_id)id, &v);
        value_clear(&v);
    } else if (strcmp(key, certs) == 0) {
        report(ps,
               "key '%s': value '%s' must name a section (accepted: "
               "certs = <section> with one section per certificate)",
               key, value);
    } else if (strncmp(key, certs, clen) == 0 && key[clen] == '.') {
        parse_cert_key(ps, key, value);
    } else {
        report_unknown(ps, key);
    }
}

/* <a> must not exceed <b>; both in seconds. */
static void check_order(struct parser *ps, enum key_id a, long va,
                        enum key_id b, long vb, const char *relation)
{
    char sa[32], sb[32];

    if (ps->bad[a] || ps->bad[b] || va <= vb)
        return;
    fmt_duration(va * SEC_MS, sa, sizeof(sa));
    fmt_duration(vb * SEC_MS, sb, sizeof(sb));
    report(ps, "keys '%s' and '%s': %s is %s but %s is %s (accepted: %s)",
           keys[a].name, keys[b].name, keys[a].name, sa, keys[b].name, sb,
           relation);
}

static void check_whole(struct parser *ps)
{
    const struct stp_policy *p = ps->pol;
    size_t i;

    check_order(ps, K_CONNECT_TIMEOUT, p->connect_timeout, K_TIMEOUT,
                p->defaults.timeout, "connect_timeout at most timeout");
    check_order(ps, K_REFRESH_MIN, p->refresh_min, K_REFRESH_MAX,
                p->refresh_max, "refresh_min at most refresh_max");
    check_order(ps, K_RETRY_BASE, p->retry_base, K_RETRY_MAX, p->retry_max,
                "retry_max at least retry_base");
    for (i = 0; i < p->ncerts; i++) {
        if (!ps->has_match[i])
            report(ps,
                   "key 'certs.%s.match': missing; every per-certificate "
                   "section needs one (accepted: %s)",
                   p->certs[i].label, MATCH_ACCEPT);
    }
}

struct stp_policy *stp_policy_parse(const struct stp_kv *kv, size_t n,
                                    stp_diag_fn diag, void *arg)
{
    struct parser ps;
    size_t i;

    memset(&ps, 0, sizeof(ps));
    ps.diag = diag;
    ps.arg = arg;
    ps.pol = stp_policy_new_default();
    if (ps.pol == NULL) {
        report(&ps, "out of memory while parsing the policy");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        if (kv[i].key == NULL || kv[i].value == NULL) {
            report(&ps, "entry %zu: key or value missing", i);
            continue;
        }
        if (is_openssl_key(kv[i].key) || is_duplicate(&ps, kv, i))
            continue;
        parse_entry(&ps, kv[i].key, kv[i].value);
    }
    check_whole(&ps);
    if (ps.errors > 0) {
        stp_policy_free(ps.pol);
        return NULL;
    }
    return ps.pol;
}

struct stp_policy *stp_policy_new_default(void)
{
    struct stp_policy *p = OPENSSL_zalloc(sizeof(*p));

    if (p == NULL)
        return NULL;
    p->defaults.mode = STP_MODE_AUTO;
    p->defaults.staple_all = 1;
    p->defaults.skip_verify = 0;
    p->defaults.cache_ttl = 3600;
    p->defaults.timeout = 10;
    p->revoked_action = STP_REVOKED_REFUSE;
    p->must_staple_wait_ms = 2000;
    p->clock_skew = 300;
    p->connect_timeout = 5;
    p->max_response_size = 64 * 1024;
    p->fetch = 1;
    p->refresh_margin = 25;
    p->refresh_jitter = 300;
    p->refresh_min = 60;
    p->refresh_max = 86400;
    p->retry_base = 60;
    p->retry_max = 3600;
    p->client_ocsp = STP_CLIENT_OCSP_OFF;
    p->client_fail = STP_FAIL_CLOSED;
    p->log_level = STP_LOG_LEVEL_WARN;
    p->store_dir = OPENSSL_strdup("/var/cache/ocspstaple");
    if (p->store_dir == NULL) {
        OPENSSL_free(p);
        return NULL;
    }
    return p;
}

void stp_policy_free(struct stp_policy *policy)
{
    size_t i;

    if (policy == NULL)
        return;
    OPENSSL_free((char *)policy->defaults.responder_url);
    OPENSSL_free(policy->ca_file);
    OPENSSL_free(policy->store_dir);
    OPENSSL_free(policy->client_responder);
    OPENSSL_free(policy->log_file);
    OPENSSL_free(policy->metrics_file);
    free_list(policy->programs, policy->nprograms);
    free_list(policy->skip_programs, policy->nskip_programs);
    for (i = 0; i < policy->ncerts; i++) {
        OPENSSL_free(policy->certs[i].label);
        OPENSSL_free(policy->certs[i].name);
        OPENSSL_free((char *)policy->certs[i].pol.responder_url);
    }
    OPENSSL_free(policy->certs);
    OPENSSL_free(policy);
}

/*
 * <pattern> is lower case. "*.example.com" matches exactly one extra left
 * label; a wildcard in the certificate is only ever compared literally.
 */
static int name_match(const char *pattern, const unsigned char *name,
                      size_t len)
{
    size_t plen = strlen(pattern), i, off = 0;

    if (memchr(name, '\0', len) != NULL)
        return 0;
    if (pattern[0] == '*' && pattern[1] == '.') {
        pattern++;
        plen--;
        if (len <= plen)
            return 0;
        off = len - plen;
        if (memchr(name, '.', off) != NULL)
            return 0;
    } else if (len != plen) {
        return 0;
    }
    for (i = 0; i < plen; i++) {
        if (lower(name[off + i]) != pattern[i])
            return 0;
    }
    return 1;
}

static int cn_match(X509 *leaf, const char *pattern)
{
    const X509_NAME *subj = X509_get_subject_name(leaf);
    unsigned char *utf8;
    int idx, len, hit = 0;

    for (idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
         idx >= 0 && !hit;
         idx = X509_NAME_get_index_by_NID(subj, NID_commonName, idx)) {
        utf8 = NULL;
        len = ASN1_STRING_to_UTF8(
            &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
        if (len >= 0)
            hit = name_match(pattern, utf8, (size_t)len);
        OPENSSL_free(utf8);
    }
    return hit;
}

/* SAN dNSNames if there are any, else the subject CN. */
static int leaf_name_match(const GENERAL_NAMES *sans, X509 *leaf,
                           const char *pattern)
{
    const GENERAL_NAME *gn;
    int i, have_dns = 0;

    for (i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
        gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type != GEN_DNS)
            continue;
        have_dns = 1;
        if (name_match(pattern, ASN1_STRING_get0_data(gn->d.dNSName),
                       (size_t)ASN1_STRING_length(gn->d.dNSName)))
            return 1;
    }
    return have_dns ? 0 : cn_match(leaf, pattern);
}

static void overlay(struct stp_certpol *out, const struct stp_cert_override *co)
{
    if (co->set & STP_SET_MODE)
        out->mode = co->pol.mode;
    if (co->set & STP_SET_STAPLE_ALL)
        out->staple_all = co->pol.staple_all;
    if (co->set & STP_SET_RESPONDER_URL)
        out->responder_url = co->pol.responder_url;
    if (co->set & STP_SET_SKIP_VERIFY)
        out->skip_verify = co->pol.skip_verify;
    if (co->set & STP_SET_CACHE_TTL)
        out->cache_ttl = co->pol.cache_ttl;
    if (co->set & STP_SET_TIMEOUT)
        out->timeout = co->pol.timeout;
}

const struct stp_cert_override *
stp_policy_resolve(const struct stp_policy *policy,
                   const unsigned char leaf_sha256[32], X509 *leaf,
                   struct stp_certpol *out)
{
    const struct stp_cert_override *co, *hit = NULL;
    GENERAL_NAMES *sans = NULL;
    size_t i;

    /* A certificate without SAN, or a broken one, is not an error here. */
    ERR_set_mark();
    for (i = 0; leaf != NULL && i < policy->ncerts && sans == NULL; i++) {
        if (policy->certs[i].kind == STP_MATCH_NAME)
            sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    }
    for (i = 0; i < policy->ncerts && hit == NULL; i++) {
        co = &policy->certs[i];
        if (co->kind == STP_MATCH_SHA256 && leaf_sha256 != NULL
            && memcmp(co->sha256, leaf_sha256, 32) == 0)
            hit = co;
        else if (co->kind == STP_MATCH_NAME && leaf != NULL
                 && leaf_name_match(sans, leaf, co->name))
            hit = co;
    }
    GENERAL_NAMES_free(sans);
    ERR_pop_to_mark();
    if (out != NULL) {
        *out = policy->defaults;
        if (hit != NULL)
            overlay(out, hit);
    }
    return hit;
}

int stp_policy_program_allowed(const struct stp_policy *policy,
                               const char *progname)
{
    const char *name = progname != NULL ? progname : "";
    int allowed = policy->nprograms == 0;
    size_t i;

    for (i = 0; i < policy->nprograms && !allowed; i++)
        allowed = fnmatch(policy->programs[i], name, 0) == 0;
    for (i = 0; i < policy->nskip_programs && allowed; i++)
        allowed = fnmatch(policy->skip_programs[i], name, 0) != 0;
    return allowed;
}

const char *stp_mode_name(enum stp_mode mode)
{
    switch (mode) {
    case STP_MODE_AUTO:
        return "auto";
    case STP_MODE_MUST:
        return "must";
    case STP_MODE_ALWAYS:
        return "always";
    case STP_MODE_NEVER:
        return "never";
    }
    return "?";
}
