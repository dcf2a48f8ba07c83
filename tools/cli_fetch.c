/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ocspstaple fetch CERT...`: fetches, verifies and stores the OCSP response
 * of each certificate through the engine's update cycle (stp_update_cert),
 * unless the stored one is still fresh. The exit status is the worst of all
 * certificates (cli_worst).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "engine/certinfo.h"
#include "cli.h"
#include "engine/err.h"
#include "engine/store.h"
#include "engine/update.h"
#include "engine/verify.h"

static void fetch_usage(FILE *out)
{
    fprintf(out,
            "usage: ocspstaple fetch CERT... [--issuer FILE] [--url URL] "
            "[--store-dir DIR]\n"
            "                        [--conf FILE] [--timeout S] [--force]\n"
            "  Fetch, verify and store the OCSP response of each CERT (a PEM "
            "file: the\n"
            "  leaf first, then its chain). Exit status: 0 good, 3 revoked, 4 "
            "unknown,\n"
            "  5 no OCSP URL, 1 error (the worst of all CERTs), 2 usage.\n");
}

struct fetch_args {
    const char *issuer_file;
    const char *url;
    const char *store_dir;
    const char *conf;
    long timeout;
    int force;
};

/* Fetches one chain file; *<stored> counts the responses written. */
static int fetch_one(const char *path, const struct fetch_args *a,
                     const struct stp_policy *pol, struct stp_store *st,
                     STACK_OF(X509) *extra_issuers, int *stored)
{
    struct stp_update_opts uo = { .url = a->url,
                                  .force = a->force,
                                  .lock_wait_ms =
                                      pol->defaults.timeout * 1000 };
    struct stp_update_result res = { 0 };
    struct stp_certinfo *ci = NULL;
    struct stp_certpol cp;
    /* asks the responder itself, on purpose: no fleet (refresh has it) */
    struct stp_update_ctx uc = { pol, &cp, st, NULL, NULL, 0, NULL };
    struct stp_err err;
    STACK_OF(X509) *certs = stp_load_certs(path, &err);
    char tbuf[32], nbuf[32];
    int i, rc;

    if (certs == NULL) {
        fprintf(stderr, "ocspstaple: %s\n", err.msg);
        return CLI_EXIT_ERROR;
    }
    for (i = 0; i < sk_X509_num(extra_issuers); i++)
        if (sk_X509_push(certs, sk_X509_value(extra_issuers, i)))
            X509_up_ref(sk_X509_value(extra_issuers, i));
    if (!stp_certinfo_new(sk_X509_value(certs, 0), certs, &ci, &err)) {
        fprintf(stderr, "ocspstaple: %s: %s\n", path, err.msg);
        sk_X509_pop_free(certs, X509_free);
        return CLI_EXIT_ERROR;
    }
    uc.ci = ci;
    stp_policy_resolve(pol, ci->id, ci->leaf, &cp);
    if (!stp_update_cert(&uc, &uo, &res, &err)) {
        rc = err.code == STP_E_NO_URL ? CLI_EXIT_NO_URL : CLI_EXIT_ERROR;
        fprintf(stderr, "ocspstaple: %s: %s%s%s\n", path,
                err.code == STP_E_NO_URL ? "" : stp_code_name(err.code),
                err.code == STP_E_NO_URL ? "" : ": ", err.msg);
    } else if (!res.stored && !res.reused) {
        rc = CLI_EXIT_ERROR;
        fprintf(stderr,
                "ocspstaple: %s: store: the %s response was fetched "
                "and verified but could not be written to %s\n",
                path, stp_cert_status_name(res.verdict.status),
                stp_store_dir(st));
    } else {
        rc = cli_exit_of_status(res.verdict.status);
        *stored += res.stored;
        printf("%s: %s: %s (this update %s, next update %s)%s -> %s/%s.der\n",
               path, ci->ident, stp_cert_status_name(res.verdict.status),
               cli_time(res.verdict.this_update, tbuf, sizeof(tbuf)),
               cli_time(res.verdict.next_update, nbuf, sizeof(nbuf)),
               res.reused ? " [stored response still fresh]" : "",
               stp_store_dir(st), ci->id_hex);
    }
    stp_update_result_free(&res);
    stp_certinfo_free(ci);
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

/*
 * Parses the options into <a>; the certificate files are argv[optind...].
 * Returns CLI_EXIT_GOOD to go on, CLI_EXIT_USAGE, or -1 after --help.
 */
static int parse_args(int argc, char **argv, struct fetch_args *a)
{
    static const struct option opts[] = {
        { "issuer", required_argument, NULL, 'i' },
        { "url", required_argument, NULL, 'u' },
        { "store-dir", required_argument, NULL, 'd' },
        { "conf", required_argument, NULL, 'c' },
        { "force", no_argument, NULL, 'f' },
        { "timeout", required_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    char *end;
    int c;

    while ((c = getopt_long(argc, argv, "i:u:d:c:ft:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            a->issuer_file = optarg;
            break;
        case 'u':
            a->url = optarg;
            break;
        case 'd':
            a->store_dir = optarg;
            break;
        case 'c':
            a->conf = optarg;
            break;
        case 'f':
            a->force = 1;
            break;
        case 't':
            a->timeout = strtol(optarg, &end, 10);
            if (*end != '\0' || a->timeout < 1 || a->timeout > 300) {
                fprintf(stderr,
                        "ocspstaple fetch: --timeout '%s': expected "
                        "seconds from 1 to 300\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        case 'h':
            fetch_usage(stdout);
            return -1;
        default:
            fetch_usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "ocspstaple fetch: no certificate file given\n");
        return CLI_EXIT_USAGE;
    }
    if (a->url != NULL && !stp_url_usable(a->url)) {
        fprintf(stderr,
                "ocspstaple fetch: --url '%s': not an http:// or "
                "https:// URL\n",
                a->url);
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_GOOD;
}

int cli_fetch(int argc, char **argv)
{
    struct fetch_args a = { 0 };
    struct stp_policy *pol;
    struct stp_store *st = NULL;
    STACK_OF(X509) *issuers = NULL;
    struct stp_err err;
    int i, rc, worst = CLI_EXIT_GOOD, stored = 0;

    rc = parse_args(argc, argv, &a);
    if (rc != CLI_EXIT_GOOD)
        return rc < 0 ? CLI_EXIT_GOOD : rc;
    pol = cli_load_policy(a.conf);
    if (pol == NULL)
        return CLI_EXIT_ERROR;
    if (a.timeout > 0)
        pol->defaults.timeout = a.timeout;
    if (a.issuer_file != NULL
        && (issuers = stp_load_certs(a.issuer_file, &err)) == NULL) {
        fprintf(stderr, "ocspstaple: --issuer %s\n", err.msg);
        stp_policy_free(pol);
        return CLI_EXIT_ERROR;
    }
    if (!stp_store_open_shared(a.store_dir != NULL ? a.store_dir
                                                   : pol->store_dir,
                               1, pol->store_group, &st, &err)) {
        fprintf(stderr, "ocspstaple: %s\n", err.msg);
        worst = CLI_EXIT_ERROR;
    }
    for (i = optind; st != NULL && i < argc; i++)
        worst =
            cli_worst(worst, fetch_one(argv[i], &a, pol, st, issuers, &stored));
    if (st != NULL)
        cli_tell_servers(st, stored);
    stp_store_close(st);
    sk_X509_pop_free(issuers, X509_free);
    stp_policy_free(pol);
    return worst;
}
