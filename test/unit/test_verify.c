/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Table test of response validation (provider/verify.h) with responses built
 * in memory: each row names a signer, a status, a window and the code that
 * verification must return.
 */
#include "engine/verify.h"

#include <limits.h>

#include <openssl/crypto.h>

#include "stp_test.h"
#include "test_pki.h"

enum signer { BY_CA, BY_RESPONDER, BY_NOEKU, BY_ROGUE };
enum about { LEAF, OTHER_LEAF };

struct row {
    const char *name;
    enum signer signer;
    int include_signer;
    enum about about;
    int status;
    long this_off; /* thisUpdate = now + this_off */
    long next_off; /* nextUpdate = now + next_off, or NONE */
    int resp_status;
    int skip_verify;
    enum stp_code want;
};

#define GOOD    V_OCSP_CERTSTATUS_GOOD
#define REVOKED V_OCSP_CERTSTATUS_REVOKED
#define UNKNOWN V_OCSP_CERTSTATUS_UNKNOWN
#define OK      OCSP_RESPONSE_STATUS_SUCCESSFUL
#define NONE    LONG_MIN /* no nextUpdate */

static const struct row rows[] = {
    { "delegated responder, good", BY_RESPONDER, 1, LEAF, GOOD, -60, 3600, OK,
      0, STP_OK },
    { "issuer signs directly, no certs", BY_CA, 0, LEAF, GOOD, -60, 3600, OK, 0,
      STP_OK },
    { "revoked is valid (caller decides)", BY_RESPONDER, 1, LEAF, REVOKED, -60,
      3600, OK, 0, STP_OK },
    { "unknown is valid (caller decides)", BY_RESPONDER, 1, LEAF, UNKNOWN, -60,
      3600, OK, 0, STP_OK },
    { "signer without OCSP-signing EKU", BY_NOEKU, 1, LEAF, GOOD, -60, 3600, OK,
      0, STP_E_SIGNATURE },
    { "signed by an unrelated CA", BY_ROGUE, 1, LEAF, GOOD, -60, 3600, OK, 0,
      STP_E_SIGNATURE },
    { "delegated responder cert not included", BY_RESPONDER, 0, LEAF, GOOD, -60,
      3600, OK, 0, STP_E_SIGNATURE },
    { "response for another certificate", BY_RESPONDER, 1, OTHER_LEAF, GOOD,
      -60, 3600, OK, 0, STP_E_CERTID },
    { "expired: nextUpdate past", BY_RESPONDER, 1, LEAF, GOOD, -7200, -1, OK, 0,
      STP_E_EXPIRED },
    { "expired exactly at nextUpdate", BY_RESPONDER, 1, LEAF, GOOD, -7200, 0,
      OK, 0, STP_E_EXPIRED },
    { "not yet valid beyond skew", BY_RESPONDER, 1, LEAF, GOOD, 600, 7200, OK,
      0, STP_E_NOT_YET_VALID },
    { "thisUpdate within skew", BY_RESPONDER, 1, LEAF, GOOD, 200, 7200, OK, 0,
      STP_OK },
    { "no nextUpdate: thisUpdate + ttl ahead", BY_RESPONDER, 1, LEAF, GOOD, -60,
      NONE, OK, 0, STP_OK },
    { "no nextUpdate: ttl elapsed", BY_RESPONDER, 1, LEAF, GOOD, -3601, NONE,
      OK, 0, STP_E_EXPIRED },
    { "tryLater", BY_RESPONDER, 1, LEAF, GOOD, 0, 0,
      OCSP_RESPONSE_STATUS_TRYLATER, 0, STP_E_OCSP_TRY_LATER },
    { "unauthorized", BY_RESPONDER, 1, LEAF, GOOD, 0, 0,
      OCSP_RESPONSE_STATUS_UNAUTHORIZED, 0, STP_E_OCSP_UNAUTHORIZED },
    { "malformedRequest", BY_RESPONDER, 1, LEAF, GOOD, 0, 0,
      OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, 0, STP_E_OCSP_MALFORMED_REQUEST },
    { "internalError", BY_RESPONDER, 1, LEAF, GOOD, 0, 0,
      OCSP_RESPONSE_STATUS_INTERNALERROR, 0, STP_E_OCSP_INTERNAL_ERROR },
    { "sigRequired", BY_RESPONDER, 1, LEAF, GOOD, 0, 0,
      OCSP_RESPONSE_STATUS_SIGREQUIRED, 0, STP_E_OCSP_SIG_REQUIRED },
    { "skip_verify accepts a no-EKU signer", BY_NOEKU, 1, LEAF, GOOD, -60, 3600,
      OK, 1, STP_OK },
    { "skip_verify still checks the CertID", BY_NOEKU, 1, OTHER_LEAF, GOOD, -60,
      3600, OK, 1, STP_E_CERTID },
    { "skip_verify still checks expiry", BY_NOEKU, 1, LEAF, GOOD, -7200, -10,
      OK, 1, STP_E_EXPIRED },
};

