/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Unit tests for policy.c: defaults, every key's accepted and rejected values
 * (range edges included), the text of diagnostics, duplicate and unknown
 * keys, per-certificate overrides resolved against certificates built here,
 * and the program allow/deny lists.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "engine/policy.h"
#include "engine/log.h"
#include "stp_test.h"

struct diags {
    int n;
    char text[32768];
};

static void collect(void *arg, const char *msg)
{
    struct diags *d = arg;
    size_t used = strlen(d->text);

    d->n++;
    snprintf(d->text + used, sizeof(d->text) - used, "%s\n", msg);
}

static struct stp_policy *parse_kv(const struct stp_kv *kv, size_t n,
                                   struct diags *d)
{
    memset(d, 0, sizeof(*d));
    return stp_policy_parse(kv, n, collect, d);
}

static struct stp_policy *parse1(const char *key, const char *value,
                                 struct diags *d)
{
    struct stp_kv kv = { key, value };

    return parse_kv(&kv, 1, d);
}

/* The numeric field a key sets, in its stored unit. */
static long long num_field(const struct stp_policy *p, const char *key)
{
    const struct {
        const char *key;
        long long val;
    } fields[] = {
        { "mode", p->defaults.mode },
        { "staple_all", p->defaults.staple_all },
        { "skip_verify", p->defaults.skip_verify },
        { "cache_ttl", p->defaults.cache_ttl },
        { "timeout", p->defaults.timeout },
        { "revoked_action", p->revoked_action },
        { "must_staple_wait", p->must_staple_wait_ms },
        { "clock_skew", p->clock_skew },
        { "connect_timeout", p->connect_timeout },
        { "max_response_size", (long long)p->max_response_size },
        { "fetch", p->fetch },
        { "refresh_margin", p->refresh_margin },
        { "refresh_jitter", p->refresh_jitter },
        { "refresh_min", p->refresh_min },
        { "refresh_max", p->refresh_max },
        { "retry_base", p->retry_base },
        { "retry_max", p->retry_max },
        { "client_ocsp", p->defaults.client_ocsp },
        { "client_ocsp_fail", p->defaults.client_fail },
        { "client_ocsp_timeout", p->defaults.client_timeout_ms },
        { "client_ocsp_unknown", p->defaults.client_unknown },
        { "client_ocsp_no_url", p->defaults.client_no_url },
        { "client_ocsp_nonce", p->client_nonce },
        { "log_level", p->log_level },
    };
    size_t i;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        if (strcmp(fields[i].key, key) == 0)
            return fields[i].val;
    }
    return -999;
}

static const char *str_field(const struct stp_policy *p, const char *key)
{
    if (strcmp(key, "responder_url") == 0)
        return p->defaults.responder_url;
    if (strcmp(key, "ca_file") == 0)
        return p->ca_file;
    if (strcmp(key, "store_dir") == 0)
        return p->store_dir;
    if (strcmp(key, "client_ocsp_responder") == 0)
        return p->client_responder;
    if (strcmp(key, "client_ocsp_default_responder") == 0)
        return p->client_default_responder;
    if (strcmp(key, "log_file") == 0)
        return p->log_file;
    if (strcmp(key, "metrics_file") == 0)
        return p->metrics_file;
    return "(no such field)";
}

static void check_defaults(const struct stp_policy *p)
{
    ASSERT_NOT_NULL(p);
    if (p == NULL)
        return;
    ASSERT_EQ(p->defaults.mode, STP_MODE_AUTO);
    ASSERT_EQ(p->defaults.staple_all, 1);
    ASSERT_NULL(p->defaults.responder_url);
    ASSERT_EQ(p->defaults.skip_verify, 0);
    ASSERT_EQ(p->defaults.cache_ttl, 3600);
    ASSERT_EQ(p->defaults.timeout, 10);
    ASSERT_EQ(p->revoked_action, STP_REVOKED_REFUSE);
    ASSERT_EQ(p->must_staple_wait_ms, 2000);
    ASSERT_NULL(p->ca_file);
    ASSERT_EQ(p->clock_skew, 300);
    ASSERT_EQ(p->connect_timeout, 5);
    ASSERT_EQ(p->max_response_size, 65536);
    ASSERT_EQ(p->fetch, 1);
    ASSERT_STREQ(p->store_dir, "/var/cache/ocspstaple");
    ASSERT_EQ(p->refresh_margin, 25);
    ASSERT_EQ(p->refresh_jitter, 300);
    ASSERT_EQ(p->refresh_min, 60);
    ASSERT_EQ(p->refresh_max, 86400);
    ASSERT_EQ(p->retry_base, 60);
    ASSERT_EQ(p->retry_max, 3600);
    ASSERT_EQ(p->defaults.client_ocsp, STP_CLIENT_OCSP_OFF);
    ASSERT_NULL(p->client_responder);
    ASSERT_NULL(p->client_default_responder);
    ASSERT_EQ(p->defaults.client_fail, STP_FAIL_CLOSED);
    ASSERT_EQ(p->defaults.client_timeout_ms, 500);
    ASSERT_EQ(p->defaults.client_unknown, STP_UNKNOWN_REFUSE);
    ASSERT_EQ(p->defaults.client_no_url, STP_NO_URL_SKIP);
    ASSERT_EQ(stp_policy_client_any(p), 0);
    ASSERT_EQ(p->log_level, STP_LOG_LEVEL_WARN);
    ASSERT_NULL(p->log_file);
    ASSERT_NULL(p->metrics_file);
    ASSERT_EQ(p->nprograms, 0);
    ASSERT_EQ(p->nskip_programs, 0);
    ASSERT_EQ(p->ncerts, 0);
}

static void test_defaults(void)
{
    struct stp_policy *p = stp_policy_new_default();
    struct diags d;

    check_defaults(p);
    stp_policy_free(p);
    p = parse_kv(NULL, 0, &d);
    check_defaults(p);
    ASSERT_EQ(d.n, 0);
    stp_policy_free(p);
    stp_policy_free(NULL);
    ASSERT_STREQ(stp_mode_name(STP_MODE_AUTO), "auto");
    ASSERT_STREQ(stp_mode_name(STP_MODE_MUST), "must");
    ASSERT_STREQ(stp_mode_name(STP_MODE_ALWAYS), "always");
    ASSERT_STREQ(stp_mode_name(STP_MODE_NEVER), "never");
}

