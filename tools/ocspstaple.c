/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspstaple: warm, inspect and check the OCSP staple store.
 *   fetch CERT...   fetch, verify and store responses (exit status: worst)
 *   status          one row per stored response
 *   show FILE       decode (and with --cert/--issuer verify) a response
 *   check           lint the policy section of an openssl.cnf
 *   probe HOST:PORT handshake with a server, verify what it staples
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>

#include "engine/certinfo.h"
#include "cli.h"
#include "engine/clock.h"
#include "engine/log.h"
#include "engine/store.h"
#include "engine/update.h"
#include "engine/verify.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ocspstaple <command> [options]\n"
            "\n"
            "  fetch CERT... [--issuer FILE] [--url URL] [--store-dir DIR]\n"
            "                [--conf FILE] [--timeout S] [--force]\n"
            "      Fetch, verify and store the OCSP response of each CERT (a "
            "PEM file:\n"
            "      the leaf first, then its chain). Exit status: 0 good, 3 "
            "revoked,\n"
            "      4 unknown, 5 no OCSP URL, 1 error (the worst of all "
            "CERTs).\n"
            "  refresh [--store-dir DIR] [--conf FILE] [--force]\n"
            "      Refresh every stored response that is due (for fetch = "
            "no, from a timer).\n"
            "  status [--store-dir DIR] [--conf FILE] [--json]\n"
            "      One row per stored response.\n"
            "  show FILE [--cert FILE --issuer FILE]\n"
            "      Decode a DER response; with --cert and --issuer, verify "
            "it.\n"
            "  check [--conf FILE]\n"
            "      Report every problem of the ocspstaple section of an "
            "openssl.cnf.\n"
            "  probe HOST:PORT [--servername NAME] [--CAfile FILE] "
            "[--tls1.2|--tls1.3]\n"
            "                  [--sigalgs LIST] [--require-staple] [--json] "
            "[--count N]\n"
            "                  [--timeout S]\n"
            "      Handshake with a TLS server (HOST an IP literal), verify "
            "its OCSP\n"
            "      staple. Exit status: 0 good or no staple, 3 revoked, 4 "
            "unknown,\n"
            "      6 no staple with --require-staple, 7 a staple that does "
            "not verify,\n"
            "      1 connection, handshake or chain error.\n"
            "  version\n");
}

struct fetch_args {
    const char *issuer_file;
    const char *url;
    const char *store_dir;
    const char *conf;
    long timeout;
    int force;
};

