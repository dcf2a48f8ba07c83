/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy parser: key/value strings in, an immutable struct stp_policy out.
 * One table of keys drives the ranges and the diagnostics (value syntax is in
 * policy_value.c); every problem is reported, then the whole policy is
 * refused. Applying a policy to a certificate is policy_match.c's job. No
 * I/O, no globals beyond constant tables, no dependency on log.c.
 */
#include "engine/policy.h"

#include <stdarg.h>
#include <string.h>

#include <openssl/crypto.h>

#include "engine/log.h"
#include "ocspstaple/params.h"
#include "engine/policy_value.h"

#define MAX_CERTS    256
#define MAX_SUGGEST  2 /* largest edit distance that still earns a hint */
#define MATCH_ACCEPT "sha256:<64 hex digits> or name:<dns name>"
#define SEC_MS       STP_PV_SEC_MS
#define MIN_MS       STP_PV_MIN_MS
#define HOUR_MS      STP_PV_HOUR_MS
#define DAY_MS       STP_PV_DAY_MS
#define KIB          STP_PV_KIB

/* Key table shorthands: the members of a struct stp_pv_spec, in order. */
#define PLAIN(type)                 STP_PV_##type, 0, 0, 0, NULL
#define NAMES(names)                STP_PV_ENUM, 0, 0, 0, names
#define RANGE(type, min, max, unit) STP_PV_##type, min, max, unit, NULL

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

