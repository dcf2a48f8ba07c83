/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one time source of the library. Every freshness decision reads
 * stp_now(), so tests can move time: OCSPSTAPLE_FAKE_TIME (seconds since the
 * epoch, read once) pins it in any build, and stp_clock_set() moves it in
 * unit tests.
 */
#ifndef STP_CLOCK_H
#define STP_CLOCK_H

#include <pthread.h>
#include <time.h>

/* Current time (seconds since the epoch). Any thread. */
time_t stp_now(void);

/* Pins the clock at <t>; 0 returns to the real clock. Tests only. */
void stp_clock_set(time_t t);

/* Seconds and milliseconds of the monotonic clock, for timeouts. */
long long stp_monotonic_ms(void);

/* Initialises <c> to time its waits on the monotonic clock (an absolute
 * time from stp_monotonic_ts()). */
void stp_cond_init_monotonic(pthread_cond_t *c);

/* The timespec of monotonic time <at_ms>, for pthread_cond_timedwait(). */
void stp_monotonic_ts(long long at_ms, struct timespec *ts);

#endif
