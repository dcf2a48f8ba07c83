/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate inspection: what the engine needs to know about one leaf
 * before it can ask for its status. The AIA OCSP URLs (RFC 5280 4.2.2.1; the
 * first http/https one is used), the Must-Staple flag (TLS feature
 * status_request, RFC 7633), the issuer (found among candidate certs), the
 * SHA-1 CertID that RFC 5019 requires, and the store key: the hex SHA-256 of
 * the leaf DER. A certificate without an OCSP URL is a normal "not
 * applicable" case, not an error. Does no I/O.
 */
#ifndef STP_CERTINFO_H
#define STP_CERTINFO_H

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "engine/err.h"

#define STP_ID_LEN     32
#define STP_ID_HEX_LEN 64

struct stp_certinfo {
    X509 *leaf;                      /* own reference */
    X509 *issuer;                    /* own reference, or NULL if unknown */
    STACK_OF(OPENSSL_STRING) *urls;  /* every AIA OCSP URI, or NULL */
    const char *url;                 /* first usable one in .urls, or NULL */
    int must_staple;                 /* TLS feature status_request(_v2) */
    unsigned char id[STP_ID_LEN];    /* SHA-256 of the leaf DER */
    char id_hex[STP_ID_HEX_LEN + 1]; /* store file name stem */
    char ident[128];                 /* for logs: CN, else "sha256:<12 hex>" */
    char subject[256];               /* RFC 2253 one-line subject */
    char serial[80];                 /* hex serial number */
    time_t not_after;
};

/*
 * Inspects <leaf>. The issuer is looked for in <candidates> (may be NULL; any
 * order; the first certificate that X509_check_issued() accepts wins).
 * Takes its own references. Returns 1 and sets *<out>, or 0 with <err> set
 * (allocation failure or an undecodable TLS feature extension). A missing
 * issuer or URL is not a failure: .issuer / .url stay NULL. Any thread.
 */
int stp_certinfo_new(X509 *leaf, STACK_OF(X509) *candidates,
                     struct stp_certinfo **out, struct stp_err *err);

void stp_certinfo_free(struct stp_certinfo *ci);

/*
 * Must-Staple detection alone. Sets *<must_staple> to 1 if <x> carries the
 * TLS feature extension with status_request (5) or status_request_v2 (17).
 * Returns 0 if the extension is present but cannot be decoded.
 */
int stp_cert_must_staple(X509 *x, int *must_staple);

/*
 * Returns the first URL of <urls> whose scheme is http or https (case
 * insensitive), or NULL. The pointer is borrowed from <urls>.
 */
const char *stp_first_usable_url(STACK_OF(OPENSSL_STRING) *urls);

/* Returns 1 if <url> starts with http:// or https:// and names a host. */
int stp_url_usable(const char *url);

/*
 * The SHA-1 CertID of <ci> (RFC 5019 2.1.1), or NULL if the issuer is
 * unknown or on allocation failure. Caller frees with OCSP_CERTID_free().
 */
OCSP_CERTID *stp_certinfo_certid(const struct stp_certinfo *ci);

/* Hex of <len> bytes into <out>, which holds at least 2*len+1 bytes. */
void stp_hex(const unsigned char *in, size_t len, char *out);

/*
 * Converts an ASN.1 time to seconds since the epoch. Returns 1, or 0 if the
 * time cannot be represented.
 */
int stp_asn1_time_to_time_t(const ASN1_TIME *t, time_t *out);

/*
 * Reads every certificate of a PEM file into a new stack (first = leaf).
 * Returns NULL with <err> naming the file if it cannot be read or holds none.
 */
STACK_OF(X509) *stp_load_certs(const char *path, struct stp_err *err);

#endif