static const struct {
    const char *key;
    const char *value;
    long long want;
} good_nums[] = {
    { "mode", "auto", STP_MODE_AUTO },
    { "mode", "must", STP_MODE_MUST },
    { "mode", "ALWAYS", STP_MODE_ALWAYS },
    { "mode", " never\t", STP_MODE_NEVER },
    { "staple_all", "yes", 1 },
    { "staple_all", "no", 0 },
    { "staple_all", "TRUE", 1 },
    { "staple_all", "false", 0 },
    { "staple_all", "On", 1 },
    { "staple_all", "off", 0 },
    { "staple_all", "1", 1 },
    { "staple_all", "0", 0 },
    { "revoked_action", "refuse", STP_REVOKED_REFUSE },
    { "revoked_action", "Exit", STP_REVOKED_EXIT },
    { "must_staple_wait", "0", 0 },
    { "must_staple_wait", "2", 2000 },
    { "must_staple_wait", "1500ms", 1500 },
    { "must_staple_wait", "10s", 10000 },
    { "must_staple_wait", "10000ms", 10000 },
    { "skip_verify", "yes", 1 },
    { "skip_verify", "0", 0 },
    { "cache_ttl", "60", 60 },
    { "cache_ttl", "60s", 60 },
    { "cache_ttl", "1m", 60 },
    { "cache_ttl", "60000ms", 60 },
    { "cache_ttl", "1h", 3600 },
    { "cache_ttl", "30d", 2592000 },
    { "cache_ttl", "720h", 2592000 },
    { "cache_ttl", " 2592000 ", 2592000 },
    { "clock_skew", "0", 0 },
    { "clock_skew", "1H", 3600 },
    { "clock_skew", "3600s", 3600 },
    { "timeout", "5", 5 },
    { "timeout", "5000ms", 5 },
    { "timeout", "300", 300 },
    { "timeout", "5m", 300 },
    { "connect_timeout", "1", 1 },
    { "connect_timeout", "10s", 10 },
    { "max_response_size", "1024", 1024 },
    { "max_response_size", "1k", 1024 },
    { "max_response_size", "64K", 65536 },
    { "max_response_size", "1m", 1048576 },
    { "max_response_size", "1M", 1048576 },
    { "max_response_size", "1048576", 1048576 },
    { "fetch", "no", 0 },
    { "fetch", "yes", 1 },
    { "refresh_margin", "1", 1 },
    { "refresh_margin", "90", 90 },
    { "refresh_margin", "25%", 25 },
    { "refresh_jitter", "0", 0 },
    { "refresh_jitter", "1h", 3600 },
    { "refresh_min", "10s", 10 },
    { "refresh_min", "1d", 86400 },
    { "refresh_max", "60s", 60 },
    { "refresh_max", "30d", 2592000 },
    { "retry_base", "1s", 1 },
    { "retry_base", "1h", 3600 },
    { "retry_max", "60", 60 },
    { "retry_max", "1d", 86400 },
    { "client_ocsp", "off", STP_CLIENT_OCSP_OFF },
    { "client_ocsp", "leaf", STP_CLIENT_OCSP_LEAF },
    { "client_ocsp", "chain", STP_CLIENT_OCSP_CHAIN },
    { "client_ocsp_fail", "open", STP_FAIL_OPEN },
    { "client_ocsp_fail", "closed", STP_FAIL_CLOSED },
    { "client_ocsp_timeout", "0", 0 },
    { "client_ocsp_timeout", "250ms", 250 },
    { "client_ocsp_timeout", "2s", 2000 },
    { "client_ocsp_timeout", "10s", 10000 },
    { "client_ocsp_unknown", "allow", STP_UNKNOWN_ALLOW },
    { "client_ocsp_unknown", "refuse", STP_UNKNOWN_REFUSE },
    { "client_ocsp_no_url", "refuse", STP_NO_URL_REFUSE },
    { "client_ocsp_no_url", "skip", STP_NO_URL_SKIP },
    { "client_ocsp_nonce", "yes", 1 },
    { "client_ocsp_nonce", "off", 0 },
    { "log_level", "off", STP_LOG_LEVEL_OFF },
    { "log_level", "error", STP_LOG_LEVEL_ERROR },
    { "log_level", "warn", STP_LOG_LEVEL_WARN },
    { "log_level", "warning", STP_LOG_LEVEL_WARN },
    { "log_level", "INFO", STP_LOG_LEVEL_INFO },
    { "log_level", "debug", STP_LOG_LEVEL_DEBUG },
};

static const struct {
    const char *key;
    const char *value;
    const char *want;
} good_strs[] = {
    { "responder_url", "http://ocsp.example.net", "http://ocsp.example.net" },
    { "responder_url", " HTTPS://ocsp.example.net:8443/x?y ",
      "HTTPS://ocsp.example.net:8443/x?y" },
    { "responder_url", "http://[::1]:8888/", "http://[::1]:8888/" },
    { "responder_url", "http://user@h", "http://user@h" },
    { "client_ocsp_responder", "http://127.0.0.1:1/", "http://127.0.0.1:1/" },
    { "client_ocsp_default_responder", "http://127.0.0.1:2/",
      "http://127.0.0.1:2/" },
    { "ca_file", "/etc/ssl/ca.pem", "/etc/ssl/ca.pem" },
    { "store_dir", "/srv/ocsp/", "/srv/ocsp/" },
    { "log_file", "/var/log/ocspstaple.log", "/var/log/ocspstaple.log" },
    { "metrics_file", "/run/ocspstaple.prom", "/run/ocspstaple.prom" },
};

/* Every other numeric field still holds its default (nothing clobbered). */
static void check_others(const struct stp_policy *p, const char *key)
{
    struct stp_policy *def = stp_policy_new_default();
    const char *k;
    size_t j;

    ASSERT_NOT_NULL(def);
    for (j = 0; def != NULL && j < sizeof(good_nums) / sizeof(good_nums[0]);
         j++) {
        k = good_nums[j].key;
        if (strcmp(k, key) != 0
            && (j == 0 || strcmp(k, good_nums[j - 1].key) != 0))
            ASSERT_EQ(num_field(p, k), num_field(def, k));
    }
    stp_policy_free(def);
}

static void test_good_values(void)
{
    struct stp_policy *p;
    struct diags d;
    size_t i;

    for (i = 0; i < sizeof(good_nums) / sizeof(good_nums[0]); i++) {
        p = parse1(good_nums[i].key, good_nums[i].value, &d);
        ASSERT_NOT_NULL(p);
        if (p == NULL) {
            fprintf(stderr, "  row %zu: %s = %s: %s", i, good_nums[i].key,
                    good_nums[i].value, d.text);
            continue;
        }
        if (num_field(p, good_nums[i].key) != good_nums[i].want)
            fprintf(stderr, "  row %zu: %s = %s\n", i, good_nums[i].key,
                    good_nums[i].value);
        ASSERT_EQ(num_field(p, good_nums[i].key), good_nums[i].want);
        ASSERT_EQ(d.n, 0);
        check_others(p, good_nums[i].key);
        stp_policy_free(p);
    }
    for (i = 0; i < sizeof(good_strs) / sizeof(good_strs[0]); i++) {
        p = parse1(good_strs[i].key, good_strs[i].value, &d);
        ASSERT_NOT_NULL(p);
        if (p == NULL) {
            fprintf(stderr, "  row %zu: %s", i, d.text);
            continue;
        }
        ASSERT_STREQ(str_field(p, good_strs[i].key), good_strs[i].want);
        check_others(p, good_strs[i].key);
        stp_policy_free(p);
    }
}

