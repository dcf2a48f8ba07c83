/* SPDX-License-Identifier: Apache-2.0 */
/*
 * SSL_CTX / SSL ex_data hooks, context examination and the status callback
 * (see hook.h). The status callback never does I/O, never blocks (but for a
 * cold Must-Staple certificate, bounded by must_staple_wait), and never logs
 * above DEBUG but once per certificate.
 */
#include "server/hook.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "server/cache.h"
#include "server/client.h"
#include "engine/clock.h"
#include "engine/log.h"
#include "server/libssl.h"
#include "server/metrics.h"
#include "server/pool.h"
#include "server/refresh.h"
#include "server/runtime.h"
#include "server/track.h"

struct ctxstate {
    SSL_CTX *ctx;
    atomic_int examined; /* claimed once, by atomic_exchange */
    int late;            /* created after the first walk */
    int held;            /* we hold a reference (under list_lock) */
    /* its certificates are not tracked yet: the refresher tracks them,
     * then drops our reference (under list_lock, with .held) */
    atomic_int discover; /* written under list_lock; read lock-free */
    long long born_ms;   /* monotonic time of its creation */
    /* claims on the records of its certificates, released when the context
     * is freed (under list_lock) */
    struct stp_rec **claims;
    size_t nclaims, capclaims;
    _Atomic(stp_status_cb) app_cb; /* the application's own callback */
    atomic_int installed;          /* ours is set on the context */
    /* the application's certificate verification procedure and its
     * argument (LD_PRELOAD), under verify_lock, once app_verify_set says
     * so (a handshake takes the lock only then); ours is installed */
    stp_cert_verify_cb app_verify;
    void *app_verify_arg;
    /* and its session ticket callbacks, likewise */
    SSL_CTX_generate_session_ticket_fn app_ticket_gen;
    SSL_CTX_decrypt_session_ticket_fn app_ticket_dec;
    void *app_ticket_arg;
    atomic_int app_verify_set;
    atomic_int verify_installed;
    struct ctxstate *prev, *next; /* under list_lock */
};

static int ctx_idx = -1;
static int ssl_idx = -1;
static pthread_mutex_t list_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t verify_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ctxstate *head;
static atomic_int pending; /* contexts created since the last walk */
static atomic_int walked;  /* a walk happened in this process */
/* server contexts made in this process so far (stp_hook_generation) */
static atomic_ulong generation;
static __thread int in_hook;

static int status_cb(SSL *s, void *arg);
static int verify_cb(X509_STORE_CTX *x, void *arg);
static SSL_TICKET_RETURN ticket_cb(SSL *s, SSL_SESSION *ss,
                                   const unsigned char *keyname,
                                   size_t keyname_len, SSL_TICKET_STATUS status,
                                   void *arg);
static int ticket_gen_cb(SSL *s, void *arg);

static struct ctxstate *state_of(SSL_CTX *ctx)
{
    return ctx != NULL && ctx_idx >= 0 ? SSL_CTX_get_ex_data(ctx, ctx_idx)
                                       : NULL;
}

/* ---- installing the callback ------------------------------------------- */

static int server_capable(SSL_CTX *ctx)
{
    const SSL_METHOD *m = SSL_CTX_get_ssl_method(ctx);

    return m != TLS_client_method() && m != DTLS_client_method();
}

static void install(struct ctxstate *cs)
{
    stp_status_cb cur = NULL;

    stp_real_ctx_ctrl(cs->ctx, SSL_CTRL_GET_TLSEXT_STATUS_REQ_CB, 0, &cur);
    if (cur == status_cb) {
        atomic_store(&cs->installed, 1);
        return;
    }
    if (cur != NULL && stp_runtime_route() == STP_ROUTE_PROVIDER) {
        STP_LOG_DEBUG("hook",
                      "an SSL_CTX of %s has its own status "
                      "callback: left alone",
                      stp_runtime_program());
        return;
    }
    if (cur != NULL && atomic_load(&cs->app_cb) == NULL)
        atomic_store(&cs->app_cb, cur);
    stp_real_ctx_callback_ctrl(cs->ctx, SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB,
                               (void (*)(void))status_cb);
    atomic_store(&cs->installed, 1);
}

