/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The certificate table (see cache.h): a hash of records by certificate
 * identity, X509 ex_data from each mapped object to its record, and a short
 * list of the distinct issuers seen, whose objects the records share.
 */
#include "server/cache.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "engine/clock.h"
#include "engine/log.h"
#include "server/metrics.h"
#include "server/slab.h"

struct stp_staple {
    unsigned char *der;
    size_t len;
    struct stp_verdict v;
};

static pthread_rwlock_t tab_lock = PTHREAD_RWLOCK_INITIALIZER;
/* the records, in pages of their own: a fork child's writes to them copy
 * only their own bytes (slab.h) */
static struct stp_slab rec_slab = STP_SLAB_INIT(sizeof(struct stp_rec));
static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cond;
static int x509_idx = -1;
/* under tab_lock */
static struct stp_rec **buckets; /* nbuckets: a power of two */
static size_t nbuckets, nrecs;
static X509 **issuers;
static size_t nissuers, capissuers;

static void init_cond(void)
{
    stp_cond_init_monotonic(&wait_cond);
}

int stp_cache_init(void)
{
    init_cond();
    if (x509_idx < 0)
        x509_idx = X509_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    return x509_idx >= 0;
}

void stp_cache_after_fork(void)
{
    pthread_rwlock_init(&tab_lock, NULL);
    pthread_mutex_init(&wait_lock, NULL);
    init_cond();
    stp_slab_after_fork(&rec_slab);
}

static void staple_free(struct stp_staple *s)
{
    if (s != NULL) {
        OPENSSL_free(s->der);
        OPENSSL_free(s);
    }
}

struct stp_rec *stp_rec_new(void)
{
    return stp_slab_alloc(&rec_slab);
}

void stp_rec_free(struct stp_rec *rec)
{
    if (rec == NULL)
        return;
    stp_certinfo_free(rec->ci);
    staple_free(rec->cur);
    X509_free(atomic_load(&rec->offered_issuer));
    OPENSSL_free(rec->aliases);
    stp_slab_free(&rec_slab, rec);
}

void stp_rec_unref(struct stp_rec *rec)
{
    if (rec != NULL && atomic_fetch_sub(&rec->refs, 1) == 1)
        stp_rec_free(rec);
}

/* ---- the hash, under tab_lock ---------------------------------------- */

static size_t slot_of(const unsigned char *id)
{
    size_t h;

    memcpy(&h, id, sizeof(h)); /* SHA-256: uniform already */
    return h & (nbuckets - 1);
}

/* The record of certificate <id> in the role <client> (a certificate may
 * be both a server's and a client's, with different policies). */
static struct stp_rec *find_role_locked(const unsigned char *id, int client)
{
    struct stp_rec *r;

    if (nbuckets == 0)
        return NULL;
    for (r = buckets[slot_of(id)]; r != NULL; r = r->hnext)
        if (r->client == client && memcmp(r->ci->id, id, STP_ID_LEN) == 0)
            return r;
    return NULL;
}

static struct stp_rec *find_id_locked(const unsigned char *id)
{
    return find_role_locked(id, 0);
}

/* Doubles the buckets when the load passes one record per bucket. */
static int grow_locked(void)
{
    struct stp_rec **old = buckets, *r, *next;
    size_t oldn = nbuckets, i;

    if (nrecs < nbuckets)
        return 1;
    nbuckets = oldn ? oldn * 2 : 64;
    buckets = OPENSSL_zalloc(nbuckets * sizeof(*buckets));
    if (buckets == NULL) {
        buckets = old;
        nbuckets = oldn;
        /* tolerate some load; but there must be buckets */
        return nbuckets > 0 && nrecs < nbuckets + nbuckets / 2;
    }
    for (i = 0; i < oldn; i++) {
        for (r = old[i]; r != NULL; r = next) {
            size_t s = slot_of(r->ci->id);

            next = r->hnext;
            r->hnext = buckets[s];
            buckets[s] = r;
        }
    }
    OPENSSL_free(old);
    return 1;
}

static void unlink_locked(struct stp_rec *rec)
{
    struct stp_rec **pp = &buckets[slot_of(rec->ci->id)];

    while (*pp != NULL && *pp != rec)
        pp = &(*pp)->hnext;
    if (*pp == rec)
        *pp = rec->hnext;
    rec->hnext = NULL;
    nrecs--;
}

/* Maps <x> to <rec> (a new alias, own reference). 0: the cap is reached or
 * no memory; a lookup then goes by identity. */
