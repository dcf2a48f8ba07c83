/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy parser: key/value strings in, an immutable struct stp_policy out.
 * One table of keys drives the ranges, the fields, the defaults and the
 * diagnostics (value syntax is in policy_value.c); every problem is reported,
 * then the whole policy is refused. Applying a policy to a certificate is
 * policy_match.c's job. No I/O, no globals beyond constant tables, no
 * dependency on log.c.
 */
#include "engine/policy.h"

#include <stdarg.h>
#include <stddef.h>
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

/*
 * One key: its value syntax, its field and its default. What the field holds
 * follows from spec.type: a URL or path is a string the policy owns (char *,
 * or const char * in struct stp_certpol), a list is char ** plus a size_t
 * count, anything else a number stored in a field of .size bytes (int, long,
 * size_t or an enum).
 */
struct keydef {
    const char *name;
    struct stp_pv_spec spec;
    unsigned cert_bit; /* STP_SET_* if overridable per certificate */
    size_t off;        /* in struct stp_certpol if cert_bit, else stp_policy */
    size_t size;       /* of the field */
    size_t count_off;  /* lists: the count, in struct stp_policy */
    long long def;     /* numbers: the default, in the range's unit */
    const char *def_str; /* strings: the default, or NULL */
};

/* Key table shorthands: the members of a struct stp_pv_spec, in order. */
#define PLAIN(type)                 STP_PV_##type, 0, 0, 0, NULL
#define NAMES(names)                STP_PV_ENUM, 0, 0, 0, names
#define RANGE(type, min, max, unit) STP_PV_##type, min, max, unit, NULL

/*
 * Key table shorthands for where a value goes: .cert_bit, .off, .size and
 * .count_off. A field of struct stp_policy; a field of struct stp_certpol
 * (the policy's defaults, and each override that names the key); a list
 * with its count.
 */
#define FIELD(s, m)  offsetof(struct s, m), sizeof(((struct s *)0)->m)
#define TOP(m)       0, FIELD(stp_policy, m), 0
#define CERT(bit, m) bit, FIELD(stp_certpol, m), 0
#define LIST(m, count) \
    0, FIELD(stp_policy, m), offsetof(struct stp_policy, count)

/* Key table shorthands for the default: .def and .def_str. */
#define NUM(def) def, NULL
#define STR(def) 0, def
#define NONE     0, NULL