static const struct tp_id *signer_of(const struct tp_pki *pki, enum signer s)
{
    switch (s) {
    case BY_CA:
        return &pki->ca;
    case BY_RESPONDER:
        return &pki->responder;
    case BY_NOEKU:
        return &pki->noeku;
    default:
        return &pki->rogue;
    }
}

static void run_row(const struct tp_pki *pki, const struct row *r, time_t now)
{
    struct tp_resp_spec spec = {
        .subject = r->about == LEAF ? pki->leaf.cert : pki->leaf2.cert,
        .issuer = pki->ca.cert,
        .signer = signer_of(pki, r->signer),
        .include_signer = r->include_signer,
        .status = r->status,
        .this_update = now + r->this_off,
        .next_update = r->next_off == NONE ? 0 : now + r->next_off,
        .response_status = r->resp_status,
    };
    struct stp_verify_opts vo = { now, 300, 3600, r->skip_verify, NULL };
    struct stp_verdict v;
    struct stp_err err;
    unsigned char *der = NULL;
    size_t len;
    int ok;

    len = tp_response(&spec, &der);
    ASSERT_TRUE(len > 0);
    stp_err_clear(&err);
    ok = stp_verify_response(der, len, pki->leaf.cert, pki->ca.cert, &vo, &v,
                             &err);
    if ((ok ? STP_OK : err.code) != r->want)
        fprintf(stderr, "row '%s': got %s (%s)\n", r->name,
                stp_code_name(ok ? STP_OK : err.code), err.msg);
    ASSERT_EQ(ok ? STP_OK : err.code, r->want);
    if (ok) {
        ASSERT_EQ(v.status, r->status);
        ASSERT_EQ(v.this_update, spec.this_update);
        ASSERT_EQ(v.has_next_update, spec.next_update != 0);
        ASSERT_EQ(v.next_update, spec.next_update != 0
                                     ? spec.next_update
                                     : spec.this_update + 3600);
    }
    OPENSSL_free(der);
}