static int map_locked(X509 *x, struct stp_rec *rec)
{
    if (rec->naliases >= MAX_ALIASES_PER_REC)
        return 0;
    if (rec->naliases == rec->capaliases) {
        unsigned ncap = rec->capaliases ? rec->capaliases * 2 : 2;
        X509 **p = OPENSSL_realloc(rec->aliases, ncap * sizeof(*p));

        if (p == NULL)
            return 0;
        rec->aliases = p;
        rec->capaliases = ncap;
    }
    if (!X509_up_ref(x))
        return 0;
    if (!X509_set_ex_data(x, x509_idx, rec)) {
        X509_free(x);
        return 0;
    }
    rec->aliases[rec->naliases++] = x;
    return 1;
}

static atomic_ulong issuers_gen; /* stp_cache_issuers_generation() */

/*
 * The list's object for <issuer>'s certificate: <issuer> itself, added to
 * the list (*added = 1), if the list has none equal to it; NULL if it could
 * not be added.
 */
static X509 *intern_issuer_locked(X509 *issuer, int *added)
{
    size_t i;

    *added = 0;
    for (i = 0; i < nissuers; i++)
        if (issuers[i] == issuer || X509_cmp(issuers[i], issuer) == 0)
            return issuers[i];
    if (nissuers == capissuers) {
        size_t ncap = capissuers ? capissuers * 2 : 8;
        X509 **p = OPENSSL_realloc(issuers, ncap * sizeof(*p));

        if (p == NULL)
            return NULL;
        issuers = p;
        capissuers = ncap;
    }
    if (!X509_up_ref(issuer))
        return NULL;
    issuers[nissuers++] = issuer;
    atomic_fetch_add(&issuers_gen, 1);
    *added = 1;
    return issuer;
}

/*
 * Replaces *<issuer> (a reference) by a reference to the list's object of
 * the same certificate. Every record of one CA then verifies with one
 * object: each verification takes references on the issuer and its key,
 * and in a fork child every such write copies the page the object is on. A
 * server parses one copy of the CA certificate per context (nginx: per
 * server block), so 10,000 certificates meant 10,000 pages copied per
 * worker (BENCHMARKS.md). Returns *added as intern_issuer_locked().
 */
static void share_issuer_locked(X509 **issuer, int *added)
{
    X509 *shared;

    *added = 0;
    if (*issuer == NULL
        || (shared = intern_issuer_locked(*issuer, added)) == NULL
        || shared == *issuer || !X509_up_ref(shared))
        return;
    X509_free(*issuer);
    *issuer = shared;
}

unsigned long stp_cache_issuers_generation(void)
{
    return atomic_load(&issuers_gen);
}

/* ---- lookup and lifecycle -------------------------------------------- */

struct stp_rec *stp_cache_get1(X509 *leaf)
{
    unsigned char id[STP_ID_LEN];
    unsigned int idlen = 0;
    struct stp_rec *r;

    if (x509_idx < 0)
        return NULL;
    pthread_rwlock_rdlock(&tab_lock);
    r = X509_get_ex_data(leaf, x509_idx);
    if (r != NULL)
        atomic_fetch_add(&r->refs, 1);
    pthread_rwlock_unlock(&tab_lock);
    if (r != NULL)
        return r;
    /* an object past the alias cap, or an untracked one: by identity */
    if (!X509_digest(leaf, EVP_sha256(), id, &idlen) || idlen != STP_ID_LEN)
        return NULL;
    pthread_rwlock_rdlock(&tab_lock);
    r = find_id_locked(id);
    if (r != NULL)
        atomic_fetch_add(&r->refs, 1);
    pthread_rwlock_unlock(&tab_lock);
    return r;
}

struct stp_rec *stp_cache_claim(const unsigned char id[STP_ID_LEN], X509 *leaf,
                                struct stp_rec *fresh, int *is_new)
{
    struct stp_rec *found;

    *is_new = 0;
    pthread_rwlock_wrlock(&tab_lock);
    found = X509_get_ex_data(leaf, x509_idx);
    if (found == NULL)
        found = find_id_locked(id);
    if (found != NULL) {
        if (X509_get_ex_data(leaf, x509_idx) == NULL)
            (void)map_locked(leaf, found); /* else by identity */
        found->claims++;
        pthread_rwlock_unlock(&tab_lock);
        stp_rec_free(fresh);
        return found;
    }
    if (fresh == NULL || !grow_locked() || !map_locked(leaf, fresh)) {
        pthread_rwlock_unlock(&tab_lock);
        stp_rec_free(fresh);
        return NULL;
    }
    atomic_init(&fresh->refs, 1); /* the table's */
    fresh->claims = 1;
    {
        size_t s = slot_of(fresh->ci->id);

        fresh->hnext = buckets[s];
        buckets[s] = fresh;
    }
    nrecs++;
    {
        int added;

        share_issuer_locked(&fresh->ci->issuer, &added);
    }
    pthread_rwlock_unlock(&tab_lock);
    atomic_fetch_add(&stp_metrics[STP_M_CERTS], 1);
    *is_new = 1;
    return fresh;
}

