/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A setuid-root program that links libocspstaple.so and opts in with
 * ocspstaple_attach() on one server context, then prints what the library
 * did: "attach=N store_load=N". Run by an unprivileged user, the library
 * must not take the user's environment (OCSPSTAPLE_DEBUG naming a log file,
 * OCSPSTAPLE_FAKE_TIME moving the clock): secure_getenv() returns nothing
 * in such a process. Test code only (t_hardening.sh setuid copies it,
 * makes it setuid root, and runs it as nobody).
 *
 * usage: setuid_host CERT KEY CHAIN
 */
#include <stdio.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ocspstaple/ocspstaple.h"
#include "tls_host.h"

int main(int argc, char **argv)
{
    SSL_CTX *ctx;
    uint64_t loaded = 0;
    int attached;

    if (argc != 4) {
        fprintf(stderr, "usage: setuid_host CERT KEY CHAIN\n");
        return 2;
    }
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL
        || SSL_CTX_use_certificate_file(ctx, argv[1], SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1
        || !th_add_chain(ctx, argv[3])) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return 1;
    }
    attached = ocspstaple_attach(ctx);
    ocspstaple_metric("store_load", &loaded);
    printf("attach=%d store_load=%llu\n", attached, (unsigned long long)loaded);
    SSL_CTX_free(ctx);
    return 0;
}
