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
#include "engine/expo.h"

struct certs_ctx {
    const struct cli_store_cmd *cmd;
    FILE *out;
    time_t now;
    int pass;
    int total[2], stapled[2]; /* [role]: 0 staple, 1 client */
};

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
    switch (c->pass) {
    case 1:
        stp_expo_cert(out, "ocspstaple_staple_present", r.id, r.s.subject,
                      role);
        fprintf(out, "} %d\n", present);
        break;
    case 2:
        if (!present)
            break;
        stp_expo_cert(out, "ocspstaple_cert_status", r.id, r.s.subject, role);
        fprintf(out, ",status=\"%s\"} 1\n", stp_cert_status_name(r.v.status));
        break;
    case 3:
    case 4:
        if (!r.have_times)
            break;
        stp_expo_cert(out,
                      c->pass == 3
                          ? "ocspstaple_response_this_update_timestamp_seconds"
                          : "ocspstaple_response_next_update_timestamp_seconds",
                      r.id, r.s.subject, role);
        fprintf(out, "} %lld\n",
                (long long)(c->pass == 3 ? r.v.this_update : r.v.next_update));
        break;
    case 5:
        stp_expo_cert(out, "ocspstaple_refresh_failures", r.id, r.s.subject,
                      role);
        fprintf(out, "} %u\n", r.s.failures);
        break;
    case 6:
        if (r.s.last_success == 0)
            break;
        stp_expo_cert(out, "ocspstaple_last_success_timestamp_seconds", r.id,
                      r.s.subject, role);
        fprintf(out, "} %lld\n", (long long)r.s.last_success);
        break;
    default:
        break;
    }
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
    stp_expo_head(out, "ocspstaple_certificates", "gauge",
                  "Certificates with an entry in the store, by role.");
    fprintf(out, "ocspstaple_certificates{role=\"staple\"} %d\n", c.total[0]);
    fprintf(out, "ocspstaple_certificates{role=\"client\"} %d\n", c.total[1]);
    stp_expo_head(out, "ocspstaple_certificates_valid", "gauge",
                  "Of those, the ones with a verified response valid now.");
    fprintf(out, "ocspstaple_certificates_valid{role=\"staple\"} %d\n",
            c.stapled[0]);
    fprintf(out, "ocspstaple_certificates_valid{role=\"client\"} %d\n",
            c.stapled[1]);
    for (i = 0; i < (int)(sizeof(gauges) / sizeof(gauges[0])); i++) {
        stp_expo_head(out, gauges[i].name, gauges[i].type, gauges[i].help);
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
    struct stp_expo_sums sums;
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
         && stp_store_list_metrics(cmd.st, stp_expo_add_process, &sums, &err)
                >= 0;
    if (out != NULL && !ok)
        fprintf(stderr, "ocspstaple: %s\n", err.msg);
    if (ok) {
        stp_expo_counters(out, &sums);
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