/* Our session ticket callbacks on <cs>'s context, with <cs> for argument
 * (libssl calls those of the connection's first context, before an SNI
 * switch): ours generates only if the application's does. */
static void install_ticket(struct ctxstate *cs)
{
    int app_gen;

    pthread_mutex_lock(&verify_lock);
    app_gen = cs->app_ticket_gen != NULL;
    pthread_mutex_unlock(&verify_lock);
    stp_real_set_session_ticket_cb(cs->ctx, app_gen ? ticket_gen_cb : NULL,
                                   ticket_cb, cs);
}

/* With client_ocsp on: our verification procedure on <cs>'s context. */
static void install_verify(struct ctxstate *cs)
{
    if (!stp_policy_client_any(stp_runtime_get0_policy())
        || atomic_exchange(&cs->verify_installed, 1) != 0)
        return;
    stp_real_set_cert_verify_cb(cs->ctx, verify_cb, NULL);
    install_ticket(cs);
}

/* stp_track_claimed_fn: <cs>'s context uses <rec> until it is freed. A
 * claim that cannot be kept is never released: the record stays. */
static void keep_claim(void *arg, struct stp_rec *rec)
{
    struct ctxstate *cs = arg;

    pthread_mutex_lock(&list_lock);
    if (cs->nclaims == cs->capclaims) {
        size_t ncap = cs->capclaims ? cs->capclaims * 2 : 2;
        struct stp_rec **p =
            OPENSSL_realloc(cs->claims, ncap * sizeof(*cs->claims));

        if (p != NULL) {
            cs->claims = p;
            cs->capclaims = ncap;
        }
    }
    if (cs->nclaims < cs->capclaims)
        cs->claims[cs->nclaims++] = rec;
    pthread_mutex_unlock(&list_lock);
}

/* Tracks the certificates of <cs>'s context. The caller holds a reference
 * to the context and no lock: libssl may free a context from here (a
 * throwaway SSL), which takes list_lock. Returns the new records. */
static int discover(struct ctxstate *cs)
{
    return stp_track_discover(cs->ctx, keep_claim, cs);
}

/*
 * Installs our callback on <cs>'s context and tracks its certificates (a
 * context or two: bounded). Same conditions as discover().
 */
static int examine(struct ctxstate *cs)
{
    if (!server_capable(cs->ctx))
        return 0;
    install(cs);
    install_verify(cs);
    return discover(cs);
}

/* Drops the references in <held> (taken under list_lock), with no lock. */
static void release(struct ctxstate **held, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        SSL_CTX_free(held[i]->ctx);
}

/*
 * The walk at an SSL_new: installs our callback on the contexts that it is
 * safe to touch and that were not examined yet: the SSL's own context, and
 * those we hold a reference to since their creation (every server context
 * created before the process first served). Any other context belongs to a
 * thread that may free it at any moment; it is examined when an SSL is
 * created on it, or (LD_PRELOAD) when a handshake switches to it
 * (stp_hook_switched()). Installing is a pointer write per context, so
 * this costs the handshake next to nothing at any number of contexts: the
 * certificates of the SSL's own context are tracked now (its handshake may
 * select them), those of the others by the refresher, which then drops our
 * references (discover_pending()). Returns the new records.
 */
static int walk(SSL_CTX *own)
{
    struct ctxstate *cs, **todo = NULL, *mine = NULL;
    size_t n = 0, cap = 0, i;
    int added = 0, queued = 0, own_held = 0;

    pthread_mutex_lock(&list_lock);
    atomic_store(&pending, 0);
    atomic_store(&walked, 1);
    for (cs = head; cs != NULL; cs = cs->next)
        cap++;
    todo = cap > 0 ? OPENSSL_malloc(cap * sizeof(*todo)) : NULL;
    for (cs = head; todo != NULL && cs != NULL; cs = cs->next) {
        if (cs->ctx == own) {
            if (atomic_exchange(&cs->examined, 1) == 0)
                mine = cs;
            /* ours is no longer needed: its own SSL holds it; a discovery
             * already queued for it is done here instead */
            own_held = cs->held;
            cs->held = 0;
            cs->discover = 0;
            if (mine == NULL && own_held)
                mine = cs; /* examined, still to discover */
        } else if (cs->held && atomic_exchange(&cs->examined, 1) == 0) {
            todo[n++] = cs;
            cs->discover = 1;
            queued++;
        }
    }
    pthread_mutex_unlock(&list_lock);
    for (i = 0; i < n; i++) {
        install(todo[i]);
        install_verify(todo[i]);
    }
    if (mine != NULL)
        added += examine(mine);
    if (own_held)
        SSL_CTX_free(own);
    OPENSSL_free(todo);
    if (queued > 0) {
        stp_refresh_start();
        stp_refresh_wake();
    }
    return added;
}

