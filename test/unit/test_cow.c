/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a fork child's work on the certificate table copies of its parent's
 * memory (issue #9: memory per certificate in a server's workers).
 *
 * The parent makes N records the way a server's master does: each
 * certificate comes with its own object of the CA certificate (nginx
 * parses one per server block), and records are made among the other
 * objects of the heap. Then it forks, and the child does for each record
 * what a worker does: a handshake's lookup and copy of the staple
 * (stp_cache_get1(), stp_cache_copy(), stp_rec_unref()) and the
 * refresher's verification of a response with the record's issuer. The
 * pages the child then holds alone (/proc/self/pagemap: "exclusively
 * mapped"), over those it held before the loop, are what each worker of
 * a server pays in physical memory. Writing a counter or taking a lock in
 * an object copies its whole page: a page per certificate, as long as the
 * records were scattered among the server's objects and each record
 * verified with its own issuer object; with records in pages of their own
 * and one shared object per issuer, about N * sizeof(struct stp_rec) / 4096.
 *
 * Skipped under a sanitizer: its allocator's quarantine and shadow memory
 * touch pages of their own.
 */
#include "server/cache.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "engine/verify.h"
#include "stp_test.h"
#include "test_pki.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STP_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) \
    || __has_feature(memory_sanitizer)
#define STP_SANITIZED 1
#endif
#endif

enum { N = 2000, WARM = 8 };

static X509 *leaves[N];
static struct stp_rec *recs[N];

/* Pages of writable private mappings that this process alone maps, or -1.
 * No allocation: the count must not change what it counts. */
static long exclusive_pages(void)
{
    static char maps[1 << 20];
    long pages = 0;
    ssize_t n, len = 0;
    int mfd = open("/proc/self/maps", O_RDONLY), pfd;
    char *line, *next;

    if (mfd < 0)
        return -1;
    while (len < (ssize_t)sizeof(maps) - 1
           && (n = read(mfd, maps + len, sizeof(maps) - 1 - len)) > 0)
        len += n;
    close(mfd);
    maps[len] = '\0';
    if ((pfd = open("/proc/self/pagemap", O_RDONLY)) < 0)
        return -1;
    for (line = maps; *line != '\0'; line = next) {
        unsigned long lo, hi, a;
        char perms[5];

        next = strchr(line, '\n');
        next = next != NULL ? next + 1 : line + strlen(line);
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3
            || strcmp(perms, "rw-p") != 0)
            continue;
        for (a = lo; a < hi; a += 4096) {
            uint64_t e;

            if (pread(pfd, &e, sizeof(e), (off_t)(a / 4096 * sizeof(e)))
                != (ssize_t)sizeof(e))
                break;
            /* bit 63: present; bit 56: exclusively mapped */
            if ((e >> 63 & 1) && (e >> 56 & 1))
                pages++;
        }
    }
    close(pfd);
    return pages;
}

/* What a worker does with record i: a handshake and a verification.
 * Returns 1 if both went as they should. */
static int work(int i, const unsigned char *der, size_t len, time_t now)
{
    struct stp_verify_opts vo = { now, 300, 0, 0, NULL };
    struct stp_verdict v;
    struct stp_err err;
    struct stp_rec *r = stp_cache_get1(leaves[i]);
    unsigned char *copy = NULL;
    size_t clen = 0;
    int ok;

    if (r != recs[i]) {
        stp_rec_unref(r);
        return 0;
    }
    int status;

    ok = stp_cache_copy(r, now, &copy, &clen, &status) == STP_COPY_OK
         && stp_verify_response(der, len, r->ci->leaf, r->ci->issuer, &vo, &v,
                                &err);
    OPENSSL_free(copy);
    stp_rec_unref(r);
    return ok;
}

int main(void)
{
    struct tp_pki pki;
    unsigned char *der = NULL;
    size_t len;
    time_t now = time(NULL);
    int i, is_new, status;
    pid_t pid;

#ifdef STP_SANITIZED
    puts("skipped: under a sanitizer");
    return 77;
#endif
    ASSERT_OK(stp_cache_init());
    ASSERT_OK(tp_pki_new(&pki));
    {
        struct tp_resp_spec spec = {
            pki.leaf.cert,          pki.ca.cert, &pki.ca,    0,
            V_OCSP_CERTSTATUS_GOOD, now - 60,    now + 3600, 0
        };

        len = tp_response(&spec, &der);
        ASSERT_TRUE(len > 0);
    }
    for (i = 0; i < N; i++) {
        /* as a server loads a certificate and its chain: objects of its own */
        X509 *issuer = X509_dup(pki.ca.cert);
        STACK_OF(X509) *cand = sk_X509_new_null();
        struct stp_rec *f = stp_rec_new();
        struct stp_err err;
        struct stp_verdict v = {
            V_OCSP_CERTSTATUS_GOOD, -1, 0, 0, now - 60, now + 3600, 1
        };

        leaves[i] = X509_dup(pki.leaf.cert);
        ASSERT_TRUE(issuer != NULL && cand != NULL && f != NULL
                    && leaves[i] != NULL && sk_X509_push(cand, issuer));
        ASSERT_OK(stp_certinfo_new(leaves[i], cand, &f->ci, &err));
        sk_X509_free(cand);
        X509_free(issuer); /* the record holds its own reference */
        f->dec.staple = 1;
        memcpy(f->ci->id, &i, sizeof(i)); /* a distinct identity each */
        f->ci->id[31] ^= 0x5a;
        recs[i] = stp_cache_claim(f->ci->id, leaves[i], f, &is_new);
        ASSERT_TRUE(recs[i] != NULL && is_new);
        ASSERT_EQ(stp_cache_publish(recs[i], der, len, &v, now),
                  STP_REPLACE_YES);
    }
    ASSERT_OK(work(0, der, len, now));
    fflush(NULL);
    if ((pid = fork()) == 0) {
        long before, after;
        int bad = 0;

        for (i = 0; i < WARM; i++) /* one-time work: lazy tables */
            bad += !work(i, der, len, now);
        before = exclusive_pages();
        for (i = WARM; i < N; i++)
            bad += !work(i, der, len, now);
        after = exclusive_pages();
        printf("child: %d records: %ld pages copied or written (%.2f per "
               "record; a record is %zu bytes), %d failed\n",
               N - WARM, after - before, (double)(after - before) / (N - WARM),
               sizeof(struct stp_rec), bad);
        fflush(stdout);
        /* at most a page per 8 records, and a margin for one-time work */
        _exit(bad == 0 && before >= 0 && after - before <= (N - WARM) / 8 + 64
                  ? 0
                  : 1);
    }
    ASSERT_TRUE(pid > 0);
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (i = 0; i < N; i++) {
        stp_cache_release(recs[i]);
        X509_free(leaves[i]);
    }
    OPENSSL_free(der);
    tp_pki_free(&pki);
    STP_TEST_MAIN_END();
}
