/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Counters (see metrics.h).
 */
#include "server/metrics.h"

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
