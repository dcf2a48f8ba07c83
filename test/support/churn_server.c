/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A multi-threaded TLS server that does not know ocspstaple (it runs under
 * LD_PRELOAD or loads the provider from openssl.cnf), built to reproduce
 * what real hosts do to contexts while they serve:
 *   - CHURN threads create a server SSL_CTX, create and free an SSL on it
 *     and free the context, in a loop, for SECONDS, while two threads serve
 *     handshakes on the base context (a threaded reload, a control thread
 *     rebuilding contexts);
 *   - with LATE_CERT, once the first handshake has been served, one more
 *     context is built for LATE_NAME and reached through the servername
 *     callback (SSL_set_SSL_CTX), as HAProxy's `set ssl cert` or a late SNI
 *     context is.
 * Prints "ACCEPT 127.0.0.1:N", "LATE READY" when the late context is
 * reachable, "CHURN DONE n=N" when every churn thread finished, or
 * "CHURN STUCK" and exits 3 when one has not finished SECONDS + 20 s after
 * the start (a deadlock). Runs until SIGTERM. Test code only.
 *
 * usage: churn_server CERT KEY CHAIN CHURN SECONDS [LATE_CERT LATE_KEY
 *        LATE_NAME]
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_host.h"

#define MAX_CHURN 16
#define SERVERS   2

static SSL_CTX *base;
static _Atomic(SSL_CTX *) late;
static const char *late_name;
static const char *cert_file, *key_file, *chain_file;
static int lfd;
static atomic_int stop, churn_stop;
static atomic_ulong served, churned;

static int sni_cb(SSL *s, int *al, void *arg)
{
    const char *name = SSL_get_servername(s, TLSEXT_NAMETYPE_host_name);
    SSL_CTX *l = atomic_load(&late);

    (void)al;
    (void)arg;
    if (name != NULL && l != NULL && late_name != NULL
        && strcmp(name, late_name) == 0)
        SSL_set_SSL_CTX(s, l);
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *new_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL
        || SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1
        || !th_add_chain(ctx, chain_file)) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void *server(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop)) {
        int fd = accept(lfd, NULL, NULL);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        if (th_serve_one(base, fd))
            atomic_fetch_add(&served, 1);
    }
    return NULL;
}

static void *churn(void *arg)
{
    (void)arg;
    while (!atomic_load(&churn_stop)) {
        SSL_CTX *ctx = new_ctx(cert_file, key_file);
        SSL *ssl = ctx != NULL ? SSL_new(ctx) : NULL;

        SSL_free(ssl);
        SSL_CTX_free(ctx);
        ERR_clear_error();
        atomic_fetch_add(&churned, 1);
    }
    return NULL;
}

static void *make_late(void *arg)
{
    char **argv = arg;
    SSL_CTX *ctx;

    while (atomic_load(&served) == 0 && !atomic_load(&stop))
        usleep(10000);
    ctx = new_ctx(argv[0], argv[1]);
    if (ctx == NULL)
        return NULL;
    atomic_store(&late, ctx);
    printf("LATE READY\n");
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t srv[SERVERS], ch[MAX_CHURN], lt;
    struct timespec dl;
    sigset_t stop_sigs;
    int nchurn, secs, i, sig = 0, have_late = argc == 9;

    if (argc != 6 && argc != 9) {
        fprintf(stderr, "usage: churn_server CERT KEY CHAIN CHURN SECONDS "
                        "[LATE_CERT LATE_KEY LATE_NAME]\n");
        return 2;
    }
    cert_file = argv[1];
    key_file = argv[2];
    chain_file = argv[3];
    nchurn = atoi(argv[4]);
    secs = atoi(argv[5]);
    if (nchurn < 0 || nchurn > MAX_CHURN || secs < 0 || secs > 600) {
        fprintf(stderr, "churn_server: CHURN 0..%d, SECONDS 0..600\n",
                MAX_CHURN);
        return 2;
    }
    late_name = have_late ? argv[8] : NULL;
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    base = new_ctx(cert_file, key_file);
    if (base == NULL)
        return 1;
    SSL_CTX_set_tlsext_servername_callback(base, sni_cb);
    lfd = th_listen_loopback();
    if (lfd < 0)
        return 1;
    for (i = 0; i < SERVERS; i++)
        pthread_create(&srv[i], NULL, server, NULL);
    if (have_late)
        pthread_create(&lt, NULL, make_late, &argv[6]);
    for (i = 0; i < nchurn; i++)
        pthread_create(&ch[i], NULL, churn, NULL);
    sleep((unsigned)secs);
    atomic_store(&churn_stop, 1);
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    for (i = 0; i < nchurn; i++) {
        if (pthread_timedjoin_np(ch[i], NULL, &dl) != 0) {
            printf("CHURN STUCK after n=%lu\n", atomic_load(&churned));
            fflush(stdout);
            _exit(3);
        }
    }
    printf("CHURN DONE n=%lu\n", atomic_load(&churned));
    fflush(stdout);
    sigwait(&stop_sigs, &sig);
    atomic_store(&stop, 1);
    shutdown(lfd, SHUT_RDWR);
    for (i = 0; i < SERVERS; i++)
        pthread_join(srv[i], NULL);
    if (have_late)
        pthread_join(lt, NULL);
    printf("served=%lu\n", atomic_load(&served));
    fflush(stdout);
    SSL_CTX_free(atomic_load(&late));
    SSL_CTX_free(base);
    return 0;
}
