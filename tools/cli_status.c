/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ocspstaple status`: one row per certificate in a store directory, from
 * the response file (re-verified against the stored leaf and issuer when
 * they are there) and the sidecar state: the staples first, then the
 * answers about client certificates (client_ocsp), apart; and which running
 * processes use each (the store's "uses-<proc>" files, store.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>

#include "engine/certinfo.h"
#include "cli.h"
#include "engine/clock.h"
#include "engine/store.h"
#include "engine/verify.h"

struct status_ctx {
    const struct cli_store_cmd *cmd;
    struct stp_store *st;
    const struct stp_policy *pol;
    int json;
    int worst;   /* the exit status: the worst finding (see exit_of()) */
    int clients; /* this pass lists client answers (else staples) */
    int nclients;
    int rows;
    time_t now;
    struct cli_uses uses;
    int fleet;        /* --fleet: who published each staple in the fleet */
    int fleet_failed; /* the fleet could not be asked (said once) */
};

/*
 * Verifies the stored response against the stored chain when that chain is
 * trustworthy (cli_trusted_chain()); shows the subject and serial of that
 * verified leaf only, never the sidecar's words. Without a chain, decodes
 * only ("(unverified)"); with an untrusted one, says so.
 */
static void evaluate(struct status_ctx *c, struct cli_row *r)
{
    unsigned char *der = NULL;
    size_t len = 0;
    STACK_OF(X509) *chain;
    struct stp_certinfo *ci = NULL;
    struct stp_err err, cerr;

    r->s.subject[0] = '\0';
    r->s.serial[0] = '\0';
    if (!stp_store_read_response(c->st, r->id, c->pol->max_response_size, &der,
                                 &len, &err)) {
        snprintf(r->status, sizeof(r->status), "none");
        return;
    }
    chain = cli_trusted_chain(c->cmd, r->id, &cerr);
    if (chain != NULL
        && stp_certinfo_new(sk_X509_value(chain, 0), chain, &ci, &err)
        && ci->issuer != NULL) {
        struct stp_verify_opts vo = { c->now, c->pol->clock_skew,
                                      c->pol->defaults.cache_ttl,
                                      c->pol->defaults.skip_verify,
                                      c->cmd->ca_file };

        snprintf(r->s.subject, sizeof(r->s.subject), "%s", ci->subject);
        snprintf(r->s.serial, sizeof(r->s.serial), "%s", ci->serial);
        r->verified = 1;
        r->have_v = stp_verify_response(der, len, ci->leaf, ci->issuer, &vo,
                                        &r->v, &err);
        if (!r->have_v) {
            snprintf(r->status, sizeof(r->status), "%s%s",
                     err.code == STP_E_EXPIRED ? "" : "invalid:",
                     stp_code_name(err.code));
            /* an expired response still tells when it expired */
            r->have_times = err.code == STP_E_EXPIRED
                            && stp_peek_response(der, len, NULL, &r->v, NULL);
        }
    } else if (chain == NULL && cerr.detail != ENOENT) {
        /* a chain is there, and it is not one to believe */
        snprintf(r->status, sizeof(r->status), "untrusted:chain");
        snprintf(r->s.last_error, sizeof(r->s.last_error), "%s", cerr.msg);
        r->have_times = stp_peek_response(der, len, NULL, &r->v, NULL);
    } else {
        r->have_v = stp_peek_response(der, len, NULL, &r->v, &err);
        if (!r->have_v)
            snprintf(r->status, sizeof(r->status), "invalid:%s",
                     stp_code_name(err.code));
    }
    if (r->have_v)
        r->have_times = 1;
    if (r->have_v)
        snprintf(r->status, sizeof(r->status), "%s%s",
                 stp_cert_status_name(r->v.status),
                 r->verified ? "" : "(unverified)");
    stp_certinfo_free(ci);
    sk_X509_pop_free(chain, X509_free);
    OPENSSL_free(der);
}

/* --fleet: what the fleet holds for <r> (a staple), as a line under its
 * row or as the row's "fleet" member; nothing once the fleet failed. */
static void print_fleet(struct status_ctx *c, const struct cli_row *r)
{
    struct stp_fleet_meta m;
    struct stp_err err;
    long long ttl = -2;
    char at[32];

    if (!c->fleet || c->clients || c->fleet_failed)
        return;
    if (stp_fleet_describe(c->cmd->fleet, r->id, &m, &ttl, &err) < 0) {
        fprintf(stderr, "ocspstaple: %s\n", err.msg);
        c->fleet_failed = 1;
        return;
    }
    cli_time(m.at, at, sizeof(at));
    if (!c->json) {
        if (ttl < 0)
            printf("%-12s  fleet: none (not published, or expired)\n", "");
        else
            printf("%-12s  fleet: fetched by %s (pid %ld) at %s, %llds "
                   "left\n",
                   "", m.host[0] ? m.host : "?", m.pid, at, ttl / 1000);
        return;
    }
    printf(", \"fleet\": ");
    if (ttl < 0) {
        printf("null");
        return;
    }
    printf("{\"host\": ");
    cli_json_str(m.host);
    printf(", \"pid\": %ld, \"at\": ", m.pid);
    cli_json_str(at);
    printf(", \"seconds_left\": %lld}", ttl / 1000);
}

static void print_row(struct status_ctx *c, const struct cli_row *r)
{
    char t1[32], t2[32], left[32];

    cli_time(r->have_times ? r->v.this_update : 0, t1, sizeof(t1));
    cli_time(r->have_times ? r->v.next_update : 0, t2, sizeof(t2));
    cli_left(r->have_times ? r->v.next_update : 0, c->now, left, sizeof(left));
    if (!c->json) {
        char by[256];

        cli_used_by(&c->uses, r->id, by, sizeof(by));
        printf(
            "%-12.12s  %-32.32s  %-18.18s  %-18s  %-20s  %-20s  %-8s  %-16s  "
            "%s\n",
            r->id, r->s.subject[0] ? r->s.subject : "-",
            r->s.serial[0] ? r->s.serial : "-", r->status, t1, t2, left, by,
            r->s.last_error[0] ? r->s.last_error : "-");
        print_fleet(c, r);
        return;
    }
    printf("%s\n  {\"id\": ", c->rows > 1 ? "," : "");
    cli_json_str(r->id);
    printf(", \"subject\": ");
    cli_json_str(r->s.subject);
    printf(", \"serial\": ");
    cli_json_str(r->s.serial);
    printf(", \"status\": ");
    cli_json_str(r->status);
    printf(", \"verified\": %s, \"this_update\": ",
           r->verified ? "true" : "false");
    cli_json_str(t1);
    printf(", \"next_update\": ");
    cli_json_str(t2);
    printf(", \"seconds_left\": %lld, \"failures\": %u, \"last_error\": ",
           r->have_times ? (long long)(r->v.next_update - c->now) : 0LL,
           r->s.failures);
    cli_json_str(r->s.last_error);
    printf(", \"url\": ");
    cli_json_str(r->s.url);
    printf(", \"role\": \"%s\", \"processes\": [",
           c->clients ? "client" : "staple");
    {
        size_t first, n = cli_uses_of(&c->uses, r->id, &first), k;

        for (k = first; k < first + n; k++) {
            const struct cli_user *usr = &c->uses.users[c->uses.v[k].user];

            printf("%s{\"pid\": %ld, \"program\": ", k > first ? ", " : "",
                   usr->pid);
            cli_json_str(usr->program);
            printf("}");
        }
    }
    printf("]");
    print_fleet(c, r);
    printf("}");
}

/* How bad a finding is, for the exit status: a corrupt file, then no valid
 * staple, a revoked one, an unknown one, a stale one (cli.h codes). */
static int rank(int code)
{
    switch (code) {
    case CLI_EXIT_BAD_STAPLE:
        return 5;
    case CLI_EXIT_NO_STAPLE:
        return 4;
    case CLI_EXIT_REVOKED:
        return 3;
    case CLI_EXIT_UNKNOWN:
        return 2;
    case CLI_EXIT_STALE:
        return 1;
    default:
        return 0;
    }
}

/*
 * The finding for row <r> (a staple's; a client answer counts only when its
 * file is corrupt: a revoked client is no problem of the host's).
 */
static int exit_of(const struct status_ctx *c, const struct cli_row *r)
{
    long long left, validity;

    if (strncmp(r->status, "invalid:", 8) == 0)
        return CLI_EXIT_BAD_STAPLE;
    if (c->clients)
        return CLI_EXIT_GOOD;
    if (!r->have_v || !r->verified)
        return CLI_EXIT_NO_STAPLE;
    if (r->v.status == V_OCSP_CERTSTATUS_REVOKED)
        return CLI_EXIT_REVOKED;
    if (r->v.status == V_OCSP_CERTSTATUS_UNKNOWN)
        return CLI_EXIT_UNKNOWN;
    /* past the refresh point (refresh_margin of the validity left), and the
     * refreshes since have failed */
    left = (long long)r->v.next_update - (long long)c->now;
    validity = (long long)r->v.next_update - (long long)r->v.this_update;
    if (r->s.failures > 0 && left * 100 <= validity * c->pol->refresh_margin)
        return CLI_EXIT_STALE;
    return CLI_EXIT_GOOD;
}

static void on_id(void *arg, const char *id)
{
    struct status_ctx *c = arg;
    struct cli_row r;

    memset(&r, 0, sizeof(r));
    memcpy(r.id, id, sizeof(r.id));
    stp_store_read_state(c->st, id, &r.s);
    if ((strcmp(r.s.role, "client") == 0) != c->clients)
        return;
    if (c->clients && c->nclients++ == 0 && !c->json)
        printf("\nclient certificates (client_ocsp):\n");
    evaluate(c, &r);
    if (rank(exit_of(c, &r)) > rank(c->worst))
        c->worst = exit_of(c, &r);
    c->rows++;
    print_row(c, &r);
}

static void status_usage(FILE *out)
{
    fprintf(out, "usage: ocspstaple status [--store-dir DIR] [--conf FILE] "
                 "[--json] [--fleet]\n"
                 "  One row per stored response: id, subject, serial, status, "
                 "this update,\n"
                 "  next update, time left, the running processes that use "
                 "it (USED BY:\n"
                 "  program[pid,...], written by each process within 10 s of "
                 "a change),\n"
                 "  last error; the staples, then the answers about client "
                 "certificates.\n"
                 "  --json for machines (\"role\": \"staple\" or "
                 "\"client\", \"processes\").\n"
                 "  Exit status, the worst finding: 7 a corrupt stored file, "
                 "6 a staple\n"
                 "  without a valid verified response, 3 revoked, 4 unknown, "
                 "8 past its\n"
                 "  refresh point with failing refreshes, 0 none, 1 error.\n"
                 "  --fleet (with fleet_url): under each staple, the host "
                 "that published\n"
                 "  it in the fleet, when, and its time left there (\"fleet\" "
                 "in JSON);\n"
                 "  1 if the fleet cannot be asked.\n");
}

int cli_status(int argc, char **argv)
{
    static const struct cli_store_spec spec = { "json", 'j', status_usage, NULL,
                                                0 };
    struct cli_store_cmd cmd;
    struct status_ctx c = { 0 };
    struct stp_err err;
    int n, rc, i, j, fleet = 0;

    /* --fleet, an option of status's own: taken out before the common
     * parse (which knows one flag per command) */
    for (i = j = 1; i < argc; i++) {
        if (strcmp(argv[i], "--fleet") == 0)
            fleet = 1;
        else
            argv[j++] = argv[i];
    }
    argc = j;
    argv[argc] = NULL;
    if (!cli_store_cmd_open(&spec, argc, argv, &cmd, &rc))
        return rc;
    if (fleet) {
        if (cmd.pol->fleet_url == NULL) {
            fprintf(stderr, "ocspstaple: status --fleet: the policy sets no "
                            "fleet_url\n");
            cli_store_cmd_close(&cmd);
            return CLI_EXIT_ERROR;
        }
        if ((cmd.fleet = cli_fleet_open(cmd.pol)) == NULL) {
            cli_store_cmd_close(&cmd);
            return CLI_EXIT_ERROR;
        }
    }
    c.fleet = fleet;
    c.cmd = &cmd;
    c.st = cmd.st;
    c.pol = cmd.pol;
    c.json = cmd.flag;
    c.now = stp_now();
    cli_uses_load(c.st, &c.uses);
    if (c.json)
        printf("[");
    else
        printf("%-12s  %-32s  %-18s  %-18s  %-20s  %-20s  %-8s  %-16s  %s\n",
               "ID", "SUBJECT", "SERIAL", "STATUS", "THIS UPDATE",
               "NEXT UPDATE", "LEFT", "USED BY", "LAST ERROR");
    n = stp_store_list(c.st, on_id, &c, &err);
    if (n >= 0) {
        c.clients = 1;
        n = stp_store_list(c.st, on_id, &c, &err);
    }
    if (c.json)
        printf("%s]\n", c.rows > 0 ? "\n" : "");
    if (n < 0)
        fprintf(stderr, "ocspstaple: %s\n", err.msg);
    cli_uses_free(&c.uses);
    cli_store_cmd_close(&cmd);
    return n < 0 || c.fleet_failed ? CLI_EXIT_ERROR : c.worst;
}

void cli_status_row(const struct cli_store_cmd *cmd, const char *id, time_t now,
                    struct cli_row *r)
{
    struct status_ctx c = { 0 };

    c.cmd = cmd;
    c.st = cmd->st;
    c.pol = cmd->pol;
    c.now = now;
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "%s", id);
    stp_store_read_state(cmd->st, id, &r->s);
    evaluate(&c, r);
}