static const struct {
    const char *key;
    const char *value;
    const char *problem;
    const char *accepted;
} bad_values[] = {
    { "mode", "sometimes", "is not valid", "one of auto, must, always, never" },
    { "mode", "", "is empty", "one of auto" },
    { "mode", "  ", "is empty", "one of auto" },
    { "staple_all", "maybe", "is not a boolean", "yes/no, true/false" },
    { "staple_all", "2", "is not a boolean", "on/off, 1/0" },
    { "revoked_action", "kill", "is not valid", "one of refuse, exit" },
    { "must_staple_wait", "11s", "is out of range", "from 0s to 10s" },
    { "must_staple_wait", "10001ms", "is out of range", "from 0s to 10s" },
    { "must_staple_wait", "-1", "is not a duration", "from 0s to 10s" },
    { "must_staple_wait", "1.5s", "is not a duration", "from 0s to 10s" },
    { "must_staple_wait", "2x", "is not a duration", "from 0s to 10s" },
    { "must_staple_wait", "2 s", "is not a duration", "from 0s to 10s" },
    { "responder_url", "ftp://ocsp.example.net", "is not a valid URL",
      "http:// or https://" },
    { "responder_url", "ocsp.example.net", "is not a valid URL", "URL" },
    { "responder_url", "http://", "is not a valid URL", "URL" },
    { "responder_url", "http:///ocsp", "is not a valid URL", "URL" },
    { "responder_url", "http://:80/", "is not a valid URL", "URL" },
    { "responder_url", "http://user@/", "is not a valid URL", "URL" },
    { "responder_url", "http://h:0/", "is not a valid URL", "URL" },
    { "responder_url", "http://h:65536/", "is not a valid URL", "URL" },
    { "responder_url", "http://h:/", "is not a valid URL", "URL" },
    { "responder_url", "http://h:8x/", "is not a valid URL", "URL" },
    { "responder_url", "http://[]/", "is not a valid URL", "URL" },
    { "responder_url", "http://[::1/", "is not a valid URL", "URL" },
    { "responder_url", "http://a b/", "is not a valid URL", "URL" },
    { "skip_verify", "nah", "is not a boolean", "yes/no" },
    { "cache_ttl", "59", "is out of range", "a duration from 60s to 30d" },
    { "cache_ttl", "59s", "is out of range", "a duration from 60s to 30d" },
    { "cache_ttl", "31d", "is out of range", "a duration from 60s to 30d" },
    { "cache_ttl", "2592001", "is out of range", "from 60s to 30d" },
    { "cache_ttl", "60500ms", "is not a whole number of seconds",
      "from 60s to 30d" },
    { "cache_ttl", "99999999999999999999", "is out of range",
      "from 60s to 30d" },
    { "cache_ttl", "9223372036854775807d", "is out of range",
      "from 60s to 30d" },
    { "cache_ttl", "+60", "is not a duration", "from 60s to 30d" },
    { "ca_file", "certs/ca.pem", "is not an absolute path",
      "an absolute path" },
    { "clock_skew", "3601", "is out of range", "from 0s to 1h" },
    { "clock_skew", "2h", "is out of range", "from 0s to 1h" },
    { "timeout", "0", "is out of range", "from 1s to 300s" },
    { "timeout", "301", "is out of range", "from 1s to 300s" },
    { "timeout", "999ms", "is out of range", "from 1s to 300s" },
    { "timeout", "1500ms", "is not a whole number of seconds",
      "from 1s to 300s" },
    { "connect_timeout", "0", "is out of range", "from 1s to 300s" },
    { "connect_timeout", "301", "is out of range", "from 1s to 300s" },
    { "max_response_size", "1023", "is out of range", "from 1k to 1m" },
    { "max_response_size", "0", "is out of range", "from 1k to 1m" },
    { "max_response_size", "1048577", "is out of range", "from 1k to 1m" },
    { "max_response_size", "1025k", "is out of range", "from 1k to 1m" },
    { "max_response_size", "2m", "is out of range", "from 1k to 1m" },
    { "max_response_size", "64kb", "is not a size", "from 1k to 1m" },
    { "max_response_size", "1g", "is not a size", "from 1k to 1m" },
    { "max_response_size", "-1", "is not a size", "from 1k to 1m" },
    { "fetch", "sometimes", "is not a boolean", "yes/no" },
    { "store_dir", "var/cache", "is not an absolute path", "absolute" },
    { "refresh_margin", "0", "is out of range", "from 1 to 90" },
    { "refresh_margin", "91", "is out of range", "from 1 to 90" },
    { "refresh_margin", "25%%", "is not a percentage", "from 1 to 90" },
    { "refresh_margin", "25 %", "is not a percentage", "from 1 to 90" },
    { "refresh_margin", "0.25", "is not a percentage", "from 1 to 90" },
    { "refresh_jitter", "3601", "is out of range", "from 0s to 1h" },
    { "refresh_min", "9s", "is out of range", "from 10s to 1d" },
    { "refresh_min", "2d", "is out of range", "from 10s to 1d" },
    { "refresh_max", "59s", "is out of range", "from 60s to 30d" },
    { "refresh_max", "31d", "is out of range", "from 60s to 30d" },
    { "retry_base", "0", "is out of range", "from 1s to 1h" },
    { "retry_base", "2h", "is out of range", "from 1s to 1h" },
    { "retry_max", "0", "is out of range", "from 1s to 1d" },
    { "retry_max", "2d", "is out of range", "from 1s to 1d" },
    { "client_ocsp", "all", "is not valid", "one of off, leaf, chain" },
    { "client_ocsp_timeout", "11s", "is out of range", "from 0s to 10s" },
    { "client_ocsp_unknown", "good", "is not valid", "one of refuse, allow" },
    { "client_ocsp_no_url", "allow", "is not valid", "one of skip, refuse" },
    { "client_ocsp_default_responder", "ldap://x", "is not a valid URL",
      "http:// or https://" },
    { "client_ocsp_responder", "ldap://x", "is not a valid URL",
      "http:// or https://" },
    { "client_ocsp_fail", "maybe", "is not valid", "one of open, closed" },
    { "log_level", "verbose", "is not valid",
      "one of off, error, warn, info, debug" },
    { "log_file", "ocspstaple.log", "is not an absolute path", "absolute" },
    { "metrics_file", "m.prom", "is not an absolute path", "absolute" },
};

