/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one time source of the library. Every freshness decision reads
 * stp_now(), so tests can move time: OCSPSTAPLE_FAKE_TIME (seconds since the
 * epoch, read once) pins it in any build, and stp_clock_set() moves it in
 * unit tests.
 */
#ifndef STP_CLOCK_H
#define STP_CLOCK_H

#include <time.h>

/* Current time (seconds since the epoch). Any thread. */
time_t stp_now(void);

/* Pins the clock at <t>; 0 returns to the real clock. Tests only. */
void stp_clock_set(time_t t);

/* Seconds and milliseconds of the monotonic clock, for timeouts. */
long long stp_monotonic_ms(void);

#endif