struct keydef {
    const char *name;
    struct stp_pv_spec spec;
    unsigned cert_bit; /* STP_SET_* if overridable per certificate */
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

static const struct stp_pv_name mode_names[] = {
    { "auto", STP_MODE_AUTO },
    { "must", STP_MODE_MUST },
    { "always", STP_MODE_ALWAYS },
    { "never", STP_MODE_NEVER },
    { NULL, 0 },
};
static const struct stp_pv_name revoked_names[] = {
    { "refuse", STP_REVOKED_REFUSE },
    { "exit", STP_REVOKED_EXIT },
    { NULL, 0 },
};
static const struct stp_pv_name client_names[] = {
    { "off", STP_CLIENT_OCSP_OFF },
    { "leaf", STP_CLIENT_OCSP_LEAF },
    { NULL, 0 },
};
static const struct stp_pv_name fail_names[] = {
    { "open", STP_FAIL_OPEN },
    { "closed", STP_FAIL_CLOSED },
    { NULL, 0 },
};
/* log.h's list, as stp_log_level_parse() reads it ("warning" included). */
#define LEVEL_NAME(name, level) { name, level },
static const struct stp_pv_name level_names[] = {
    STP_LOG_LEVEL_NAMES(LEVEL_NAME) /* then the terminator */
    { NULL, 0 },
};
#undef LEVEL_NAME

static const struct keydef keys[K_COUNT] = {
    [K_MODE] = { OCSPSTAPLE_KEY_MODE, { NAMES(mode_names) }, STP_SET_MODE },
    [K_STAPLE_ALL] = { OCSPSTAPLE_KEY_STAPLE_ALL,
                       { PLAIN(BOOL) },
                       STP_SET_STAPLE_ALL },
    [K_RESPONDER_URL] = { OCSPSTAPLE_KEY_RESPONDER_URL,
                          { PLAIN(URL) },
                          STP_SET_RESPONDER_URL },
    [K_SKIP_VERIFY] = { OCSPSTAPLE_KEY_SKIP_VERIFY,
                        { PLAIN(BOOL) },
                        STP_SET_SKIP_VERIFY },
    [K_CACHE_TTL] = { OCSPSTAPLE_KEY_CACHE_TTL,
                      { RANGE(DURATION, MIN_MS, 30 * DAY_MS, SEC_MS) },
                      STP_SET_CACHE_TTL },
    [K_TIMEOUT] = { OCSPSTAPLE_KEY_TIMEOUT,
                    { RANGE(DURATION, SEC_MS, 300 * SEC_MS, SEC_MS) },
                    STP_SET_TIMEOUT },
    [K_REVOKED_ACTION] = { OCSPSTAPLE_KEY_REVOKED_ACTION,
                           { NAMES(revoked_names) },
                           0 },
    [K_MUST_STAPLE_WAIT] = { OCSPSTAPLE_KEY_MUST_STAPLE_WAIT,
                             { RANGE(DURATION, 0, 10 * SEC_MS, 1) },
                             0 },
    [K_CA_FILE] = { OCSPSTAPLE_KEY_CA_FILE, { PLAIN(PATH) }, 0 },
    [K_CLOCK_SKEW] = { OCSPSTAPLE_KEY_CLOCK_SKEW,
                       { RANGE(DURATION, 0, HOUR_MS, SEC_MS) },
                       0 },
    [K_CONNECT_TIMEOUT] = { OCSPSTAPLE_KEY_CONNECT_TIMEOUT,
                            { RANGE(DURATION, SEC_MS, 300 * SEC_MS, SEC_MS) },
                            0 },
    [K_MAX_RESPONSE] = { OCSPSTAPLE_KEY_MAX_RESPONSE,
                         { RANGE(SIZE, KIB, KIB *KIB, 1) },
                         0 },
    [K_FETCH] = { OCSPSTAPLE_KEY_FETCH, { PLAIN(BOOL) }, 0 },
    [K_STORE_DIR] = { OCSPSTAPLE_KEY_STORE_DIR, { PLAIN(PATH) }, 0 },
    [K_REFRESH_MARGIN] = { OCSPSTAPLE_KEY_REFRESH_MARGIN,
                           { RANGE(PERCENT, 1, 90, 1) },
                           0 },
    [K_REFRESH_JITTER] = { OCSPSTAPLE_KEY_REFRESH_JITTER,
                           { RANGE(DURATION, 0, HOUR_MS, SEC_MS) },
                           0 },
    [K_REFRESH_MIN] = { OCSPSTAPLE_KEY_REFRESH_MIN,
                        { RANGE(DURATION, 10 * SEC_MS, DAY_MS, SEC_MS) },
                        0 },
    [K_REFRESH_MAX] = { OCSPSTAPLE_KEY_REFRESH_MAX,
                        { RANGE(DURATION, MIN_MS, 30 * DAY_MS, SEC_MS) },
                        0 },
    [K_RETRY_BASE] = { OCSPSTAPLE_KEY_RETRY_BASE,
                       { RANGE(DURATION, SEC_MS, HOUR_MS, SEC_MS) },
                       0 },
    [K_RETRY_MAX] = { OCSPSTAPLE_KEY_RETRY_MAX,
                      { RANGE(DURATION, SEC_MS, DAY_MS, SEC_MS) },
                      0 },
    [K_CLIENT_OCSP] = { OCSPSTAPLE_KEY_CLIENT_OCSP,
                        { NAMES(client_names) },
                        0 },
    [K_CLIENT_RESPONDER] = { OCSPSTAPLE_KEY_CLIENT_RESPONDER,
                             { PLAIN(URL) },
                             0 },
    [K_CLIENT_FAIL] = { OCSPSTAPLE_KEY_CLIENT_FAIL, { NAMES(fail_names) }, 0 },
    [K_LOG_LEVEL] = { OCSPSTAPLE_KEY_LOG_LEVEL, { NAMES(level_names) }, 0 },
    [K_LOG_FILE] = { OCSPSTAPLE_KEY_LOG_FILE, { PLAIN(PATH) }, 0 },
    [K_METRICS_FILE] = { OCSPSTAPLE_KEY_METRICS_FILE, { PLAIN(PATH) }, 0 },
    [K_PROGRAMS] = { OCSPSTAPLE_KEY_PROGRAMS, { PLAIN(LIST) }, 0 },
    [K_SKIP_PROGRAMS] = { OCSPSTAPLE_KEY_SKIP_PROGRAMS, { PLAIN(LIST) }, 0 },
};

/* Keys OpenSSL's provider loader consumes itself (it matches skip_dot()). */
static const char *const openssl_keys[] = { "module", "activate", "identity",
                                            "soft_load", NULL };

static void report(struct parser *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* One diagnostic line; every call counts as a problem. */
static void report(struct parser *ps, const char *fmt, ...)
{
    va_list ap;

    ps->errors++;
    va_start(ap, fmt);
    stp_vdiag(ps->diag, ps->arg, fmt, ap);
    va_end(ap);
}

static int parse_value(struct parser *ps, const struct keydef *kd,
                       const char *key, const char *raw,
                       struct stp_pv_value *out)
{
    char accepted[160];
    enum stp_pv_res r;
    char *s;

    memset(out, 0, sizeof(*out));
    s = stp_pv_trim_dup(raw);
    if (s == NULL) {
        report(ps, "key '%s': out of memory", key);
        return 0;
    }
    r = STP_PV_EMPTY;
    if (*s != '\0' || kd->spec.type == STP_PV_LIST)
        r = stp_pv_convert(&kd->spec, s, out);
    if (r == STP_PV_OK) {
        if (out->str != s)
            OPENSSL_free(s);
        return 1;
    }
    stp_pv_describe(&kd->spec, accepted, sizeof(accepted));
    report(ps, "key '%s': value '%s' %s (accepted: %s)", key, s,
           stp_pv_problem(kd->spec.type, r), accepted);
    OPENSSL_free(s);
    stp_pv_value_clear(out);
    return 0;
}

static void move_str(char **dst, struct stp_pv_value *v)
{
    OPENSSL_free(*dst);
    *dst = v->str;
    v->str = NULL;
}

static void store_certpol(struct stp_certpol *c, enum key_id id,
                          struct stp_pv_value *v)
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

static void store_list(char ***list, size_t *n, struct stp_pv_value *v)
{
    stp_pv_free_list(*list, *n);
    *list = v->list;
    *n = v->nlist;
    v->list = NULL;
    v->nlist = 0;
}

static void store(struct stp_policy *p, enum key_id id, struct stp_pv_value *v)
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

/*
 * The edit distance from <name> (<len> bytes) to <cand>, or MAX_SUGGEST + 1
 * when their lengths alone differ by more: the distance is at least the
 * difference, so such a candidate can never earn a hint.
 */
static int distance(const char *name, size_t len, const char *cand)
{
    size_t clen = strlen(cand);

    if ((len > clen ? len - clen : clen - len) > MAX_SUGGEST)
        return MAX_SUGGEST + 1;
    return stp_pv_edit_distance(name, len, cand);
}

/* The accepted key closest to <name>, or NULL if none is close enough. */
static const char *closest(const char *name, size_t len, int cert_only)
{
    const char *best = NULL;
    int i, dist, best_dist = MAX_SUGGEST + 1;

    if (cert_only) {
        dist = distance(name, len, OCSPSTAPLE_KEY_MATCH);
        if (dist < best_dist) {
            best = OCSPSTAPLE_KEY_MATCH;
            best_dist = dist;
        }
    }
    for (i = 0; i < K_COUNT; i++) {
        if (cert_only && keys[i].cert_bit == 0)
            continue;
        dist = distance(name, len, keys[i].name);
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
    if (!in_certs && plen > 0 && distance(key, plen, certs) <= MAX_SUGGEST) {
        report(ps, "unknown key '%s' (did you mean '%s%s'?)", key, certs, dot);
        return;
    }
    hint = closest(key, strlen(key), 0);
    if (hint != NULL)
        report(ps, "unknown key '%s' (did you mean '%s'?)", key, hint);
    else
        report(ps, "unknown key '%s' (accepted keys: see docs/policy.md)", key);
}

static void parse_match(struct parser *ps, struct stp_cert_override *co,
                        const char *key, const char *raw)
{
    char *s = stp_pv_trim_dup(raw);

    if (s == NULL) {
        report(ps, "key '%s': out of memory", key);
        return;
    }
    if (!stp_pv_parse_match(s, &co->kind, co->sha256, &co->name))
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
    struct stp_pv_value v;
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
        stp_pv_value_clear(&v);
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
                   kv[i].key, kv[i].value != NULL ? kv[i].value : "",
                   kv[j].value != NULL ? kv[j].value : "");
            return 1;
        }
    }
    return 0;
}

static void parse_entry(struct parser *ps, const char *key, const char *value)
{
    const char *certs = OCSPSTAPLE_KEY_CERTS;
    size_t clen = strlen(certs);
    struct stp_pv_value v;
    int id;

    id = find_key(key);
    if (id >= 0) {
        if (!parse_value(ps, &keys[id], key, value, &v)) {
            ps->bad[id] = 1;
            return;
        }
        store(ps->pol, (enum key_id)id, &v);
        stp_pv_value_clear(&v);
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
    stp_pv_fmt_duration(va * SEC_MS, sa, sizeof(sa));
    stp_pv_fmt_duration(vb * SEC_MS, sb, sizeof(sb));
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
    stp_pv_free_list(policy->programs, policy->nprograms);
    stp_pv_free_list(policy->skip_programs, policy->nskip_programs);
    for (i = 0; i < policy->ncerts; i++) {
        OPENSSL_free(policy->certs[i].label);
        OPENSSL_free(policy->certs[i].name);
        OPENSSL_free((char *)policy->certs[i].pol.responder_url);
    }
    OPENSSL_free(policy->certs);
    OPENSSL_free(policy);
}

const char *stp_policy_key(size_t i)
{
    return i < K_COUNT ? keys[i].name : NULL;
}
