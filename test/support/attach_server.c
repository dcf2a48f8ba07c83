/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal TLS server that links libocspstaple.so and opts in with
 * ocspstaple_attach(): the route for applications that neither load
 * openssl.cnf nor run under LD_PRELOAD. Serves <count> handshakes on
 * 127.0.0.1 (port 0: the kernel chooses; printed as "ACCEPT 127.0.0.1:N"),
 * then prints the counters and exits. Test code only.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "ocspstaple/ocspstaple.h"

static int listen_loopback(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0
        || listen(fd, 16) != 0
        || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    printf("ACCEPT 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

static int add_chain(SSL_CTX *ctx, const char *file)
{
    FILE *f = fopen(file, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

    if (f != NULL)
        fclose(f);
    if (x == NULL || !SSL_CTX_add0_chain_cert(ctx, x)) {
        X509_free(x);
        fprintf(stderr, "attach_server: cannot read %s\n", file);
        return 0;
    }
    return 1;
}

static void serve_one(SSL_CTX *ctx, int lfd)
{
    struct timeval tv = { 5, 0 };
    int fd = accept(lfd, NULL, NULL);
    SSL *ssl;

    if (fd < 0)
        return;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ssl = SSL_new(ctx);
    if (ssl != NULL && SSL_set_fd(ssl, fd) && SSL_accept(ssl) == 1)
        SSL_shutdown(ssl);
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
}

int main(int argc, char **argv)
{
    static const char *const names[] = { "staples_served", "staples_none",
                                         "fetch_ok", "certificates",
                                         "refreshers" };
    SSL_CTX *ctx;
    uint64_t v;
    int lfd, i, count;
    size_t k;

    if (argc != 5) {
        fprintf(stderr, "usage: attach_server CERT KEY CHAIN COUNT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    count = atoi(argv[4]);
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL
        || SSL_CTX_use_certificate_file(ctx, argv[1], SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, argv[2], SSL_FILETYPE_PEM) != 1
        || !add_chain(ctx, argv[3])) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    printf("attach=%d\n", ocspstaple_attach(ctx));
    lfd = listen_loopback();
    if (lfd < 0)
        return 1;
    for (i = 0; i < count; i++)
        serve_one(ctx, lfd);
    for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        if (ocspstaple_metric(names[k], &v))
            printf("%s=%llu\n", names[k], (unsigned long long)v);
    close(lfd);
    SSL_CTX_free(ctx);
    return 0;
}
