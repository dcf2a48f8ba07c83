/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Client-certificate OCSP (see client.h).
 */
#include "server/client.h"

#include <stdatomic.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>

#include "engine/clock.h"
#include "engine/log.h"
#include "server/cache.h"
#include "server/metrics.h"
#include "server/pool.h"
#include "server/refresh.h"
#include "server/runtime.h"

/* What was decided for one certificate; each change is logged once. */
enum said {
    SAID_NOTHING = 0,
    SAID_GOOD,
    SAID_REVOKED,
    SAID_UNKNOWN_REFUSED,
    SAID_UNKNOWN_ALLOWED,
    SAID_NO_ANSWER_REFUSED,
    SAID_NO_ANSWER_ADMITTED,
    SAID_NO_ANSWER_REVOKED,
    SAID_NO_URL_SKIPPED,
    SAID_NO_URL_REFUSED
};

/* The outcome for one certificate: admitted, or the verify error. */
struct outcome {
    int admit;
    int error; /* X509_V_ERR_*, when refused */
    enum said said;
};

static const char *said_text(enum said s)
{
    switch (s) {
    case SAID_GOOD:
        return "good: admitted";
    case SAID_REVOKED:
        return "revoked: refused";
    case SAID_UNKNOWN_REFUSED:
        return "unknown to its responder: refused";
    case SAID_UNKNOWN_ALLOWED:
        return "unknown to its responder: admitted (client_ocsp_unknown = "
               "allow)";
    case SAID_NO_ANSWER_REFUSED:
        return "no OCSP answer in time: refused (client_ocsp_fail = closed)";
    case SAID_NO_ANSWER_ADMITTED:
        return "no OCSP answer in time: admitted (client_ocsp_fail = open)";
    case SAID_NO_ANSWER_REVOKED:
        return "no OCSP answer in time, and it was revoked before: refused";
    case SAID_NO_URL_SKIPPED:
        return "names no OCSP responder: not checked";
    case SAID_NO_URL_REFUSED:
        return "names no OCSP responder: refused (client_ocsp_no_url = "
               "refuse)";
    default:
        return "?";
    }
}

/* What a decision says of the certificate's state, whatever a server
 * name's settings make of it (refused or admitted). */
static int state_of_said(enum said s)
{
    switch (s) {
    case SAID_UNKNOWN_REFUSED:
    case SAID_UNKNOWN_ALLOWED:
        return 1;
    case SAID_NO_ANSWER_REFUSED:
    case SAID_NO_ANSWER_ADMITTED:
    case SAID_NO_ANSWER_REVOKED:
        return 2;
    case SAID_NO_URL_SKIPPED:
    case SAID_NO_URL_REFUSED:
        return 3;
    default:
        return 4 + (int)s;
    }
}

/*
 * One line per certificate per change of decision, never per handshake:
 * client_said holds the state last said (high bits) and the decisions said
 * in it (a bit each), so that two server names with different settings
 * (one fails open, one closed) each say theirs once, not at every
 * alternation.
 */
static void say(struct stp_rec *rec, enum said s)
{
    int cur = atomic_load(&rec->client_said), next;
    int state = state_of_said(s), bit = 1 << (int)s;

    do {
        if ((cur >> 16) == state && (cur & bit))
            return;
        next = (cur >> 16) == state ? (cur | bit) : ((state << 16) | bit);
    } while (!atomic_compare_exchange_weak(&rec->client_said, &cur, next));
    if (s == SAID_GOOD || s == SAID_NO_URL_SKIPPED)
        STP_LOG_INFO("client",
                     "client certificate %s (serial %s, %.12s) in %s: %s",
                     rec->ci->subject, rec->ci->serial, rec->ci->id_hex,
                     stp_runtime_program(), said_text(s));
    else
        STP_LOG_WARN("client",
                     "client certificate %s (serial %s, %.12s) in %s: %s",
                     rec->ci->subject, rec->ci->serial, rec->ci->id_hex,
                     stp_runtime_program(), said_text(s));
}

/* The responder for client certificate <ci>: the override, its own, or
 * the default for those that name none. */
static const char *responder_of(const struct stp_policy *p,
                                const struct stp_certinfo *ci)
{
    if (p->client_responder != NULL)
        return p->client_responder;
    if (ci->url != NULL)
        return ci->url;
    return p->client_default_responder;
}

/* A new client record for <cert>, issued by <issuer> (the verified
 * chain's next certificate), or NULL. */
static struct stp_rec *make_rec(X509 *cert, X509 *issuer)
{
    const struct stp_policy *p = stp_runtime_get0_policy();
    STACK_OF(X509) *cand = sk_X509_new_null();
    struct stp_certinfo *ci = NULL;
    struct stp_rec *rec = NULL;
    struct stp_err err;

