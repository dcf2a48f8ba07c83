/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory test PKI and OCSP responses (see test_pki.h).
 */
#include "test_pki.h"

#include <string.h>

#include <openssl/x509v3.h>

static EVP_PKEY *new_key(void)
{
    return EVP_EC_gen("P-256");
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return 0;
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return 1;
}

/* Issues a cert for <cn>, signed by <issuer> (NULL: self-signed). */
static int make_id(struct tp_id *id, const char *cn, const struct tp_id *issuer,
                   long serial, const char *const *exts)
{
    X509_NAME *name;
    int i;

    id->key = new_key();
    id->cert = X509_new();
    if (id->key == NULL || id->cert == NULL)
        return 0;
    X509_set_version(id->cert, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(id->cert), serial);
    X509_gmtime_adj(X509_getm_notBefore(id->cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(id->cert), 30L * 86400);
    X509_set_pubkey(id->cert, id->key);
    name = X509_get_subject_name(id->cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(
        id->cert, issuer != NULL ? X509_get_subject_name(issuer->cert) : name);
    for (i = 0; exts != NULL && exts[i] != NULL; i += 2)
        if (!add_ext(id->cert, issuer != NULL ? issuer->cert : id->cert,
                     OBJ_txt2nid(exts[i]), exts[i + 1]))
            return 0;
    return X509_sign(id->cert, issuer != NULL ? issuer->key : id->key,
                     EVP_sha256())
           > 0;
}

int tp_pki_new(struct tp_pki *pki)
{
    static const char *const ca_ext[] = { "basicConstraints",
                                          "critical,CA:true",
                                          "keyUsage",
                                          "critical,keyCertSign,cRLSign",
                                          "subjectKeyIdentifier",
                                          "hash",
                                          NULL };
    static const char *const resp_ext[] = { "basicConstraints", "CA:false",
                                            "extendedKeyUsage", "OCSPSigning",
                                            NULL };
    static const char *const noeku_ext[] = { "basicConstraints", "CA:false",
                                             NULL };
    static const char *const leaf_ext[] = { "basicConstraints",
                                            "CA:false",
                                            "subjectAltName",
                                            "DNS:leaf.test,DNS:www.leaf.test",
                                            "authorityInfoAccess",
                                            "OCSP;URI:http://127.0.0.1:1/",
                                            NULL };
    static const char *const leaf2_ext[] = {
        "basicConstraints",
        "CA:false",
        "subjectAltName",
        "DNS:leaf2.test",
        "authorityInfoAccess",
        "OCSP;URI:ldap://127.0.0.1/x,OCSP;URI:http://127.0.0.1:2/ocsp",
        "tlsfeature",
        "status_request",
        NULL
    };
    static const char *const noaia_ext[] = { "basicConstraints", "CA:false",
                                             "subjectAltName", "DNS:noaia.test",
                                             NULL };

    memset(pki, 0, sizeof(*pki));
    return make_id(&pki->ca, "Test CA", NULL, 1, ca_ext)
           && make_id(&pki->responder, "Test OCSP", &pki->ca, 2, resp_ext)
           && make_id(&pki->noeku, "Test no EKU", &pki->ca, 3, noeku_ext)
           && make_id(&pki->rogue, "Rogue CA", NULL, 4, ca_ext)
           && make_id(&pki->leaf, "leaf.test", &pki->ca, 5, leaf_ext)
           && make_id(&pki->leaf2, "leaf2.test", &pki->ca, 6, leaf2_ext)
           && make_id(&pki->noaia, "noaia.test", &pki->ca, 7, noaia_ext);
}

static void free_id(struct tp_id *id)
{
    EVP_PKEY_free(id->key);
    X509_free(id->cert);
}

void tp_pki_free(struct tp_pki *pki)
{
    free_id(&pki->ca);
    free_id(&pki->responder);
    free_id(&pki->noeku);
    free_id(&pki->rogue);
    free_id(&pki->leaf);
    free_id(&pki->leaf2);
    free_id(&pki->noaia);
}

static OCSP_BASICRESP *basic(const struct tp_resp_spec *s)
{
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha1(), s->subject, s->issuer);
    ASN1_GENERALIZEDTIME *thisupd =
        ASN1_GENERALIZEDTIME_set(NULL, s->this_update);
    ASN1_GENERALIZEDTIME *nextupd =
        s->next_update != 0 ? ASN1_GENERALIZEDTIME_set(NULL, s->next_update)
                            : NULL;
    ASN1_GENERALIZEDTIME *revtime =
        ASN1_GENERALIZEDTIME_set(NULL, s->this_update - 60);
    unsigned long flags = s->include_signer ? 0 : OCSP_NOCERTS;
    int ok = bs != NULL && id != NULL && thisupd != NULL
             && OCSP_basic_add1_status(bs, id, s->status,
                                       OCSP_REVOKED_STATUS_KEYCOMPROMISE,
                                       revtime, thisupd, nextupd)
                    != NULL
             && OCSP_basic_sign(bs, s->signer->cert, s->signer->key,
                                EVP_sha256(), NULL, flags);

    OCSP_CERTID_free(id);
    ASN1_TIME_free(thisupd);
    ASN1_TIME_free(nextupd);
    ASN1_TIME_free(revtime);
    if (!ok) {
        OCSP_BASICRESP_free(bs);
        return NULL;
    }
    return bs;
}

size_t tp_response(const struct tp_resp_spec *spec, unsigned char **der)
{
    OCSP_BASICRESP *bs = NULL;
    OCSP_RESPONSE *rsp;
    int len;

    *der = NULL;
    if (spec->response_status == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        bs = basic(spec);
        if (bs == NULL)
            return 0;
    }
    rsp = OCSP_response_create(spec->response_status, bs);
    OCSP_BASICRESP_free(bs);
    if (rsp == NULL)
        return 0;
    len = i2d_OCSP_RESPONSE(rsp, der);
    OCSP_RESPONSE_free(rsp);
    return len > 0 ? (size_t)len : 0;
}
