/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate inspection (provider/certinfo.h): AIA URLs, Must-Staple,
 * issuer discovery, CertID and store key.
 */
#include "engine/certinfo.h"

#include <openssl/crypto.h>

#include "stp_test.h"
#include "test_pki.h"

static void test_urls(void)
{
    static const struct {
        const char *url;
        int usable;
    } rows[] = {
        { "http://127.0.0.1:8080/", 1 },
        { "HTTPS://127.0.0.1/ocsp", 1 },
        { "http://[::1]:80/", 1 },
        { "ldap://127.0.0.1/x", 0 },
        { "file:///etc/passwd", 0 },
        { "http://", 0 },
        { "http:///path", 0 },
        { "ftp://127.0.0.1/", 0 },
        { "", 0 },
        { "http:127.0.0.1", 0 },
    };
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (stp_url_usable(rows[i].url) != rows[i].usable)
            fprintf(stderr, "url '%s'\n", rows[i].url);
        ASSERT_EQ(stp_url_usable(rows[i].url), rows[i].usable);
    }
    ASSERT_EQ(stp_url_usable(NULL), 0);
}

static void test_leaf(const struct tp_pki *pki, STACK_OF(X509) *chain)
{
    struct stp_certinfo *ci = NULL;
    struct stp_err err;
    unsigned char md[32];
    unsigned int mdlen;
    char hex[65];
    OCSP_CERTID *id, *want;

    ASSERT_OK(stp_certinfo_new(pki->leaf.cert, chain, &ci, &err));
    ASSERT_NOT_NULL(ci);
    ASSERT_STREQ(ci->url, "http://127.0.0.1:1/");
    ASSERT_EQ(ci->must_staple, 0);
    ASSERT_TRUE(ci->issuer == pki->ca.cert);
    ASSERT_STREQ(ci->ident, "leaf.test");
    ASSERT_STREQ(ci->serial, "05");
    ASSERT_CONTAINS(ci->subject, "CN=leaf.test");
    X509_digest(pki->leaf.cert, EVP_sha256(), md, &mdlen);
    stp_hex(md, 32, hex);
    ASSERT_STREQ(ci->id_hex, hex);
    id = stp_certinfo_certid(ci);
    want = OCSP_cert_to_id(EVP_sha1(), pki->leaf.cert, pki->ca.cert);
    ASSERT_NOT_NULL(id);
    ASSERT_EQ(OCSP_id_cmp(id, want), 0);
    OCSP_CERTID_free(id);
    OCSP_CERTID_free(want);
    stp_certinfo_free(ci);
}

static void test_others(const struct tp_pki *pki, STACK_OF(X509) *chain)
{
    struct stp_certinfo *ci = NULL;
    struct stp_err err;

    /* two AIA URLs, the ldap one first: the http one is used */
    ASSERT_OK(stp_certinfo_new(pki->leaf2.cert, chain, &ci, &err));
    ASSERT_EQ(sk_OPENSSL_STRING_num(ci->urls), 2);
    ASSERT_STREQ(ci->url, "http://127.0.0.1:2/ocsp");
    ASSERT_EQ(ci->must_staple, 1);
    stp_certinfo_free(ci);

    /* no AIA: not applicable, not an error */
    ASSERT_OK(stp_certinfo_new(pki->noaia.cert, chain, &ci, &err));
    ASSERT_NULL(ci->url);
    ASSERT_EQ(ci->must_staple, 0);
    stp_certinfo_free(ci);

    /* issuer absent from the candidates: unknown, not an error */
    ASSERT_OK(stp_certinfo_new(pki->leaf.cert, NULL, &ci, &err));
    ASSERT_NULL(ci->issuer);
    ASSERT_NULL(stp_certinfo_certid(ci));
    stp_certinfo_free(ci);
}

int main(void)
{
    struct tp_pki pki;
    STACK_OF(X509) *chain = sk_X509_new_null();
    time_t t;
    ASN1_TIME *at;

    ASSERT_OK(tp_pki_new(&pki));
    /* the rogue CA and the leaf itself come first: neither is the issuer */
    sk_X509_push(chain, pki.leaf.cert);
    sk_X509_push(chain, pki.rogue.cert);
    sk_X509_push(chain, pki.responder.cert);
    sk_X509_push(chain, pki.ca.cert);
    test_urls();
    test_leaf(&pki, chain);
    test_others(&pki, chain);
    at = ASN1_TIME_set(NULL, 1800000000);
    ASSERT_OK(stp_asn1_time_to_time_t(at, &t));
    ASSERT_EQ(t, 1800000000);
    ASN1_TIME_free(at);
    sk_X509_free(chain);
    tp_pki_free(&pki);
    STP_TEST_MAIN_END();
}
