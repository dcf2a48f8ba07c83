/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Refresh schedule (see schedule.h): the haproxy/nginx/Ferron formulas without
 * their task code.
 */
#include "engine/schedule.h"

long stp_sched_backoff(const struct stp_sched_params *p, unsigned failures)
{
    long delay = p->retry_base;
    unsigned i;

    for (i = 1; i < failures && delay < p->retry_max; i++)
        delay *= 2;
    return delay < p->retry_max ? delay : p->retry_max;
}

static long jitter_of(uint32_t random, long max)
{
    if (max <= 0)
        return 0;
    return (long)(random % ((uint32_t)max + 1));
}

time_t stp_sched_next(const struct stp_sched_params *p,
                      const struct stp_sched_in *in)
{
    time_t t;

    if (in->failures > 0) {
        long delay = stp_sched_backoff(p, in->failures);

        t = in->now + delay + jitter_of(in->random, delay / 4);
    } else if (!in->have_response) {
        return in->now;
    } else {
        time_t validity = in->next_update - in->this_update;

        t = in->next_update - validity * p->margin_pct / 100;
        t -= jitter_of(in->random, p->jitter);
        if (t < in->now + p->min_delay && !in->from_peer)
            t = in->now + p->min_delay;
        if (t > in->now + p->max_delay)
            t = in->now + p->max_delay;
    }
    if (in->have_response && t > in->next_update - p->skew)
        t = in->next_update - p->skew;
    /* a responder whose responses live less than clock_skew must not be
     * asked every second */
    if (in->have_response && in->failures == 0 && !in->from_peer
        && t < in->now + STP_SCHED_MIN_SUCCESS_GAP)
        t = in->now + STP_SCHED_MIN_SUCCESS_GAP;
    return t < in->now ? in->now : t;
}

int stp_sched_due(const struct stp_sched_params *p,
                  const struct stp_sched_in *in)
{
    time_t validity = in->next_update - in->this_update;

    if (!in->have_response)
        return 1;
    return in->now >= in->next_update - validity * p->margin_pct / 100
           || in->now >= in->this_update + p->max_delay
           || in->now >= in->next_update - p->skew;
}

struct stp_sched_after stp_sched_after_attempt(const struct stp_sched_params *p,
                                               enum stp_attempt a, time_t now,
                                               time_t planned,
                                               unsigned failures)
{
    struct stp_sched_after r = { now + 1, 0 };

    switch (a) {
    case STP_ATTEMPT_OK:
    case STP_ATTEMPT_DEFERRED:
        r.next = planned > now ? planned : now + 1;
        break;
    case STP_ATTEMPT_FAILED:
        r.next = planned > now ? planned : now + stp_sched_backoff(p, failures);
        if (r.next < now + 1)
            r.next = now + 1;
        break;
    case STP_ATTEMPT_BUSY:
        r.next = now + stp_sched_backoff(p, failures > 0 ? failures : 1);
        break;
    case STP_ATTEMPT_NO_ISSUER:
        r.next = now + p->retry_max;
        break;
    case STP_ATTEMPT_NO_FETCH:
        r.next = now + p->min_delay;
        break;
    case STP_ATTEMPT_NO_URL:
        r.done = 1;
        break;
    }
    return r;
}