/* A context younger than this may still be being configured by the thread
 * that made it (its chain added, a callback set): the refresher leaves it
 * for a later pass, or for that thread's own SSL_new. */
#define SETTLE_MS 1000

/* The refresher's half of the walk (stp_refresh_set_discover()): tracks the
 * certificates of the contexts the walk queued, then drops our references.
 * Returns the number of contexts left for a later pass. */
static int discover_pending(void)
{
    struct ctxstate *cs, **todo = NULL;
    size_t n = 0, cap = 0, i;
    long long now = stp_monotonic_ms();
    int later = 0;

    pthread_mutex_lock(&list_lock);
    for (cs = head; cs != NULL; cs = cs->next)
        cap += cs->discover && cs->held;
    todo = cap > 0 ? OPENSSL_malloc(cap * sizeof(*todo)) : NULL;
    for (cs = head; todo != NULL && cs != NULL; cs = cs->next) {
        if (cs->discover && cs->held && now - cs->born_ms < SETTLE_MS) {
            later++;
        } else if (cs->discover && cs->held) {
            cs->discover = 0;
            cs->held = 0; /* ours to drop below, exactly once */
            todo[n++] = cs;
        }
    }
    pthread_mutex_unlock(&list_lock);
    in_hook = 1;
    for (i = 0; i < n; i++) {
        if (stp_runtime_active())
            discover(todo[i]);
        SSL_CTX_free(todo[i]->ctx);
    }
    in_hook = 0;
    OPENSSL_free(todo);
    return later;
}

/* After a new certificate was tracked while serving: fetch it now. */
static void tracked_late(void)
{
    stp_refresh_ensure();
    stp_refresh_wake();
}

/* Whether the refresher still has <cs>'s discovery queued (its owner's
 * SSL_new then does it: the walk's own-context case). Every SSL_new asks:
 * an atomic load, no lock. */
static int cs_queued(struct ctxstate *cs)
{
    return atomic_load(&cs->discover);
}

static void on_ssl_new(SSL *s)
{
    /* NULL from OpenSSL 3.2 on: an SSL's ex_data is made before its
     * context is set (the walk then examines every context it holds) */
    SSL_CTX *own = SSL_get_SSL_CTX(s);
    struct ctxstate *cs = state_of(own);
    int serving;

    if (in_hook)
        return;
    /* a process that serves TLS says what is wrong with the policy: one
     * whose SSL's context has a certificate, or (no context known) one
     * that holds a server context with a certificate, looked for only
     * while something waits to be said (before the walk drops them) */
    if (own == NULL)
        stp_runtime_active(); /* parses the policy first (preload route) */
    serving = own != NULL
                  ? server_capable(own) && SSL_CTX_get0_certificate(own) != NULL
                  : stp_runtime_report_pending() && stp_hook_has_server_certs();
    if (atomic_load(&pending) > 0
        || (cs != NULL && (!atomic_load(&cs->examined) || cs_queued(cs)))) {
        in_hook = 1;
        if (stp_runtime_active()) {
            if (walk(own) > 0)
                tracked_late();
        } else {
            stp_hook_release_held();
            atomic_store(&pending, 0);
            if (cs != NULL)
                atomic_store(&cs->examined, 1);
        }
        in_hook = 0;
    }
    if (serving) {
        stp_runtime_active();
        stp_runtime_report();
    }
    stp_refresh_ensure();
}

/* ---- ex_data callbacks ------------------------------------------------- */

/* Under list_lock. */
static void link_ctx_locked(struct ctxstate *cs)
{
    cs->next = head;
    if (head != NULL)
        head->prev = cs;
    head = cs;
}