static void test_bad_values(void)
{
    char want[256];
    struct stp_policy *p;
    struct diags d;
    size_t i;

    for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
        p = parse1(bad_values[i].key, bad_values[i].value, &d);
        ASSERT_NULL(p);
        stp_policy_free(p);
        if (d.n != 1)
            fprintf(stderr, "  row %zu: %s = %s\n", i, bad_values[i].key,
                    bad_values[i].value);
        ASSERT_EQ(d.n, 1);
        snprintf(want, sizeof(want), "key '%s': value '", bad_values[i].key);
        ASSERT_CONTAINS(d.text, want);
        ASSERT_CONTAINS(d.text, bad_values[i].problem);
        snprintf(want, sizeof(want), "(accepted: ");
        ASSERT_CONTAINS(d.text, want);
        ASSERT_CONTAINS(d.text, bad_values[i].accepted);
    }
}

static void test_diag_text(void)
{
    struct stp_policy *p;
    struct diags d;

    p = parse1("cache_ttl", "30", &d);
    ASSERT_NULL(p);
    ASSERT_STREQ(d.text, "key 'cache_ttl': value '30' is out of range "
                         "(accepted: a duration from 60s to 30d)\n");
    p = parse1("cache_tll", "30", &d);
    ASSERT_NULL(p);
    ASSERT_STREQ(d.text,
                 "unknown key 'cache_tll' (did you mean 'cache_ttl'?)\n");
    p = parse1("mode", " so\nmetimes ", &d);
    ASSERT_NULL(p);
    ASSERT_STREQ(d.text, "key 'mode': value 'so?metimes' is not valid "
                         "(accepted: one of auto, must, always, never)\n");
    /* Without a callback, problems still make the parse fail. */
    ASSERT_NULL(
        stp_policy_parse(&(struct stp_kv){ "mode", "x" }, 1, NULL, NULL));
}

/* One or two keys, the number of problems they make, and a text the
 * diagnostics must contain (or NULL). */
struct pair_row {
    const char *k1, *v1, *k2, *v2;
    int errors;
    const char *want;
};

static void check_pairs(const struct pair_row *rows, size_t n)
{
    struct stp_kv kv[2];
    struct stp_policy *p;
    struct diags d;
    size_t i;

    for (i = 0; i < n; i++) {
        kv[0].key = rows[i].k1;
        kv[0].value = rows[i].v1;
        kv[1].key = rows[i].k2;
        kv[1].value = rows[i].v2;
        p = parse_kv(kv, rows[i].k2 != NULL ? 2 : 1, &d);
        if (d.n != rows[i].errors)
            fprintf(stderr, "  row %zu: %s", i, d.text);
        ASSERT_EQ(d.n, rows[i].errors);
        ASSERT_TRUE((p == NULL) == (rows[i].errors > 0));
        if (rows[i].want != NULL)
            ASSERT_CONTAINS(d.text, rows[i].want);
        stp_policy_free(p);
    }
}

static void test_pairs(void)
{
    static const struct pair_row rows[] = {
        { "connect_timeout", "20", NULL, NULL, 1,
          "keys 'connect_timeout' and 'timeout': connect_timeout is 20s but "
          "timeout is 10s (accepted: connect_timeout at most timeout)" },
        { "connect_timeout", "20", "timeout", "20", 0, NULL },
        { "connect_timeout", "1s", "timeout", "1s", 0, NULL },
        { "timeout", "4", NULL, NULL, 1, "'connect_timeout' and 'timeout'" },
        { "connect_timeout", "500", NULL, NULL, 1, "is out of range" },
        { "refresh_min", "2h", "refresh_max", "1h", 1,
          "keys 'refresh_min' and 'refresh_max': refresh_min is 2h but "
          "refresh_max is 1h" },
        { "refresh_min", "1d", NULL, NULL, 0, NULL },
        { "refresh_max", "59", NULL, NULL, 1, "is out of range" },
        { "refresh_max", "60", "refresh_min", "61", 1,
          "'refresh_min' and 'refresh_max'" },
        { "retry_max", "30s", NULL, NULL, 1,
          "keys 'retry_base' and 'retry_max': retry_base is 60s but "
          "retry_max is 30s (accepted: retry_max at least retry_base)" },
        { "retry_base", "2h", NULL, NULL, 1, "is out of range" },
        { "retry_base", "30m", "retry_max", "10m", 1,
          "'retry_base' and 'retry_max'" },
        { "retry_base", "1h", NULL, NULL, 0, NULL },
    };

    check_pairs(rows, sizeof(rows) / sizeof(rows[0]));
}

/* fleet_url: a redis:// URL without credentials; the fleet's other keys
 * act only with it (given alone, each is refused). */
static void test_fleet(void)
{
    static const struct pair_row rows[] = {
        { "fleet_url", "redis://127.0.0.1:6379/0", NULL, NULL, 0, NULL },
        { "fleet_url", "redis://[::1]/2", NULL, NULL, 0, NULL },
        { "fleet_url", "REDIS://cache.internal", NULL, NULL, 0, NULL },
        { "fleet_url", "redis://user:secret@127.0.0.1:6379/0", NULL, NULL, 1,
          "is not a redis:// URL without credentials (accepted: "
          "redis://HOST[:PORT][/DB] without credentials (those go in "
          "fleet_auth_file))" },
        { "fleet_url", "http://127.0.0.1:6379/", NULL, NULL, 1,
          "is not a redis:// URL" },
        { "fleet_url", "redis://127.0.0.1:70000/0", NULL, NULL, 1,
          "is not a redis:// URL" },
        { "fleet_url", "redis://127.0.0.1:6379/x", NULL, NULL, 1,
          "is not a redis:// URL" },
        { "fleet_url", "redis://:6379", NULL, NULL, 1, "is not a redis://" },
        { "fleet_prefix", "site1:", NULL, NULL, 1,
          "key 'fleet_prefix': has no effect without fleet_url" },
        { "fleet_host", "web1", NULL, NULL, 1,
          "key 'fleet_host': has no effect without fleet_url" },
        { "fleet_timeout", "100ms", NULL, NULL, 1,
          "key 'fleet_timeout': has no effect without fleet_url" },
        { "fleet_auth_file", "/etc/ocspstaple/redis.auth", NULL, NULL, 1,
          "key 'fleet_auth_file': has no effect without fleet_url" },
        { "fleet_url", "redis://127.0.0.1", "fleet_prefix", "a b", 1,
          "is not a word of printable characters" },
        { "fleet_url", "redis://127.0.0.1", "fleet_timeout", "10s", 1,
          "is out of range" },
        { "fleet_url", "redis://127.0.0.1", "fleet_timeout", "50ms", 0, NULL },
        { "fleet_url", "redis://127.0.0.1", "fleet_auth_file", "auth", 1,
          "is not an absolute path" },
    };
    struct stp_pv_redis r;
    struct stp_policy *p;
    struct diags d;

    check_pairs(rows, sizeof(rows) / sizeof(rows[0]));
    p = parse1("fleet_url", "redis://127.0.0.1:7000/3", &d);
    ASSERT_NOT_NULL(p);
    ASSERT_STREQ(p->fleet_url, "redis://127.0.0.1:7000/3");
    ASSERT_STREQ(p->fleet_prefix, "ocspstaple:");
    ASSERT_EQ(p->fleet_timeout_ms, 1000);
    ASSERT_NULL(p->fleet_host);
    stp_policy_free(p);
    ASSERT_TRUE(stp_pv_redis_url("redis://127.0.0.1:7000/3", &r));
    ASSERT_STREQ(r.host, "127.0.0.1");
    ASSERT_EQ(r.port, 7000);
    ASSERT_EQ(r.db, 3);
    ASSERT_TRUE(stp_pv_redis_url("redis://[::1]", &r));
    ASSERT_STREQ(r.host, "::1");
    ASSERT_EQ(r.port, 6379);
    ASSERT_EQ(r.db, 0);
    ASSERT_TRUE(stp_pv_redis_url("redis://h/", &r));
    ASSERT_EQ(r.db, 0);
    ASSERT_TRUE(!stp_pv_redis_url("redis://[::1", &r));
    ASSERT_TRUE(!stp_pv_redis_url("redis://h:0", &r));
    ASSERT_TRUE(!stp_pv_redis_url("redis://h:6379/12345", &r));
    ASSERT_TRUE(!stp_pv_redis_url("redis://pass@h", &r));
}

