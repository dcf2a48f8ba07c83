/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for the policy: the first byte selects the input's shape.
 * Even ('P'): the rest is "key=value" lines (a line without '=' is a key
 * with no value), handed to stp_policy_parse() as the provider receives its
 * section. Odd ('C'): the rest is an openssl.cnf, written to a file and read
 * by stp_conf_load(), whose flattened section then goes through the same
 * parser (the preload route). A policy that comes back is applied to fixed
 * certificates (stp_policy_resolve()) and program names. Checks the
 * parser's contract: a policy iff no problem was reported, diagnostics
 * free of control characters, every value within its documented range.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "engine/certinfo.h"
#include "engine/conf.h"
#include "fuzz.h"
#include "engine/policy.h"

#define MAX_ENTRIES 512 /* more than the 256 per-certificate sections */
#define DAY         86400L

struct diags {
    size_t n;
    int policy; /* messages come from the policy parser */
};

struct subject {
    X509 *cert;
    unsigned char sha256[32];
};

static struct subject subjects[3];
static char conf_path[4200];

static const char *const programs[] = { "nginx",   "openssl", "s_server",
                                        "apache2", "",        NULL };

static void diag_cb(void *arg, const char *msg)
{
    struct diags *d = arg;
    const char *p;

    FZ_CHECK(msg != NULL && msg[0] != '\0');
    for (p = msg; d->policy && *p != '\0'; p++)
        FZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
    d->n++;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const struct fz_pki *pki = fz_setup();
    unsigned int len;
    size_t i;

    (void)argc;
    (void)argv;
    subjects[0].cert = pki->leaf;
    subjects[1].cert = pki->issuer; /* no subjectAltName: CN only */
    subjects[2].cert = pki->muststaple;
    for (i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
        FZ_CHECK(X509_digest(subjects[i].cert, EVP_sha256(), subjects[i].sha256,
                             &len)
                 && len == 32);
    }
    snprintf(conf_path, sizeof(conf_path), "%s/openssl.cnf", fz_scratch_dir());
    return 0;
}

static int is_abs_path(const char *s)
{
    return s == NULL || s[0] == '/';
}

static int url_ok(const char *s)
{
    return s == NULL || stp_url_usable(s);
}

/* Every STP_SET_* bit. */
#define ALL_SET 0x7ffu

static void check_certpol(const struct stp_certpol *c, unsigned set)
{
    if (set & STP_SET_MODE)
        FZ_CHECK(c->mode >= STP_MODE_AUTO && c->mode <= STP_MODE_NEVER);
    if (set & STP_SET_STAPLE_ALL)
        FZ_CHECK(c->staple_all == 0 || c->staple_all == 1);
    if (set & STP_SET_RESPONDER_URL)
        FZ_CHECK(url_ok(c->responder_url));
    if (set & STP_SET_SKIP_VERIFY)
        FZ_CHECK(c->skip_verify == 0 || c->skip_verify == 1);
    if (set & STP_SET_CACHE_TTL)
        FZ_CHECK(c->cache_ttl >= 60 && c->cache_ttl <= 30 * DAY);
    if (set & STP_SET_TIMEOUT)
        FZ_CHECK(c->timeout >= 1 && c->timeout <= 300);
    if (set & STP_SET_CLIENT_OCSP)
        FZ_CHECK(c->client_ocsp == STP_CLIENT_OCSP_OFF
                 || c->client_ocsp == STP_CLIENT_OCSP_LEAF
                 || c->client_ocsp == STP_CLIENT_OCSP_CHAIN);
    if (set & STP_SET_CLIENT_FAIL)
        FZ_CHECK(c->client_fail == STP_FAIL_CLOSED
                 || c->client_fail == STP_FAIL_OPEN);
    if (set & STP_SET_CLIENT_TIMEOUT)
        FZ_CHECK(c->client_timeout_ms >= 0 && c->client_timeout_ms <= 10000);
    if (set & STP_SET_CLIENT_UNKNOWN)
        FZ_CHECK(c->client_unknown == STP_UNKNOWN_REFUSE
                 || c->client_unknown == STP_UNKNOWN_ALLOW);
    if (set & STP_SET_CLIENT_NO_URL)
        FZ_CHECK(c->client_no_url == STP_NO_URL_SKIP
                 || c->client_no_url == STP_NO_URL_REFUSE);
}

static void check_list(char **list, size_t n)
{
    size_t i;

    FZ_CHECK(n == 0 || list != NULL);
    for (i = 0; i < n; i++) {
        FZ_CHECK(list[i] != NULL && list[i][0] != '\0');
        FZ_CHECK(strpbrk(list[i], ", \t\n\v\f\r") == NULL);
    }
}

