/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for certificate inspection: the input is a DER certificate
 * (d2i_X509), inspected with stp_certinfo_new() against fixed candidate
 * issuers, stp_cert_must_staple(), stp_first_usable_url() and
 * stp_certinfo_certid(), then matched against a fixed policy's
 * per-certificate sections (SAN and CN name matching). Invariants: the
 * record is consistent with the certificate (URL, Must-Staple, issuer,
 * store key) and its strings are terminated.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "engine/certinfo.h"
#include "fuzz.h"
#include "engine/policy.h"
#include "engine/store.h"

static const struct fz_pki *pki;
static STACK_OF(X509) *candidates;
static struct stp_policy *policy;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static const struct stp_kv kv[] = {
        { "certs.exact.match", "name:ecdsa.test" },
        { "certs.exact.mode", "always" },
        { "certs.wild.match", "name:*.wild.test" },
        { "certs.wild.timeout", "5" },
        { "certs.cn.match", "name:tlsfeature-v2.test" },
        { "certs.zero.match", "sha256:0000000000000000"
                              "0000000000000000"
                              "0000000000000000"
                              "0000000000000000" },
    };

    (void)argc;
    (void)argv;
    pki = fz_setup();
    /* Wrong candidates first: the issuer is searched, not assumed. */
    candidates = sk_X509_new_null();
    FZ_CHECK(candidates != NULL && sk_X509_push(candidates, pki->rogue)
             && sk_X509_push(candidates, pki->root)
             && sk_X509_push(candidates, pki->issuer));
    policy = stp_policy_parse(kv, sizeof(kv) / sizeof(kv[0]), NULL, NULL);
    FZ_CHECK(policy != NULL);
    return 0;
}

static void check_info(X509 *x, const struct stp_certinfo *ci, int must)
{
    struct stp_certpol pol;
    OCSP_CERTID *id;
    unsigned char *der = NULL;
    int i, len;

    FZ_CHECK(ci->leaf == x);
    FZ_CHECK(ci->must_staple == must);
    FZ_CHECK(ci->url == stp_first_usable_url(ci->urls));
    FZ_CHECK(ci->url == NULL || stp_url_usable(ci->url));
    for (i = 0; i < sk_OPENSSL_STRING_num(ci->urls); i++)
        stp_url_usable(sk_OPENSSL_STRING_value(ci->urls, i));
    FZ_CHECK(strlen(ci->id_hex) == STP_ID_HEX_LEN
             && stp_store_id_valid(ci->id_hex));
    FZ_CHECK(strnlen(ci->ident, sizeof(ci->ident)) < sizeof(ci->ident));
    FZ_CHECK(strnlen(ci->subject, sizeof(ci->subject)) < sizeof(ci->subject));
    FZ_CHECK(strnlen(ci->serial, sizeof(ci->serial)) < sizeof(ci->serial));
    if (ci->issuer != NULL)
        FZ_CHECK(X509_check_issued(ci->issuer, x) == X509_V_OK);
    id = stp_certinfo_certid(ci);
    FZ_CHECK((id != NULL) == (ci->issuer != NULL));
    if (id != NULL) {
        len = i2d_OCSP_CERTID(id, &der);
        FZ_CHECK(len > 0);
        OPENSSL_free(der);
        OCSP_CERTID_free(id);
    }
    /* A broken subjectAltName is no error, and leaves none behind. */
    ERR_clear_error();
    stp_policy_resolve(policy, ci->id, x, &pol);
    FZ_CHECK(ERR_peek_error() == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const unsigned char *p = data;
    struct stp_certinfo *ci = NULL;
    struct stp_err err;
    X509 *x;
    int must = 0, must_ok;
    time_t t;

    x = d2i_X509(NULL, &p, (long)size);
    if (x == NULL) {
        ERR_clear_error();
        return 0;
    }
    must_ok = stp_cert_must_staple(x, &must);
    /* As a server's chain may list it: the leaf among its candidates. */
    FZ_CHECK(sk_X509_unshift(candidates, x) > 0);
    if (stp_certinfo_new(x, candidates, &ci, &err)) {
        FZ_CHECK(must_ok);
        FZ_CHECK(ci->issuer != x);
        check_info(x, ci, must);
        stp_certinfo_free(ci);
    } else {
        /* The only decoding failure it reports is the TLS feature's. */
        FZ_CHECK(ci == NULL);
        FZ_CHECK(!must_ok || err.code == STP_E_INTERNAL);
    }
    sk_X509_shift(candidates);
    stp_asn1_time_to_time_t(X509_get0_notBefore(x), &t);
    X509_free(x);
    ERR_clear_error();
    return 0;
}