static void test_all_problems(void)
{
    static const struct stp_kv kv[] = {
        { "mode", "sometimes" },          /* 1 */
        { "cache_ttl", "30" },            /* 2 */
        { "store_dir", "relative" },      /* 3 */
        { "cache_tll", "3600" },          /* 4 */
        { "frobnicate", "1" },            /* 5 */
        { "connect_timeout", "60" },      /* 6: greater than timeout */
        { "timeout", "30" },              /* fine on its own */
        { "mode", "auto" },               /* 7: duplicate */
        { "module", "/x/ocspstaple.so" }, /* ignored */
        { "activate", "1" },              /* ignored */
        { "certs.a.ca_file", "/x" },      /* 8 */
        { "certs.b.mode", "always" },     /* 9: no match */
        { "programs", "" },               /* fine */
    };
    struct stp_policy *p;
    struct diags d;

    p = parse_kv(kv, sizeof(kv) / sizeof(kv[0]), &d);
    ASSERT_NULL(p);
    ASSERT_EQ(d.n, 9);
    ASSERT_CONTAINS(d.text, "key 'mode': value 'sometimes'");
    ASSERT_CONTAINS(d.text, "key 'cache_ttl': value '30'");
    ASSERT_CONTAINS(d.text, "key 'store_dir': value 'relative'");
    ASSERT_CONTAINS(d.text, "unknown key 'cache_tll'");
    ASSERT_CONTAINS(d.text, "unknown key 'frobnicate'");
    ASSERT_CONTAINS(d.text, "connect_timeout is 60s but timeout is 30s");
    ASSERT_CONTAINS(d.text, "key 'mode': value 'auto' repeats the key");
    ASSERT_CONTAINS(d.text, "cannot be set per certificate");
    ASSERT_CONTAINS(d.text, "key 'certs.b.match': missing");
}

static void test_duplicates_and_ignored(void)
{
    static const struct stp_kv dup[] = {
        { "store_dir", "/a" },
        { "store_dir", "/b" },
        { "certs.w.match", "name:a.example" },
        { "certs.w.match", "name:b.example" },
        { "programs", "nginx" },
        { "programs", "httpd" },
    };
    static const struct stp_kv ignored[] = {
        { "module", "/usr/lib/ossl-modules/ocspstaple.so" },
        { "activate", "1" },
        { "identity", "ocspstaple" },
        { "soft_load", "yes" },
        { "1.activate", "0" },
        { "mode", "must" },
    };
    struct stp_policy *p;
    struct diags d;

    p = parse_kv(dup, sizeof(dup) / sizeof(dup[0]), &d);
    ASSERT_NULL(p);
    ASSERT_EQ(d.n, 3);
    ASSERT_CONTAINS(d.text, "key 'store_dir': value '/b' repeats the key "
                            "(first value '/a'; accepted: each key at most "
                            "once)");
    ASSERT_CONTAINS(d.text, "key 'certs.w.match': value 'name:b.example' "
                            "repeats");
    ASSERT_CONTAINS(d.text, "key 'programs': value 'httpd' repeats");
    p = parse_kv(ignored, sizeof(ignored) / sizeof(ignored[0]), &d);
    ASSERT_NOT_NULL(p);
    ASSERT_EQ(d.n, 0);
    if (p != NULL)
        ASSERT_EQ(p->defaults.mode, STP_MODE_MUST);
    stp_policy_free(p);
}

static void test_unknown(void)
{
    static const struct {
        const char *key;
        const char *want;
    } rows[] = {
        { "cache_tll", "unknown key 'cache_tll' (did you mean 'cache_ttl'?)" },
        { "store.dir", "unknown key 'store.dir' (did you mean 'store_dir'?)" },
        { "Mode", "unknown key 'Mode' (did you mean 'mode'?)" },
        { "timeouts", "unknown key 'timeouts' (did you mean 'timeout'?)" },
        { "responder", "unknown key 'responder' (accepted keys: see " },
        { "frobnicate", "unknown key 'frobnicate' (accepted keys: see " },
        { "1.mode", "unknown key '1.mode' (did you mean 'mode'?)" },
        { "cert.www.match",
          "unknown key 'cert.www.match' (did you mean 'certs.www.match'?)" },
        { "certs.www.mtach",
          "unknown key 'certs.www.mtach' (did you mean 'certs.www.match'?)" },
        { "certs.www.cache-ttl", "(did you mean 'certs.www.cache_ttl'?)" },
        { "certs.www.zzzzzzzz", "unknown key 'certs.www.zzzzzzzz' (accepted" },
        { "certs..match", "unknown key 'certs..match'" },
        { "certs.www.", "unknown key 'certs.www.'" },
        { "certs.", "unknown key 'certs.'" },
        { "certs.a.b.match", "unknown key 'certs.a.b.match'" },
        { "a.b.c", "unknown key 'a.b.c'" },
        { "certs.www.activate", "unknown key 'certs.www.activate'" },
    };
    struct stp_policy *p;
    struct diags d;
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        p = parse1(rows[i].key, "x", &d);
        ASSERT_NULL(p);
        ASSERT_EQ(d.n, 1);
        ASSERT_CONTAINS(d.text, rows[i].want);
    }
}

