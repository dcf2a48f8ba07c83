/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Validation of one OCSP response for one certificate (RFC 6960 3.2, 4.2):
 * responseStatus successful, a basic response, signed by the issuer or by a
 * responder that the issuer delegated (OCSP-signing EKU, 4.2.2.2), a
 * SingleResponse for this certificate's CertID, and thisUpdate/nextUpdate
 * against the current time with a skew. The result is a verdict carrying the
 * certificate status and the effective validity window. Bytes from the
 * network and from the store directory go through here alike: both are
 * untrusted. Does no I/O.
 */
#ifndef STP_VERIFY_H
#define STP_VERIFY_H

#include <stddef.h>
#include <time.h>

#include <openssl/ocsp.h>
#include <openssl/x509.h>

#include "engine/err.h"

struct stp_verdict {
    int status;        /* V_OCSP_CERTSTATUS_GOOD, _REVOKED or _UNKNOWN */
    int reason;        /* revocation reason, or -1 */
    time_t revoked_at; /* 0 unless revoked */
    time_t produced_at;
    time_t this_update;
    time_t next_update;  /* nextUpdate, or thisUpdate + cache_ttl */
    int has_next_update; /* the response carried nextUpdate */
};

struct stp_verify_opts {
    time_t now;
    long skew;       /* s tolerated for thisUpdate in the future */
    long cache_ttl;  /* s; validity of a response with no nextUpdate */
    int skip_verify; /* no signer chain / authorisation checks */
    STACK_OF(X509) *extra_trust; /* more anchors (policy ca_file), or NULL */
};

/*
 * Validates the DER response <der>/<len> for <leaf> issued by <issuer>.
 * Returns 1 and fills <out> when the response is valid now, whatever the
 * certificate status it reports (good, revoked or unknown: the caller
 * decides). Returns 0 with <err> set otherwise; the code tells why
 * (STP_E_MALFORMED, STP_E_OCSP_*, STP_E_NOT_BASIC, STP_E_SIGNATURE,
 * STP_E_CERTID, STP_E_EXPIRED, STP_E_NOT_YET_VALID). A response is never
 * valid at or after its (effective) nextUpdate. With skip_verify the
 * signature is still checked against a signer found in the response or the
 * issuer, but neither its chain nor its authorisation (nginx's
 * ssl_stapling_verify off). Any thread.
 */
int stp_verify_response(const unsigned char *der, size_t len, X509 *leaf,
                        X509 *issuer, const struct stp_verify_opts *opts,
                        struct stp_verdict *out, struct stp_err *err);

/*
 * Decodes the validity window of <der> for the SingleResponse matching
 * <certid> (or the first one if <certid> is NULL), without any check of
 * signature or time. For display only. Returns 1, or 0 with <err> set.
 */
int stp_peek_response(const unsigned char *der, size_t len, OCSP_CERTID *certid,
                      struct stp_verdict *out, struct stp_err *err);

enum stp_replace {
    STP_REPLACE_YES = 0,
    STP_REPLACE_NO_OLDER,   /* the new thisUpdate is before the held one */
    STP_REPLACE_NO_UNKNOWN, /* unknown would replace a good still valid */
    STP_REPLACE_NO_MEMORY   /* (the in-memory table) allocation failed */
};

/*
 * The one rule for what may replace a held response, used by the update
 * cycle (against the stored or held response) and by the in-memory table
 * (against the staple being served): a verified <fresh> response replaces
 * <held> (NULL: nothing held) unless <held> is still valid at <now> and
 * <fresh> is older, or <fresh> says unknown while <held> says good (a
 * responder that loses track of a certificate must not turn a working
 * staple into one that Must-Staple clients reject). A revoked answer that
 * is not older always replaces a good one. Pure.
 */
enum stp_replace stp_verdict_may_replace(const struct stp_verdict *held,
                                         const struct stp_verdict *fresh,
                                         time_t now);

/* "good", "revoked" or "unknown". */
const char *stp_cert_status_name(int status);

#endif