struct stp_rec *stp_cache_client_get1(const unsigned char id[STP_ID_LEN])
{
    struct stp_rec *r;

    pthread_rwlock_rdlock(&tab_lock);
    r = find_role_locked(id, 1);
    if (r != NULL)
        atomic_fetch_add(&r->refs, 1);
    pthread_rwlock_unlock(&tab_lock);
    return r;
}

struct stp_rec *stp_cache_client_insert1(struct stp_rec *fresh, int *is_new)
{
    struct stp_rec *found;

    *is_new = 0;
    pthread_rwlock_wrlock(&tab_lock);
    found = find_role_locked(fresh->ci->id, 1);
    if (found == NULL && grow_locked()) {
        size_t s = slot_of(fresh->ci->id);

        atomic_init(&fresh->refs, 1); /* the table's */
        fresh->claims = 1;
        fresh->hnext = buckets[s];
        buckets[s] = fresh;
        nrecs++;
        found = fresh;
        *is_new = 1;
        atomic_fetch_add(&stp_metrics[STP_M_CLIENT_CERTS], 1);
    }
    if (found != NULL)
        atomic_fetch_add(&found->refs, 1);
    pthread_rwlock_unlock(&tab_lock);
    if (!*is_new)
        stp_rec_free(fresh);
    return found;
}

void stp_cache_release(struct stp_rec *rec)
{
    X509 **aliases = NULL;
    unsigned n = 0, i;
    int drop = 0;

    if (rec == NULL)
        return;
    pthread_rwlock_wrlock(&tab_lock);
    if (rec->claims > 0 && --rec->claims == 0) {
        drop = 1;
        unlink_locked(rec);
        for (i = 0; i < rec->naliases; i++)
            X509_set_ex_data(rec->aliases[i], x509_idx, NULL);
        aliases = rec->aliases;
        n = rec->naliases;
        rec->aliases = NULL;
        rec->naliases = rec->capaliases = 0;
        atomic_store(&rec->dropped, 1);
    }
    pthread_rwlock_unlock(&tab_lock);
    if (!drop)
        return;
    for (i = 0; i < n; i++)
        X509_free(aliases[i]);
    OPENSSL_free(aliases);
    if (rec->client) {
        atomic_fetch_sub(&stp_metrics[STP_M_CLIENT_CERTS], 1);
        STP_LOG_DEBUG("client",
                      "%s: client certificate %.12s not seen for a while: "
                      "forgotten, no longer refreshed",
                      rec->ci->ident, rec->ci->id_hex);
        return;
    }
    atomic_fetch_sub(&stp_metrics[STP_M_CERTS], 1);
    /* DEBUG: a server that exits frees every context, and would say it
     * for each of its certificates */
    STP_LOG_DEBUG("hook",
                  "%s: certificate %.12s is no longer served by any context: "
                  "forgotten, no longer refreshed",
                  rec->ci->ident, rec->ci->id_hex);
    stp_rec_unref(rec); /* the table's */
}

size_t stp_cache_count(void)
{
    size_t n;

    pthread_rwlock_rdlock(&tab_lock);
    n = nrecs;
    pthread_rwlock_unlock(&tab_lock);
    return n;
}

enum stp_copy_result stp_cache_copy(struct stp_rec *rec, time_t now,
                                    unsigned char **der, size_t *len,
                                    int *status)
{
    enum stp_copy_result r = STP_COPY_NONE;

    *der = NULL;
    *len = 0;
    pthread_rwlock_rdlock(&tab_lock);
    if (rec->cur != NULL && now >= rec->cur->v.next_update) {
        r = STP_COPY_EXPIRED;
    } else if (rec->cur != NULL) {
        *der = OPENSSL_memdup(rec->cur->der, rec->cur->len);
        if (*der != NULL) {
            *len = rec->cur->len;
            *status = rec->cur->v.status;
            r = STP_COPY_OK;
        }
    }
    pthread_rwlock_unlock(&tab_lock);
    return r;
}

static void wake_waiters(void)
{
    pthread_mutex_lock(&wait_lock);
    pthread_cond_broadcast(&wait_cond);
    pthread_mutex_unlock(&wait_lock);
}