static void check_override(const struct stp_cert_override *co)
{
    const char *p;

    FZ_CHECK(co->label != NULL && co->label[0] != '\0');
    FZ_CHECK(strchr(co->label, '.') == NULL);
    FZ_CHECK(co->kind == STP_MATCH_SHA256 || co->kind == STP_MATCH_NAME);
    if (co->kind == STP_MATCH_NAME) {
        FZ_CHECK(co->name != NULL && co->name[0] != '\0');
        for (p = co->name; *p != '\0'; p++)
            FZ_CHECK(!(*p >= 'A' && *p <= 'Z'));
    }
    FZ_CHECK((co->set & ~ALL_SET) == 0);
    check_certpol(&co->pol, co->set);
}

/* The documented ranges (docs/policy.md). */
static void check_policy(const struct stp_policy *p)
{
    size_t i;

    check_certpol(&p->defaults, ALL_SET);
    FZ_CHECK(p->revoked_action == STP_REVOKED_REFUSE
             || p->revoked_action == STP_REVOKED_EXIT);
    FZ_CHECK(p->must_staple_wait_ms >= 0 && p->must_staple_wait_ms <= 10000);
    FZ_CHECK(is_abs_path(p->ca_file));
    FZ_CHECK(p->clock_skew >= 0 && p->clock_skew <= 3600);
    FZ_CHECK(p->connect_timeout >= 1
             && p->connect_timeout <= p->defaults.timeout);
    FZ_CHECK(p->max_response_size >= 1024
             && p->max_response_size <= 1024 * 1024);
    FZ_CHECK(p->fetch == 0 || p->fetch == 1);
    FZ_CHECK(p->fetch_per_host_total >= 0 && p->fetch_per_host_total <= 256);
    FZ_CHECK(p->store_dir != NULL && p->store_dir[0] == '/');
    FZ_CHECK(p->refresh_margin >= 1 && p->refresh_margin <= 90);
    FZ_CHECK(p->refresh_jitter >= 0 && p->refresh_jitter <= 3600);
    FZ_CHECK(p->refresh_min >= 10 && p->refresh_min <= p->refresh_max);
    FZ_CHECK(p->refresh_max >= 60 && p->refresh_max <= 30 * DAY);
    FZ_CHECK(p->retry_base >= 1 && p->retry_base <= 3600);
    FZ_CHECK(p->retry_max >= p->retry_base && p->retry_max <= DAY);
    FZ_CHECK(url_ok(p->client_responder));
    FZ_CHECK(url_ok(p->client_default_responder));
    FZ_CHECK(p->client_responder == NULL
             || p->client_default_responder == NULL);
    FZ_CHECK(p->log_level >= 0 && p->log_level <= 4);
    FZ_CHECK(is_abs_path(p->log_file) && is_abs_path(p->metrics_file));
    check_list(p->programs, p->nprograms);
    check_list(p->skip_programs, p->nskip_programs);
    FZ_CHECK(p->ncerts <= 256 && (p->ncerts == 0 || p->certs != NULL));
    for (i = 0; i < p->ncerts; i++)
        check_override(&p->certs[i]);
}

/* The settings <co> (may be NULL) should give: its own, else the defaults. */
static struct stp_certpol expected(const struct stp_policy *p,
                                   const struct stp_cert_override *co)
{
    struct stp_certpol want = p->defaults;
    unsigned set = co != NULL ? co->set : 0;

    if (set & STP_SET_MODE)
        want.mode = co->pol.mode;
    if (set & STP_SET_STAPLE_ALL)
        want.staple_all = co->pol.staple_all;
    if (set & STP_SET_RESPONDER_URL)
        want.responder_url = co->pol.responder_url;
    if (set & STP_SET_SKIP_VERIFY)
        want.skip_verify = co->pol.skip_verify;
    if (set & STP_SET_CACHE_TTL)
        want.cache_ttl = co->pol.cache_ttl;
    if (set & STP_SET_TIMEOUT)
        want.timeout = co->pol.timeout;
    if (set & STP_SET_CLIENT_OCSP)
        want.client_ocsp = co->pol.client_ocsp;
    if (set & STP_SET_CLIENT_FAIL)
        want.client_fail = co->pol.client_fail;
    if (set & STP_SET_CLIENT_TIMEOUT)
        want.client_timeout_ms = co->pol.client_timeout_ms;
    if (set & STP_SET_CLIENT_UNKNOWN)
        want.client_unknown = co->pol.client_unknown;
    if (set & STP_SET_CLIENT_NO_URL)
        want.client_no_url = co->pol.client_no_url;
    return want;
}