static void test_programs(void)
{
    static const struct {
        const char *programs;
        const char *skip;
        const char *name;
        int want;
    } rows[] = {
        { NULL, NULL, "nginx", 1 },
        { NULL, NULL, NULL, 1 },
        { "", "", "anything", 1 },
        { "nginx, httpd haproxy", NULL, "nginx", 1 },
        { "nginx, httpd haproxy", NULL, "haproxy", 1 },
        { "nginx, httpd haproxy", NULL, "openssl", 0 },
        { "nginx, httpd haproxy", NULL, NULL, 0 },
        { "ngin?", NULL, "nginx", 1 },
        { "*", "openssl curl", "curl", 0 },
        { "*", "openssl curl", "nginx", 1 },
        { NULL, "apt*,openssl", "apt-get", 0 },
        { NULL, "apt*,openssl", "lighttpd", 1 },
        { "nginx", "nginx", "nginx", 0 },
        { "[a-c]*", NULL, "apache2", 1 },
        { "[a-c]*", NULL, "nginx", 0 },
    };
    struct stp_kv kv[2];
    struct stp_policy *p;
    struct diags d;
    size_t i, n;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        n = 0;
        if (rows[i].programs != NULL)
            kv[n++] = (struct stp_kv){ "programs", rows[i].programs };
        if (rows[i].skip != NULL)
            kv[n++] = (struct stp_kv){ "skip_programs", rows[i].skip };
        p = parse_kv(kv, n, &d);
        ASSERT_NOT_NULL(p);
        if (p == NULL)
            continue;
        if (stp_policy_program_allowed(p, rows[i].name) != rows[i].want)
            fprintf(stderr, "  row %zu\n", i);
        ASSERT_EQ(stp_policy_program_allowed(p, rows[i].name), rows[i].want);
        stp_policy_free(p);
    }
    p = parse1("programs", " nginx,,httpd\t haproxy , ", &d);
    ASSERT_NOT_NULL(p);
    if (p != NULL) {
        ASSERT_EQ(p->nprograms, 3);
        ASSERT_STREQ(p->programs[0], "nginx");
        ASSERT_STREQ(p->programs[1], "httpd");
        ASSERT_STREQ(p->programs[2], "haproxy");
    }
    stp_policy_free(p);
    p = parse1("skip_programs", " , ", &d);
    ASSERT_NOT_NULL(p);
    if (p != NULL)
        ASSERT_EQ(p->nskip_programs, 0);
    stp_policy_free(p);
}

/* A self-signed certificate; <san> in openssl.cnf syntax, or NULL. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san)
{
    X509_EXTENSION *ext = NULL;
    X509V3_CTX ctx;
    X509_NAME *name;
    X509 *x = X509_new();
    int ok = 0;

    if (x == NULL)
        return NULL;
    name = X509_get_subject_name(x);
    if (!X509_set_version(x, 2)
        || !ASN1_INTEGER_set(X509_get_serialNumber(x), 1)
        || X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL
        || !X509_set_pubkey(x, key)
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       (const unsigned char *)cn, -1, -1, 0)
        || !X509_set_issuer_name(x, name))
        goto end;
    if (san != NULL) {
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_nconf_nid(NULL, &ctx, NID_subject_alt_name, san);
        if (ext == NULL || !X509_add_ext(x, ext, -1))
            goto end;
    }
    ok = X509_sign(x, key, EVP_sha256()) > 0;
end:
    X509_EXTENSION_free(ext);
    if (!ok) {
        X509_free(x);
        x = NULL;
    }
    return x;
}

static void hex(const unsigned char *md, char *out, int colons)
{
    size_t i;

    for (i = 0; i < 32; i++)
        out += sprintf(out, colons && i > 0 ? ":%02X" : "%02X", md[i]);
}

enum { C_WWW, C_CN, C_WILD, C_CERTWILD, C_DEEP, C_IPONLY, C_OTHER, C_NCERT };

static const struct {
    const char *cn;
    const char *san;
} cert_specs[C_NCERT] = {
    [C_WWW] = { "ignored.example.com",
                "DNS:alt.example.com,DNS:WWW.example.com" },
    [C_CN] = { "cn.example.net", NULL },
    [C_WILD] = { "x", "DNS:a.wild.example.org" },
    [C_CERTWILD] = { "x", "DNS:*.wild.example.org" },
    [C_DEEP] = { "x", "DNS:x.y.wild.example.org" },
    [C_IPONLY] = { "www.example.com", "IP:127.0.0.1" },
    [C_OTHER] = { "www.example.com", "DNS:other.example.com" },
};

static void check_parsed_overrides(const struct stp_policy *p,
                                   const unsigned char *md_cn)
{
    ASSERT_EQ(p->ncerts, 4);
    if (p->ncerts != 4)
        return;
    ASSERT_STREQ(p->certs[0].label, "www");
    ASSERT_EQ(p->certs[0].kind, STP_MATCH_NAME);
    ASSERT_STREQ(p->certs[0].name, "www.example.com");
    ASSERT_EQ(p->certs[0].set,
              STP_SET_MODE | STP_SET_TIMEOUT | STP_SET_STAPLE_ALL);
    ASSERT_EQ(p->certs[0].pol.mode, STP_MODE_ALWAYS);
    ASSERT_EQ(p->certs[0].pol.timeout, 30);
    ASSERT_EQ(p->certs[0].pol.staple_all, 0);
    ASSERT_STREQ(p->certs[1].label, "wild");
    ASSERT_STREQ(p->certs[1].name, "*.wild.example.org");
    ASSERT_EQ(p->certs[1].set,
              STP_SET_RESPONDER_URL | STP_SET_CLIENT_OCSP | STP_SET_CLIENT_FAIL
                  | STP_SET_CLIENT_TIMEOUT | STP_SET_CLIENT_UNKNOWN
                  | STP_SET_CLIENT_NO_URL);
    ASSERT_STREQ(p->certs[1].pol.responder_url, "http://r.example/");
    ASSERT_STREQ(p->certs[2].label, "hash");
    ASSERT_EQ(p->certs[2].kind, STP_MATCH_SHA256);
    ASSERT_TRUE(memcmp(p->certs[2].sha256, md_cn, 32) == 0);
    ASSERT_EQ(p->certs[2].set, STP_SET_SKIP_VERIFY | STP_SET_CACHE_TTL);
    ASSERT_EQ(p->certs[2].pol.cache_ttl, 7200);
    ASSERT_EQ(p->certs[3].kind, STP_MATCH_SHA256);
    ASSERT_EQ(p->certs[3].set, 0);
}

static void check_resolve(const struct stp_policy *p, X509 *const *certs,
                          unsigned char (*md)[32])
{
    static const struct {
        int cert;
        const char *want; /* label, or NULL */
    } rows[] = {
        { C_WWW, "www" },       { C_CN, "hash" },     { C_WILD, "wild" },
        { C_CERTWILD, "wild" }, { C_DEEP, "colons" }, { C_IPONLY, "www" },
        { C_OTHER, NULL },
    };
    const struct stp_cert_override *co;
    struct stp_certpol out;
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        co = stp_policy_resolve(p, md[rows[i].cert], certs[rows[i].cert], &out);
        if (rows[i].want == NULL) {
            ASSERT_NULL(co);
            ASSERT_EQ(out.mode, STP_MODE_AUTO);
            ASSERT_EQ(out.timeout, 10);
        } else {
            ASSERT_NOT_NULL(co);
            ASSERT_STREQ(co != NULL ? co->label : NULL, rows[i].want);
        }
    }
    /* Only the fields in .set come from the override. */
    co = stp_policy_resolve(p, md[C_WWW], certs[C_WWW], &out);
    ASSERT_EQ(out.mode, STP_MODE_ALWAYS);
    ASSERT_EQ(out.timeout, 30);
    ASSERT_EQ(out.staple_all, 0);
    ASSERT_EQ(out.cache_ttl, 3600);
    ASSERT_NULL(out.responder_url);
    co = stp_policy_resolve(p, md[C_CN], certs[C_CN], &out);
    ASSERT_EQ(out.skip_verify, 1);
    ASSERT_EQ(out.cache_ttl, 7200);
    ASSERT_EQ(out.mode, STP_MODE_AUTO);
    ASSERT_EQ(out.client_ocsp, STP_CLIENT_OCSP_OFF);
    co = stp_policy_resolve(p, md[C_WILD], certs[C_WILD], &out);
    ASSERT_STREQ(out.responder_url, "http://r.example/");
    /* client settings for the connections that use this certificate */
    ASSERT_EQ(out.client_ocsp, STP_CLIENT_OCSP_CHAIN);
    ASSERT_EQ(out.client_fail, STP_FAIL_OPEN);
    ASSERT_EQ(out.client_timeout_ms, 2000);
    ASSERT_EQ(out.client_unknown, STP_UNKNOWN_ALLOW);
    ASSERT_EQ(out.client_no_url, STP_NO_URL_REFUSE);
    ASSERT_TRUE(stp_policy_client_any(p));
    /* By hash alone (no certificate), and with neither. */
    co = stp_policy_resolve(p, md[C_CN], NULL, NULL);
    ASSERT_STREQ(co != NULL ? co->label : NULL, "hash");
    ASSERT_NULL(stp_policy_resolve(p, NULL, NULL, &out));
    ASSERT_EQ(out.timeout, 10);
}

