/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Prometheus text exposition of the host's counters (see expo.h).
 */
#include "engine/expo.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/fetch.h"

static void add(struct stp_expo_sums *s, const char *name, unsigned long long v)
{
    int i;

    for (i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], name) == 0) {
            s->vals[i] += v;
            return;
        }
    }
    if (s->n < STP_EXPO_MAX_NAMES && strlen(name) < sizeof(s->names[0])) {
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
        s->vals[s->n++] = v;
    }
}

static unsigned long long get(const struct stp_expo_sums *s, const char *name)
{
    int i;

    for (i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return s->vals[i];
    return 0;
}

void stp_expo_add_process(void *arg, const char *proc, const char *text,
                          time_t mtime)
{
    struct stp_expo_sums *s = arg;
    const char *line = text;
    long pid = strtol(proc, NULL, 10);

    (void)mtime;
    if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM))
        s->live++;
    else
        s->gone++;
    while (*line != '\0') {
        char name[48];
        unsigned long long v;
        const char *nl = strchr(line, '\n');

        if (sscanf(line, "%47[a-z0-9_] %llu", name, &v) == 2)
            add(s, name, v);
        line = nl != NULL ? nl + 1 : line + strlen(line);
    }
}

/* A label value, escaped as the exposition format wants. */
void stp_expo_label(FILE *out, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\' || *v == '"')
            fprintf(out, "\\%c", *v);
        else if (*v == '\n')
            fputs("\\n", out);
        else
            fputc(*v, out);
    }
}

void stp_expo_head(FILE *out, const char *name, const char *type,
                   const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void stp_expo_counters(FILE *out, const struct stp_expo_sums *s)
{
    static const long bucket_ms[STP_FETCH_BUCKETS] = STP_FETCH_BUCKET_MS;
    static const char *const clients[] = { "good",  "revoked",   "unknown",
                                           "error", "fail_open", "skipped" };
    unsigned long long cum = 0;
    size_t i;

    stp_expo_head(out, "ocspstaple_processes", "gauge",
                  "Processes whose counters are summed here, by state.");
    fprintf(out, "ocspstaple_processes{state=\"running\"} %d\n", s->live);
    fprintf(out, "ocspstaple_processes{state=\"exited\"} %d\n", s->gone);
    stp_expo_head(out, "ocspstaple_fetches_total", "counter",
                  "OCSP fetches by the servers of this host, by result.");
    fprintf(out, "ocspstaple_fetches_total{result=\"success\"} %llu\n",
            get(s, "fetch_ok"));
    fprintf(out, "ocspstaple_fetches_total{result=\"error\"} %llu\n",
            get(s, "fetch_fail"));
    fprintf(out, "ocspstaple_fetches_total{result=\"skipped\"} %llu\n",
            get(s, "fetch_skipped"));
    stp_expo_head(out, "ocspstaple_fetch_duration_seconds", "histogram",
                  "Duration of the OCSP fetches that went to a responder.");
    for (i = 0; i < STP_FETCH_BUCKETS; i++) {
        char name[48];

        snprintf(name, sizeof(name), "fetch_duration_bucket_%ld", bucket_ms[i]);
        cum += get(s, name);
        fprintf(out,
                "ocspstaple_fetch_duration_seconds_bucket{le=\"%g\"} %llu\n",
                bucket_ms[i] / 1000.0, cum);
    }
    cum += get(s, "fetch_duration_bucket_inf");
    fprintf(out, "ocspstaple_fetch_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
            cum);
    fprintf(out, "ocspstaple_fetch_duration_seconds_sum %.3f\n",
            get(s, "fetch_duration_sum_ms") / 1000.0);
    fprintf(out, "ocspstaple_fetch_duration_seconds_count %llu\n", cum);
    stp_expo_head(
        out, "ocspstaple_handshakes_total", "counter",
        "Server handshakes that asked for a certificate status, by what they "
        "got.");
    fprintf(out, "ocspstaple_handshakes_total{staple=\"ours\"} %llu\n",
            get(s, "staples_served"));
    fprintf(out, "ocspstaple_handshakes_total{staple=\"application\"} %llu\n",
            get(s, "app_stapled"));
    fprintf(out, "ocspstaple_handshakes_total{staple=\"none\"} %llu\n",
            get(s, "staples_none") + get(s, "staples_expired"));
    fprintf(out, "ocspstaple_handshakes_total{staple=\"refused\"} %llu\n",
            get(s, "handshakes_refused"));
    stp_expo_head(
        out, "ocspstaple_store_loads_total", "counter",
        "Responses taken from the store directory instead of a fetch.");
    fprintf(out, "ocspstaple_store_loads_total %llu\n", get(s, "store_load"));
    stp_expo_head(out, "ocspstaple_fleet_taken_total", "counter",
                  "Responses taken from the fleet (fleet_url) instead of a "
                  "fetch.");
    fprintf(out, "ocspstaple_fleet_taken_total %llu\n", get(s, "fleet_taken"));
    stp_expo_head(
        out, "ocspstaple_lock_busy_total", "counter",
        "Refreshes that found another process holding the certificate's "
        "lock for longer than a fetch takes.");
    fprintf(out, "ocspstaple_lock_busy_total %llu\n", get(s, "lock_busy"));
    stp_expo_head(
        out, "ocspstaple_client_checks_total", "counter",
        "Client-certificate OCSP decisions (client_ocsp), by result.");
    for (i = 0; i < sizeof(clients) / sizeof(clients[0]); i++) {
        char name[48];

        snprintf(name, sizeof(name), "client_%s", clients[i]);
        fprintf(out, "ocspstaple_client_checks_total{result=\"%s\"} %llu\n",
                clients[i], get(s, name));
    }
}

void stp_expo_cert(FILE *out, const char *name, const char *id,
                   const char *subject, int client)
{
    fprintf(out, "%s{id=\"%.12s\",subject=\"", name, id);
    stp_expo_label(out, subject[0] != '\0' ? subject : "-");
    fprintf(out, "\",role=\"%s\"", client ? "client" : "staple");
}
