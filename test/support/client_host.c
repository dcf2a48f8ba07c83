/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TLS client as many libraries write one: a context of the generic
 * TLS_method() (it could serve, but has no certificate), one handshake with
 * 127.0.0.1:PORT, then a fork whose child exits at once (a client that runs
 * a subprocess). It never serves: under the hook it must start no thread,
 * open nothing in store_dir and never map libcurl (it/bystander_*). Test
 * code only.
 *
 * usage: client_host PORT
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

int main(int argc, char **argv)
{
    struct sockaddr_in a;
    SSL_CTX *ctx;
    SSL *ssl = NULL;
    pid_t pid;
    int fd, ok = 0, status = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: client_host PORT\n");
        return 2;
    }
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ctx = SSL_CTX_new(TLS_method());
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (ctx != NULL && fd >= 0
        && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0
        && (ssl = SSL_new(ctx)) != NULL && SSL_set_fd(ssl, fd)
        && SSL_connect(ssl) == 1) {
        ok = 1;
        SSL_shutdown(ssl);
    }
    ERR_print_errors_fp(stderr);
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, &status, 0);
    SSL_CTX_free(ctx);
    printf("handshake=%s\n", ok ? "ok" : "failed");
    return ok ? 0 : 1;
}