static void test_overrides(void)
{
    char want[160], hex_cn[65], hex_deep[96];
    unsigned char md[C_NCERT][32];
    X509 *certs[C_NCERT] = { NULL };
    EVP_PKEY *key = EVP_EC_gen("P-256");
    struct stp_policy *p = NULL;
    unsigned int mdlen;
    struct diags d;
    size_t i;

    ASSERT_NOT_NULL(key);
    for (i = 0; key != NULL && i < C_NCERT; i++) {
        certs[i] = make_cert(key, cert_specs[i].cn, cert_specs[i].san);
        ASSERT_NOT_NULL(certs[i]);
        if (certs[i] == NULL)
            goto end;
        ASSERT_OK(X509_digest(certs[i], EVP_sha256(), md[i], &mdlen));
    }
    if (key == NULL)
        goto end;
    hex(md[C_CN], hex_cn, 0);
    hex(md[C_DEEP], hex_deep, 1);
    snprintf(want, sizeof(want), "SHA256:%s", hex_cn);
    {
        const struct stp_kv kv[] = {
            { "certs.www.match", "name:WWW.Example.COM" },
            { "certs.www.mode", "always" },
            { "certs.www.timeout", "30s" },
            { "certs.wild.match", " name:*.wild.example.org " },
            { "certs.wild.responder_url", "http://r.example/" },
            { "certs.hash.match", want },
            { "certs.hash.skip_verify", "yes" },
            { "certs.hash.cache_ttl", "2h" },
            { "certs.www.staple_all", "no" },
            { "certs.wild.client_ocsp", "chain" },
            { "certs.wild.client_ocsp_fail", "open" },
            { "certs.wild.client_ocsp_timeout", "2s" },
            { "certs.wild.client_ocsp_unknown", "allow" },
            { "certs.wild.client_ocsp_no_url", "refuse" },
            { "certs.colons.match", "sha256:" }, /* last: see below */
        };
        const size_t n = sizeof(kv) / sizeof(kv[0]);
        char colons[120];
        struct stp_kv kv2[sizeof(kv) / sizeof(kv[0])];

        memcpy(kv2, kv, sizeof(kv));
        snprintf(colons, sizeof(colons), "sha256:%s", hex_deep);
        kv2[n - 1].value = colons;
        p = parse_kv(kv2, n, &d);
    }
    ASSERT_NOT_NULL(p);
    ASSERT_EQ(d.n, 0);
    if (p == NULL) {
        fprintf(stderr, "%s", d.text);
        goto end;
    }
    check_parsed_overrides(p, md[C_CN]);
    check_resolve(p, certs, md);
    /* C_DEEP matches by (colon-form) hash only, never by name. */
    ASSERT_NULL(stp_policy_resolve(p, NULL, certs[C_DEEP], NULL));
end:
    stp_policy_free(p);
    for (i = 0; i < C_NCERT; i++)
        X509_free(certs[i]);
    EVP_PKEY_free(key);
}