static void test_garbage(const struct tp_pki *pki, time_t now)
{
    static const unsigned char junk[] = "HTTP/1.1 200 OK\r\n\r\nhello";
    struct stp_verify_opts vo = { now, 300, 3600, 0, NULL };
    struct tp_resp_spec spec = {
        pki->leaf.cert, pki->ca.cert, &pki->responder, 1,
        GOOD,           now - 60,     now + 3600,      OK
    };
    unsigned char *der = NULL, *longer;
    struct stp_verdict v;
    struct stp_err err;
    size_t len = tp_response(&spec, &der);

    ASSERT_EQ(stp_verify_response(junk, sizeof(junk), pki->leaf.cert,
                                  pki->ca.cert, &vo, &v, &err),
              0);
    ASSERT_EQ(err.code, STP_E_MALFORMED);
    /* truncated DER */
    ASSERT_EQ(stp_verify_response(der, len - 1, pki->leaf.cert, pki->ca.cert,
                                  &vo, &v, &err),
              0);
    ASSERT_EQ(err.code, STP_E_MALFORMED);
    /* trailing garbage after valid DER */
    longer = OPENSSL_malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    ASSERT_EQ(stp_verify_response(longer, len + 1, pki->leaf.cert, pki->ca.cert,
                                  &vo, &v, &err),
              0);
    ASSERT_EQ(err.code, STP_E_MALFORMED);
    /* a flipped byte in the signature */
    der[len - 3] ^= 0x01;
    ASSERT_EQ(stp_verify_response(der, len, pki->leaf.cert, pki->ca.cert, &vo,
                                  &v, &err),
              0);
    ASSERT_EQ(err.code, STP_E_SIGNATURE);
    /* no issuer known */
    ASSERT_EQ(
        stp_verify_response(der, len, pki->leaf.cert, NULL, &vo, &v, &err), 0);
    ASSERT_EQ(err.code, STP_E_NO_ISSUER);
    OPENSSL_free(longer);
    OPENSSL_free(der);
}

/* stp_verdict_may_replace(): held x fresh, at now = 1000. */
static void test_may_replace(void)
{
    enum {
        G = V_OCSP_CERTSTATUS_GOOD,
        R = V_OCSP_CERTSTATUS_REVOKED,
        U = V_OCSP_CERTSTATUS_UNKNOWN
    };
    static const struct {
        int have_held, held_status;
        time_t held_tu, held_nu;
        int fresh_status;
        time_t fresh_tu;
        enum stp_replace want;
    } t[] = {
        { 0, 0, 0, 0, G, 900, STP_REPLACE_YES }, /* nothing held */
        { 0, 0, 0, 0, U, 900, STP_REPLACE_YES }, /* unknown, nothing held */
        { 1, G, 900, 2000, G, 950, STP_REPLACE_YES },      /* newer */
        { 1, G, 900, 2000, G, 900, STP_REPLACE_YES },      /* same age */
        { 1, G, 900, 2000, G, 899, STP_REPLACE_NO_OLDER }, /* older */
        { 1, G, 900, 2000, R, 899, STP_REPLACE_NO_OLDER }, /* older revoked */
        { 1, G, 900, 2000, R, 950, STP_REPLACE_YES },      /* revoked wins */
        { 1, G, 900, 2000, U, 950, STP_REPLACE_NO_UNKNOWN },
        { 1, R, 900, 2000, U, 950, STP_REPLACE_YES }, /* only over good */
        { 1, U, 900, 2000, G, 950, STP_REPLACE_YES },
        { 1, G, 900, 1000, U, 950, STP_REPLACE_YES }, /* held expired now */
        { 1, G, 900, 1000, G, 800, STP_REPLACE_YES }, /* held expired now */
        { 1, G, 900, 1001, U, 950, STP_REPLACE_NO_UNKNOWN },
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct stp_verdict held = { t[i].held_status, -1,           0, 0,
                                    t[i].held_tu,     t[i].held_nu, 1 };
        struct stp_verdict fresh = {
            t[i].fresh_status, -1, 0, 0, t[i].fresh_tu, t[i].fresh_tu + 1000, 1
        };

        ASSERT_EQ(stp_verdict_may_replace(t[i].have_held ? &held : NULL, &fresh,
                                          1000),
                  t[i].want);
    }
}

int main(void)
{
    struct tp_pki pki;
    time_t now = time(NULL);
    size_t i;

    ASSERT_OK(tp_pki_new(&pki));
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        run_row(&pki, &rows[i], now);
    test_garbage(&pki, now);
    test_may_replace();
    tp_pki_free(&pki);
    STP_TEST_MAIN_END();
}
