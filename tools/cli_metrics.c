/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ocspstaple metrics`: the host's Prometheus text exposition. Counters are
 * the sums of the per-process files that every serving process's refresher
 * writes into the store directory every 10 s (metrics-<pid>-<start>,
 * server/metrics.h): handshakes, fetches and their durations, client
 * checks, for every process that used the store (a process that exited
 * keeps counting with its last file). Gauges per certificate come from the
 * store itself, evaluated as `status` does (a subject only from a trusted
 * stored chain). With --textfile DIR, the text goes to DIR/ocspstaple.prom,
 * replaced atomically (node_exporter's textfile collector reads *.prom).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "engine/clock.h"
#include "engine/fetch.h"

#define MAX_NAMES 64

struct sums {
    char names[MAX_NAMES][48];
    unsigned long long vals[MAX_NAMES];
    int n;
    int live, gone;
};

struct certs_ctx {
    const struct cli_store_cmd *cmd;
    FILE *out;
    time_t now;
    int pass;
    int total[2], stapled[2]; /* [role]: 0 staple, 1 client */
};

static void add(struct sums *s, const char *name, unsigned long long v)
{
    int i;

    for (i = 0; i < s->n; i++) {
        if (strcmp(s->names[i], name) == 0) {
            s->vals[i] += v;
            return;
        }
    }
    if (s->n < MAX_NAMES && strlen(name) < sizeof(s->names[0])) {
        snprintf(s->names[s->n], sizeof(s->names[0]), "%s", name);
        s->vals[s->n++] = v;
    }
}

static unsigned long long get(const struct sums *s, const char *name)
{
    int i;

    for (i = 0; i < s->n; i++)
        if (strcmp(s->names[i], name) == 0)
            return s->vals[i];
    return 0;
}

/* stp_store_list_metrics(): one process's "name value" lines. */
static void on_proc(void *arg, const char *proc, const char *text, time_t mtime)
{
    struct sums *s = arg;
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
static void label(FILE *out, const char *v)
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

static void head(FILE *out, const char *name, const char *type,
                 const char *help)
{
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counters(FILE *out, const struct sums *s)
{
    static const long bucket_ms[STP_FETCH_BUCKETS] = STP_FETCH_BUCKET_MS;
    static const char *const clients[] = { "good",  "revoked",   "unknown",
                                           "error", "fail_open", "skipped" };
    unsigned long long cum = 0;
    size_t i;

    head(out, "ocspstaple_processes", "gauge",
         "Processes whose counters are summed here, by state.");
    fprintf(out, "ocspstaple_processes{state=\"running\"} %d\n", s->live);
    fprintf(out, "ocspstaple_processes{state=\"exited\"} %d\n", s->gone);
    head(out, "ocspstaple_fetches_total", "counter",
         "OCSP fetches by the servers of this host, by result.");
    fprintf(out, "ocspstaple_fetches_total{result=\"success\"} %llu\n",
            get(s, "fetch_ok"));
    fprintf(out, "ocspstaple_fetches_total{result=\"error\"} %llu\n",
            get(s, "fetch_fail"));
    fprintf(out, "ocspstaple_fetches_total{result=\"skipped\"} %llu\n",
            get(s, "fetch_skipped"));
    head(out, "ocspstaple_fetch_duration_seconds", "histogram",
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
    head(out, "ocspstaple_handshakes_total", "counter",
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
    head(out, "ocspstaple_store_loads_total", "counter",
         "Responses taken from the store directory instead of a fetch.");
    fprintf(out, "ocspstaple_store_loads_total %llu\n", get(s, "store_load"));
    head(out, "ocspstaple_lock_busy_total", "counter",
         "Refreshes that found another process's fetch running past the "
         "wait.");
    fprintf(out, "ocspstaple_lock_busy_total %llu\n", get(s, "lock_busy"));
    head(out, "ocspstaple_client_checks_total", "counter",
         "Client-certificate OCSP decisions (client_ocsp), by result.");
    for (i = 0; i < sizeof(clients) / sizeof(clients[0]); i++) {
        char name[48];

        snprintf(name, sizeof(name), "client_%s", clients[i]);
        fprintf(out, "ocspstaple_client_checks_total{result=\"%s\"} %llu\n",
                clients[i], get(s, name));
    }
}

/* stp_store_list(): one certificate's gauges (pass 1), counted (pass 0). */
static void on_cert(void *arg, const char *id)
{
    struct certs_ctx *c = arg;
    struct cli_row r;
    int role, present;
    FILE *out = c->out;

    cli_status_row(c->cmd, id, c->now, &r);
    role = strcmp(r.s.role, "client") == 0;
    present = r.have_v && r.verified;
    if (c->pass == 0) {
        c->total[role]++;
        c->stapled[role] += present;
        return;
    }
#define LABELS()                                                    \
    do {                                                            \
        fprintf(out, "{id=\"%.12s\",subject=\"", r.id);             \
        label(out, r.s.subject[0] != '\0' ? r.s.subject : "-");     \
        fprintf(out, "\",role=\"%s\"", role ? "client" : "staple"); \
    } while (0)
    fputs(c->pass == 1 ? "ocspstaple_staple_present" : "", out);
    if (c->pass == 1) {
        LABELS();
        fprintf(out, "} %d\n", present);
    } else if (c->pass == 2 && present) {
        fputs("ocspstaple_cert_status", out);
        LABELS();
        fprintf(out, ",status=\"%s\"} 1\n", stp_cert_status_name(r.v.status));
    } else if (c->pass == 3 && r.have_times) {
        fputs("ocspstaple_response_this_update_timestamp_seconds", out);
        LABELS();
        fprintf(out, "} %lld\n", (long long)r.v.this_update);
    } else if (c->pass == 4 && r.have_times) {
        fputs("ocspstaple_response_next_update_timestamp_seconds", out);
        LABELS();
        fprintf(out, "} %lld\n", (long long)r.v.next_update);
    } else if (c->pass == 5) {
        fputs("ocspstaple_refresh_failures", out);
        LABELS();
        fprintf(out, "} %u\n", r.s.failures);
    } else if (c->pass == 6 && r.s.last_success != 0) {
        fputs("ocspstaple_last_success_timestamp_seconds", out);
        LABELS();
        fprintf(out, "} %lld\n", (long long)r.s.last_success);
    }
#undef LABELS
}

static int certificates(FILE *out, const struct cli_store_cmd *cmd, time_t now)
{
    static const struct {
        const char *name, *type, *help;
    } gauges[] = {
        { "ocspstaple_staple_present", "gauge",
          "1 if the store holds a response valid now that verifies against "
          "the certificate's stored chain, whatever its status." },
        { "ocspstaple_cert_status", "gauge",
          "The certificate status of that response (1 for the status)." },
        { "ocspstaple_response_this_update_timestamp_seconds", "gauge",
          "thisUpdate of the stored response." },
        { "ocspstaple_response_next_update_timestamp_seconds", "gauge",
          "nextUpdate of the stored response." },
        { "ocspstaple_refresh_failures", "gauge",
          "Failed refresh attempts in a row." },
        { "ocspstaple_last_success_timestamp_seconds", "gauge",
          "When a refresh last succeeded." },
    };
    struct certs_ctx c = { cmd, out, now, 0, { 0, 0 }, { 0, 0 } };
    struct stp_err err;
    int i;

    if (stp_store_list(cmd->st, on_cert, &c, &err) < 0) {
        fprintf(stderr, "ocspstaple: %s\n", err.msg);
        return 0;
    }
    head(out, "ocspstaple_certificates", "gauge",
         "Certificates with an entry in the store, by role.");
    fprintf(out, "ocspstaple_certificates{role=\"staple\"} %d\n", c.total[0]);
    fprintf(out, "ocspstaple_certificates{role=\"client\"} %d\n", c.total[1]);
    head(out, "ocspstaple_certificates_valid", "gauge",
         "Of those, the ones with a verified response valid now.");
    fprintf(out, "ocspstaple_certificates_valid{role=\"staple\"} %d\n",
            c.stapled[0]);
    fprintf(out, "ocspstaple_certificates_valid{role=\"client\"} %d\n",
            c.stapled[1]);
    for (i = 0; i < (int)(sizeof(gauges) / sizeof(gauges[0])); i++) {
        head(out, gauges[i].name, gauges[i].type, gauges[i].help);
        c.pass = i + 1;
        stp_store_list(cmd->st, on_cert, &c, &err);
    }
    return 1;
}

/* Writes <text> to <dir>/ocspstaple.prom: a temp file, then a rename. */
static int write_textfile(const char *dir, const char *text, size_t len)
{
    char tmp[4096], path[4096];
    size_t done = 0;
    int fd, ok;

    if (snprintf(path, sizeof(path), "%s/ocspstaple.prom", dir)
            >= (int)sizeof(path)
        || snprintf(tmp, sizeof(tmp), "%s/.ocspstaple.prom.XXXXXX", dir)
               >= (int)sizeof(tmp)) {
        fprintf(stderr, "ocspstaple: --textfile %s: path too long\n", dir);
        return 0;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "ocspstaple: %s: %s\n", tmp, strerror(errno));
        return 0;
    }
    while (done < len) {
        ssize_t n = write(fd, text + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += (size_t)n;
    }
    ok = done == len && fchmod(fd, 0644) == 0 && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "ocspstaple: %s: cannot write: %s\n", path,
                strerror(errno));
        unlink(tmp);
        return 0;
    }
    return 1;
}

static void metrics_usage(FILE *out)
{
    fprintf(out, "usage: ocspstaple metrics [--store-dir DIR] [--conf FILE] "
                 "[--textfile DIR]\n"
                 "  The host's metrics in the Prometheus text format: counters "
                 "summed over\n"
                 "  every server process that uses the store, gauges per "
                 "certificate. With\n"
                 "  --textfile, written atomically to DIR/ocspstaple.prom "
                 "(node_exporter).\n");
}

int cli_metrics(int argc, char **argv)
{
    static const struct cli_store_spec spec = { NULL, 0, metrics_usage,
                                                "textfile", 't' };
    struct cli_store_cmd cmd;
    struct sums sums;
    struct stp_err err;
    char *text = NULL;
    size_t len = 0;
    FILE *out;
    int rc, ok;

    if (!cli_store_cmd_open(&spec, argc, argv, &cmd, &rc))
        return rc;
    memset(&sums, 0, sizeof(sums));
    out = open_memstream(&text, &len);
    ok = out != NULL
         && stp_store_list_metrics(cmd.st, on_proc, &sums, &err) >= 0;
    if (out != NULL && !ok)
        fprintf(stderr, "ocspstaple: %s\n", err.msg);
    if (ok) {
        counters(out, &sums);
        ok = certificates(out, &cmd, stp_now());
    }
    if (out != NULL)
        fclose(out);
    if (ok && cmd.value != NULL)
        ok = write_textfile(cmd.value, text, len);
    else if (ok)
        fwrite(text, 1, len, stdout);
    free(text);
    cli_store_cmd_close(&cmd);
    return ok ? CLI_EXIT_GOOD : CLI_EXIT_ERROR;
}
