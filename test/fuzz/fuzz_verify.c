/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Fuzz target for response validation: the input is a DER OCSPResponse,
 * verified for the fixed leaf (and for the other leaves of the fixed PKI
 * whose CertID it names) with stp_verify_response(), skip_verify off and
 * on, and decoded with stp_peek_response(). Mutated bytes never carry a
 * valid signature, so a second pass signs the decoded response data again,
 * unchanged, with the key of the fixed-PKI signer its responder ID names:
 * that lets the fuzzer reach the CertID, time and delegation checks with
 * any content. Invariants: a verified response is valid at the instant
 * asked and its window is consistent, and with skip_verify off nothing
 * signed by a key the issuer did not authorise ever verifies.
 */
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/ocsp.h>

#include "fuzz.h"
#include "engine/verify.h"

struct signer {
    X509 *cert;
    EVP_PKEY *key;
    int authorised; /* the issuer itself, or delegated by it */
};

static const struct fz_pki *pki;
static X509 *leaves[3];
static OCSP_CERTID *ids[3];
static STACK_OF(X509) *extra_root;
static struct signer signers[4];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    size_t i;

    (void)argc;
    (void)argv;
    pki = fz_setup();
    leaves[0] = pki->leaf;
    leaves[1] = pki->revoked;
    leaves[2] = pki->unknown;
    for (i = 0; i < 3; i++) {
        ids[i] = OCSP_cert_to_id(EVP_sha1(), leaves[i], pki->issuer);
        FZ_CHECK(ids[i] != NULL);
    }
    extra_root = sk_X509_new_null();
    FZ_CHECK(extra_root != NULL && sk_X509_push(extra_root, pki->root));
    signers[0] = (struct signer){ pki->issuer, pki->issuer_key, 1 };
    signers[1] = (struct signer){ pki->responder, pki->responder_key, 1 };
    signers[2] = (struct signer){ pki->noeku, pki->noeku_key, 0 };
    signers[3] =
        (struct signer){ pki->rogue_responder, pki->rogue_responder_key, 0 };
    return 0;
}

static void check_verdict(const struct stp_verdict *v,
                          const struct stp_verify_opts *o)
{
    FZ_CHECK(v->status == V_OCSP_CERTSTATUS_GOOD
             || v->status == V_OCSP_CERTSTATUS_REVOKED
             || v->status == V_OCSP_CERTSTATUS_UNKNOWN);
    FZ_CHECK(v->this_update <= o->now + o->skew);
    FZ_CHECK(o->now < v->next_update);
    FZ_CHECK(v->this_update <= v->next_update);
    if (!v->has_next_update)
        FZ_CHECK(v->next_update == v->this_update + o->cache_ttl);
}

/*
 * Verifies <der> for each leaf it may be about, with two option sets.
 * Returns 1 if any verification with skip_verify off succeeded.
 */
static int verify_all(const unsigned char *der, size_t len)
{
    struct stp_verify_opts opts[2] = {
        { pki->now, 300, 3600, 0, NULL },
        { pki->now, 0, 60, 1, extra_root },
    };
    struct stp_verdict v;
    struct stp_err err;
    size_t i, j;
    int strict_ok = 0;

    for (i = 0; i < 3; i++) {
        /* The other leaves only when the response names them. */
        if (i > 0 && !stp_peek_response(der, len, ids[i], &v, &err))
            continue;
        for (j = 0; j < 2; j++) {
            memset(&v, 0, sizeof(v));
            if (stp_verify_response(der, len, leaves[i], pki->issuer, &opts[j],
                                    &v, &err)) {
                check_verdict(&v, &opts[j]);
                if (!opts[j].skip_verify)
                    strict_ok = 1;
            } else {
                FZ_CHECK(err.code > STP_OK && err.code < STP_CODE_COUNT);
            }
        }
    }
    /* With no issuer nothing verifies. */
    FZ_CHECK(
        !stp_verify_response(der, len, pki->leaf, NULL, &opts[0], &v, &err));
    FZ_CHECK(err.code == STP_E_NO_ISSUER);
    if (stp_peek_response(der, len, NULL, &v, &err))
        FZ_CHECK(v.status >= V_OCSP_CERTSTATUS_GOOD
                 && v.status <= V_OCSP_CERTSTATUS_UNKNOWN);
    ERR_clear_error();
    return strict_ok;
}