static void ctx_new(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                    long argl, void *argp)
{
    struct ctxstate *cs;

    (void)ptr;
    (void)argl;
    (void)argp;
    cs = OPENSSL_zalloc(sizeof(*cs));
    if (cs == NULL)
        return;
    cs->ctx = parent;
    cs->born_ms = stp_monotonic_ms();
    cs->late = atomic_load(&walked);
    if (!CRYPTO_set_ex_data(ad, idx, cs)) {
        OPENSSL_free(cs);
        return;
    }
    pthread_mutex_lock(&list_lock);
    link_ctx_locked(cs);
    /* A server context made before the process serves may be walked at
     * the first SSL_new, on another thread than its owner's: our own
     * reference keeps it alive until then (or until the process forks). */
    if (!cs->late && server_capable(parent) && SSL_CTX_up_ref(parent))
        cs->held = 1;
    pthread_mutex_unlock(&list_lock);
    if (server_capable(parent))
        atomic_fetch_add(&generation, 1);
    atomic_fetch_add(&pending, 1);
}

static void ctx_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                     long argl, void *argp)
{
    struct ctxstate *cs = ptr;
    size_t i;

    (void)parent;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    if (cs == NULL)
        return;
    pthread_mutex_lock(&list_lock);
    if (cs->prev != NULL)
        cs->prev->next = cs->next;
    else if (head == cs)
        head = cs->next;
    if (cs->next != NULL)
        cs->next->prev = cs->prev;
    pthread_mutex_unlock(&list_lock);
    /* the last context using a certificate takes its record away */
    for (i = 0; i < cs->nclaims; i++)
        stp_cache_release(cs->claims[i]);
    OPENSSL_free(cs->claims);
    OPENSSL_free(cs);
}

static void ssl_new(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                    long argl, void *argp)
{
    (void)ptr;
    (void)ad;
    (void)idx;
    (void)argl;
    (void)argp;
    on_ssl_new(parent);
}

int stp_hook_register(void)
{
    ctx_idx = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL_CTX, 0, NULL, ctx_new,
                                      NULL, ctx_free);
    if (ctx_idx < 0)
        return 0;
    ssl_idx = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, NULL, ssl_new,
                                      NULL, NULL);
    stp_refresh_set_discover(discover_pending);
    return ssl_idx >= 0;
}

void stp_hook_after_fork(void)
{
    struct ctxstate *cs;

    pthread_mutex_init(&list_lock, NULL);
    pthread_mutex_init(&verify_lock, NULL);
    /* A worker serves the contexts its master made, which its first walk
     * examines: the master dropped its references at the first fork, so
     * the child takes its own now, while it is the only thread there is. */
    for (cs = head; cs != NULL; cs = cs->next)
        if (!cs->held && (!atomic_load(&cs->examined) || cs->discover)
            && server_capable(cs->ctx) && SSL_CTX_up_ref(cs->ctx))
            cs->held = 1;
}

unsigned long stp_hook_generation(void)
{
    return atomic_load(&generation);
}

int stp_hook_has_server_certs(void)
{
    struct ctxstate *cs;
    int found = 0;

    pthread_mutex_lock(&list_lock);
    for (cs = head; cs != NULL && !found; cs = cs->next)
        found = cs->held && SSL_CTX_get0_certificate(cs->ctx) != NULL;
    pthread_mutex_unlock(&list_lock);
    return found;
}

void stp_hook_release_held(void)
{
    struct ctxstate *cs, **held;
    size_t n = 0, cap = 0;

    pthread_mutex_lock(&list_lock);
    for (cs = head; cs != NULL; cs = cs->next)
        cap += cs->held;
    held = cap > 0 ? OPENSSL_malloc(cap * sizeof(*held)) : NULL;
    for (cs = head; held != NULL && cs != NULL; cs = cs->next) {
        if (cs->held) {
            cs->held = 0;
            held[n++] = cs;
        }
    }
    pthread_mutex_unlock(&list_lock);
    release(held, n);
    OPENSSL_free(held);
}

