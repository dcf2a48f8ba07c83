/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Counters (see metrics.h).
 */
#include "server/metrics.h"

#include <stdio.h>

#include <string.h>

_Atomic uint64_t stp_metrics[STP_M_COUNT];

static const char *const names[STP_M_COUNT] = {
    [STP_M_STAPLES_SERVED] = "staples_served",
    [STP_M_STAPLES_NONE] = "staples_none",
    [STP_M_STAPLES_EXPIRED] = "staples_expired",
    [STP_M_HANDSHAKES_REFUSED] = "handshakes_refused",
    [STP_M_APP_STAPLED] = "app_stapled",
    [STP_M_FETCH_OK] = "fetch_ok",
    [STP_M_FETCH_FAIL] = "fetch_fail",
    [STP_M_FETCH_SKIPPED] = "fetch_skipped",
    [STP_M_STORE_LOAD] = "store_load",
    [STP_M_FLEET_TAKEN] = "fleet_taken",
    [STP_M_LOCK_BUSY] = "lock_busy",
    [STP_M_CERTS] = "certificates",
    [STP_M_REFRESHERS] = "refreshers",
    [STP_M_CLIENT_GOOD] = "client_good",
    [STP_M_CLIENT_REVOKED] = "client_revoked",
    [STP_M_CLIENT_UNKNOWN] = "client_unknown",
    [STP_M_CLIENT_ERROR] = "client_error",
    [STP_M_CLIENT_FAIL_OPEN] = "client_fail_open",
    [STP_M_CLIENT_SKIPPED] = "client_skipped",
    [STP_M_CLIENT_CERTS] = "client_certificates",
};

const char *stp_metric_name(enum stp_metric m)
{
    return (unsigned)m < STP_M_COUNT ? names[m] : "?";
}

int stp_metric_get(const char *name, uint64_t *value)
{
    int i;

    for (i = 0; i < STP_M_COUNT; i++) {
        if (strcmp(names[i], name) == 0) {
            *value = atomic_load(&stp_metrics[i]);
            return 1;
        }
    }
    return 0;
}

const long stp_fetch_bucket_ms[STP_FETCH_BUCKETS] = STP_FETCH_BUCKET_MS;
static _Atomic uint64_t fetch_hist[STP_FETCH_BUCKETS + 1];
static _Atomic uint64_t fetch_ms_sum;

void stp_metric_observe_fetch(long long ms)
{
    int i;

    if (ms < 0)
        ms = 0;
    for (i = 0; i < STP_FETCH_BUCKETS && ms > stp_fetch_bucket_ms[i]; i++)
        ;
    atomic_fetch_add_explicit(&fetch_hist[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&fetch_ms_sum, (uint64_t)ms,
                              memory_order_relaxed);
}

size_t stp_metrics_format(char *buf, size_t len)
{
    size_t n = 0;
    int i;

#define PUT(...)                                                        \
    do {                                                                \
        int w_ = n < len ? snprintf(buf + n, len - n, __VA_ARGS__) : 0; \
        if (w_ > 0)                                                     \
            n += (size_t)w_;                                            \
    } while (0)
    for (i = 0; i < STP_M_COUNT; i++)
        PUT("%s %llu\n", names[i],
            (unsigned long long)atomic_load(&stp_metrics[i]));
    for (i = 0; i < STP_FETCH_BUCKETS; i++)
        PUT("fetch_duration_bucket_%ld %llu\n", stp_fetch_bucket_ms[i],
            (unsigned long long)atomic_load(&fetch_hist[i]));
    PUT("fetch_duration_bucket_inf %llu\n",
        (unsigned long long)atomic_load(&fetch_hist[STP_FETCH_BUCKETS]));
    PUT("fetch_duration_sum_ms %llu\n",
        (unsigned long long)atomic_load(&fetch_ms_sum));
#undef PUT
    return n < len ? n : len;
}

void stp_metrics_after_fork(void)
{
    int i;

    for (i = 0; i < STP_M_COUNT; i++)
        if (i != STP_M_CERTS && i != STP_M_CLIENT_CERTS)
            atomic_store(&stp_metrics[i], 0);
    for (i = 0; i <= STP_FETCH_BUCKETS; i++)
        atomic_store(&fetch_hist[i], 0);
    atomic_store(&fetch_ms_sum, 0);
}
