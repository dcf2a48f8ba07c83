/* SPDX-License-Identifier: Apache-2.0 */
/*
 * When to refresh a certificate's response next: pure arithmetic on the
 * policy, the current time, the held response's validity and the count of
 * consecutive failures. No I/O, no locks, no globals, no clock: the caller
 * passes time and randomness in, so the rules are tested with a table.
 *
 * With a usable response and no failure: refresh when refresh_margin
 * percent of its validity is left (Ferron: 25%), pulled earlier by up to
 * refresh_jitter, then clamped to [now + refresh_min, now + refresh_max].
 * After failures: retry_base * 2^(failures-1) capped at retry_max, plus up
 * to a quarter of that as jitter. Without a usable response and no failure:
 * now. Never later than nextUpdate - clock_skew while a response is held,
 * but, with a response and no failure, at least STP_SCHED_MIN_SUCCESS_GAP
 * ahead (a response that lives less than clock_skew must not make us ask
 * every second), and never earlier than now.
 */
#ifndef STP_SCHEDULE_H
#define STP_SCHEDULE_H

#include <stdint.h>
#include <time.h>

struct stp_sched_params {
    int margin_pct;  /* percent of validity left when a refresh is due */
    long jitter;     /* s, maximum */
    long min_delay;  /* s */
    long max_delay;  /* s */
    long retry_base; /* s */
    long retry_max;  /* s */
    long skew;       /* s */
};

struct stp_sched_in {
    time_t now;
    int have_response; /* a verified response is held (may be revoked) */
    time_t this_update;
    time_t next_update; /* effective (nextUpdate or thisUpdate + cache_ttl) */
    unsigned failures;  /* consecutive failed attempts */
    uint32_t random;    /* uniform random bits, for jitter */
    /* the response came from another host (the fleet), not from the
     * responder: refresh_min and the success gap, which spare the
     * responder, do not hold this host back from the fleet's schedule */
    int from_peer;
};

/* The time of the next attempt. Pure; any thread. */
time_t stp_sched_next(const struct stp_sched_params *p,
                      const struct stp_sched_in *in);

/*
 * Whether a held response is due for refresh at in->now: margin percent of
 * its validity is left, or refresh_max has passed since its thisUpdate, or
 * it is within clock_skew of its nextUpdate. Without a response: due. No
 * jitter and no minimum delay (those shape when to try next, not whether a
 * response is still good enough). Pure; any thread.
 */
int stp_sched_due(const struct stp_sched_params *p,
                  const struct stp_sched_in *in);

/* The backoff delay after <failures> consecutive failures (>= 1). */
long stp_sched_backoff(const struct stp_sched_params *p, unsigned failures);

/* Two successful refreshes of one certificate are at least this far apart
 * (s): a responder whose responses live less than clock_skew must not be
 * asked every second. */
#define STP_SCHED_MIN_SUCCESS_GAP 10

/* How one refresh attempt of a certificate in a server ended. */
enum stp_attempt {
    STP_ATTEMPT_OK,        /* a verified response is held (fetched or stored) */
    STP_ATTEMPT_FAILED,    /* the fetch or its verification failed */
    STP_ATTEMPT_BUSY,      /* another process held the lock past a fetch */
    STP_ATTEMPT_DEFERRED,  /* another process's attempt failed: its backoff */
    STP_ATTEMPT_NO_ISSUER, /* the issuer certificate is not known (yet) */
    STP_ATTEMPT_NO_FETCH,  /* fetch = no: only the store was read */
    STP_ATTEMPT_NO_URL     /* no responder: stapling does not apply */
};

struct stp_sched_after {
    time_t next; /* when to look at the certificate again */
    int done;    /* never again (not applicable) */
};

/*
 * When a server's refresher looks at a certificate again after attempt <a>
 * at <now>. <planned> is the cycle's own answer (stp_sched_next() for the
 * response it holds and the failures the store recorded; 0 when the cycle
 * did not run), <failures> this process's consecutive failures including
 * this one. The rules: OK keeps <planned> (stp_sched_next() already keeps
 * the success gap), at least 1 s ahead; FAILED keeps <planned> if it is still
 * ahead, else backs off by <failures>, at least 1 s ahead; BUSY backs off by
 * <failures> too (the lock was held past the fetch timeout: a stuck or
 * hostile holder must cost one bounded wait per backoff step, not one a
 * second); DEFERRED keeps <planned>, the next attempt another process
 * scheduled after its failure, at least 1 s ahead; NO_ISSUER waits
 * retry_max (a sibling context may bring the issuer); NO_FETCH looks at the
 * store again after refresh_min; NO_URL is done. Pure; any thread.
 */
struct stp_sched_after stp_sched_after_attempt(const struct stp_sched_params *p,
                                               enum stp_attempt a, time_t now,
                                               time_t planned,
                                               unsigned failures);

#endif
