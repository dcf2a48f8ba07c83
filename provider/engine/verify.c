/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCSP response validation (see verify.h). RFC 6960 3.2 lists the checks;
 * OCSP_basic_verify() does the signature, the signer's chain (anchored at
 * the issuer, a partial chain) and the delegation check (4.2.2.2); this file
 * adds the CertID binding, strict DER and the time window from stp_now().
 */
#include "engine/verify.h"

#include <limits.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "engine/certinfo.h"

const char *stp_cert_status_name(int status)
{
    switch (status) {
    case V_OCSP_CERTSTATUS_GOOD:
        return "good";
    case V_OCSP_CERTSTATUS_REVOKED:
        return "revoked";
    default:
        return "unknown";
    }
}

enum stp_replace stp_verdict_may_replace(const struct stp_verdict *held,
                                         const struct stp_verdict *fresh,
                                         time_t now)
{
    if (held == NULL || now >= held->next_update)
        return STP_REPLACE_YES;
    if (fresh->this_update < held->this_update)
        return STP_REPLACE_NO_OLDER;
    if (fresh->status == V_OCSP_CERTSTATUS_UNKNOWN
        && held->status == V_OCSP_CERTSTATUS_GOOD)
        return STP_REPLACE_NO_UNKNOWN;
    return STP_REPLACE_YES;
}

/* DER -> basic response; rejects trailing bytes and error statuses. */
static OCSP_BASICRESP *decode_basic(const unsigned char *der, size_t len,
                                    struct stp_err *err)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *rsp;
    OCSP_BASICRESP *bs;
    int status;

    if (len == 0 || len > LONG_MAX) {
        stp_err_set(err, STP_E_MALFORMED, 0, "empty or oversized response");
        return NULL;
    }
    rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (rsp == NULL || p != der + len) {
        OCSP_RESPONSE_free(rsp);
        stp_err_set(err, STP_E_MALFORMED, 0,
                    "not a DER OCSP response (%zu bytes)", len);
        return NULL;
    }
    status = OCSP_response_status(rsp);
    if (status != OCSP_RESPONSE_STATUS_SUCCESSFUL) {
        OCSP_RESPONSE_free(rsp);
        stp_err_set(err, stp_code_from_ocsp_status(status), status,
                    "responder answered %s (%d)",
                    OCSP_response_status_str(status), status);
        return NULL;
    }
    bs = OCSP_response_get1_basic(rsp);
    OCSP_RESPONSE_free(rsp);
    if (bs == NULL)
        stp_err_set(err, STP_E_NOT_BASIC, 0,
                    "response is not a basic OCSP response");
    return bs;
}

static int single_to_verdict(int status, int reason, ASN1_GENERALIZEDTIME *rev,
                             ASN1_GENERALIZEDTIME *thisupd,
                             ASN1_GENERALIZEDTIME *nextupd,
                             struct stp_verdict *out, struct stp_err *err)
{
    out->status = status;
    out->reason = reason;
    out->revoked_at = 0;
    out->has_next_update = nextupd != NULL;
    out->next_update = 0;
    if (rev != NULL && !stp_asn1_time_to_time_t(rev, &out->revoked_at))
        return stp_err_set(err, STP_E_MALFORMED, 0, "bad revocationTime");
    if (!stp_asn1_time_to_time_t(thisupd, &out->this_update))
        return stp_err_set(err, STP_E_MALFORMED, 0, "bad thisUpdate");
    if (nextupd != NULL && !stp_asn1_time_to_time_t(nextupd, &out->next_update))
        return stp_err_set(err, STP_E_MALFORMED, 0, "bad nextUpdate");
    return 1;
}

static int find_single(OCSP_BASICRESP *bs, OCSP_CERTID *id,
                       struct stp_verdict *out, struct stp_err *err)
{
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    int status = -1, reason = -1;

    if (id == NULL) {
        OCSP_SINGLERESP *single = OCSP_resp_get0(bs, 0);

        if (single == NULL)
            return stp_err_set(err, STP_E_CERTID, 0,
                               "response holds no SingleResponse");
        status =
            OCSP_single_get0_status(single, &reason, &rev, &thisupd, &nextupd);
    } else if (!OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd,
                                      &nextupd)) {
        return stp_err_set(err, STP_E_CERTID, 0,
                           "response is not for this certificate "
                           "(no SingleResponse matches its CertID)");
    }
    if (status < 0)
        return stp_err_set(err, STP_E_MALFORMED, 0, "bad SingleResponse");
    if (!single_to_verdict(status, reason, rev, thisupd, nextupd, out, err))
        return 0;
    if (!stp_asn1_time_to_time_t(OCSP_resp_get0_produced_at(bs),
                                 &out->produced_at))
        out->produced_at = 0;
    return 1;
}

