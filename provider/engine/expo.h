/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host's counters in the Prometheus text exposition format: the sum of
 * the per-process counters files that every serving process writes into
 * the store directory (store.h, stp_store_write_metrics(); the names are
 * server/metrics.h's), as `ocspstaple metrics` and metrics_file show them.
 * Prometheus naming: base units (seconds), _total on counters only, the
 * result or status as a label, no label of unbounded cardinality. Pure
 * formatting: no I/O but the FILE given.
 */
#ifndef STP_ENGINE_EXPO_H
#define STP_ENGINE_EXPO_H

#include <stdio.h>
#include <time.h>

#define STP_EXPO_MAX_NAMES 64

/* Counters summed over processes, by name. */
struct stp_expo_sums {
    char names[STP_EXPO_MAX_NAMES][48];
    unsigned long long vals[STP_EXPO_MAX_NAMES];
    int n;
    int live, gone; /* processes still running, and exited */
};

/*
 * Adds one process's counters file (<proc> "<pid>-<start>", <text> its
 * "name value" lines) to the sums in <arg>, a struct stp_expo_sums (zeroed
 * first); the callback of stp_store_list_metrics().
 */
void stp_expo_add_process(void *arg, const char *proc, const char *text,
                          time_t mtime);

/* Writes the counters of <s>, each with its HELP and TYPE lines. */
void stp_expo_counters(FILE *out, const struct stp_expo_sums *s);

/* "# HELP name help" and "# TYPE name type". */
void stp_expo_head(FILE *out, const char *name, const char *type,
                   const char *help);

/*
 * The start of a per-certificate series: `name{id="<12 hex of id>",
 * subject="<subject, escaped; "-" when empty>",role="staple|client"`; the
 * caller adds its own labels, "}" and the value.
 */
void stp_expo_cert(FILE *out, const char *name, const char *id,
                   const char *subject, int client);

/* A label value, escaped as the format wants (\\, ", newline). */
void stp_expo_label(FILE *out, const char *v);

#endif
