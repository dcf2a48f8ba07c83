/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Applying a parsed policy: picks the per-certificate section that matches a
 * leaf (SHA-256, or a DNS name against SAN dNSNames, else the subject CN),
 * overlays it on the defaults, and filters by program name. Reads a policy,
 * never builds or changes one; no I/O.
 */
#include "engine/policy.h"

#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "engine/policy_value.h"
#include "ocspstaple/params.h"

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
        if (stp_pv_lower(name[off + i]) != pattern[i])
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
    if (co->set & STP_SET_CLIENT_OCSP)
        out->client_ocsp = co->pol.client_ocsp;
    if (co->set & STP_SET_CLIENT_FAIL)
        out->client_fail = co->pol.client_fail;
    if (co->set & STP_SET_CLIENT_TIMEOUT)
        out->client_timeout_ms = co->pol.client_timeout_ms;
    if (co->set & STP_SET_CLIENT_UNKNOWN)
        out->client_unknown = co->pol.client_unknown;
    if (co->set & STP_SET_CLIENT_NO_URL)
        out->client_no_url = co->pol.client_no_url;
}

int stp_policy_client_any(const struct stp_policy *policy)
{
    size_t i;

    if (policy->defaults.client_ocsp != STP_CLIENT_OCSP_OFF)
        return 1;
    for (i = 0; i < policy->ncerts; i++)
        if ((policy->certs[i].set & STP_SET_CLIENT_OCSP)
            && policy->certs[i].pol.client_ocsp != STP_CLIENT_OCSP_OFF)
            return 1;
    return 0;
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

void stp_policy_decide(const struct stp_certpol *cp, int must_staple,
                       struct stp_decision *out)
{
    int must = must_staple || cp->mode == STP_MODE_ALWAYS;

    out->staple = cp->mode != STP_MODE_NEVER && (must || cp->staple_all);
    out->must = out->staple && must;
    out->refuse_revoked =
        cp->mode == STP_MODE_MUST || cp->mode == STP_MODE_ALWAYS;
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

static const char CLIENT_OFF[] = " while client_ocsp is off: client "
                                 "certificates are not checked";

int stp_policy_inert_keys(const struct stp_policy *policy, stp_diag_fn diag,
                          void *arg)
{
    const struct {
        int set;
        const char *key;
        const char *what;
    } keys[] = {
        { policy->client_responder != NULL, OCSPSTAPLE_KEY_CLIENT_RESPONDER,
          CLIENT_OFF },
        { policy->client_default_responder != NULL,
          OCSPSTAPLE_KEY_CLIENT_DEFAULT_RESPONDER, CLIENT_OFF },
        { policy->defaults.client_fail != STP_FAIL_CLOSED,
          OCSPSTAPLE_KEY_CLIENT_FAIL, CLIENT_OFF },
        { policy->defaults.client_timeout_ms != 500,
          OCSPSTAPLE_KEY_CLIENT_TIMEOUT, CLIENT_OFF },
        { policy->defaults.client_unknown != STP_UNKNOWN_REFUSE,
          OCSPSTAPLE_KEY_CLIENT_UNKNOWN, CLIENT_OFF },
        { policy->defaults.client_no_url != STP_NO_URL_SKIP,
          OCSPSTAPLE_KEY_CLIENT_NO_URL, CLIENT_OFF },
        { policy->client_nonce, OCSPSTAPLE_KEY_CLIENT_NONCE, CLIENT_OFF },
    };
    char msg[512];
    size_t i;
    int n = 0;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (!keys[i].set
            || (keys[i].what == CLIENT_OFF && stp_policy_client_any(policy)))
            continue;
        n++;
        snprintf(msg, sizeof(msg), "key '%s' has no effect%s", keys[i].key,
                 keys[i].what);
        if (diag != NULL)
            diag(arg, msg);
    }
    return n;
}