/* One row: the name, a spec shorthand, a field shorthand, a default one. */
/* clang-format off */
#define KEY(name, spec, field, def) { name, { spec }, field, def }
/* clang-format on */

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
    { "chain", STP_CLIENT_OCSP_CHAIN },
    { NULL, 0 },
};
static const struct stp_pv_name unknown_names[] = {
    { "refuse", STP_UNKNOWN_REFUSE },
    { "allow", STP_UNKNOWN_ALLOW },
    { NULL, 0 },
};
static const struct stp_pv_name no_url_names[] = {
    { "skip", STP_NO_URL_SKIP },
    { "refuse", STP_NO_URL_REFUSE },
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

/*
 * Every key, in the order stp_policy_key() lists them and did-you-mean
 * prefers them on a tie. Durations take their defaults in ms, like their
 * ranges.
 */
static const struct keydef keys[] = {
    KEY(OCSPSTAPLE_KEY_MODE, NAMES(mode_names), CERT(STP_SET_MODE, mode),
        NUM(STP_MODE_AUTO)),
    KEY(OCSPSTAPLE_KEY_STAPLE_ALL, PLAIN(BOOL),
        CERT(STP_SET_STAPLE_ALL, staple_all), NUM(1)),
    KEY(OCSPSTAPLE_KEY_RESPONDER_URL, PLAIN(URL),
        CERT(STP_SET_RESPONDER_URL, responder_url), NONE),
    KEY(OCSPSTAPLE_KEY_SKIP_VERIFY, PLAIN(BOOL),
        CERT(STP_SET_SKIP_VERIFY, skip_verify), NUM(0)),
    KEY(OCSPSTAPLE_KEY_CACHE_TTL, RANGE(DURATION, MIN_MS, 30 * DAY_MS, SEC_MS),
        CERT(STP_SET_CACHE_TTL, cache_ttl), NUM(HOUR_MS)),
    KEY(OCSPSTAPLE_KEY_TIMEOUT, RANGE(DURATION, SEC_MS, 300 * SEC_MS, SEC_MS),
        CERT(STP_SET_TIMEOUT, timeout), NUM(10 * SEC_MS)),
    KEY(OCSPSTAPLE_KEY_REVOKED_ACTION, NAMES(revoked_names),
        TOP(revoked_action), NUM(STP_REVOKED_REFUSE)),
    KEY(OCSPSTAPLE_KEY_MUST_STAPLE_WAIT, RANGE(DURATION, 0, 10 * SEC_MS, 1),
        TOP(must_staple_wait_ms), NUM(2 * SEC_MS)),
    KEY(OCSPSTAPLE_KEY_CA_FILE, PLAIN(PATH), TOP(ca_file), NONE),
    KEY(OCSPSTAPLE_KEY_CLOCK_SKEW, RANGE(DURATION, 0, HOUR_MS, SEC_MS),
        TOP(clock_skew), NUM(5 * MIN_MS)),
    KEY(OCSPSTAPLE_KEY_CONNECT_TIMEOUT,
        RANGE(DURATION, SEC_MS, 300 * SEC_MS, SEC_MS), TOP(connect_timeout),
        NUM(5 * SEC_MS)),
    KEY(OCSPSTAPLE_KEY_MAX_RESPONSE, RANGE(SIZE, KIB, 1024 * KIB, 1),
        TOP(max_response_size), NUM(64 * KIB)),
    KEY(OCSPSTAPLE_KEY_FETCH, PLAIN(BOOL), TOP(fetch), NUM(1)),
    KEY(OCSPSTAPLE_KEY_FETCH_CONCURRENCY, RANGE(COUNT, 1, 64, 1),
        TOP(fetch_concurrency), NUM(16)),
    KEY(OCSPSTAPLE_KEY_FETCH_PER_HOST, RANGE(COUNT, 1, 64, 1),
        TOP(fetch_per_host), NUM(8)),
    KEY(OCSPSTAPLE_KEY_FETCH_PER_HOST_TOTAL, RANGE(COUNT, 0, 256, 1),
        TOP(fetch_per_host_total), NUM(32)),
    KEY(OCSPSTAPLE_KEY_STORE_DIR, PLAIN(PATH), TOP(store_dir),
        STR("/var/cache/ocspstaple")),
    KEY(OCSPSTAPLE_KEY_STORE_GROUP, PLAIN(NAME), TOP(store_group), NONE),
    KEY(OCSPSTAPLE_KEY_REFRESH_MARGIN, RANGE(PERCENT, 1, 90, 1),
        TOP(refresh_margin), NUM(25)),
    KEY(OCSPSTAPLE_KEY_REFRESH_JITTER, RANGE(DURATION, 0, HOUR_MS, SEC_MS),
        TOP(refresh_jitter), NUM(5 * MIN_MS)),
    KEY(OCSPSTAPLE_KEY_REFRESH_MIN,
        RANGE(DURATION, 10 * SEC_MS, DAY_MS, SEC_MS), TOP(refresh_min),
        NUM(MIN_MS)),
    KEY(OCSPSTAPLE_KEY_REFRESH_MAX,
        RANGE(DURATION, MIN_MS, 30 * DAY_MS, SEC_MS), TOP(refresh_max),
        NUM(DAY_MS)),
    KEY(OCSPSTAPLE_KEY_RETRY_BASE, RANGE(DURATION, SEC_MS, HOUR_MS, SEC_MS),
        TOP(retry_base), NUM(MIN_MS)),
    KEY(OCSPSTAPLE_KEY_RETRY_MAX, RANGE(DURATION, SEC_MS, DAY_MS, SEC_MS),
        TOP(retry_max), NUM(HOUR_MS)),
    KEY(OCSPSTAPLE_KEY_CLIENT_OCSP, NAMES(client_names),
        CERT(STP_SET_CLIENT_OCSP, client_ocsp), NUM(STP_CLIENT_OCSP_OFF)),
    KEY(OCSPSTAPLE_KEY_CLIENT_RESPONDER, PLAIN(URL), TOP(client_responder),
        NONE),
    KEY(OCSPSTAPLE_KEY_CLIENT_DEFAULT_RESPONDER, PLAIN(URL),
        TOP(client_default_responder), NONE),
    KEY(OCSPSTAPLE_KEY_CLIENT_FAIL, NAMES(fail_names),
        CERT(STP_SET_CLIENT_FAIL, client_fail), NUM(STP_FAIL_CLOSED)),
    KEY(OCSPSTAPLE_KEY_CLIENT_TIMEOUT, RANGE(DURATION, 0, 10 * SEC_MS, 1),
        CERT(STP_SET_CLIENT_TIMEOUT, client_timeout_ms), NUM(500)),
    KEY(OCSPSTAPLE_KEY_CLIENT_UNKNOWN, NAMES(unknown_names),
        CERT(STP_SET_CLIENT_UNKNOWN, client_unknown), NUM(STP_UNKNOWN_REFUSE)),
    KEY(OCSPSTAPLE_KEY_CLIENT_NO_URL, NAMES(no_url_names),
        CERT(STP_SET_CLIENT_NO_URL, client_no_url), NUM(STP_NO_URL_SKIP)),
    KEY(OCSPSTAPLE_KEY_CLIENT_NONCE, PLAIN(BOOL), TOP(client_nonce), NUM(0)),
    KEY(OCSPSTAPLE_KEY_LOG_LEVEL, NAMES(level_names), TOP(log_level),
        NUM(STP_LOG_LEVEL_WARN)),
    KEY(OCSPSTAPLE_KEY_LOG_FILE, PLAIN(PATH), TOP(log_file), NONE),
    KEY(OCSPSTAPLE_KEY_LOG_SYSLOG, PLAIN(PATH), TOP(log_syslog), NONE),
    KEY(OCSPSTAPLE_KEY_METRICS_FILE, PLAIN(PATH), TOP(metrics_file), NONE),
    KEY(OCSPSTAPLE_KEY_FLEET_URL, PLAIN(REDIS), TOP(fleet_url), NONE),
    KEY(OCSPSTAPLE_KEY_FLEET_AUTH_FILE, PLAIN(PATH), TOP(fleet_auth_file),
        NONE),
    KEY(OCSPSTAPLE_KEY_FLEET_PREFIX, PLAIN(WORD), TOP(fleet_prefix),
        STR("ocspstaple:")),
    KEY(OCSPSTAPLE_KEY_FLEET_TIMEOUT, RANGE(DURATION, 10, 5 * SEC_MS, 1),
        TOP(fleet_timeout_ms), NUM(SEC_MS)),
    KEY(OCSPSTAPLE_KEY_FLEET_HOST, PLAIN(WORD), TOP(fleet_host), NONE),
    KEY(OCSPSTAPLE_KEY_PROGRAMS, PLAIN(LIST), LIST(programs, nprograms), NONE),
    KEY(OCSPSTAPLE_KEY_SKIP_PROGRAMS, PLAIN(LIST),
        LIST(skip_programs, nskip_programs), NONE),
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

struct parser {
    struct stp_policy *pol;
    stp_diag_fn diag;
    void *arg;
    int errors;
    int too_many;
    size_t cap_certs;
    unsigned char bad[NKEYS];
    unsigned char given[NKEYS]; /* top-level keys present in the section */
    unsigned char has_match[MAX_CERTS];
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

enum field_kind { F_NUM, F_STR, F_LIST };

static enum field_kind field_kind(const struct keydef *kd)
{
    switch (kd->spec.type) {
    case STP_PV_URL:
    case STP_PV_PATH:
    case STP_PV_NAME:
    case STP_PV_REDIS:
    case STP_PV_WORD:
        return F_STR;
    case STP_PV_LIST:
        return F_LIST;
    default:
        return F_NUM;
    }
}

/* Where <kd>'s field starts: in p->defaults for a per-certificate key. */
static char *top_base(struct stp_policy *p, const struct keydef *kd)
{
    return kd->cert_bit != 0 ? (char *)&p->defaults : (char *)p;
}

/*
 * <num> (within the key's range, never negative) into the integer field of
 * <size> bytes at <dst>. Through memcpy: the field may be int, long, size_t
 * or an enum, which share their representation of such a value with the
 * signed integer of their width.
 */
static void put_num(char *dst, size_t size, long long num)
{
    int i = (int)num;
    long l = (long)num;

    if (size == sizeof(i))
        memcpy(dst, &i, sizeof(i));
    else if (size == sizeof(l))
        memcpy(dst, &l, sizeof(l));
    else if (size == sizeof(num))
        memcpy(dst, &num, sizeof(num));
}

/* Frees what <kd>'s field in the struct at <base> owns, and forgets it. */
static void drop(char *base, const struct keydef *kd)
{
    char *str = NULL, **list;
    size_t *count;

    switch (field_kind(kd)) {
    case F_STR:
        memcpy(&str, base + kd->off, sizeof(str));
        OPENSSL_free(str);
        str = NULL;
        memcpy(base + kd->off, &str, sizeof(str));
        break;
    case F_LIST:
        list = *(char ***)(base + kd->off);
        count = (size_t *)(base + kd->count_off);
        stp_pv_free_list(list, *count);
        *(char ***)(base + kd->off) = NULL;
        *count = 0;
        break;
    case F_NUM:
        break;
    }
}

/* Moves <v> into <kd>'s field in the struct at <base>. */
static void put(char *base, const struct keydef *kd, struct stp_pv_value *v)
{
    drop(base, kd);
    switch (field_kind(kd)) {
    case F_STR:
        memcpy(base + kd->off, &v->str, sizeof(v->str));
        v->str = NULL;
        break;
    case F_LIST:
        *(char ***)(base + kd->off) = v->list;
        *(size_t *)(base + kd->count_off) = v->nlist;
        v->list = NULL;
        v->nlist = 0;
        break;
    case F_NUM:
        put_num(base + kd->off, kd->size, v->num);
        break;
    }
}

/* Sets <kd>'s field in <p> to its default. Returns 0 on allocation failure. */
static int put_default(struct stp_policy *p, const struct keydef *kd)
{
    struct stp_pv_value v = { 0 };
    long long unit = kd->spec.type == STP_PV_DURATION ? kd->spec.unit : 1;

    if (field_kind(kd) == F_NUM) {
        v.num = kd->def / unit;
    } else if (kd->def_str != NULL) {
        v.str = OPENSSL_strdup(kd->def_str);
        if (v.str == NULL)
            return 0;
    }
    put(top_base(p, kd), kd, &v);
    return 1;
}

static int find_key(const char *name)
{
    size_t i;

    for (i = 0; i < NKEYS; i++) {
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
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
/* "match, " and every key a per-certificate section may set, in table
 * order, into <buf> (truncated to <len>). */
static void cert_key_list(char *buf, size_t len)
{
    size_t i, n;

    n = (size_t)snprintf(buf, len, "match");
    for (i = 0; i < NKEYS && n < len; i++)
        if (keys[i].cert_bit != 0)
            n += (size_t)snprintf(buf + n, len - n, ", %s", keys[i].name);
}

static const char *closest(const char *name, size_t len, int cert_only)
{
    const char *best = NULL;
    int dist, best_dist = MAX_SUGGEST + 1;
    size_t i;

    if (cert_only) {
        dist = distance(name, len, OCSPSTAPLE_KEY_MATCH);
        if (dist < best_dist) {
            best = OCSPSTAPLE_KEY_MATCH;
            best_dist = dist;
        }
    }
    for (i = 0; i < NKEYS; i++) {
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
            char accepted[512];

            cert_key_list(accepted, sizeof(accepted));
            report(ps,
                   "key '%s': value '%s' rejected, '%s' cannot be set per "
                   "certificate (accepted: %s)",
                   key, value, sub, accepted);
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
        put((char *)&co->pol, &keys[id], &v);
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
        ps->given[id] = 1;
        if (!parse_value(ps, &keys[id], key, value, &v)) {
            ps->bad[id] = 1;
            return;
        }
        put(top_base(ps->pol, &keys[id]), &keys[id], &v);
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

/* Key <a> must not exceed key <b>; both in seconds. */
static void check_order(struct parser *ps, const char *a, long va,
                        const char *b, long vb, const char *relation)
{
    char sa[32], sb[32];

    if (ps->bad[find_key(a)] || ps->bad[find_key(b)] || va <= vb)
        return;
    stp_pv_fmt_duration(va * SEC_MS, sa, sizeof(sa));
    stp_pv_fmt_duration(vb * SEC_MS, sb, sizeof(sb));
    report(ps, "keys '%s' and '%s': %s is %s but %s is %s (accepted: %s)", a, b,
           a, sa, b, sb, relation);
}

/* The fleet's other keys act only with fleet_url: given without it, each
 * is refused (a key that would silently do nothing). */
static void check_fleet(struct parser *ps)
{
    static const char *const deps[] = { OCSPSTAPLE_KEY_FLEET_AUTH_FILE,
                                        OCSPSTAPLE_KEY_FLEET_PREFIX,
                                        OCSPSTAPLE_KEY_FLEET_TIMEOUT,
                                        OCSPSTAPLE_KEY_FLEET_HOST };
    size_t i;

    if (ps->pol->fleet_url != NULL
        || ps->bad[find_key(OCSPSTAPLE_KEY_FLEET_URL)])
        return;
    for (i = 0; i < sizeof(deps) / sizeof(deps[0]); i++) {
        if (ps->given[find_key(deps[i])])
            report(ps,
                   "key '%s': has no effect without %s (accepted: set %s = "
                   "redis://HOST:PORT/DB too, or remove %s)",
                   deps[i], OCSPSTAPLE_KEY_FLEET_URL, OCSPSTAPLE_KEY_FLEET_URL,
                   deps[i]);
    }
}

static void check_whole(struct parser *ps)
{
    const struct stp_policy *p = ps->pol;
    size_t i;

    check_order(ps, OCSPSTAPLE_KEY_CONNECT_TIMEOUT, p->connect_timeout,
                OCSPSTAPLE_KEY_TIMEOUT, p->defaults.timeout,
                "connect_timeout at most timeout");
    check_order(ps, OCSPSTAPLE_KEY_REFRESH_MIN, p->refresh_min,
                OCSPSTAPLE_KEY_REFRESH_MAX, p->refresh_max,
                "refresh_min at most refresh_max");
    check_order(ps, OCSPSTAPLE_KEY_RETRY_BASE, p->retry_base,
                OCSPSTAPLE_KEY_RETRY_MAX, p->retry_max,
                "retry_max at least retry_base");
    if (!ps->bad[find_key(OCSPSTAPLE_KEY_FETCH_PER_HOST)]
        && !ps->bad[find_key(OCSPSTAPLE_KEY_FETCH_CONCURRENCY)]
        && p->fetch_per_host > p->fetch_concurrency)
        report(ps,
               "keys '%s' and '%s': %s is %d but %s is %d (accepted: "
               "fetch_per_host at most fetch_concurrency)",
               OCSPSTAPLE_KEY_FETCH_PER_HOST, OCSPSTAPLE_KEY_FETCH_CONCURRENCY,
               OCSPSTAPLE_KEY_FETCH_PER_HOST, p->fetch_per_host,
               OCSPSTAPLE_KEY_FETCH_CONCURRENCY, p->fetch_concurrency);
    if (p->client_responder != NULL && p->client_default_responder != NULL)
        report(ps,
               "keys '%s' and '%s': both are set (accepted: one of them; "
               "the first is used for every client certificate, the second "
               "only for those that name no responder)",
               OCSPSTAPLE_KEY_CLIENT_RESPONDER,
               OCSPSTAPLE_KEY_CLIENT_DEFAULT_RESPONDER);
    check_fleet(ps);
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
    size_t k;

    for (k = 0; p != NULL && k < NKEYS; k++) {
        if (!put_default(p, &keys[k])) {
            stp_policy_free(p);
            p = NULL;
        }
    }
    return p;
}

void stp_policy_free(struct stp_policy *policy)
{
    size_t i, k;

    if (policy == NULL)
        return;
    for (k = 0; k < NKEYS; k++) {
        drop(top_base(policy, &keys[k]), &keys[k]);
        for (i = 0; keys[k].cert_bit != 0 && i < policy->ncerts; i++)
            drop((char *)&policy->certs[i].pol, &keys[k]);
    }
    for (i = 0; i < policy->ncerts; i++) {
        OPENSSL_free(policy->certs[i].label);
        OPENSSL_free(policy->certs[i].name);
    }
    OPENSSL_free(policy->certs);
    OPENSSL_free(policy);
}

const char *stp_policy_key(size_t i)
{
    return i < NKEYS ? keys[i].name : NULL;
}
