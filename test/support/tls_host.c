/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Shared pieces of the TLS test hosts (see tls_host.h).
 */
#include "tls_host.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

int th_listen_loopback(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0
        || listen(fd, 128) != 0
        || getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    printf("ACCEPT 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
    return fd;
}

int th_add_chain(SSL_CTX *ctx, const char *file)
{
    FILE *f = fopen(file, "r");
    X509 *x = f != NULL ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;

    if (f != NULL)
        fclose(f);
    if (x == NULL || !SSL_CTX_add0_chain_cert(ctx, x)) {
        X509_free(x);
        fprintf(stderr, "tls host: cannot read %s\n", file);
        return 0;
    }
    return 1;
}

int th_serve_one(SSL_CTX *ctx, int fd)
{
    struct timeval tv = { 5, 0 };
    SSL *ssl;
    int ok = 0;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ssl = SSL_new(ctx);
    if (ssl != NULL && SSL_set_fd(ssl, fd) && SSL_accept(ssl) == 1) {
        ok = 1;
        SSL_shutdown(ssl);
    }
    SSL_free(ssl);
    ERR_clear_error();
    close(fd);
    return ok;
}