static int fetch_one(const char *path, const struct fetch_args *a,
                     const struct stp_policy *pol, struct stp_store *st,
                     STACK_OF(X509) *extra_issuers)
{
    struct stp_update_opts uo = { .url = a->url,
                                  .force = a->force,
                                  .lock_wait_ms =
                                      pol->defaults.timeout * 1000 };
    struct stp_update_result res = { 0 };
    struct stp_certinfo *ci = NULL;
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
    if (!stp_update_cert(pol, st, ci, NULL, &uo, &res, &err)) {
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

static int cmd_fetch(int argc, char **argv)
{
    static const struct option opts[] = {
        { "issuer", required_argument, NULL, 'i' },
        { "url", required_argument, NULL, 'u' },
        { "store-dir", required_argument, NULL, 'd' },
        { "conf", required_argument, NULL, 'c' },
        { "force", no_argument, NULL, 'f' },
        { "timeout", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 }
    };
    struct fetch_args a = { 0 };
    struct stp_policy *pol;
    char *end;
    struct stp_store *st = NULL;
    STACK_OF(X509) *issuers = NULL;
    struct stp_err err;
    int c, i, worst = CLI_EXIT_GOOD;

    while ((c = getopt_long(argc, argv, "i:u:d:c:ft:", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            a.issuer_file = optarg;
            break;
        case 'u':
            a.url = optarg;
            break;
        case 'd':
            a.store_dir = optarg;
            break;
        case 'c':
            a.conf = optarg;
            break;
        case 'f':
            a.force = 1;
            break;
        case 't':
            a.timeout = strtol(optarg, &end, 10);
            if (*end != '\0' || a.timeout < 1 || a.timeout > 300) {
                fprintf(stderr,
                        "ocspstaple fetch: --timeout '%s': expected "
                        "seconds from 1 to 300\n",
                        optarg);
                return CLI_EXIT_USAGE;
            }
            break;
        default:
            usage(stderr);
            return CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "ocspstaple fetch: no certificate file given\n");
        return CLI_EXIT_USAGE;
    }
    if (a.url != NULL && !stp_url_usable(a.url)) {
        fprintf(stderr,
                "ocspstaple fetch: --url '%s': not an http:// or "
                "https:// URL\n",
                a.url);
        return CLI_EXIT_USAGE;
    }
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
    if (!stp_store_open(a.store_dir != NULL ? a.store_dir : pol->store_dir, 1,
                        &st, &err)) {
        fprintf(stderr, "ocspstaple: %s\n", err.msg);
        worst = CLI_EXIT_ERROR;
    }
    for (i = optind; st != NULL && i < argc; i++) {
        int rc = fetch_one(argv[i], &a, pol, st, issuers);

        worst = cli_worst(worst, rc);
    }
    stp_store_close(st);
    sk_X509_pop_free(issuers, X509_free);
    stp_policy_free(pol);
    return worst;
}

static int read_file(const char *path, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char buf[4096];
    size_t n;

    *data = NULL;
    *len = 0;
    if (f == NULL)
        return 0;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        unsigned char *grown = OPENSSL_realloc(*data, *len + n);

        if (grown == NULL || *len + n > (1u << 20)) {
            OPENSSL_free(grown != NULL ? grown : *data);
            *data = NULL;
            fclose(f);
            return 0;
        }
        memcpy(grown + *len, buf, n);
        *data = grown;
        *len += n;
    }
    fclose(f);
    return *data != NULL;
}

static int show_verify(const char *file, const unsigned char *der, size_t len,
                       const char *cert_file, const char *issuer_file)
{
    STACK_OF(X509) *leaf = NULL, *iss = NULL;
    struct stp_verify_opts vo;
    struct stp_verdict v;
    struct stp_err err;
    int rc = CLI_EXIT_ERROR;

    if (!cli_default_verify_opts(&vo)) {
        fprintf(stderr, "ocspstaple: out of memory\n");
        return CLI_EXIT_ERROR;
    }
    leaf = stp_load_certs(cert_file, &err);
    if (leaf != NULL)
        iss = stp_load_certs(issuer_file, &err);
    if (leaf == NULL || iss == NULL)
        fprintf(stderr, "ocspstaple: %s\n", err.msg);
    else if (!stp_verify_response(der, len, sk_X509_value(leaf, 0),
                                  sk_X509_value(iss, 0), &vo, &v, &err))
        fprintf(stderr, "ocspstaple: %s: %s: %s\n", file,
                stp_code_name(err.code), err.msg);
    else {
        printf("Verified: %s for %s\n", stp_cert_status_name(v.status),
               cert_file);
        rc = cli_exit_of_status(v.status);
    }
    sk_X509_pop_free(leaf, X509_free);
    sk_X509_pop_free(iss, X509_free);
    return rc;
}

static int cmd_show(int argc, char **argv)
{
    static const struct option opts[] = {
        { "cert", required_argument, NULL, 'c' },
        { "issuer", required_argument, NULL, 'i' },
        { NULL, 0, NULL, 0 }
    };
    const char *cert = NULL, *issuer = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len;
    OCSP_RESPONSE *rsp;
    BIO *out;
    int c, rc = CLI_EXIT_GOOD;

    while ((c = getopt_long(argc, argv, "c:i:", opts, NULL)) != -1) {
        if (c == 'c')
            cert = optarg;
        else if (c == 'i')
            issuer = optarg;
        else
            return CLI_EXIT_USAGE;
    }
    if (optind + 1 != argc || (cert == NULL) != (issuer == NULL)) {
        fprintf(stderr, "usage: ocspstaple show FILE [--cert FILE --issuer "
                        "FILE]\n");
        return CLI_EXIT_USAGE;
    }
    if (!read_file(argv[optind], &der, &len)) {
        fprintf(stderr,
                "ocspstaple: %s: cannot read (missing, unreadable "
                "or over 1 MiB)\n",
                argv[optind]);
        return CLI_EXIT_ERROR;
    }
    p = der;
    rsp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
    if (rsp == NULL) {
        fprintf(stderr, "ocspstaple: %s: not a DER OCSP response\n",
                argv[optind]);
        OPENSSL_free(der);
        return CLI_EXIT_ERROR;
    }
    out = BIO_new_fp(stdout, BIO_NOCLOSE);
    OCSP_RESPONSE_print(out, rsp, 0);
    BIO_free(out);
    if (cert != NULL)
        rc = show_verify(argv[optind], der, len, cert, issuer);
    OCSP_RESPONSE_free(rsp);
    OPENSSL_free(der);
    return rc;
}

int main(int argc, char **argv)
{
    const char *cmd;

    stp_log_init();
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "fetch") == 0)
        return cmd_fetch(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return cli_status(argc - 1, argv + 1);
    if (strcmp(cmd, "show") == 0)
        return cmd_show(argc - 1, argv + 1);
    if (strcmp(cmd, "refresh") == 0)
        return cli_refresh(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cli_check(argc - 1, argv + 1);
    if (strcmp(cmd, "probe") == 0)
        return cli_probe(argc - 1, argv + 1);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("ocspstaple %s (%s)\n", OCSPSTAPLE_VERSION,
               OpenSSL_version(OPENSSL_VERSION));
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0
        || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "ocspstaple: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_EXIT_USAGE;
}
