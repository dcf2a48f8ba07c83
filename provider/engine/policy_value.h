/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Policy value syntax: one trimmed string in, one typed value out (enums,
 * booleans, durations, sizes, percentages, URLs, paths, lists, and the
 * sha256:/name: match of a per-certificate section), plus the texts that
 * describe what a type accepts and the edit distance behind did-you-mean
 * hints. Knows no key names and reports nothing: the key table and the
 * diagnostics stay in policy.c. No I/O and no state: every function here may
 * be called from any thread.
 */
#ifndef OCSPSTAPLE_PROVIDER_POLICY_VALUE_H
#define OCSPSTAPLE_PROVIDER_POLICY_VALUE_H

#include <stddef.h>

/* Units: durations are checked in milliseconds, sizes in bytes. */
#define STP_PV_SEC_MS  1000LL
#define STP_PV_MIN_MS  (60 * STP_PV_SEC_MS)
#define STP_PV_HOUR_MS (60 * STP_PV_MIN_MS)
#define STP_PV_DAY_MS  (24 * STP_PV_HOUR_MS)
#define STP_PV_KIB     1024LL

enum stp_pv_type {
    STP_PV_ENUM,
    STP_PV_BOOL,
    STP_PV_DURATION,
    STP_PV_SIZE,
    STP_PV_PERCENT,
    STP_PV_COUNT, /* a whole number in [min, max] */
    STP_PV_URL,
    STP_PV_PATH,
    STP_PV_LIST,
    STP_PV_NAME,  /* a user or group name: [A-Za-z0-9._-], not "-" first */
    STP_PV_REDIS, /* redis://HOST[:PORT][/DB], no credentials */
    STP_PV_WORD   /* 1 to 64 printable ASCII characters, no space */
};

/* Outcome of a conversion; each failure has its own diagnostic text. */
enum stp_pv_res {
    STP_PV_OK,
    STP_PV_EMPTY, /* set by callers; stp_pv_convert() never returns it */
    STP_PV_SYNTAX,
    STP_PV_RANGE,
    STP_PV_WHOLE,
    STP_PV_NOMEM
};

/* How a per-certificate section names its certificate. */
enum stp_match_kind {
    STP_MATCH_SHA256 = 0, /* "sha256:<64 hex>": SHA-256 of the leaf DER */
    STP_MATCH_NAME        /* "name:<dns name>": a SAN dNSName (or CN) */
};

/* One spelling of an enum value; arrays end with a NULL name. */
struct stp_pv_name {
    const char *name;
    int val;
};

/* What a value must look like. */
struct stp_pv_spec {
    enum stp_pv_type type;
    long long min; /* durations in ms, sizes in bytes, percentages */
    long long max;
    long long unit;                  /* durations: ms per stored unit */
    const struct stp_pv_name *names; /* STP_PV_ENUM only */
};

/* A converted value; .str and .list are owned by whoever holds it. */
struct stp_pv_value {
    long long num; /* enums, booleans, durations, sizes, percentages */
    char *str;     /* URLs and paths */
    char **list;   /* lists */
    size_t nlist;
};

/* ASCII lower case of <c> (an unsigned char value), whatever the locale. */
int stp_pv_lower(int c);

/*
 * The optimal string alignment distance (insertions, deletions,
 * substitutions and swaps of adjacent characters each count 1) between the
 * first <la> bytes of <a> and the string <b>; a substitution compares ASCII
 * case-insensitively, a swap exactly. INT_MAX if either is longer than 64
 * bytes. For did-you-mean hints.
 */
int stp_pv_edit_distance(const char *a, size_t la, const char *b);

/*
 * Returns a new copy of <s> without leading and trailing ASCII white space,
 * which the caller frees with OPENSSL_free(), or NULL on allocation failure.
 */
char *stp_pv_trim_dup(const char *s);

/*
 * Converts <s>, already trimmed, as <spec> says; <s> may be empty only for
 * STP_PV_LIST (an empty list). <out> must be zeroed by the caller. Enum and
 * boolean names match ASCII case-insensitively; durations take ms, s, m, h or
 * d (no suffix: seconds) and are stored in spec->unit (a remainder is
 * STP_PV_WHOLE); sizes take k or m (KiB, MiB); percentages an optional '%'.
 * On STP_PV_OK a URL or path is stored as out->str = <s> itself (<s> then
 * belongs to <out>), a list as new strings in out->list, anything else in
 * out->num; free with stp_pv_value_clear(). On any other result <out> owns
 * nothing and the caller still owns <s>.
 */
enum stp_pv_res stp_pv_convert(const struct stp_pv_spec *spec, char *s,
                               struct stp_pv_value *out);

/* A Redis server's address, as stp_pv_redis_url() reads it. */
struct stp_pv_redis {
    char host[256]; /* a name, an IPv4 literal, or an IPv6 one without [] */
    int port;       /* 6379 if not given */
    int db;         /* 0 if not given */
};

/*
 * Parses "redis://HOST[:PORT][/DB]" (scheme case-insensitive; HOST may be
 * [IPv6]; DB a number of at most 4 digits) into <out>. A URL carrying
 * credentials
 * ("user:pass@") is refused: they belong in a file (fleet_auth_file), not in
 * a configuration every process and `ocspstaple check` prints. Returns 1 on
 * success, 0 if <s> is not such a URL. Pure.
 */
int stp_pv_redis_url(const char *s, struct stp_pv_redis *out);

/* Frees out->str and out->list and zeroes <v>. */
void stp_pv_value_clear(struct stp_pv_value *v);

/* Frees the <n> strings of <list> and <list> itself. NULL with 0 is fine. */
void stp_pv_free_list(char **list, size_t n);

/*
 * Writes into <buf> (<len> > 0 bytes, truncated and terminated) what <spec>
 * accepts, e.g. "a duration from 1s to 5m", for the "(accepted: ...)" part
 * of a diagnostic.
 */
void stp_pv_describe(const struct stp_pv_spec *spec, char *buf, size_t len);

/*
 * Writes <ms> into <buf> (<len> > 0 bytes) in its shortest exact spelling:
 * 0s, 500ms, 60s, 1h, 30d (never minutes).
 */
void stp_pv_fmt_duration(long long ms, char *buf, size_t len);

/*
 * Returns the static text for result <r> of a value of type <type>, e.g.
 * "is out of range", to follow "value '...'" in a diagnostic.
 */
const char *stp_pv_problem(enum stp_pv_type type, enum stp_pv_res r);

/*
 * Parses the match of a per-certificate section, already trimmed:
 * "sha256:" + 64 hex digits (or 32 colon-separated pairs as openssl x509
 * prints them), or "name:" + a DNS name, optionally "*." + name (letters,
 * digits, '-', '_'; at most 253 characters, labels at most 63); prefixes are
 * case-insensitive. Sets *kind and fills <sha256>, or sets *name to a new
 * lower-case copy the caller frees with OPENSSL_free(). Returns 1 on
 * success, 0 if <s> is not a valid match or on allocation failure; then the
 * outputs may have been partly written (*name is NULL or owned as above).
 */
int stp_pv_parse_match(const char *s, enum stp_match_kind *kind,
                       unsigned char sha256[32], char **name);

#endif
