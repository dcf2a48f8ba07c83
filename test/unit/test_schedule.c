/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Table test of the refresh schedule (engine/schedule.h): when to try
 * next, whether a held response is due, and what follows each attempt.
 */
#include "engine/schedule.h"

#include <limits.h>

#include "stp_test.h"

#define H 3600L
#define D 86400L

static const struct stp_sched_params P = { .margin_pct = 25,
                                           .jitter = 300,
                                           .min_delay = 60,
                                           .max_delay = D,
                                           .retry_base = 60,
                                           .retry_max = H,
                                           .skew = 300 };

struct row {
    const char *name;
    int have;
    long this_ago; /* thisUpdate = now - this_ago */
    long next_in;  /* nextUpdate = now + next_in */
    unsigned fails;
    unsigned rnd;
    long want; /* expected delay from now */
    int peer;  /* from_peer: the response came from the fleet */
};

static const struct row rows[] = {
    { "cold store: now", 0, 0, 0, 0, 7, 0, 0 },
    /* 4 days valid, 1 elapsed: 25% left at 3 days from thisUpdate, i.e. 2d
     * from now, but never more than max delay (1d) ahead */
    { "4d response: capped by max delay 1d", 1, D, 3 * D, 0, 0, D, 0 },
    /* 8h valid, fresh: refresh at 6h; jitter 0 */
    { "8h response: at 25% left", 1, 0, 8 * H, 0, 0, 6 * H, 0 },
    { "8h response: jitter pulls earlier", 1, 0, 8 * H, 0, 300, 6 * H - 300,
      0 },
    { "jitter is modulo max+1", 1, 0, 8 * H, 0, 301, 6 * H, 0 },
    /* margin already passed: min delay */
    { "inside margin: min delay", 1, 7 * H, H, 0, 0, 60, 0 },
    /* nearly expired: min delay would pass nextUpdate - skew -> capped */
    /* ... but never closer than the success gap (10 s) */
    { "near expiry: capped at next-skew, gap", 1, 8 * H, 200, 0, 0, 10, 0 },
    { "2 min response, skew 5 min: the gap", 1, 10, 110, 0, 0, 10, 0 },
    { "near expiry 400s: min delay fits", 1, 8 * H, 400, 0, 0, 60, 0 },
    { "near expiry 330s: next-skew beats min", 1, 8 * H, 330, 0, 0, 30, 0 },
    /* failures: backoff 60, 120, 240 ... capped at 1h; jitter <= delay/4 */
    { "1 failure, cold: base", 0, 0, 0, 1, 0, 60, 0 },
    { "2 failures, cold", 0, 0, 0, 2, 0, 120, 0 },
    { "3 failures, cold, jitter 15", 0, 0, 0, 3, 15, 255, 0 },
    { "10 failures: capped", 0, 0, 0, 10, 0, H, 0 },
    { "40 failures: no overflow", 0, 0, 0, 40, 0, H, 0 },
    /* failure while holding a response: never past next - skew */
    { "failure, response 10min left", 1, 8 * H, 600, 8, 0, 300, 0 },
    { "failure, response days left", 1, D, 3 * D, 3, 0, 240, 0 },
    /* a response taken from the fleet: neither min delay nor the success
     * gap holds this host back from the fleet's schedule (an 8h response
     * whose 25% margin begins in 30 s) */
    { "from the fleet: due in 30 s, before min delay", 1, 6 * H - 30,
      2 * H + 30, 0, 0, 30, 1 },
    { "the same fetched here: min delay", 1, 6 * H - 30, 2 * H + 30, 0, 0, 60,
      0 },
    { "from the fleet, inside margin: at once", 1, 7 * H, H, 0, 0, 0, 1 },
};

