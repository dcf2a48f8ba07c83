/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Certificate discovery and record creation (see track.h).
 */
#include "server/track.h"

#include <stdatomic.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509_vfy.h>

#include "engine/log.h"
#include "server/libssl.h"
#include "server/refresh.h"
#include "server/runtime.h"

static void push_all(STACK_OF(X509) *dst, STACK_OF(X509) *src)
{
    int i;

    for (i = 0; i < sk_X509_num(src); i++)
        sk_X509_push(dst, sk_X509_value(src, i));
}

/* Issuer candidates: the chain, extra chain certs, the verify store, ca_file.
 */
static STACK_OF(X509) *candidates(SSL_CTX *ctx, STACK_OF(X509) *chain)
{
    STACK_OF(X509) *c = sk_X509_new_null(), *extra = NULL;
    STACK_OF(X509_OBJECT) *objs;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    int i;

    if (c == NULL)
        return NULL;
    push_all(c, chain);
    stp_real_ctx_ctrl(ctx, SSL_CTRL_GET_EXTRA_CHAIN_CERTS, 0, &extra);
    push_all(c, extra);
    objs = store != NULL ? X509_STORE_get0_objects(store) : NULL;
    for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
        X509 *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

        if (x != NULL)
            sk_X509_push(c, x);
    }
    push_all(c, stp_runtime_get0_trust());
    return c;
}

/* A certificate that cannot be tracked is met again on every handshake that
 * selects it (the status callback tries to track it): said once at WARN. */
static atomic_int untracked_logged;

#define UNTRACKED(...)                                  \
    do {                                                \
        if (atomic_exchange(&untracked_logged, 1) == 0) \
            STP_LOG_WARN("hook", __VA_ARGS__);          \
        else                                            \
            STP_LOG_DEBUG("hook", __VA_ARGS__);         \
    } while (0)

static struct stp_rec *make_rec(SSL_CTX *ctx, X509 *leaf, STACK_OF(X509) *chain)
{
    STACK_OF(X509) *cand = candidates(ctx, chain);
    struct stp_certinfo *ci = NULL;
    struct stp_rec *rec = NULL;
    struct stp_err err;

    if (cand == NULL) {
        UNTRACKED("out of memory: a certificate is not tracked");
        goto end;
    }
    if (!stp_certinfo_new(leaf, cand, &ci, &err)) {
        UNTRACKED("a certificate is not tracked: %s", err.msg);
        goto end;
    }
    rec = stp_rec_new();
    if (rec == NULL) {
        UNTRACKED("%s: out of memory: not tracked", ci->ident);
        stp_certinfo_free(ci);
        goto end;
    }
    rec->ci = ci;
    stp_policy_resolve(stp_runtime_get0_policy(), ci->id, leaf, &rec->pol);
    stp_policy_decide(&rec->pol, ci->must_staple, &rec->dec);
    atomic_init(&rec->loading, 1);
    atomic_init(&rec->issuer_known, ci->issuer != NULL);
    atomic_init(&rec->offered_issuer, NULL);
    atomic_init(&rec->refused_logged, 0);
end:
    sk_X509_free(cand);
    return rec;
}

/*
 * <rec> was made without an issuer (often: its first context was examined
 * while another thread still configured it, before its chain was added):
 * offers the refresher the issuer that <ctx> knows, if any, and wakes it.
 */
static void offer_issuer(struct stp_rec *rec, SSL_CTX *ctx,
                         STACK_OF(X509) *chain)
{
    STACK_OF(X509) *cand;
    X509 *none = NULL;
    int i;

    if (atomic_load(&rec->issuer_known)
        || atomic_load(&rec->offered_issuer) != NULL)
        return;
    ERR_set_mark();
    cand = candidates(ctx, chain);
    for (i = 0; i < sk_X509_num(cand); i++) {
        X509 *x = sk_X509_value(cand, i);

        if (X509_check_issued(x, rec->ci->leaf) != X509_V_OK || !X509_up_ref(x))
            continue;
        if (atomic_compare_exchange_strong(&rec->offered_issuer, &none, x))
            stp_refresh_wake();
        else
            X509_free(x);
        break;
    }
    sk_X509_free(cand);
    ERR_pop_to_mark();
}

struct stp_rec *stp_track_cert(SSL_CTX *ctx, X509 *leaf, STACK_OF(X509) *chain,
                               int *is_new)
{
    unsigned char id[STP_ID_LEN];
    unsigned int idlen = 0;
    struct stp_rec *rec;

    *is_new = 0;
    if (!X509_digest(leaf, EVP_sha256(), id, &idlen) || idlen != STP_ID_LEN) {
        UNTRACKED("a certificate is not tracked: cannot hash it");
        return NULL;
    }
    rec = stp_cache_claim(id, leaf, NULL, is_new);
    if (rec == NULL) {
        rec = make_rec(ctx, leaf, chain);
        if (rec == NULL)
            return NULL;
        rec = stp_cache_claim(id, leaf, rec, is_new);
    }
    if (rec != NULL && !*is_new) /* known: perhaps without its issuer */
        offer_issuer(rec, ctx, chain);
    if (rec != NULL && *is_new)
        STP_LOG_INFO("hook",
                     "%s: tracking certificate %.12s in %s "
                     "(must-staple %s, mode %s, %s, responder %s%s)",
                     rec->ci->ident, rec->ci->id_hex, stp_runtime_program(),
                     rec->ci->must_staple ? "yes" : "no",
                     stp_mode_name(rec->pol.mode),
                     rec->dec.staple ? "stapled" : "not stapled",
                     rec->pol.responder_url ? rec->pol.responder_url
                     : rec->ci->url         ? rec->ci->url
                                            : "none",
                     rec->pol.skip_verify ? "; skip_verify: fetched by this "
                                            "process only, store_dir not "
                                            "trusted"
                                          : "");
    return rec;
}

void stp_track_resolve_again(void)
{
    const struct stp_policy *p = stp_runtime_get0_policy();
    struct stp_rec **recs = NULL;
    size_t n = stp_cache_snapshot(&recs), i;

    for (i = 0; p != NULL && i < n; i++) {
        struct stp_rec *rec = recs[i];

        if (rec->client)
            continue; /* a master meets no client certificate */
        stp_policy_resolve(p, rec->ci->id, rec->ci->leaf, &rec->pol);
        stp_policy_decide(&rec->pol, rec->ci->must_staple, &rec->dec);
    }
    stp_cache_snapshot_free(recs, n);
}

int stp_track_discover(SSL_CTX *ctx, stp_track_claimed_fn keep, void *arg)
{
    SSL *tmp;
    int rv, is_new, added = 0;

    ERR_set_mark();
    tmp = SSL_new(ctx);
    for (rv = tmp != NULL ? SSL_set_current_cert(tmp, SSL_CERT_SET_FIRST) : 0;
         rv > 0; rv = SSL_set_current_cert(tmp, SSL_CERT_SET_NEXT)) {
        STACK_OF(X509) *chain = NULL;
        X509 *x = SSL_get_certificate(tmp);
        struct stp_rec *rec;

        SSL_get0_chain_certs(tmp, &chain);
        if (x == NULL || (rec = stp_track_cert(ctx, x, chain, &is_new)) == NULL)
            continue;
        added += is_new;
        keep(arg, rec);
    }
    SSL_free(tmp);
    ERR_pop_to_mark();
    return added;
}