static int check_signature(OCSP_BASICRESP *bs, X509 *issuer,
                           const struct stp_verify_opts *opts,
                           struct stp_err *err)
{
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *certs = sk_X509_new_null();
    unsigned long flags = OCSP_NOEXPLICIT;
    int i, ok = 0;

    if (store == NULL || certs == NULL || !X509_STORE_add_cert(store, issuer)
        || !sk_X509_push(certs, issuer)) {
        stp_err_set(err, STP_E_INTERNAL, 0, "out of memory");
        goto end;
    }
    for (i = 0; i < sk_X509_num(opts->extra_trust); i++)
        X509_STORE_add_cert(store, sk_X509_value(opts->extra_trust, i));
    ERR_clear_error(); /* duplicates in extra_trust are harmless */
    /*
     * The issuer is the anchor: it is authoritative for its own
     * certificates' status whatever the root above it (RFC 6960 4.2.2.2).
     */
    X509_VERIFY_PARAM_set_flags(X509_STORE_get0_param(store),
                                X509_V_FLAG_PARTIAL_CHAIN);
    X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store), opts->now);
    if (opts->skip_verify)
        flags |= OCSP_NOVERIFY;
    if (OCSP_basic_verify(bs, certs, store, flags) <= 0) {
        stp_err_set(err, STP_E_SIGNATURE, 0,
                    "signature or responder authorisation check failed");
        goto end;
    }
    ok = 1;
end:
    sk_X509_free(certs);
    X509_STORE_free(store);
    return ok;
}

static int check_times(struct stp_verdict *v,
                       const struct stp_verify_opts *opts, struct stp_err *err)
{
    if (v->this_update > opts->now + opts->skew)
        return stp_err_set(err, STP_E_NOT_YET_VALID, 0,
                           "thisUpdate is %lds in the future",
                           (long)(v->this_update - opts->now));
    if (v->has_next_update) {
        if (v->next_update < v->this_update)
            return stp_err_set(err, STP_E_MALFORMED, 0,
                               "nextUpdate precedes thisUpdate");
    } else {
        v->next_update = v->this_update + opts->cache_ttl;
    }
    if (opts->now >= v->next_update)
        return stp_err_set(
            err, STP_E_EXPIRED, 0, "response expired %lds ago (%s)",
            (long)(opts->now - v->next_update),
            v->has_next_update ? "nextUpdate" : "thisUpdate + cache_ttl");
    return 1;
}

int stp_verify_response(const unsigned char *der, size_t len, X509 *leaf,
                        X509 *issuer, const struct stp_verify_opts *opts,
                        struct stp_verdict *out, struct stp_err *err)
{
    OCSP_BASICRESP *bs = NULL;
    OCSP_CERTID *id = NULL;
    int ok = 0;

    if (leaf == NULL || issuer == NULL)
        return stp_err_set(err, STP_E_NO_ISSUER, 0,
                           "issuer certificate unknown");
    bs = decode_basic(der, len, err);
    if (bs == NULL)
        return 0;
    id = OCSP_cert_to_id(EVP_sha1(), leaf, issuer);
    if (id == NULL) {
        stp_err_set(err, STP_E_INTERNAL, 0, "cannot compute CertID");
        goto end;
    }
    if (!find_single(bs, id, out, err)
        || !check_signature(bs, issuer, opts, err)
        || !check_times(out, opts, err))
        goto end;
    ok = 1;
end:
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(bs);
    return ok;
}

int stp_peek_response(const unsigned char *der, size_t len, OCSP_CERTID *certid,
                      struct stp_verdict *out, struct stp_err *err)
{
    OCSP_BASICRESP *bs = decode_basic(der, len, err);
    int ok;

    if (bs == NULL)
        return 0;
    ok = find_single(bs, certid, out, err);
    OCSP_BASICRESP_free(bs);
    return ok;
}
