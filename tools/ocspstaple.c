/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocspstaple: warm, inspect and check the OCSP staple store. This file is
 * the dispatch; each command has its own file, the shared helpers are in
 * cli_util.c.
 *   fetch CERT...    fetch, verify and store responses      (cli_fetch.c)
 *   refresh          refresh the stored responses that are due
 *                                                           (cli_refresh.c)
 *   status           one row per stored response            (cli_status.c)
 *   metrics          the host's Prometheus metrics          (cli_metrics.c)
 *   prune            remove entries no server uses          (cli_prune.c)
 *   show FILE        decode, with --cert/--issuer verify    (cli_show.c)
 *   check            lint the policy section of openssl.cnf (cli_check.c)
 *   probe HOST:PORT  verify what a TLS server staples       (cli_probe.c)
 */
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "engine/log.h"

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
            "      One row per stored response, with the processes using it.\n"
            "  metrics [--store-dir DIR] [--conf FILE] [--textfile DIR]\n"
            "      The host's metrics (Prometheus text), to stdout or "
            "DIR/ocspstaple.prom.\n"
            "  prune [--store-dir DIR] [--conf FILE] [--older-than DAYS] "
            "[--dry-run]\n"
            "      Remove the entries of certificates no server uses any "
            "more.\n"
            "  show FILE [--cert FILE --issuer FILE]\n"
            "      Decode a DER response; with --cert and --issuer, verify "
            "it.\n"
            "  check [--conf FILE] [--user NAME]... [--program NAME]\n"
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
        return cli_fetch(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return cli_status(argc - 1, argv + 1);
    if (strcmp(cmd, "metrics") == 0)
        return cli_metrics(argc - 1, argv + 1);
    if (strcmp(cmd, "prune") == 0)
        return cli_prune(argc - 1, argv + 1);
    if (strcmp(cmd, "show") == 0)
        return cli_show(argc - 1, argv + 1);
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
