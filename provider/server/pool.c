/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch pool's queues and circuit breakers (see pool.h). Hosts are few
 * (a CA runs one responder or a handful): a flat array, scanned round-robin
 * by the workers so that every host gets its turn.
 *
 * Idle workers wait on a stack, each on a condition of its own, and the one
 * that became idle last is woken first. A server whose work needs eight
 * workers at a time (one responder host, fetch_per_host = 8) then keeps
 * using the same eight, and the others, started with the refresher, stay
 * parked where they started: they never touch more of their stacks, and
 * never allocate, so glibc never gives them a malloc arena (one per thread
 * that allocates, up to 8 per core, each keeping up to 128 KiB of freed
 * memory). With one condition for all, every wake-up went to whichever
 * waiter the condition chose, every worker of every process took its turn,
 * and each process of a server carried 15 arenas (issue #9: about 1.4 MiB
 * in them; with one responder host, 12 arenas and 1 MiB now, and 3 KiB less
 * Pss per certificate at N = 1000 with 4 nginx workers).
 */
#include "server/pool.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "engine/clock.h"
#include "engine/log.h"

#define HOST_KEY_LEN STP_POOL_HOST_KEY_LEN

struct host {
    char key[HOST_KEY_LEN]; /* scheme://host:port, lower case; "" no URL */
    struct stp_rec **q;     /* ring of queued records (own references) */
    size_t qhead, qlen, qcap;
    int inflight;
    unsigned faults;     /* responder faults in a row */
    unsigned pauses;     /* pauses in a row (each doubles the next) */
    time_t paused_until; /* 0: closed */
    int probing;         /* a pause ended: one request probes the host */
};

struct flight {
    struct stp_rec *rec; /* NULL: free slot */
    size_t host;
    int probe;
};