/* Applies <p> to each fixed certificate (and to none) and to programs. */
static void apply(const struct stp_policy *p)
{
    const size_t nsubjects = sizeof(subjects) / sizeof(subjects[0]);
    const struct stp_cert_override *co;
    struct stp_certpol out, want;
    size_t i;

    for (i = 0; i <= nsubjects; i++) {
        if (i < nsubjects)
            co = stp_policy_resolve(p, subjects[i].sha256, subjects[i].cert,
                                    &out);
        else
            co = stp_policy_resolve(p, NULL, NULL, &out);
        FZ_CHECK(co == NULL || (co >= p->certs && co < p->certs + p->ncerts));
        if (co != NULL && co->kind == STP_MATCH_SHA256)
            FZ_CHECK(i < nsubjects
                     && memcmp(co->sha256, subjects[i].sha256, 32) == 0);
        want = expected(p, co);
        FZ_CHECK(out.mode == want.mode && out.staple_all == want.staple_all
                 && out.responder_url == want.responder_url
                 && out.skip_verify == want.skip_verify
                 && out.cache_ttl == want.cache_ttl
                 && out.timeout == want.timeout
                 && out.client_ocsp == want.client_ocsp
                 && out.client_fail == want.client_fail
                 && out.client_timeout_ms == want.client_timeout_ms
                 && out.client_unknown == want.client_unknown
                 && out.client_no_url == want.client_no_url);
        FZ_CHECK(strcmp(stp_mode_name(out.mode), "?") != 0);
    }
    for (i = 0; programs[i] != NULL; i++)
        stp_policy_program_allowed(p, programs[i]);
    stp_policy_program_allowed(p, NULL);
}

static void parse_and_apply(const struct stp_kv *kv, size_t n)
{
    struct diags d = { 0, 1 };
    struct stp_policy *p = stp_policy_parse(kv, n, diag_cb, &d);

    /* Every problem is reported, and any problem refuses the policy. */
    FZ_CHECK((p == NULL) == (d.n > 0));
    if (p == NULL)
        return;
    check_policy(p);
    apply(p);
    stp_policy_free(p);
}

static void run_kv(const uint8_t *data, size_t size)
{
    struct stp_kv *kv = NULL;
    char *text = NULL, *line, *next, *eq;
    size_t n = 0;

    text = malloc(size + 1);
    kv = malloc(MAX_ENTRIES * sizeof(*kv));
    FZ_CHECK(text != NULL && kv != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    for (line = text; line != NULL && n < MAX_ENTRIES; line = next) {
        next = memchr(line, '\n', size - (size_t)(line - text));
        if (next != NULL)
            *next++ = '\0';
        else if (line == text + size)
            break; /* nothing after the last newline */
        eq = strchr(line, '=');
        if (eq != NULL)
            *eq++ = '\0';
        kv[n].key = line;
        kv[n].value = eq;
        n++;
    }
    parse_and_apply(kv, n);
    free(kv);
    free(text);
}

static void run_conf(const uint8_t *data, size_t size)
{
    struct diags d = { 0, 0 };
    struct stp_conf *conf = NULL;
    size_t i;
    int fd, ok;

    /* .include reads any path (a FIFO, /dev/zero): not the reader's job. */
    if (memmem(data, size, "include", 7) != NULL)
        return;
    fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FZ_CHECK(fd >= 0);
    FZ_CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
    close(fd);
    ERR_clear_error();
    ok = stp_conf_load(conf_path, &conf, diag_cb, &d);
    FZ_CHECK(ok == (conf != NULL));
    /* It leaves the OpenSSL error stack as it found it. */
    FZ_CHECK(ERR_peek_error() == 0);
    if (!ok) {
        FZ_CHECK(d.n > 0);
        return;
    }
    FZ_CHECK(conf->self != NULL && conf->self >= conf->providers
             && conf->self < conf->providers + conf->nproviders);
    FZ_CHECK(conf->self->found && conf->providers_section != NULL);
    for (i = 0; i < conf->nproviders; i++)
        FZ_CHECK(conf->providers[i].name != NULL
                 && conf->providers[i].section != NULL);
    for (i = 0; i < conf->nkv; i++)
        FZ_CHECK(conf->kv[i].key != NULL && conf->kv[i].value != NULL
                 && strlen(conf->kv[i].key) < 512);
    parse_and_apply(conf->kv, conf->nkv);
    stp_conf_free(conf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    if ((data[0] & 1) == 0)
        run_kv(data + 1, size - 1);
    else
        run_conf(data + 1, size - 1);
    return 0;
}
