/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Process-wide counters (Ferron's fetches/stapled gauges, haproxy's
 * stapled/failed counters). Lock-free atomics: the status callback bumps
 * them on every handshake. Read by name through the provider's parameters
 * ("metric.<name>") and ocspstaple_metric().
 */
#ifndef STP_METRICS_H
#define STP_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/fetch.h"

enum stp_metric {
    STP_M_STAPLES_SERVED = 0, /* handshakes that got our staple */
    STP_M_STAPLES_NONE,       /* status requested, nothing to staple */
    STP_M_STAPLES_EXPIRED,    /* held staple was at/past nextUpdate */
    STP_M_HANDSHAKES_REFUSED, /* revoked certificate refused (must/always) */
    STP_M_APP_STAPLED,        /* the application's own callback stapled */
    STP_M_FETCH_OK,
    STP_M_FETCH_FAIL,
    STP_M_FETCH_SKIPPED,    /* certificate names no responder */
    STP_M_STORE_LOAD,       /* responses taken from the store directory */
    STP_M_FLEET_TAKEN,      /* responses taken from the fleet (fleet_url) */
    STP_M_LOCK_BUSY,        /* another process held the lock past a fetch */
    STP_M_CERTS,            /* certificates tracked (gauge) */
    STP_M_REFRESHERS,       /* refresher threads started in this process */
    STP_M_CLIENT_GOOD,      /* client chains admitted on a "good" answer */
    STP_M_CLIENT_REVOKED,   /* refused: a certificate is revoked */
    STP_M_CLIENT_UNKNOWN,   /* "unknown" answers (refused or allowed) */
    STP_M_CLIENT_ERROR,     /* refused: no answer in time (fail closed) */
    STP_M_CLIENT_FAIL_OPEN, /* admitted without an answer (fail open) */
    STP_M_CLIENT_SKIPPED,   /* a certificate named no responder: skipped */
    STP_M_CLIENT_CERTS,     /* client certificates held (gauge) */
    STP_M_COUNT
};

extern _Atomic uint64_t stp_metrics[STP_M_COUNT];

static inline void stp_metric_inc(enum stp_metric m)
{
    atomic_fetch_add_explicit(&stp_metrics[m], 1, memory_order_relaxed);
}

/* Durations of the fetches that reached a responder: a histogram with
 * these upper bounds in milliseconds (and +Inf), and the sum. */
extern const long stp_fetch_bucket_ms[STP_FETCH_BUCKETS];

/* A fetch that took <ms>. Lock-free. */
void stp_metric_observe_fetch(long long ms);

/*
 * This process's counters as "name value" lines (the histogram as
 * fetch_duration_bucket_<ms> for each bound, fetch_duration_bucket_inf,
 * fetch_duration_sum_ms), for the store's per-process file (store.h,
 * stp_store_write_metrics()), which `ocspstaple metrics` adds up over the
 * host. Returns the length written (truncated to <len>).
 */
size_t stp_metrics_format(char *buf, size_t len);

/* In a fork child: the counters start again at 0 (the parent's are the
 * parent's); the gauges (certificates held) stay. */
void stp_metrics_after_fork(void);

/* Name of a metric, e.g. "staples_served". */
const char *stp_metric_name(enum stp_metric m);

/* Looks a metric up by name. Returns 1 and sets *<value>, or 0. */
int stp_metric_get(const char *name, uint64_t *value);

#endif