/* An idle worker in stp_pool_take(), on its own stack. */
struct waiter {
    pthread_cond_t cond;
    struct waiter *next;
    int woken; /* popped by a waker (else: a timeout, or spurious) */
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct waiter *idle; /* the most recently idle first */
static size_t nidle;
/* workers between stp_pool_done() and their next stp_pool_take(): one of
 * them takes a record queued meanwhile, no idle one need be woken; each
 * counts once, by its own flag (a take that timed out and is called again
 * does not count another worker's return as its own) */
static int returning;
static __thread int returned;
static struct host *hosts;
static size_t nhosts, caphosts, next_host;
static struct flight *flying;
static size_t capflying;
static int per_host_cap = 2;
static long pause_base_s = 60, pause_max_s = 3600;
static int interrupted;

/* Under pool_lock: wakes the most recently idle worker, if any. */
static void wake_one_locked(void)
{
    struct waiter *w = idle;

    if (w == NULL)
        return;
    idle = w->next;
    nidle--;
    w->woken = 1;
    pthread_cond_signal(&w->cond);
}

/* Under pool_lock: <w> off the stack (its wait ended by itself). */
static void unlink_locked(struct waiter *w)
{
    struct waiter **p;

    for (p = &idle; *p != NULL; p = &(*p)->next)
        if (*p == w) {
            *p = w->next;
            nidle--;
            return;
        }
}

/* Under pool_lock: whether <h> may give a record now: 0 no, 1 yes, 2 yes,
 * as the request that probes it at the end of a pause. */
static int ready_locked(const struct host *h, time_t now)
{
    if (h->qlen == 0
        || (h->paused_until != 0 && (now < h->paused_until || h->probing))
        || (h->key[0] != '\0' && h->inflight >= per_host_cap))
        return 0;
    return h->paused_until != 0 ? 2 : 1;
}

/* Under pool_lock: whether next_locked() would find a record now. */
static int takeable_locked(time_t now)
{
    size_t k;

    for (k = 0; k < nhosts; k++)
        if (ready_locked(&hosts[k], now))
            return 1;
    return 0;
}

void stp_pool_configure(int per_host, long pause_base, long pause_max)
{
    pthread_mutex_lock(&pool_lock);
    per_host_cap = per_host > 0 ? per_host : 1;
    pause_base_s = pause_base > 0 ? pause_base : 1;
    pause_max_s = pause_max >= pause_base_s ? pause_max : pause_base_s;
    if (takeable_locked(stp_now())) /* a higher cap */
        wake_one_locked();
    pthread_mutex_unlock(&pool_lock);
}

/* "scheme://authority" of <url>, lower case, or "" for NULL. */
void stp_pool_host_key(const char *url, char key[STP_POOL_HOST_KEY_LEN])
{
    const char *p, *end;
    size_t n, i;

    key[0] = '\0';
    if (url == NULL || (p = strstr(url, "://")) == NULL)
        return;
    end = p + 3 + strcspn(p + 3, "/?#");
    n = (size_t)(end - url);
    if (n >= STP_POOL_HOST_KEY_LEN)
        n = STP_POOL_HOST_KEY_LEN - 1;
    for (i = 0; i < n; i++)
        key[i] = (char)tolower((unsigned char)url[i]);
    key[n] = '\0';
}

/* Under pool_lock. Returns the index of <key>'s host, or (size_t)-1. */
static size_t host_locked(const char *key)
{
    size_t i;

    for (i = 0; i < nhosts; i++)
        if (strcmp(hosts[i].key, key) == 0)
            return i;
    if (nhosts == caphosts) {
        size_t ncap = caphosts ? caphosts * 2 : 4;
        struct host *h = OPENSSL_realloc(hosts, ncap * sizeof(*h));

        if (h == NULL)
            return (size_t)-1;
        hosts = h;
        caphosts = ncap;
    }
    memset(&hosts[nhosts], 0, sizeof(hosts[nhosts]));
    snprintf(hosts[nhosts].key, HOST_KEY_LEN, "%s", key);
    return nhosts++;
}

/* Under pool_lock: room for one more record in <h>'s ring. */
static int room_locked(struct host *h)
{
    size_t ncap, i;
    struct stp_rec **q;

    if (h->qlen < h->qcap)
        return 1;
    ncap = h->qcap ? h->qcap * 2 : 16;
    if ((q = OPENSSL_malloc(ncap * sizeof(*q))) == NULL)
        return 0;
    for (i = 0; i < h->qlen; i++)
        q[i] = h->q[(h->qhead + i) % h->qcap];
    OPENSSL_free(h->q);
    h->q = q;
    h->qhead = 0;
    h->qcap = ncap;
    return 1;
}

/* Under pool_lock: <rec> at the tail of <h>'s queue, or at its head. */
static int push_locked(struct host *h, struct stp_rec *rec, int front)
{
    if (!room_locked(h))
        return 0;
    if (front) {
        h->qhead = (h->qhead + h->qcap - 1) % h->qcap;
        h->q[h->qhead] = rec;
    } else {
        h->q[(h->qhead + h->qlen) % h->qcap] = rec;
    }
    h->qlen++;
    return 1;
}

static struct stp_rec *pop_locked(struct host *h)
{
    struct stp_rec *rec = h->q[h->qhead];

    h->qhead = (h->qhead + 1) % h->qcap;
    h->qlen--;
    return rec;
}

int stp_pool_submit(struct stp_rec *rec, const char *url)
{
    char key[HOST_KEY_LEN];
    size_t hi;
    int ok = 0;

    stp_pool_host_key(url, key);
    atomic_fetch_add(&rec->refs, 1);
    atomic_store(&rec->busy, 1);
    pthread_mutex_lock(&pool_lock);
    hi = host_locked(key);
    if (hi != (size_t)-1
        && push_locked(&hosts[hi], rec, atomic_load(&rec->urgent))) {
        ok = 1;
        /* a worker for it, unless its host is at its cap (then a worker
         * that finishes one of that host's takes it) or a worker that
         * just finished one is on its way back for more */
        if (returning == 0 && takeable_locked(stp_now()))
            wake_one_locked();
    }
    pthread_mutex_unlock(&pool_lock);
    if (!ok) {
        atomic_store(&rec->busy, 0);
        stp_rec_unref(rec);
    }
    return ok;
}

void stp_pool_hurry(struct stp_rec *rec)
{
    size_t k, i, j;

    if (atomic_exchange(&rec->urgent, 1) != 0)
        return; /* already hurried: at the head, or about to be queued */
    pthread_mutex_lock(&pool_lock);
    for (k = 0; k < nhosts; k++) {
        struct host *h = &hosts[k];

        for (i = 0; i < h->qlen; i++)
            if (h->q[(h->qhead + i) % h->qcap] == rec)
                break;
        if (i == h->qlen)
            continue;
        /* shift the ones before it back by one, then it goes first */
        for (j = i; j > 0; j--)
            h->q[(h->qhead + j) % h->qcap] = h->q[(h->qhead + j - 1) % h->qcap];
        h->q[h->qhead] = rec;
        break;
    }
    pthread_mutex_unlock(&pool_lock);
}

/* Under pool_lock: a free flight slot, or (size_t)-1. */
static size_t slot_locked(void)
{
    size_t i, ncap;
    struct flight *f;

    for (i = 0; i < capflying; i++)
        if (flying[i].rec == NULL)
            return i;
    ncap = capflying ? capflying * 2 : 8;
    f = OPENSSL_realloc(flying, ncap * sizeof(*f));
    if (f == NULL)
        return (size_t)-1;
    memset(f + capflying, 0, (ncap - capflying) * sizeof(*f));
    flying = f;
    i = capflying;
    capflying = ncap;
    return i;
}

/*
 * Under pool_lock: pops the next record that may go now, round-robin over
 * the hosts, or returns NULL and sets *<until> to the earliest end of a
 * pause that holds queued records back (0: none).
 */
static struct stp_rec *next_locked(time_t now, int *slot, time_t *until)
{
    size_t k, i, s;