int stp_hook_examine_held(void)
{
    struct ctxstate *cs, **todo;
    size_t n = 0, cap = 0, i;
    int added = 0;

    if (in_hook || !stp_runtime_active())
        return 0;
    pthread_mutex_lock(&list_lock);
    for (cs = head; cs != NULL; cs = cs->next)
        cap += cs->held;
    todo = cap > 0 ? OPENSSL_malloc(cap * sizeof(*todo)) : NULL;
    for (cs = head; todo != NULL && cs != NULL; cs = cs->next) {
        if (cs->held) {
            cs->held = 0; /* ours to drop below, exactly once */
            cs->discover = 0;
            todo[n++] = cs;
        }
    }
    pthread_mutex_unlock(&list_lock);
    in_hook = 1;
    for (i = 0; i < n; i++) {
        if (atomic_exchange(&todo[i]->examined, 1) == 0)
            added += examine(todo[i]);
        else /* installed by a walk, discovery still queued */
            added += discover(todo[i]);
        SSL_CTX_free(todo[i]->ctx);
    }
    in_hook = 0;
    OPENSSL_free(todo);
    return added;
}

void stp_hook_switched(SSL *s, SSL_CTX *ctx)
{
    struct ctxstate *cs = state_of(ctx);

    (void)s;
    if (cs == NULL || in_hook || atomic_load(&cs->examined)
        || !stp_runtime_active() || atomic_exchange(&cs->examined, 1) != 0)
        return;
    in_hook = 1;
    if (examine(cs) > 0)
        tracked_late();
    in_hook = 0;
}

/* ---- the status callback ----------------------------------------------- */

/* The record of the certificate that <s> selected, with a reference, and
 * (bounded: one certificate) its stored response read if it never was. */
static struct stp_rec *selected(SSL *s, X509 *leaf)
{
    struct stp_rec *rec = stp_cache_get1(leaf), *r;
    int is_new = 0;

    if (rec == NULL) {
        /* not met yet: a certificate set per connection (lighttpd's cert
         * callback), or a context the refresher has not reached yet */
        SSL_CTX *ctx = SSL_get_SSL_CTX(s);
        struct ctxstate *cs = state_of(ctx);
        STACK_OF(X509) *chain = NULL;

        SSL_get0_chain_certs(s, &chain);
        r = stp_track_cert(ctx, leaf, chain, &is_new);
        if (r != NULL && cs != NULL)
            keep_claim(cs, r);
        if (is_new)
            tracked_late();
        rec = r != NULL ? stp_cache_get1(leaf) : NULL;
    }
    if (rec != NULL && rec->dec.staple && atomic_load(&rec->stored_read) != 2)
        stp_refresh_load_stored(rec);
    return rec;
}

static int staple_ours(SSL *s)
{
    X509 *leaf = SSL_get_certificate(s);
    struct stp_rec *rec;
    unsigned char *der = NULL;
    size_t len = 0;
    int status = -1, rc = SSL_TLSEXT_ERR_NOACK;
    enum stp_copy_result r;

    if (leaf == NULL || !stp_runtime_active())
        return SSL_TLSEXT_ERR_NOACK;
    rec = selected(s, leaf);
    if (rec == NULL || !rec->dec.staple) {
        stp_metric_inc(STP_M_STAPLES_NONE);
        goto end;
    }
    r = stp_cache_copy(rec, stp_now(), &der, &len, &status);
    if (r == STP_COPY_NONE && rec->dec.must && atomic_load(&rec->loading)) {
        stp_pool_hurry(rec);
        stp_cache_wait(rec, stp_runtime_get0_policy()->must_staple_wait_ms);
        r = stp_cache_copy(rec, stp_now(), &der, &len, &status);
    }
    if (r != STP_COPY_OK) {
        stp_metric_inc(r == STP_COPY_EXPIRED ? STP_M_STAPLES_EXPIRED
                                             : STP_M_STAPLES_NONE);
        /* once until a staple is held again, never per handshake */
        if (rec->dec.must && atomic_exchange(&rec->said_must_none, 1) == 0)
            STP_LOG_ERR("hook",
                        "%s: a Must-Staple certificate served without a "
                        "staple (clients that enforce it refuse the "
                        "connection): no valid response is held yet",
                        rec->ci->ident);
        goto end;
    }
    if (status == V_OCSP_CERTSTATUS_REVOKED && rec->dec.refuse_revoked) {
        OPENSSL_free(der);
        stp_metric_inc(STP_M_HANDSHAKES_REFUSED);
        if (atomic_exchange(&rec->refused_logged, 1) == 0)
            STP_LOG_ERR("hook",
                        "%s: certificate is revoked: refusing "
                        "handshakes that select it (mode %s)",
                        rec->ci->ident, stp_mode_name(rec->pol.mode));
        rc = SSL_TLSEXT_ERR_ALERT_FATAL;
        goto end;
    }
    if (SSL_set_tlsext_status_ocsp_resp(s, der, (long)len) != 1) {
        OPENSSL_free(der);
        goto end;
    }
    stp_metric_inc(STP_M_STAPLES_SERVED);
    rc = SSL_TLSEXT_ERR_OK;
end:
    stp_rec_unref(rec);
    return rc;
}

