/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stp_now(): wall clock, or a fixed time for tests (see clock.h).
 */
#include "engine/clock.h"

#include <pthread.h>
#include <stdlib.h>

static volatile time_t fake_now;
static pthread_once_t fake_once = PTHREAD_ONCE_INIT;

static void read_fake_env(void)
{
    /* secure_getenv: a setuid program must not let its caller move the
     * clock that decides whether a response is still valid */
    const char *v = secure_getenv("OCSPSTAPLE_FAKE_TIME");
    char *end = NULL;
    long long t;

    if (v == NULL || *v == '\0')
        return;
    t = strtoll(v, &end, 10);
    if (end != NULL && *end == '\0' && t > 0)
        fake_now = (time_t)t;
}

time_t stp_now(void)
{
    pthread_once(&fake_once, read_fake_env);
    if (fake_now != 0)
        return fake_now;
    return time(NULL);
}

void stp_clock_set(time_t t)
{
    pthread_once(&fake_once, read_fake_env);
    fake_now = t;
}

long long stp_monotonic_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void stp_cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t a;

    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

void stp_monotonic_ts(long long at_ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(at_ms / 1000);
    ts->tv_nsec = (long)(at_ms % 1000) * 1000000L;
}
