/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The certificate table (see cache.h). A few dozen certificates per process
 * at most, so lookups scan a flat array of pointer aliases under a read
 * lock: no hashing, no allocation on the handshake path but the copy.
 */
#include "server/cache.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "engine/clock.h"
#include "server/metrics.h"

#define MAX_ALIASES_PER_REC 8

struct stp_staple {
    unsigned char *der;
    size_t len;
    struct stp_verdict v;
};

struct alias {
    X509 *x; /* own reference */
    struct stp_rec *rec;
};

static pthread_rwlock_t tab_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wait_cond;
static struct stp_rec **recs;
static size_t nrecs, caprecs;
static struct alias *aliases;
static size_t naliases, capaliases;

static void init_cond(void)
{
    pthread_condattr_t a;

    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&wait_cond, &a);
    pthread_condattr_destroy(&a);
}

void stp_cache_init(void)
{
    init_cond();
}

void stp_cache_after_fork(void)
{
    pthread_rwlock_init(&tab_lock, NULL);
    pthread_mutex_init(&wait_lock, NULL);
    init_cond();
}

static void staple_free(struct stp_staple *s)
{
    if (s != NULL) {
        OPENSSL_free(s->der);
        OPENSSL_free(s);
    }
}

void stp_rec_free(struct stp_rec *rec)
{
    if (rec == NULL)
        return;
    stp_certinfo_free(rec->ci);
    staple_free(rec->cur);
    X509_free(atomic_load(&rec->offered_issuer));
    OPENSSL_free(rec);
}

/* Under the read or write lock. */
static struct stp_rec *find_alias_locked(X509 *leaf)
{
    size_t i;

    for (i = 0; i < naliases; i++)
        if (aliases[i].x == leaf)
            return aliases[i].rec;
    return NULL;
}

struct stp_rec *stp_cache_get0(X509 *leaf)
{
    struct stp_rec *r;

    pthread_rwlock_rdlock(&tab_lock);
    r = find_alias_locked(leaf);
    pthread_rwlock_unlock(&tab_lock);
    return r;
}

static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
    void *p;
    size_t ncap;

    if (n < *cap)
        return 1;
    ncap = *cap ? *cap * 2 : 16;
    p = OPENSSL_realloc(*arr, ncap * size);
    if (p == NULL)
        return 0;
    *arr = p;
    *cap = ncap;
    return 1;
}

/* Under the write lock: keeps at most MAX_ALIASES_PER_REC per record. */
static int add_alias_locked(X509 *leaf, struct stp_rec *rec)
{
    size_t i, count = 0, oldest = 0;

    for (i = 0; i < naliases; i++) {
        if (aliases[i].rec != rec)
            continue;
        if (count++ == 0)
            oldest = i;
    }
    if (count >= MAX_ALIASES_PER_REC) {
        X509_free(aliases[oldest].x);
        memmove(&aliases[oldest], &aliases[oldest + 1],
                (naliases - oldest - 1) * sizeof(*aliases));
        naliases--;
    }
    if (!grow((void **)&aliases, &capaliases, naliases, sizeof(*aliases))
        || !X509_up_ref(leaf))
        return 0;
    aliases[naliases].x = leaf;
    aliases[naliases].rec = rec;
    naliases++;
    return 1;
}

struct stp_rec *stp_cache_insert(struct stp_rec *rec, X509 *leaf, int *is_new)
{
    struct stp_rec *found;
    size_t i;

    *is_new = 0;
    pthread_rwlock_wrlock(&tab_lock);
    found = find_alias_locked(leaf);
    for (i = 0; found == NULL && i < nrecs; i++)
        if (memcmp(recs[i]->ci->id, rec->ci->id, STP_ID_LEN) == 0)
            found = recs[i];
    if (found != NULL) {
        if (find_alias_locked(leaf) == NULL && !add_alias_locked(leaf, found))
            found = NULL;
        pthread_rwlock_unlock(&tab_lock);
        stp_rec_free(rec);
        return found;
    }
    if (!grow((void **)&recs, &caprecs, nrecs, sizeof(*recs))
        || !add_alias_locked(leaf, rec)) {
        pthread_rwlock_unlock(&tab_lock);
        stp_rec_free(rec);
        return NULL;
    }
    recs[nrecs++] = rec;
    pthread_rwlock_unlock(&tab_lock);
    atomic_fetch_add(&stp_metrics[STP_M_CERTS], 1);
    *is_new = 1;
    return rec;
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
    if (r == STP_REPLACE_YES)
        wake_waiters();
    return r;
}

void stp_cache_expire(struct stp_rec *rec, time_t now)
{
    struct stp_staple *old = NULL;

    pthread_rwlock_wrlock(&tab_lock);
    if (rec->cur != NULL && now >= rec->cur->v.next_update) {
        old = rec->cur;
        rec->cur = NULL;
    }
    pthread_rwlock_unlock(&tab_lock);
    staple_free(old);
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
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(left / 1000);
        ts.tv_nsec += (long)(left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_cond_timedwait(&wait_cond, &wait_lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&wait_lock);
}

size_t stp_cache_snapshot(struct stp_rec ***out)
{
    size_t n;

    pthread_rwlock_rdlock(&tab_lock);
    n = nrecs;
    *out = n > 0 ? OPENSSL_memdup(recs, n * sizeof(*recs)) : NULL;
    if (*out == NULL)
        n = 0;
    pthread_rwlock_unlock(&tab_lock);
    return n;
}

X509 *stp_cache_get1_issuer(X509 *leaf)
{
    X509 *found = NULL;
    size_t i;

    pthread_rwlock_rdlock(&tab_lock);
    for (i = 0; found == NULL && i < nrecs; i++) {
        X509 *c = recs[i]->ci->issuer;

        if (c != NULL && X509_check_issued(c, leaf) == X509_V_OK
            && X509_up_ref(c))
            found = c;
    }
    pthread_rwlock_unlock(&tab_lock);
    return found;
}
