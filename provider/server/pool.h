/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fetch pool's queues: which certificate a refresher worker works on
 * next. Each responder host (the scheme://host:port of the URL a record is
 * fetched from) has its own FIFO of due records, at most fetch_per_host of
 * them in flight at once, and a circuit breaker: BREAKER_FAULTS responder
 * faults in a row (no answer, a timeout, HTTP 5xx, tryLater...) pause the
 * whole host for retry_base, doubling up to retry_max at each new pause; when
 * a pause ends one request probes the host, and its answer closes the
 * breaker (or pauses it again). A pause is said once at WARN, its end once
 * at INFO. The global cap is the number of workers (fetch_concurrency): a
 * slow or hanging responder holds at most its own fetch_per_host workers,
 * and only its own certificates wait. No I/O; any thread. The cap for the
 * whole host machine (fetch_per_host_total) is not here: a worker takes one
 * of the store's fetch slots around the request itself (refresh.c).
 */
#ifndef STP_SERVER_POOL_H
#define STP_SERVER_POOL_H

#include <time.h>

#include "server/cache.h"

#define STP_POOL_BREAKER_FAULTS 3 /* faults in a row that pause a host */
#define STP_POOL_HOST_KEY_LEN   128

/* The host of <url>, as its queue and its fetch slots know it:
 * "scheme://host:port" in lower case ("" for none). */
void stp_pool_host_key(const char *url, char key[STP_POOL_HOST_KEY_LEN]);

enum stp_pool_outcome {
    STP_POOL_ANSWERED, /* the responder answered (whatever the verdict) */
    STP_POOL_FAULT,    /* it did not answer usably: counts to the breaker */
    STP_POOL_NOTHING   /* no request went out (store, lock, no URL...) */
};

/* Limits: <per_host> in flight per host; pauses from <pause_base> to
 * <pause_max> seconds. Takes effect for the next take. */
void stp_pool_configure(int per_host, long pause_base, long pause_max);

/*
 * Queues <rec> (a new reference is taken) behind the others of the host of
 * <url> (NULL: a queue of its own with no host cap, for records that will
 * not fetch), or before them when rec->urgent is set. Sets rec->busy until
 * stp_pool_done(). Returns 0 if out of memory (the record stays idle).
 */
int stp_pool_submit(struct stp_rec *rec, const char *url);

/*
 * A handshake is about to wait for <rec>'s first answer (a client
 * certificate met for the first time, a cold Must-Staple certificate): sets
 * rec->urgent, and moves the record to the head of its host's queue if it
 * is queued, so that it waits for at most the fetches already in flight,
 * not for every certificate queued before it (thousands at a cold start).
 * The flag is cleared when a worker takes the record.
 */
void stp_pool_hurry(struct stp_rec *rec);

/*
 * The next record a worker may work on now, or NULL after <wait_ms>
 * (< 0: wait until one comes or stp_pool_interrupt()). *<slot> identifies it
 * for stp_pool_done(). The caller owns the reference returned. A worker
 * idle waits here, and may call it again after a NULL (a timeout).
 */
struct stp_rec *stp_pool_take(long long wait_ms, int *slot);

/* The work on the record taken in <slot> ended with <o> at <now>: frees
 * its host's slot, feeds the breaker, clears rec->busy. Wakes nobody: the
 * caller (a worker, or the dispatcher doing a worker's job) calls
 * stp_pool_take() next, on the same thread, and that takes what the freed
 * slot lets go (a record queued meanwhile waits for it rather than wake an
 * idle worker). */
void stp_pool_done(struct stp_rec *rec, int slot, enum stp_pool_outcome o,
                   time_t now);

/* Wakes every waiting worker (the process is stopping). */
void stp_pool_interrupt(void);

/* Records queued or in flight, for tests and metrics. */
size_t stp_pool_pending(void);

/* Workers waiting in stp_pool_take() now, for tests. The one that began
 * to wait last is woken first (pool.c). */
size_t stp_pool_idle(void);

/* Whether the host of <url> is paused now (for tests and status). */
int stp_pool_host_paused(const char *url, time_t now);

/* In a fork child: empties the queues (their records become idle), forgets
 * what was in flight in the parent, and reinitialises the lock. */
void stp_pool_after_fork(void);

#endif
