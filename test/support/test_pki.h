/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In-memory PKI and OCSP responses for unit tests: a CA, a delegated
 * responder (with or without the OCSP-signing EKU), an unrelated CA, leaves,
 * and responses built with any signer, status and validity window. No files,
 * no network. EC P-256 keys throughout, so it is fast.
 */
#ifndef STP_TEST_PKI_H
#define STP_TEST_PKI_H

#include <time.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

struct tp_id {
    EVP_PKEY *key;
    X509 *cert;
};

struct tp_pki {
    struct tp_id ca;        /* issuer of everything below */
    struct tp_id responder; /* issued by ca, OCSP-signing EKU */
    struct tp_id noeku;     /* issued by ca, no EKU */
    struct tp_id rogue;     /* unrelated self-signed CA */
    struct tp_id leaf;      /* issued by ca, AIA http://127.0.0.1:1/ */
    struct tp_id leaf2;     /* issued by ca, Must-Staple, two AIA URLs */
    struct tp_id noaia;     /* issued by ca, no AIA */
};

/* Builds the whole set. Returns 1, or 0 on failure. */
int tp_pki_new(struct tp_pki *pki);
void tp_pki_free(struct tp_pki *pki);

struct tp_resp_spec {
    X509 *subject; /* certificate the response is about */
    X509 *issuer;  /* its issuer (for the CertID) */
    const struct tp_id *signer;
    int include_signer; /* put the signer cert in the response */
    int status;         /* V_OCSP_CERTSTATUS_* */
    time_t this_update;
    time_t next_update;  /* 0: no nextUpdate */
    int response_status; /* OCSP_RESPONSE_STATUS_*; non-zero: error only */
};

/*
 * A DER OCSPResponse as specified. Returns the length and sets *<der>
 * (OPENSSL_free()), or 0 on failure.
 */
size_t tp_response(const struct tp_resp_spec *spec, unsigned char **der);

#endif
