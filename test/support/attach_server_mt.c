/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A TLS server with a multi-threaded accept loop that links
 * libocspstaple.so, opts in with ocspstaple_attach() and serves handshakes
 * on 127.0.0.1 from <threads> threads sharing one SSL_CTX, so that the
 * status callback runs in several threads at once while the refresher
 * publishes staples (what ThreadSanitizer needs to see). An optional second
 * certificate and key (ECDSA beside RSA) go into the same context. Port 0:
 * the kernel chooses; printed as "ACCEPT 127.0.0.1:N". Runs until SIGTERM or
 * SIGINT, then prints the handshake count and the counters and exits 0.
 * Right after attaching it prints "threads_after_attach=N" (the threads of
 * the process: attaching must not start one). With STP_ATTACH_FORK=1 it
 * forks after attaching, as a prefork server does: the child serves, the
 * parent only waits and passes SIGTERM on. At SIGUSR1 it forks a helper
 * child that only waits for SIGTERM (what a server that spawns helpers
 * does after it served), printing "SPAWNED <pid>": whatever connections
 * the library holds must not be the child's too. Test code only.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "ocspstaple/ocspstaple.h"
#include "tls_host.h"

#define MAX_THREADS 64

struct server {
    SSL_CTX *ctx;
    int lfd;
    atomic_int stop;
    atomic_ulong handshakes;
    atomic_ulong failed;
};

static void *worker(void *arg)
{
    struct server *s = arg;

    while (!atomic_load(&s->stop)) {
        int fd = accept(s->lfd, NULL, NULL);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shutdown() of the listener: stop */
        }
        atomic_fetch_add(th_serve_one(s->ctx, fd) ? &s->handshakes : &s->failed,
                         1);
    }
    return NULL;
}

static int setup_ctx(struct server *s, char **argv, int argc)
{
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (s->ctx == NULL
        || SSL_CTX_use_certificate_file(s->ctx, argv[1], SSL_FILETYPE_PEM) != 1
        || SSL_CTX_use_PrivateKey_file(s->ctx, argv[2], SSL_FILETYPE_PEM) != 1
        || !th_add_chain(s->ctx, argv[3]))
        return 0;
    /* the second certificate gets the same chain (one issuer) */
    if (argc == 7
        && (SSL_CTX_use_certificate_file(s->ctx, argv[5], SSL_FILETYPE_PEM) != 1
            || SSL_CTX_use_PrivateKey_file(s->ctx, argv[6], SSL_FILETYPE_PEM)
                   != 1
            || !th_add_chain(s->ctx, argv[3])))
        return 0;
    return 1;
}

static int count_threads(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;

    while (d != NULL && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

/* The parent of a fork: waits for a stop signal, passes it to the child,
 * and exits with the child's status. The child returns and serves. */
static void wait_child_or_serve(sigset_t *stop_sigs)
{
    pid_t child = fork();
    int sig = 0, status = 0;

    if (child < 0) {
        perror("attach_server_mt: fork");
        exit(1);
    }
    if (child == 0)
        return;
    sigwait(stop_sigs, &sig);
    kill(child, SIGTERM);
    waitpid(child, &status, 0);
    exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/* A helper child: waits for SIGTERM, nothing else (its inherited
 * descriptors stay open until it exits). */
static void spawn_helper(void)
{
    sigset_t term;
    pid_t pid;
    int sig = 0;

    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        perror("attach_server_mt: fork");
        return;
    }
    if (pid == 0) {
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        sigwait(&term, &sig);
        _exit(0);
    }
    printf("SPAWNED %ld\n", (long)pid);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    static const char *const names[] = { "staples_served", "staples_none",
                                         "fetch_ok",       "fetch_fail",
                                         "store_load",     "certificates",
                                         "refreshers" };
    static struct server s;
    pthread_t tids[MAX_THREADS];
    sigset_t stop_sigs;
    int nthreads, started = 0, i, sig = 0;
    uint64_t v;
    size_t k;

    if (argc != 5 && argc != 7) {
        fprintf(stderr, "usage: attach_server_mt CERT KEY CHAIN THREADS "
                        "[CERT2 KEY2]\n");
        return 2;
    }
    nthreads = atoi(argv[4]);
    if (nthreads < 1 || nthreads > MAX_THREADS) {
        fprintf(stderr, "attach_server_mt: THREADS: 1 to %d\n", MAX_THREADS);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* every thread, the refresher included, inherits the blocked set */
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGTERM);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGUSR1); /* spawn_helper(), in this thread only */
    pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
    if (!setup_ctx(&s, argv, argc)) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(s.ctx);
        return 1;
    }
    printf("attach=%d\n", ocspstaple_attach(s.ctx));
    printf("threads_after_attach=%d\n", count_threads());
    fflush(stdout);
    if (getenv("STP_ATTACH_FORK") != NULL && atoi(getenv("STP_ATTACH_FORK")))
        wait_child_or_serve(&stop_sigs);
    s.lfd = th_listen_loopback();
    if (s.lfd < 0) {
        SSL_CTX_free(s.ctx);
        return 1;
    }
    for (i = 0; i < nthreads; i++)
        if (pthread_create(&tids[started], NULL, worker, &s) == 0)
            started++;
    if (started == 0) {
        fprintf(stderr, "attach_server_mt: no thread started\n");
        return 1;
    }
    while (sigwait(&stop_sigs, &sig) == 0 && sig == SIGUSR1)
        spawn_helper();
    atomic_store(&s.stop, 1);
    shutdown(s.lfd, SHUT_RDWR); /* wakes the threads blocked in accept() */
    for (i = 0; i < started; i++)
        pthread_join(tids[i], NULL);
    printf("threads=%d\nhandshakes=%lu\nfailed=%lu\n", started,
           atomic_load(&s.handshakes), atomic_load(&s.failed));
    for (k = 0; k < sizeof(names) / sizeof(names[0]); k++)
        if (ocspstaple_metric(names[k], &v))
            printf("%s=%llu\n", names[k], (unsigned long long)v);
    fflush(stdout);
    close(s.lfd);
    SSL_CTX_free(s.ctx);
    return 0;
}
