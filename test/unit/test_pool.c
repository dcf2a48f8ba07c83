/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch pool (server/pool.h): per-host caps (a second host goes on
 * while the first is at its cap), FIFO order, the circuit breaker (faults
 * in a row pause only their host, the pause doubles, a probe at its end and
 * its answer closes it), what does not count (an answer resets, no request
 * counts nothing), a record a handshake waits for going first (hurried
 * while queued, or before it is queued), a fork child forgetting the
 * parent's queues, and idle workers woken last-idle-first (the same one
 * takes record after record; a burst still wakes one per record that may
 * go).
 */
#include "server/pool.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "engine/clock.h"
#include "stp_test.h"

#define A "http://ocsp.a.test:8080/path"
#define B "http://OCSP.B.test/"

static struct stp_rec *mk(void)
{
    struct stp_rec *r = stp_rec_new();

    atomic_init(&r->refs, 1);
    return r;
}

/* Takes one without waiting; the record (a reference) and its slot. */
static struct stp_rec *take(int *slot)
{
    struct stp_rec *r = stp_pool_take(0, slot);

    if (r != NULL)
        stp_rec_unref(r); /* the test keeps its own */
    return r;
}

static void test_caps(time_t now)
{
    struct stp_rec *a[4], *b[2], *got[4];
    int slot[4], s, i;

    stp_pool_configure(2, 60, 240);
    for (i = 0; i < 4; i++) {
        a[i] = mk();
        ASSERT_OK(stp_pool_submit(a[i], A));
        ASSERT_EQ(atomic_load(&a[i]->busy), 1);
    }
    for (i = 0; i < 2; i++) {
        b[i] = mk();
        ASSERT_OK(stp_pool_submit(b[i], B));
    }
    ASSERT_EQ(stp_pool_pending(), 6);
    /* two of A, two of B, then nothing: both hosts at their cap */
    for (i = 0; i < 4; i++)
        ASSERT_NOT_NULL(got[i] = take(&slot[i]));
    ASSERT_NULL(take(&s));
    ASSERT_TRUE(
        (got[0] == a[0] && got[1] == b[0] && got[2] == a[1] && got[3] == b[1])
        || (got[0] == b[0] && got[1] == a[0] && got[2] == b[1]
            && got[3] == a[1]));
    /* one of A done: the next of A, in order */
    stp_pool_done(a[0], slot[got[0] == a[0] ? 0 : 1], STP_POOL_ANSWERED, now);
    ASSERT_EQ(atomic_load(&a[0]->busy), 0);
    ASSERT_TRUE(take(&s) == a[2]);
    ASSERT_NULL(take(&s));
    for (i = 0; i < 4; i++)
        if (got[i] != a[0])
            stp_pool_done(got[i], slot[i], STP_POOL_NOTHING, now);
    stp_pool_done(a[2], s, STP_POOL_ANSWERED, now);
    ASSERT_TRUE(take(&s) == a[3]);
    stp_pool_done(a[3], s, STP_POOL_ANSWERED, now);
    ASSERT_EQ(stp_pool_pending(), 0);
    for (i = 0; i < 4; i++)
        stp_rec_unref(a[i]);
    for (i = 0; i < 2; i++)
        stp_rec_unref(b[i]);
}

/* Submits <r> for <url>, takes it and ends it with <o> at <now>. */
static void attempt(struct stp_rec *r, const char *url, enum stp_pool_outcome o,
                    time_t now)
{
    int s;

    ASSERT_OK(stp_pool_submit(r, url));
    ASSERT_TRUE(take(&s) == r);
    stp_pool_done(r, s, o, now);
}