static void test_override_errors(void)
{
    static const struct {
        const char *key;
        const char *value;
        int errors;
        const char *want;
    } rows[] = {
        { "certs.www.ca_file", "/x", 1,
          "key 'certs.www.ca_file': value '/x' rejected, 'ca_file' cannot be "
          "set per certificate (accepted: match, mode, staple_all, "
          "responder_url, skip_verify, cache_ttl, timeout, client_ocsp, "
          "client_ocsp_fail, client_ocsp_timeout, client_ocsp_unknown, "
          "client_ocsp_no_url)" },
        { "certs.www.store_dir", "/x", 1, "cannot be set per certificate" },
        { "certs", "certs_sect", 1,
          "key 'certs': value 'certs_sect' must name a section" },
        { "certs.www", "name:www.example.com", 1,
          "key 'certs.www': value 'name:www.example.com' must name a "
          "section" },
        { "certs.www.match", "foo:bar", 1,
          "key 'certs.www.match': value 'foo:bar' is not a valid match "
          "(accepted: sha256:<64 hex digits> or name:<dns name>)" },
        { "certs.www.match", "", 1, "value '' is empty" },
        { "certs.www.match", "sha256:abcd", 1, "is not a valid match" },
        { "certs.www.match",
          "sha256:"
          "0000000000000000000000000000000000000000000000"
          "00000000000000000g",
          1, "is not a valid match" },
        { "certs.www.match", "name:", 1, "is not a valid match" },
        { "certs.www.match", "name:bad..example", 1, "is not a valid match" },
        { "certs.www.match", "name:a.example.", 1, "is not a valid match" },
        { "certs.www.match", "name:*.", 1, "is not a valid match" },
        { "certs.www.match", "name:www.*.example", 1, "is not a valid match" },
        { "certs.www.match", "name:sp ace.example", 1, "is not a valid match" },
        { "certs.www.mode", "sometimes", 2,
          "key 'certs.www.mode': value 'sometimes' is not valid" },
        { "certs.www.cache_ttl", "30", 2,
          "key 'certs.www.cache_ttl': value '30' is out of range (accepted: "
          "a duration from 60s to 30d)" },
        { "certs.www.timeout", "1", 1,
          "key 'certs.www.match': missing; every per-certificate section "
          "needs one (accepted: sha256:<64 hex digits> or name:<dns "
          "name>)" },
    };
    struct stp_policy *p;
    struct diags d;
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        p = parse1(rows[i].key, rows[i].value, &d);
        ASSERT_NULL(p);
        stp_policy_free(p);
        if (d.n != rows[i].errors)
            fprintf(stderr, "  row %zu: %s", i, d.text);
        ASSERT_EQ(d.n, rows[i].errors);
        ASSERT_CONTAINS(d.text, rows[i].want);
    }
}

static void test_override_limit(void)
{
    static char keys[258][32], values[258][48];
    struct stp_kv kv[258];
    struct stp_policy *p;
    struct diags d;
    size_t i;

    for (i = 0; i < 258; i++) {
        snprintf(keys[i], sizeof(keys[i]), "certs.l%zu.match", i);
        snprintf(values[i], sizeof(values[i]), "name:h%zu.example.com", i);
        kv[i].key = keys[i];
        kv[i].value = values[i];
    }
    p = parse_kv(kv, 256, &d);
    ASSERT_NOT_NULL(p);
    if (p != NULL) {
        ASSERT_EQ(p->ncerts, 256);
        ASSERT_STREQ(p->certs[255].label, "l255");
        ASSERT_STREQ(p->certs[255].name, "h255.example.com");
    }
    stp_policy_free(p);
    p = parse_kv(kv, 258, &d);
    ASSERT_NULL(p);
    ASSERT_EQ(d.n, 1);
    ASSERT_CONTAINS(d.text, "key 'certs.l256.match': too many "
                            "per-certificate sections (accepted: at most "
                            "256)");
}

/* stp_policy_decide(): mode x staple_all x the certificate's Must-Staple. */
static void test_decide(void)
{
    static const struct {
        enum stp_mode mode;
        int staple_all, must_staple;
        int staple, must, refuse;
    } t[] = {
        { STP_MODE_AUTO, 1, 0, 1, 0, 0 },   { STP_MODE_AUTO, 0, 0, 0, 0, 0 },
        { STP_MODE_AUTO, 0, 1, 1, 1, 0 },   { STP_MODE_AUTO, 1, 1, 1, 1, 0 },
        { STP_MODE_MUST, 1, 0, 1, 0, 1 },   { STP_MODE_MUST, 0, 1, 1, 1, 1 },
        { STP_MODE_MUST, 0, 0, 0, 0, 1 },   { STP_MODE_ALWAYS, 0, 0, 1, 1, 1 },
        { STP_MODE_ALWAYS, 1, 1, 1, 1, 1 }, { STP_MODE_NEVER, 1, 1, 0, 0, 0 },
        { STP_MODE_NEVER, 0, 0, 0, 0, 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct stp_certpol cp = { 0 };
        struct stp_decision d;

        cp.mode = t[i].mode;
        cp.staple_all = t[i].staple_all;
        stp_policy_decide(&cp, t[i].must_staple, &d);
        if (d.staple != t[i].staple || d.must != t[i].must
            || d.refuse_revoked != t[i].refuse)
            fprintf(stderr, "decide row %zu\n", i);
        ASSERT_EQ(d.staple, t[i].staple);
        ASSERT_EQ(d.must, t[i].must);
        ASSERT_EQ(d.refuse_revoked, t[i].refuse);
    }
}

/* The whole of file <path> (NUL-terminated), or NULL. */
static char *slurp(const char *path)
{
    FILE *f = path != NULL ? fopen(path, "r") : NULL;
    char *buf = NULL;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0
        && fseek(f, 0, SEEK_SET) == 0
        && (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
            free(buf);
            buf = NULL;
        } else {
            buf[n] = '\0';
        }
    }
    fclose(f);
    return buf;
}

/* Every key the parser knows is in docs/policy.md's table of keys and has
 * its entry in provider-ocspstaple(7) (made from that table at build time),
 * and the table names no key the parser does not know: the reference and
 * the man page say what the code reads. */
static void test_documented(void)
{
    char *md = slurp(getenv("STP_POLICY_MD"));
    char *man = slurp(getenv("STP_MAN7"));
    char want[128];
    const char *k, *p, *start, *stop;
    size_t i, known = 0, rows = 0;

    ASSERT_NOT_NULL(md);
    ASSERT_NOT_NULL(man);
    if (md == NULL || man == NULL)
        goto end;
    for (i = 0; (k = stp_policy_key(i)) != NULL; i++) {
        snprintf(want, sizeof(want), "\n| `%s` |", k);
        ASSERT_CONTAINS(md, want);
        snprintf(want, sizeof(want), ".TP\n\\fB%s\\fR\n", k);
        ASSERT_CONTAINS(man, want);
        known++;
    }
    /* as many rows in the table as keys, and certs (a section) */
    start = strstr(md, "\n## Keys");
    stop = start != NULL ? strstr(start + 1, "\n## ") : NULL;
    for (p = start; p != NULL && (p = strstr(p, "\n| `")) != NULL
                    && (stop == NULL || p < stop);
         p++)
        rows++;
    ASSERT_TRUE(known > 30);
    ASSERT_EQ(rows, known + 1);
end:
    free(md);
    free(man);
}

int main(void)
{
    test_documented();
    test_defaults();
    test_decide();
    test_good_values();
    test_bad_values();
    test_diag_text();
    test_pairs();
    test_fleet();
    test_all_problems();
    test_duplicates_and_ignored();
    test_unknown();
    test_programs();
    test_overrides();
    test_override_errors();
    test_override_limit();
    STP_TEST_MAIN_END();
}
