/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `ocspstaple show FILE`: prints a DER OCSP response as OpenSSL decodes it;
 * with --cert and --issuer, also verifies it as the engine would (its
 * default clock_skew and cache_ttl).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/ocsp.h>

#include "engine/certinfo.h"
#include "cli.h"
#include "engine/err.h"
#include "engine/verify.h"

static void show_usage(FILE *out)
{
    fprintf(out, "usage: ocspstaple show FILE [--cert FILE --issuer FILE]\n"
                 "  Decode a DER OCSP response; with --cert and --issuer, "
                 "verify it.\n");
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

int cli_show(int argc, char **argv)
{
    static const struct option opts[] = {
        { "cert", required_argument, NULL, 'c' },
        { "issuer", required_argument, NULL, 'i' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    const char *cert = NULL, *issuer = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len;
    OCSP_RESPONSE *rsp;
    BIO *out;
    int c, rc = CLI_EXIT_GOOD;

    while ((c = getopt_long(argc, argv, "c:i:h", opts, NULL)) != -1) {
        if (c == 'c') {
            cert = optarg;
        } else if (c == 'i') {
            issuer = optarg;
        } else if (c == 'h') {
            show_usage(stdout);
            return CLI_EXIT_GOOD;
        } else {
            return CLI_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc || (cert == NULL) != (issuer == NULL)) {
        show_usage(stderr);
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