static void test_breaker(time_t now)
{
    struct stp_rec *r = mk(), *q = mk(), *other = mk();
    int s, i;

    stp_pool_configure(2, 60, 240);
    /* an answer resets the count; nothing learned counts nothing */
    attempt(r, A, STP_POOL_FAULT, now);
    attempt(r, A, STP_POOL_FAULT, now);
    attempt(r, A, STP_POOL_ANSWERED, now);
    attempt(r, A, STP_POOL_FAULT, now);
    attempt(r, A, STP_POOL_NOTHING, now);
    attempt(r, A, STP_POOL_FAULT, now);
    ASSERT_EQ(stp_pool_host_paused(A, now), 0);
    attempt(r, A, STP_POOL_FAULT, now); /* the third in a row */
    ASSERT_EQ(stp_pool_host_paused(A, now), 1);
    ASSERT_EQ(stp_pool_host_paused(B, now), 0);
    /* paused: A's records wait, B's go on */
    ASSERT_OK(stp_pool_submit(q, A));
    ASSERT_NULL(take(&s));
    attempt(other, B, STP_POOL_ANSWERED, now);
    ASSERT_NULL(take(&s));
    /* the pause ends after retry_base: one probe, and only one */
    ASSERT_OK(stp_pool_submit(r, A));
    stp_clock_set(now + 60);
    ASSERT_TRUE(take(&s) == q);
    ASSERT_NULL(take(&i));
    /* it fails: paused again, twice as long */
    stp_pool_done(q, s, STP_POOL_FAULT, now + 60);
    ASSERT_EQ(stp_pool_host_paused(A, now + 60 + 119), 1);
    stp_clock_set(now + 60 + 119);
    ASSERT_NULL(take(&s));
    stp_clock_set(now + 60 + 120);
    ASSERT_TRUE(take(&s) == r);
    /* the probe's answer closes the breaker: the host is free again */
    stp_pool_done(r, s, STP_POOL_ANSWERED, now + 180);
    ASSERT_EQ(stp_pool_host_paused(A, now + 180), 0);
    attempt(q, A, STP_POOL_ANSWERED, now + 180);
    ASSERT_EQ(stp_pool_pending(), 0);
    stp_rec_unref(r);
    stp_rec_unref(q);
    stp_rec_unref(other);
}

/* Records that will not fetch (no URL) have no host cap. */
static void test_no_url(time_t now)
{
    struct stp_rec *r[5];
    int slot[5], i;

    stp_pool_configure(1, 60, 240);
    for (i = 0; i < 5; i++) {
        r[i] = mk();
        ASSERT_OK(stp_pool_submit(r[i], NULL));
    }
    for (i = 0; i < 5; i++)
        ASSERT_TRUE(take(&slot[i]) == r[i]);
    for (i = 0; i < 5; i++) {
        stp_pool_done(r[i], slot[i], STP_POOL_FAULT, now);
        stp_rec_unref(r[i]);
    }
    ASSERT_EQ(stp_pool_host_paused(NULL, now), 0);
}

/* A record a handshake waits for goes before the ones queued earlier, but
 * not before what is in flight; the flag ends when it is taken. */
static void test_hurry(time_t now)
{
    struct stp_rec *r[6], *late = mk();
    int slot[6], s, i;

    stp_pool_configure(1, 60, 240);
    for (i = 0; i < 6; i++) {
        r[i] = mk();
        ASSERT_OK(stp_pool_submit(r[i], A));
    }
    ASSERT_TRUE(take(&slot[0]) == r[0]); /* in flight: the cap (1) */
    stp_pool_hurry(r[4]);                /* queued fourth: goes first */
    ASSERT_EQ(atomic_load(&r[4]->urgent), 1);
    stp_pool_hurry(late); /* not queued yet: queued first when it is */
    ASSERT_OK(stp_pool_submit(late, A));
    ASSERT_NULL(take(&s)); /* r[0] still holds the host's one slot */
    stp_pool_done(r[0], slot[0], STP_POOL_ANSWERED, now);
    ASSERT_TRUE(take(&s) == late);
    /* urgent in flight too (its worker waits for another process's fetch),
     * until it is done */
    ASSERT_EQ(atomic_load(&late->urgent), 1);
    stp_pool_done(late, s, STP_POOL_ANSWERED, now);
    ASSERT_EQ(atomic_load(&late->urgent), 0);
    ASSERT_TRUE(take(&s) == r[4]);
    stp_pool_done(r[4], s, STP_POOL_ANSWERED, now);
    ASSERT_EQ(atomic_load(&r[4]->urgent), 0);
    /* then the others, in their order */
    ASSERT_TRUE(take(&slot[1]) == r[1]);
    stp_pool_done(r[1], slot[1], STP_POOL_ANSWERED, now);
    ASSERT_TRUE(take(&slot[2]) == r[2]);
    stp_pool_done(r[2], slot[2], STP_POOL_ANSWERED, now);
    ASSERT_TRUE(take(&slot[3]) == r[3]);
    stp_pool_done(r[3], slot[3], STP_POOL_ANSWERED, now);
    ASSERT_TRUE(take(&slot[5]) == r[5]);
    stp_pool_done(r[5], slot[5], STP_POOL_ANSWERED, now);
    ASSERT_EQ(stp_pool_pending(), 0);
    for (i = 0; i < 6; i++)
        stp_rec_unref(r[i]);
    stp_rec_unref(late);
}