    if (cand == NULL || !sk_X509_push(cand, issuer)
        || !stp_certinfo_new(cert, cand, &ci, &err)) {
        sk_X509_free(cand);
        return NULL;
    }
    sk_X509_free(cand);
    rec = stp_rec_new();
    if (rec == NULL) {
        stp_certinfo_free(ci);
        return NULL;
    }
    rec->ci = ci;
    rec->client = 1;
    stp_policy_resolve(p, ci->id, cert, &rec->pol);
    rec->pol.responder_url = responder_of(p, ci);
    /* fetched and refreshed like a staple, never stapled or refused by
     * the status callback (it never selects a client record) */
    rec->dec.staple = rec->pol.responder_url != NULL;
    rec->dec.must = 0;
    rec->dec.refuse_revoked = 0;
    atomic_init(&rec->loading, 1);
    atomic_init(&rec->issuer_known, ci->issuer != NULL);
    atomic_init(&rec->offered_issuer, NULL);
    atomic_init(&rec->client_used, (long long)stp_now());
    return rec;
}

/* The record of <cert>, made (and its stored answer read) if it is new;
 * a new reference, or NULL. */
static struct stp_rec *get1(X509 *cert, X509 *issuer)
{
    unsigned char id[STP_ID_LEN];
    unsigned int idlen = 0;
    struct stp_rec *rec, *fresh;
    int is_new = 0;

    if (!X509_digest(cert, EVP_sha256(), id, &idlen) || idlen != STP_ID_LEN)
        return NULL;
    rec = stp_cache_client_get1(id);
    if (rec != NULL)
        return rec;
    fresh = make_rec(cert, issuer);
    if (fresh == NULL)
        return NULL;
    rec = stp_cache_client_insert1(fresh, &is_new);
    if (rec != NULL && is_new && rec->dec.staple) {
        STP_LOG_INFO("client",
                     "client certificate %s (serial %s, %.12s) in %s: "
                     "checking by OCSP at %s",
                     rec->ci->subject, rec->ci->serial, rec->ci->id_hex,
                     stp_runtime_program(), rec->pol.responder_url);
        stp_refresh_ensure();
        stp_refresh_wake();
    }
    return rec;
}

/*
 * The decision for client record <rec> under the client settings of <p>
 * (those of the server certificate the connection uses); with <wait>, a
 * certificate still waiting for its first answer waits for it (at most
 * client_ocsp_timeout). Counts it; logs nothing.
 */
static void judge(const struct stp_certpol *p, struct stp_rec *rec, int wait,
                  struct outcome *out)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int status = -1;
    enum stp_copy_result r;

    memset(out, 0, sizeof(*out));
    atomic_store(&rec->client_used, (long long)stp_now());
    if (!rec->dec.staple) {
        out->admit = p->client_no_url == STP_NO_URL_SKIP;
        out->error = X509_V_ERR_OCSP_VERIFY_NEEDED;
        out->said = out->admit ? SAID_NO_URL_SKIPPED : SAID_NO_URL_REFUSED;
        stp_metric_inc(out->admit ? STP_M_CLIENT_SKIPPED : STP_M_CLIENT_ERROR);
        return;
    }
    /* one file, one verification, for a certificate met for the first
     * time in this process (another process may have fetched it) */
    if (atomic_load(&rec->stored_read) != 2)
        stp_refresh_load_stored(rec);
    r = stp_cache_copy(rec, stp_now(), &der, &len, &status);
    if (r != STP_COPY_OK && wait && atomic_load(&rec->loading)
        && p->client_timeout_ms > 0) {
        stp_pool_hurry(rec);
        stp_refresh_wake();
        stp_cache_wait(rec, p->client_timeout_ms);
        r = stp_cache_copy(rec, stp_now(), &der, &len, &status);
    }
    OPENSSL_free(der);
    if (r != STP_COPY_OK) {
        if (atomic_load(&rec->client_revoked)) {
            out->error = X509_V_ERR_CERT_REVOKED;
            out->said = SAID_NO_ANSWER_REVOKED;
            stp_metric_inc(STP_M_CLIENT_REVOKED);
        } else if (p->client_fail == STP_FAIL_OPEN) {
            out->admit = 1;
            out->said = SAID_NO_ANSWER_ADMITTED;
            stp_metric_inc(STP_M_CLIENT_FAIL_OPEN);
        } else {
            out->error = X509_V_ERR_OCSP_VERIFY_FAILED;
            out->said = SAID_NO_ANSWER_REFUSED;
            stp_metric_inc(STP_M_CLIENT_ERROR);
        }
        return;
    }
    switch (status) {
    case V_OCSP_CERTSTATUS_GOOD:
        out->admit = 1;
        out->said = SAID_GOOD;
        stp_metric_inc(STP_M_CLIENT_GOOD);
        break;
    case V_OCSP_CERTSTATUS_REVOKED:
        atomic_store(&rec->client_revoked, 1);
        out->error = X509_V_ERR_CERT_REVOKED;
        out->said = SAID_REVOKED;
        stp_metric_inc(STP_M_CLIENT_REVOKED);
        break;
    default:
        out->admit = p->client_unknown == STP_UNKNOWN_ALLOW;
        out->error = X509_V_ERR_OCSP_CERT_UNKNOWN;
        out->said = out->admit ? SAID_UNKNOWN_ALLOWED : SAID_UNKNOWN_REFUSED;
        stp_metric_inc(STP_M_CLIENT_UNKNOWN);
    }
}

