/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ocspstaple refresh`: one refresh pass over a store directory, for hosts
 * that run their servers with `fetch = no` (from a timer). Each certificate
 * is known by the leaf and issuer stored beside its response (<id>.pem); a
 * response is fetched only when it is due by the policy's schedule (or
 * always with --force), through the same per-certificate lock the servers
 * use.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "engine/certinfo.h"
#include "cli.h"
#include "engine/store.h"
#include "engine/update.h"

struct refresh_ctx {
    const struct cli_store_cmd *cmd;
    const struct stp_policy *pol;
    struct stp_store *st;
    int force;
    int total;
    int failed;
    int stored; /* responses written: running servers are told */
};

static int update(const struct refresh_ctx *c, const struct stp_certinfo *ci,
                  const struct stp_update_opts *uo,
                  struct stp_update_result *res, struct stp_err *err)
{
    struct stp_certpol cp;
    struct stp_state s;
    struct stp_update_ctx uc = { c->pol,          &cp, c->st,        ci,
                                 c->cmd->ca_file, 0,   c->cmd->fleet };

    stp_policy_resolve(c->pol, ci->id, ci->leaf, &cp);
    /* a client certificate's answer (a server's client_ocsp wrote it) is
     * asked where the server asks it, and stays one */
    if (stp_store_read_state(c->st, ci->id_hex, &s)
        && strcmp(s.role, "client") == 0) {
        uc.client = 1;
        uc.fleet = NULL; /* as in a server: the fleet shares staples only */
        cp.responder_url = c->pol->client_responder != NULL
                               ? c->pol->client_responder
                           : ci->url != NULL ? NULL
                                             : c->pol->client_default_responder;
    }
    return stp_update_cert(&uc, uo, res, err);
}

static void refresh_id(void *arg, const char *id)
{
    struct refresh_ctx *c = arg;
    struct stp_update_opts uo = { .force = c->force,
                                  .shared_backoff = 1,
                                  .lock_wait_ms =
                                      c->pol->defaults.timeout * 1000 };
    struct stp_certinfo *ci = NULL;
    struct stp_update_result res = { 0 };
    struct stp_err err;
    /* a responder URL is followed only from a leaf that chains to the trust
     * anchors in force: a planted .pem must not send us anywhere */
    STACK_OF(X509) *chain = cli_trusted_chain(c->cmd, id, &err);

    c->total++;
    if (chain == NULL && err.detail == ENOENT) {
        printf("%.12s: skipped: no usable %s.pem beside the response\n", id,
               id);
        c->failed++;
    } else if (chain == NULL) {
        printf("%.12s: skipped, not fetching: %s\n", id, err.msg);
        c->failed++;
    } else if (!stp_certinfo_new(sk_X509_value(chain, 0), chain, &ci, &err)) {
        printf("%.12s: skipped: %s\n", id, err.msg);
        c->failed++;
    } else if (!update(c, ci, &uo, &res, &err)) {
        printf("%.12s: %s: %s: %s\n", id, ci->ident, stp_code_name(err.code),
               err.msg);
        c->failed++;
    } else if (!res.stored && !res.reused) {
        printf("%.12s: %s: store: fetched but could not be written\n", id,
               ci->ident);
        c->failed++;
    } else {
        printf("%.12s: %s: %s (%s)\n", id, ci->ident,
               stp_cert_status_name(res.verdict.status),
               res.reused       ? "stored response not due"
               : res.from_fleet ? "taken from the fleet"
                                : "fetched");
        c->stored += res.stored;
    }
    stp_update_result_free(&res);
    stp_certinfo_free(ci);
    sk_X509_pop_free(chain, X509_free);
}

static void refresh_usage(FILE *out)
{
    fprintf(out,
            "usage: ocspstaple refresh [--store-dir DIR] [--conf FILE] "
            "[--force]\n"
            "  Refresh every stored response that is due (for fetch = no, "
            "from a timer);\n"
            "  --force: every one. Exit status: 0, or 1 if any certificate "
            "failed.\n");
}

int cli_refresh(int argc, char **argv)
{
    static const struct cli_store_spec spec = { "force", 'f', refresh_usage,
                                                NULL, 0 };
    struct cli_store_cmd cmd;
    struct refresh_ctx c = { 0 };
    struct stp_err err;
    int n, rc;

    if (!cli_store_cmd_open(&spec, argc, argv, &cmd, &rc))
        return rc;
    cmd.fleet = cli_fleet_open(cmd.pol); /* a host of the fleet, too */
    c.cmd = &cmd;
    c.pol = cmd.pol;
    c.st = cmd.st;
    c.force = cmd.flag;
    n = stp_store_list(c.st, refresh_id, &c, &err);
    if (n < 0)
        fprintf(stderr, "ocspstaple: %s\n", err.msg);
    printf("%d certificate(s), %d failed\n", c.total, c.failed);
    cli_tell_servers(c.st, c.stored);
    cli_store_cmd_close(&cmd);
    return n < 0 || c.failed > 0 ? CLI_EXIT_ERROR : 0;
}