static int respid_names(OCSP_BASICRESP *bs, X509 *cert)
{
    const ASN1_OCTET_STRING *kid = NULL;
    const X509_NAME *name = NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (!OCSP_resp_get0_id(bs, &kid, &name))
        return 0;
    if (name != NULL)
        return X509_NAME_cmp(name, X509_get_subject_name(cert)) == 0;
    return kid != NULL && X509_pubkey_digest(cert, EVP_sha1(), md, &mdlen)
           && (unsigned int)ASN1_STRING_length(kid) == mdlen
           && memcmp(ASN1_STRING_get0_data(kid), md, mdlen) == 0;
}

/*
 * Signs the response data of <bs> in place with <s>'s key (ECDSA with
 * SHA-256), over its DER re-encoding as the verifier computes it. Not
 * OCSP_basic_sign(): that also rewrites the responder ID (leaking or, for a
 * parsed byKey ID set by name, misfreeing the old one) and producedAt.
 */
static int sign_in_place(OCSP_BASICRESP *bs, const struct signer *s)
{
    OCSP_RESPDATA *tbs = (OCSP_RESPDATA *)OCSP_resp_get0_respdata(bs);
    X509_ALGOR *alg = (X509_ALGOR *)OCSP_resp_get0_tbs_sigalg(bs);
    ASN1_BIT_STRING *bits = (ASN1_BIT_STRING *)OCSP_resp_get0_signature(bs);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *der = NULL, *sig = NULL;
    size_t siglen = 0;
    int len, ok;

    len = i2d_OCSP_RESPDATA(tbs, &der);
    ok = len > 0 && md != NULL && alg != NULL && bits != NULL
         && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, s->key)
         && EVP_DigestSign(md, NULL, &siglen, der, (size_t)len)
         && (sig = OPENSSL_malloc(siglen)) != NULL
         && EVP_DigestSign(md, sig, &siglen, der, (size_t)len)
         && X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256),
                            V_ASN1_UNDEF, NULL)
         && ASN1_BIT_STRING_set(bits, sig, (int)siglen);
    if (ok) {
        /* No unused bits, as ASN1_item_sign() leaves a signature. */
        bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07L);
        bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    }
    OPENSSL_free(sig);
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    return ok;
}

/*
 * Re-signs the basic response in <der> with the key of the fixed-PKI signer
 * its responder ID names (else the issuer's) and returns the new DER in
 * *<out> and its length, or 0 if <der> holds no basic response.
 */
static size_t resign(const unsigned char *der, size_t len, unsigned char **out,
                     const struct signer **used)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    OCSP_RESPONSE *signed_rsp = NULL;
    OCSP_BASICRESP *bs = NULL;
    size_t i;
    int n = 0;

    *out = NULL;
    *used = &signers[0];
    if (rsp == NULL)
        goto end;
    bs = OCSP_response_get1_basic(rsp);
    if (bs == NULL)
        goto end;
    for (i = 0; i < sizeof(signers) / sizeof(signers[0]); i++) {
        if (respid_names(bs, signers[i].cert)) {
            *used = &signers[i];
            break;
        }
    }
    if (!sign_in_place(bs, *used))
        goto end;
    signed_rsp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    if (signed_rsp != NULL)
        n = i2d_OCSP_RESPONSE(signed_rsp, out);
end:
    OCSP_RESPONSE_free(signed_rsp);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(rsp);
    ERR_clear_error();
    if (n <= 0) {
        *out = NULL;
        return 0;
    }
    return (size_t)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const struct signer *used;
    unsigned char *der = NULL;
    size_t len;

    verify_all(data, size);
    len = resign(data, size, &der, &used);
    /* Unauthorised keys never pass the strict check, whatever the content. */
    if (len > 0 && verify_all(der, len))
        FZ_CHECK(used->authorised);
    OPENSSL_free(der);
    return 0;
}