/* The decision for <cert> (issued by <issuer>) under the client settings of
 * <p>. */
static void decide(const struct stp_certpol *p, X509 *cert, X509 *issuer,
                   struct outcome *out)
{
    struct stp_rec *rec = get1(cert, issuer);

    if (rec == NULL) {
        /* out of memory, or a certificate that cannot be hashed */
        memset(out, 0, sizeof(*out));
        out->admit = p->client_fail == STP_FAIL_OPEN;
        out->error = X509_V_ERR_OCSP_VERIFY_FAILED;
        stp_metric_inc(out->admit ? STP_M_CLIENT_FAIL_OPEN
                                  : STP_M_CLIENT_ERROR);
        return;
    }
    judge(p, rec, 1, out);
    say(rec, out->said);
    stp_rec_unref(rec);
}

/*
 * The client settings for a connection: those of the server certificate it
 * uses (its record's, resolved when it was tracked, per-certificate
 * sections included), else the defaults. *<held> is the reference to drop.
 */
static const struct stp_certpol *settings(SSL *s, struct stp_rec **held,
                                          struct stp_certpol *buf)
{
    const struct stp_policy *p = stp_runtime_get0_policy();
    X509 *leaf = s != NULL ? SSL_get_certificate(s) : NULL;
    unsigned char id[STP_ID_LEN];
    unsigned int idlen = 0;

    *held = leaf != NULL ? stp_cache_get1(leaf) : NULL;
    if (*held != NULL)
        return &(*held)->pol;
    if (leaf == NULL || p->ncerts == 0)
        return &p->defaults;
    /* a certificate not tracked yet (a context the refresher has not
     * reached): its section still decides */
    ERR_set_mark();
    if (!X509_digest(leaf, EVP_sha256(), id, &idlen) || idlen != STP_ID_LEN)
        stp_policy_resolve(p, NULL, leaf, buf);
    else
        stp_policy_resolve(p, id, leaf, buf);
    ERR_pop_to_mark();
    return buf;
}

int stp_client_check(X509_STORE_CTX *x)
{
    SSL *s =
        X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(x);
    int n = sk_X509_num(chain), upto, i, rc = 1;
    struct stp_rec *server;
    struct stp_certpol buf;
    const struct stp_certpol *p = settings(s, &server, &buf);

    if (p->client_ocsp == STP_CLIENT_OCSP_OFF || n < 2) {
        stp_rec_unref(server);
        return 1; /* off, or the client's certificate is itself trusted */
    }
    /* every certificate with an issuer in the chain; never the anchor */
    upto = p->client_ocsp == STP_CLIENT_OCSP_CHAIN ? n - 1 : 1;
    for (i = 0; i < upto; i++) {
        X509 *cert = sk_X509_value(chain, i);
        struct outcome o;
        X509_STORE_CTX_verify_cb cb;

        ERR_set_mark();
        decide(p, cert, sk_X509_value(chain, i + 1), &o);
        ERR_pop_to_mark();
        if (o.admit)
            continue;
        X509_STORE_CTX_set_error(x, o.error);
        X509_STORE_CTX_set_error_depth(x, i);
        X509_STORE_CTX_set_current_cert(x, cert);
        cb = X509_STORE_CTX_get_verify_cb(x);
        if (cb == NULL || cb(0, x) == 0) {
            rc = 0;
            break;
        }
    }
    stp_rec_unref(server);
    return rc;
}

int stp_client_may_resume(SSL *s, SSL_SESSION *ss)
{
    X509 *peer = SSL_SESSION_get0_peer(ss);
    unsigned char id[STP_ID_LEN];
    unsigned int idlen = 0;
    struct stp_rec *rec, *server;
    struct stp_certpol buf;
    const struct stp_certpol *p = settings(s, &server, &buf);
    struct outcome o;
    int ok;

    if (p->client_ocsp == STP_CLIENT_OCSP_OFF || peer == NULL) {
        stp_rec_unref(server);
        return 1;
    }
    ERR_set_mark();
    ok = X509_digest(peer, EVP_sha256(), id, &idlen) && idlen == STP_ID_LEN;
    ERR_pop_to_mark();
    /* a client this process cannot vouch for makes a full handshake, and
     * its chain is verified and checked then */
    rec = ok ? stp_cache_client_get1(id) : NULL;
    if (rec == NULL) {
        stp_rec_unref(server);
        return 0;
    }
    judge(p, rec, 0, &o);
    if (!o.admit && atomic_exchange(&rec->client_resume_said, 1) == 0)
        STP_LOG_WARN("client",
                     "client certificate %s (serial %s, %.12s) in %s: "
                     "session resumption refused (%s): a full handshake "
                     "checks it again",
                     rec->ci->subject, rec->ci->serial, rec->ci->id_hex,
                     stp_runtime_program(), said_text(o.said));
    stp_rec_unref(rec);
    stp_rec_unref(server);
    return o.admit;
}

int stp_client_idle(const struct stp_rec *rec, time_t now)
{
    return rec->client
           && now - (time_t)atomic_load(&rec->client_used) > CLIENT_IDLE_S;
}