enum stp_replace stp_cache_publish(struct stp_rec *rec,
                                   const unsigned char *der, size_t len,
                                   const struct stp_verdict *v, time_t now)
{
    struct stp_staple *s = OPENSSL_zalloc(sizeof(*s)), *old = NULL;
    enum stp_replace r;

    if (s == NULL || (s->der = OPENSSL_memdup(der, len)) == NULL) {
        staple_free(s);
        return STP_REPLACE_NO_MEMORY;
    }
    s->len = len;
    s->v = *v;
    pthread_rwlock_wrlock(&tab_lock);
    r = stp_verdict_may_replace(rec->cur != NULL ? &rec->cur->v : NULL, v, now);
    if (r == STP_REPLACE_YES) {
        old = rec->cur;
        rec->cur = s;
        s = NULL;
    }
    pthread_rwlock_unlock(&tab_lock);
    staple_free(old);
    staple_free(s);
    if (r == STP_REPLACE_YES) {
        atomic_store(&rec->said_lost, 0);
        atomic_store(&rec->said_must_none, 0);
        wake_waiters();
    }
    return r;
}

int stp_cache_expire(struct stp_rec *rec, time_t now)
{
    struct stp_staple *old = NULL;
    int due;

    /* every record at every pass: the write lock only when one expired */
    pthread_rwlock_rdlock(&tab_lock);
    due = rec->cur != NULL && now >= rec->cur->v.next_update;
    pthread_rwlock_unlock(&tab_lock);
    if (!due)
        return 0;
    pthread_rwlock_wrlock(&tab_lock);
    if (rec->cur != NULL && now >= rec->cur->v.next_update) {
        old = rec->cur;
        rec->cur = NULL;
    }
    pthread_rwlock_unlock(&tab_lock);
    staple_free(old);
    return old != NULL;
}

int stp_cache_verdict(struct stp_rec *rec, struct stp_verdict *v)
{
    int have;

    pthread_rwlock_rdlock(&tab_lock);
    have = rec->cur != NULL;
    if (have)
        *v = rec->cur->v;
    pthread_rwlock_unlock(&tab_lock);
    return have;
}

void stp_cache_loaded(struct stp_rec *rec)
{
    if (atomic_exchange(&rec->loading, 0) != 0)
        wake_waiters();
}

static int has_staple(struct stp_rec *rec)
{
    int have;

    pthread_rwlock_rdlock(&tab_lock);
    have = rec->cur != NULL;
    pthread_rwlock_unlock(&tab_lock);
    return have;
}

void stp_cache_wait(struct stp_rec *rec, long ms)
{
    long long deadline = stp_monotonic_ms() + ms;
    struct timespec ts;

    pthread_mutex_lock(&wait_lock);
    while (atomic_load(&rec->loading) && !has_staple(rec)) {
        long long left = deadline - stp_monotonic_ms();

        if (left <= 0)
            break;
        stp_monotonic_ts(deadline, &ts);
        if (pthread_cond_timedwait(&wait_cond, &wait_lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&wait_lock);
}

size_t stp_cache_snapshot(struct stp_rec ***out)
{
    struct stp_rec *r;
    size_t n = 0, i;

    pthread_rwlock_rdlock(&tab_lock);
    *out = nrecs > 0 ? OPENSSL_malloc(nrecs * sizeof(**out)) : NULL;
    for (i = 0; *out != NULL && i < nbuckets; i++) {
        for (r = buckets[i]; r != NULL; r = r->hnext) {
            atomic_fetch_add(&r->refs, 1);
            (*out)[n++] = r;
        }
    }
    pthread_rwlock_unlock(&tab_lock);
    return n;
}

void stp_cache_snapshot_free(struct stp_rec **recs, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        stp_rec_unref(recs[i]);
    OPENSSL_free(recs);
}

X509 *stp_cache_get1_issuer(X509 *leaf)
{
    X509 *found = NULL;
    size_t i;

    pthread_rwlock_rdlock(&tab_lock);
    for (i = 0; found == NULL && i < nissuers; i++)
        if (X509_check_issued(issuers[i], leaf) == X509_V_OK
            && X509_up_ref(issuers[i]))
            found = issuers[i];
    pthread_rwlock_unlock(&tab_lock);
    return found;
}

int stp_cache_share_issuer(X509 **issuer)
{
    int added;

    pthread_rwlock_wrlock(&tab_lock);
    share_issuer_locked(issuer, &added);
    pthread_rwlock_unlock(&tab_lock);
    return added;
}