/* stp_sched_due: margin, max delay and skew, with no jitter or minimum */
static void test_due(time_t now)
{
    static const struct {
        const char *name;
        int have;
        long this_ago, next_in;
        int want;
    } due[] = {
        { "no response", 0, 0, 0, 1 },
        { "8h response, fresh", 1, 0, 8 * H, 0 },
        { "8h response, 26% left", 1, 8 * H - 2 * H - 300, 2 * H + 300, 0 },
        { "8h response, 25% left", 1, 6 * H, 2 * H, 1 },
        { "2 min response, 90% left: skew", 1, 12, 108, 1 },
        { "4d response, 2d old: max delay", 1, 2 * D, 2 * D, 1 },
    };
    size_t i;

    for (i = 0; i < sizeof(due) / sizeof(due[0]); i++) {
        struct stp_sched_in in = { .now = now,
                                   .have_response = due[i].have,
                                   .this_update = now - due[i].this_ago,
                                   .next_update = now + due[i].next_in };

        if (stp_sched_due(&P, &in) != due[i].want)
            fprintf(stderr, "due row '%s'\n", due[i].name);
        ASSERT_EQ(stp_sched_due(&P, &in), due[i].want);
    }
}

/* stp_sched_after_attempt: the rules that follow one attempt in a server */
static void test_after(time_t now)
{
    enum { G = STP_SCHED_MIN_SUCCESS_GAP };
    static const struct {
        const char *name;
        enum stp_attempt a;
        long planned_in; /* planned = now + planned_in; LONG_MIN: 0 */
        unsigned fails;
        long want; /* delay from now */
        int done;
    } t[] = {
        { "ok: the cycle's plan", STP_ATTEMPT_OK, 6 * H, 0, 6 * H, 0 },
        { "ok: the cycle's short plan", STP_ATTEMPT_OK, G, 0, G, 0 },
        { "ok: plan in the past: 1 s", STP_ATTEMPT_OK, -50, 0, 1, 0 },
        { "failed: the cycle's plan ahead", STP_ATTEMPT_FAILED, 90, 1, 90, 0 },
        { "failed: plan now -> backoff", STP_ATTEMPT_FAILED, 0, 1, 60, 0 },
        { "failed: plan past -> backoff", STP_ATTEMPT_FAILED, -5, 3, 240, 0 },
        { "failed: backoff capped", STP_ATTEMPT_FAILED, LONG_MIN, 30, H, 0 },
        { "busy: backoff", STP_ATTEMPT_BUSY, 6 * H, 1, 60, 0 },
        { "deferred: the other's plan", STP_ATTEMPT_DEFERRED, 90, 0, 90, 0 },
        { "deferred: plan past: 1 s", STP_ATTEMPT_DEFERRED, -3, 0, 1, 0 },
        { "busy again: backoff", STP_ATTEMPT_BUSY, 6 * H, 3, 240, 0 },
        { "no issuer: retry max", STP_ATTEMPT_NO_ISSUER, LONG_MIN, 0, H, 0 },
        { "fetch = no: refresh min", STP_ATTEMPT_NO_FETCH, LONG_MIN, 0, 60, 0 },
        { "no URL: done", STP_ATTEMPT_NO_URL, LONG_MIN, 0, 1, 1 },
    };
    size_t i;

    for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        time_t planned =
            t[i].planned_in == LONG_MIN ? 0 : now + t[i].planned_in;
        struct stp_sched_after r =
            stp_sched_after_attempt(&P, t[i].a, now, planned, t[i].fails);

        if (r.next - now != t[i].want || r.done != t[i].done)
            fprintf(stderr, "after row '%s'\n", t[i].name);
        ASSERT_EQ((long)(r.next - now), t[i].want);
        ASSERT_EQ(r.done, t[i].done);
    }
}

int main(void)
{
    const time_t now = 1800000000;
    size_t i;

    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        struct stp_sched_in in = { .now = now,
                                   .have_response = r->have,
                                   .this_update = now - r->this_ago,
                                   .next_update = now + r->next_in,
                                   .failures = r->fails,
                                   .random = r->rnd,
                                   .from_peer = r->peer };
        long got = (long)(stp_sched_next(&P, &in) - now);

        if (got != r->want)
            fprintf(stderr, "row '%s'\n", r->name);
        ASSERT_EQ(got, r->want);
    }
    test_due(now);
    test_after(now);
    ASSERT_EQ(stp_sched_backoff(&P, 1), 60);
    ASSERT_EQ(stp_sched_backoff(&P, 7), H);
    STP_TEST_MAIN_END();
}