    *until = 0;
    for (k = 0; k < nhosts; k++) {
        struct host *h = &hosts[(next_host + k) % nhosts];
        int ready = ready_locked(h, now), probe = ready == 2;

        if (h->qlen > 0 && now < h->paused_until
            && (*until == 0 || h->paused_until < *until))
            *until = h->paused_until; /* paused_until 0: never > now */
        if (!ready)
            continue;
        if ((s = slot_locked()) == (size_t)-1)
            return NULL;
        i = (next_host + k) % nhosts;
        /* urgent stays set in flight (the worker waits for another
         * process's fetch of it) and ends at stp_pool_done() */
        flying[s].rec = pop_locked(h);
        flying[s].host = i;
        flying[s].probe = probe;
        h->inflight++;
        h->probing |= probe;
        next_host = i + 1;
        *slot = (int)s;
        return flying[s].rec;
    }
    return NULL;
}

struct stp_rec *stp_pool_take(long long wait_ms, int *slot)
{
    long long deadline = wait_ms >= 0 ? stp_monotonic_ms() + wait_ms : -1;
    struct stp_rec *rec = NULL;
    struct waiter w;
    struct timespec ts;
    time_t until;

    stp_cond_init_monotonic(&w.cond);
    pthread_mutex_lock(&pool_lock);
    if (returned && returning > 0)
        returning--;
    returned = 0;
    while (!interrupted) {
        long long now_ms = stp_monotonic_ms(), at = deadline;
        time_t now = stp_now();

        rec = next_locked(now, slot, &until);
        if (rec != NULL) {
            /* more may go (a burst queued, a breaker closed): the next
             * idle worker takes the next one */
            if (takeable_locked(now))
                wake_one_locked();
            break;
        }
        if (deadline >= 0 && now_ms >= deadline)
            break;
        if (until != 0) { /* a pause ends then: look again */
            long long end = now_ms + ((long long)until - stp_now()) * 1000;

            if (at < 0 || end < at)
                at = end;
        }
        w.woken = 0;
        w.next = idle;
        idle = &w;
        nidle++;
        if (at < 0) {
            pthread_cond_wait(&w.cond, &pool_lock);
        } else {
            if (at <= now_ms)
                at = now_ms + 10;
            stp_monotonic_ts(at, &ts);
            pthread_cond_timedwait(&w.cond, &pool_lock, &ts);
        }
        if (!w.woken)
            unlink_locked(&w);
    }
    pthread_mutex_unlock(&pool_lock);
    pthread_cond_destroy(&w.cond);
    return rec;
}

static long pause_for(unsigned pauses)
{
    long p = pause_base_s;

    while (--pauses > 0 && p < pause_max_s)
        p *= 2;
    return p < pause_max_s ? p : pause_max_s;
}

void stp_pool_done(struct stp_rec *rec, int slot, enum stp_pool_outcome o,
                   time_t now)
{
    char key[HOST_KEY_LEN] = "", said[64] = "";
    struct host *h;
    size_t waiting = 0;
    int opened = 0, closed = 0;
    unsigned pauses = 0;
    long pause = 0;

    atomic_store(&rec->urgent, 0); /* a hurry during the flight is over */
    pthread_mutex_lock(&pool_lock);
    if (slot >= 0 && (size_t)slot < capflying && flying[slot].rec == rec) {
        struct flight *f = &flying[slot];

        h = &hosts[f->host];
        h->inflight--;
        if (o == STP_POOL_ANSWERED) {
            closed = h->paused_until != 0;
            pauses = h->pauses;
            h->faults = 0;
            h->pauses = 0;
            h->paused_until = 0;
            h->probing = 0;
        } else if (o == STP_POOL_FAULT && h->key[0] != '\0') {
            h->faults++;
            if (f->probe
                || (h->paused_until == 0
                    && h->faults >= STP_POOL_BREAKER_FAULTS)) {
                opened = h->paused_until == 0;
                h->pauses++;
                pause = pause_for(h->pauses);
                h->paused_until = now + pause;
                h->probing = 0;
                waiting = h->qlen;
            }
        } else if (f->probe) {
            h->probing = 0; /* nothing learned: another may probe */
        }
        memcpy(key, h->key, sizeof(key));
        f->rec = NULL;
    }
    atomic_store(&rec->busy, 0);
    /* no wake-up: the caller takes the next record itself (and wakes
     * another worker if more may go, a breaker just closed) */
    if (!returned)
        returning++;
    returned = 1;
    pthread_mutex_unlock(&pool_lock);
    if (opened)
        STP_LOG_WARN("refresh",
                     "responder %s: %d faults in a row: paused for %lds (its "
                     "%zu queued certificate(s) wait; the others go on)",
                     key, STP_POOL_BREAKER_FAULTS, pause, waiting);
    else if (pause > 0)
        STP_LOG_DEBUG("refresh", "responder %s: still failing: paused for %lds",
                      key, pause);
    if (closed) {
        snprintf(said, sizeof(said), "after %u pause(s)", pauses);
        STP_LOG_INFO("refresh", "responder %s answers again %s", key, said);
    }
}

void stp_pool_interrupt(void)
{
    pthread_mutex_lock(&pool_lock);
    interrupted = 1;
    while (idle != NULL)
        wake_one_locked();
    pthread_mutex_unlock(&pool_lock);
}

size_t stp_pool_pending(void)
{
    size_t n = 0, i;

    pthread_mutex_lock(&pool_lock);
    for (i = 0; i < nhosts; i++)
        n += hosts[i].qlen + (size_t)hosts[i].inflight;
    pthread_mutex_unlock(&pool_lock);
    return n;
}

size_t stp_pool_idle(void)
{
    size_t n;

    pthread_mutex_lock(&pool_lock);
    n = nidle;
    pthread_mutex_unlock(&pool_lock);
    return n;
}

int stp_pool_host_paused(const char *url, time_t now)
{
    char key[HOST_KEY_LEN];
    size_t i;
    int paused = 0;

    stp_pool_host_key(url, key);
    pthread_mutex_lock(&pool_lock);
    for (i = 0; i < nhosts; i++)
        if (strcmp(hosts[i].key, key) == 0)
            paused = hosts[i].paused_until != 0 && now < hosts[i].paused_until;
    pthread_mutex_unlock(&pool_lock);
    return paused;
}

void stp_pool_after_fork(void)
{
    size_t i;

    pthread_mutex_init(&pool_lock, NULL);
    /* the parent's idle workers do not exist here */
    idle = NULL;
    nidle = 0;
    returning = 0;
    returned = 0;
    interrupted = 0;
    for (i = 0; i < nhosts; i++) {
        struct host *h = &hosts[i];

        while (h->qlen > 0) {
            struct stp_rec *rec = pop_locked(h);

            atomic_store(&rec->busy, 0);
            stp_rec_unref(rec);
        }
        h->inflight = 0;
        h->probing = 0;
    }
    /* the parent's workers do not exist here */
    for (i = 0; i < capflying; i++) {
        if (flying[i].rec != NULL) {
            atomic_store(&flying[i].rec->busy, 0);
            stp_rec_unref(flying[i].rec);
            flying[i].rec = NULL;
        }
    }
}