static int status_cb(SSL *s, void *arg)
{
    struct ctxstate *cs = state_of(SSL_get_SSL_CTX(s));
    stp_status_cb app = cs != NULL ? atomic_load(&cs->app_cb) : NULL;
    unsigned char *p = NULL;
    int rc;

    if (app != NULL) {
        rc = app(s, arg);
        if (!SSL_is_server(s) || rc == SSL_TLSEXT_ERR_ALERT_FATAL)
            return rc;
        if (SSL_get_tlsext_status_ocsp_resp(s, &p) > 0) {
            stp_metric_inc(STP_M_APP_STAPLED);
            return rc;
        }
    } else if (!SSL_is_server(s)) {
        return 1; /* a client context: accept, as if no callback were set */
    }
    return staple_ours(s);
}

/* ---- client certificates ------------------------------------------------ */

/*
 * The verification procedure of a context with client_ocsp on: the normal
 * verification first (or the application's own procedure), then, on a
 * server SSL whose chain verified without any error, the OCSP check of the
 * verified chain (client.h), which reports a failure as OpenSSL reports any
 * other: through the chain's error state and the verify callback.
 */
static int verify_cb(X509_STORE_CTX *x, void *arg)
{
    SSL *s =
        X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct ctxstate *cs = s != NULL ? state_of(SSL_get_SSL_CTX(s)) : NULL;
    stp_cert_verify_cb app = NULL;
    void *app_arg = NULL;
    int ok;

    (void)arg;
    if (cs != NULL && atomic_load(&cs->app_verify_set)) {
        pthread_mutex_lock(&verify_lock);
        app = cs->app_verify;
        app_arg = cs->app_verify_arg;
        pthread_mutex_unlock(&verify_lock);
    }
    ok = app != NULL ? app(x, app_arg) : X509_verify_cert(x);
    if (ok <= 0 || s == NULL || !SSL_is_server(s)
        || X509_STORE_CTX_get_error(x) != X509_V_OK || !stp_runtime_active())
        return ok; /* what libssl would have had */
    return stp_client_check(x);
}

/*
 * The session ticket decrypt callback of a context with client_ocsp on:
 * the application's decides first (if it set one), then a session whose
 * client certificate is no longer admitted is not resumed (a full
 * handshake verifies and checks it). Otherwise what libssl does without a
 * callback: use a ticket that decrypted, renew one that asks for it.
 */
static SSL_TICKET_RETURN ticket_cb(SSL *s, SSL_SESSION *ss,
                                   const unsigned char *keyname,
                                   size_t keyname_len, SSL_TICKET_STATUS status,
                                   void *arg)
{
    struct ctxstate *cs = arg;
    SSL_CTX_decrypt_session_ticket_fn app = NULL;
    void *app_arg = NULL;
    SSL_TICKET_RETURN r;

    if (atomic_load(&cs->app_verify_set)) {
        pthread_mutex_lock(&verify_lock);
        app = cs->app_ticket_dec;
        app_arg = cs->app_ticket_arg;
        pthread_mutex_unlock(&verify_lock);
    }
    if (app != NULL)
        r = app(s, ss, keyname, keyname_len, status, app_arg);
    else if (status == SSL_TICKET_SUCCESS)
        r = SSL_TICKET_RETURN_USE;
    else if (status == SSL_TICKET_SUCCESS_RENEW)
        r = SSL_TICKET_RETURN_USE_RENEW;
    else
        r = SSL_TICKET_RETURN_IGNORE_RENEW;
    if ((r == SSL_TICKET_RETURN_USE || r == SSL_TICKET_RETURN_USE_RENEW)
        && ss != NULL && stp_runtime_active() && !stp_client_may_resume(s, ss))
        r = SSL_TICKET_RETURN_IGNORE_RENEW;
    return r;
}