static void test_after_fork(void)
{
    struct stp_rec *queued = mk(), *flying = mk();
    int s;

    stp_pool_configure(2, 60, 240);
    ASSERT_OK(stp_pool_submit(flying, B));
    ASSERT_OK(stp_pool_submit(queued, B));
    ASSERT_TRUE(stp_pool_take(0, &s) == flying); /* the reference is ours */
    stp_pool_after_fork();
    ASSERT_EQ(stp_pool_pending(), 0);
    ASSERT_EQ(atomic_load(&queued->busy), 0);
    ASSERT_EQ(atomic_load(&flying->busy), 0);
    ASSERT_EQ(atomic_load(&flying->refs), 1);
    ASSERT_EQ(atomic_load(&queued->refs), 1);
    stp_rec_unref(queued);
    stp_rec_unref(flying);
}

/* ---- workers: which thread took which record ---------------------------- */

#define NWORKERS 4
#define NJOBS    20

static struct stp_rec *jobs[NJOBS];
static int taken_by[NJOBS];
static int ntaken, hold_open; /* under job_lock */
static int hold[NJOBS];
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t job_cond = PTHREAD_COND_INITIALIZER;

static void *pool_worker(void *arg)
{
    int me = (int)(intptr_t)arg, slot, i;
    struct stp_rec *rec;

    while ((rec = stp_pool_take(-1, &slot)) != NULL) {
        pthread_mutex_lock(&job_lock);
        for (i = 0; i < NJOBS && jobs[i] != rec; i++)
            ;
        if (i < NJOBS) {
            taken_by[i] = me;
            ntaken++;
            pthread_cond_broadcast(&job_cond);
            while (hold[i] && !hold_open)
                pthread_cond_wait(&job_cond, &job_lock);
        }
        pthread_mutex_unlock(&job_lock);
        stp_pool_done(rec, slot, STP_POOL_NOTHING, stp_now());
        stp_rec_unref(rec);
    }
    return NULL;
}

/* Waits (at most 5 s) until <n> records were taken and <idle> workers wait. */
static int await(int n, size_t idle)
{
    int i, ok = 0;

    for (i = 0; i < 5000 && !ok; i++) {
        pthread_mutex_lock(&job_lock);
        ok = ntaken >= n;
        pthread_mutex_unlock(&job_lock);
        ok = ok && stp_pool_idle() == idle;
        if (!ok)
            nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    return ok;
}

static void test_last_idle_first(void)
{
    pthread_t th[NWORKERS];
    int i, first, seen[NWORKERS] = { 0 }, distinct = 0;

    stp_pool_configure(3, 60, 240);
    for (i = 0; i < NWORKERS; i++)
        ASSERT_EQ(
            pthread_create(&th[i], NULL, pool_worker, (void *)(intptr_t)i), 0);
    ASSERT_TRUE(await(0, NWORKERS));
    /* one record at a time: the worker that just went idle takes each */
    for (i = 0; i < 10; i++) {
        jobs[i] = mk();
        ASSERT_OK(stp_pool_submit(jobs[i], A));
        ASSERT_TRUE(await(i + 1, NWORKERS));
    }
    first = taken_by[0];
    for (i = 1; i < 10; i++)
        ASSERT_EQ(taken_by[i], first);
    /* a burst of three that each hold their worker: three workers, the
     * host's cap, are woken (none is lost to the last-idle-first order) */
    for (i = 10; i < 13; i++) {
        jobs[i] = mk();
        hold[i] = 1;
    }
    for (i = 10; i < 13; i++)
        ASSERT_OK(stp_pool_submit(jobs[i], A));
    ASSERT_TRUE(await(13, NWORKERS - 3));
    for (i = 10; i < 13; i++)
        if (!seen[taken_by[i]]++)
            distinct++;
    ASSERT_EQ(distinct, 3);
    pthread_mutex_lock(&job_lock);
    hold_open = 1;
    pthread_cond_broadcast(&job_cond);
    pthread_mutex_unlock(&job_lock);
    ASSERT_TRUE(await(13, NWORKERS));
    stp_pool_interrupt();
    for (i = 0; i < NWORKERS; i++)
        pthread_join(th[i], NULL);
    ASSERT_EQ(stp_pool_idle(), 0);
    for (i = 0; i < 13; i++)
        stp_rec_unref(jobs[i]);
}

int main(void)
{
    time_t now = 1800000000;

    stp_clock_set(now);
    test_caps(now);
    test_breaker(now);
    test_no_url(now);
    test_hurry(now);
    test_after_fork();
    test_last_idle_first(); /* last: it interrupts the pool */
    STP_TEST_MAIN_END();
}
