/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate inspection (see certinfo.h). RFC 5280 (AIA), RFC 7633
 * (TLS feature), RFC 6960/5019 (CertID).
 */
#include "engine/certinfo.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define TLSEXT_STATUS_REQUEST    5
#define TLSEXT_STATUS_REQUEST_V2 17

void stp_hex(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
    out[2 * len] = '\0';
}

int stp_asn1_time_to_time_t(const ASN1_TIME *t, time_t *out)
{
    struct tm tm;

    if (t == NULL || !ASN1_TIME_to_tm(t, &tm))
        return 0;
    *out = timegm(&tm);
    return 1;
}

int stp_url_usable(const char *url)
{
    size_t skip;

    if (url == NULL)
        return 0;
    if (strncasecmp(url, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(url, "https://", 8) == 0)
        skip = 8;
    else
        return 0;
    return url[skip] != '\0' && url[skip] != '/' && url[skip] != ':';
}

const char *stp_first_usable_url(STACK_OF(OPENSSL_STRING) *urls)
{
    int i;

    for (i = 0; i < sk_OPENSSL_STRING_num(urls); i++) {
        const char *u = sk_OPENSSL_STRING_value(urls, i);

        if (stp_url_usable(u))
            return u;
    }
    return NULL;
}

int stp_cert_must_staple(X509 *x, int *must_staple)
{
    TLS_FEATURE *feat;
    int crit = -1, i;

    *must_staple = 0;
    feat = X509_get_ext_d2i(x, NID_tlsfeature, &crit, NULL);
    if (feat == NULL)
        return crit == -1; /* -1: absent; anything else: undecodable */
    for (i = 0; i < sk_ASN1_INTEGER_num(feat); i++) {
        long v = ASN1_INTEGER_get(sk_ASN1_INTEGER_value(feat, i));

        if (v == TLSEXT_STATUS_REQUEST || v == TLSEXT_STATUS_REQUEST_V2)
            *must_staple = 1;
    }
    TLS_FEATURE_free(feat);
    return 1;
}

static X509 *find_issuer(X509 *leaf, STACK_OF(X509) *candidates)
{
    int i;

    for (i = 0; i < sk_X509_num(candidates); i++) {
        X509 *c = sk_X509_value(candidates, i);

        if (c != leaf && X509_cmp(c, leaf) != 0
            && X509_check_issued(c, leaf) == X509_V_OK)
            return c;
    }
    return NULL;
}

static void fill_names(struct stp_certinfo *ci)
{
    X509_NAME *subj = X509_get_subject_name(ci->leaf);
    BIGNUM *bn;
    char *hex;
    int len;

    ci->subject[0] = '\0';
    BIO *mem = BIO_new(BIO_s_mem());
    if (mem != NULL) {
        X509_NAME_print_ex(mem, subj, 0,
                           XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
        len = BIO_read(mem, ci->subject, sizeof(ci->subject) - 1);
        ci->subject[len > 0 ? len : 0] = '\0';
        BIO_free(mem);
    }
    len = X509_NAME_get_text_by_NID(subj, NID_commonName, ci->ident,
                                    sizeof(ci->ident));
    if (len <= 0)
        snprintf(ci->ident, sizeof(ci->ident), "sha256:%.12s", ci->id_hex);
    ci->serial[0] = '\0';
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ci->leaf), NULL);
    hex = bn != NULL ? BN_bn2hex(bn) : NULL;
    if (hex != NULL)
        snprintf(ci->serial, sizeof(ci->serial), "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    if (!stp_asn1_time_to_time_t(X509_get0_notAfter(ci->leaf), &ci->not_after))
        ci->not_after = 0;
}

int stp_certinfo_new(X509 *leaf, STACK_OF(X509) *candidates,
                     struct stp_certinfo **out, struct stp_err *err)
{
    struct stp_certinfo *ci;
    unsigned int mdlen = 0;
    X509 *issuer;

    *out = NULL;
    ci = OPENSSL_zalloc(sizeof(*ci));
    if (ci == NULL || !X509_up_ref(leaf)) {
        OPENSSL_free(ci);
        return stp_err_set(err, STP_E_INTERNAL, 0, "out of memory");
    }
    ci->leaf = leaf;
    if (!X509_digest(leaf, EVP_sha256(), ci->id, &mdlen)
        || mdlen != STP_ID_LEN) {
        stp_certinfo_free(ci);
        return stp_err_set(err, STP_E_INTERNAL, 0, "cannot hash certificate");
    }
    stp_hex(ci->id, STP_ID_LEN, ci->id_hex);
    fill_names(ci);
    if (!stp_cert_must_staple(leaf, &ci->must_staple)) {
        stp_err_set(err, STP_E_MALFORMED, 0,
                    "certificate %s: undecodable TLS feature extension",
                    ci->ident);
        stp_certinfo_free(ci);
        return 0;
    }
    ci->urls = X509_get1_ocsp(leaf);
    ci->url = stp_first_usable_url(ci->urls);
    issuer = find_issuer(leaf, candidates);
    if (issuer != NULL && X509_up_ref(issuer))
        ci->issuer = issuer;
    *out = ci;
    return 1;
}

void stp_certinfo_free(struct stp_certinfo *ci)
{
    if (ci == NULL)
        return;
    X509_email_free(ci->urls);
    X509_free(ci->issuer);
    X509_free(ci->leaf);
    OPENSSL_free(ci);
}

OCSP_CERTID *stp_certinfo_certid(const struct stp_certinfo *ci)
{
    if (ci->issuer == NULL)
        return NULL;
    return OCSP_cert_to_id(EVP_sha1(), ci->leaf, ci->issuer);
}

STACK_OF(X509) *stp_load_certs(const char *path, struct stp_err *err)
{
    STACK_OF(X509) *certs;
    BIO *in;
    X509 *x;

    in = BIO_new_file(path, "r");
    if (in == NULL) {
        stp_err_set(err, STP_E_STORE, errno, "%s: cannot open: %s", path,
                    strerror(errno));
        return NULL;
    }
    certs = sk_X509_new_null();
    while (certs != NULL
           && (x = PEM_read_bio_X509(in, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certs, x)) {
            X509_free(x);
            break;
        }
    }
    BIO_free(in);
    ERR_clear_error(); /* the end of the file reads as "no start line" */
    if (certs == NULL || sk_X509_num(certs) == 0) {
        sk_X509_free(certs);
        stp_err_set(err, STP_E_MALFORMED, 0, "%s: no PEM certificate found",
                    path);
        return NULL;
    }
    return certs;
}