/* The application's generate callback, with its own argument. */
static int ticket_gen_cb(SSL *s, void *arg)
{
    struct ctxstate *cs = arg;
    SSL_CTX_generate_session_ticket_fn app;
    void *app_arg;

    pthread_mutex_lock(&verify_lock);
    app = cs->app_ticket_gen;
    app_arg = cs->app_ticket_arg;
    pthread_mutex_unlock(&verify_lock);
    return app != NULL ? app(s, app_arg) : 1;
}

int stp_hook_capture_ticket(SSL_CTX *ctx,
                            SSL_CTX_generate_session_ticket_fn gen,
                            SSL_CTX_decrypt_session_ticket_fn dec, void *arg)
{
    struct ctxstate *cs = state_of(ctx);

    if (cs == NULL || dec == ticket_cb)
        return 0;
    pthread_mutex_lock(&verify_lock);
    cs->app_ticket_gen = gen;
    cs->app_ticket_dec = dec;
    cs->app_ticket_arg = arg;
    atomic_store(&cs->app_verify_set, 1);
    pthread_mutex_unlock(&verify_lock);
    if (!atomic_load(&cs->verify_installed))
        return 0;
    install_ticket(cs);
    return 1;
}

int stp_hook_capture_verify(SSL_CTX *ctx, stp_cert_verify_cb cb, void *arg)
{
    struct ctxstate *cs = state_of(ctx);

    if (cs == NULL || cb == verify_cb)
        return 0;
    pthread_mutex_lock(&verify_lock);
    cs->app_verify = cb;
    cs->app_verify_arg = arg;
    atomic_store(&cs->app_verify_set, 1);
    pthread_mutex_unlock(&verify_lock);
    return atomic_load(&cs->verify_installed);
}

/* ---- interposer support and the explicit route ------------------------- */

int stp_hook_capture_set(SSL_CTX *ctx, stp_status_cb cb)
{
    struct ctxstate *cs = state_of(ctx);

    if (cs == NULL || cb == status_cb)
        return 0;
    atomic_store(&cs->app_cb, cb);
    return atomic_load(&cs->installed);
}

int stp_hook_capture_get(SSL_CTX *ctx, stp_status_cb *out)
{
    struct ctxstate *cs = state_of(ctx);

    if (cs == NULL || !atomic_load(&cs->installed))
        return 0;
    *out = atomic_load(&cs->app_cb);
    return 1;
}

/* stp_track_claimed_fn of the explicit route: the application attaches
 * at start-up, so a warm store staples from the first handshake. */
static void keep_and_load(void *arg, struct stp_rec *rec)
{
    keep_claim(arg, rec);
    if (rec->dec.staple)
        stp_refresh_load_stored(rec);
}

int stp_hook_attach(SSL_CTX *ctx)
{
    struct ctxstate *cs;

    if (!stp_runtime_active())
        return 0;
    cs = state_of(ctx);
    if (cs == NULL) {
        /* created before the hooks were registered */
        cs = OPENSSL_zalloc(sizeof(*cs));
        if (cs == NULL || !SSL_CTX_set_ex_data(ctx, ctx_idx, cs)) {
            OPENSSL_free(cs);
            return 0;
        }
        cs->ctx = ctx;
        pthread_mutex_lock(&list_lock);
        link_ctx_locked(cs);
        pthread_mutex_unlock(&list_lock);
    }
    /* the caller holds <ctx>; not examine(): the application asked for
     * this context explicitly, whatever its method */
    atomic_store(&cs->examined, 1);
    in_hook = 1;
    install(cs);
    install_verify(cs);
    stp_track_discover(ctx, keep_and_load, cs);
    in_hook = 0;
    /* no thread yet: it starts at the first SSL_new, so that an
     * application may attach and then fork its workers */
    return atomic_load(&cs->installed);
}
