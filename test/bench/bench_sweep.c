/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_sweep: the scale benchmark's client. A sweep is one full TLS
 * handshake (no resumption) with 127.0.0.1:PORT for each name
 * h1.bench.test .. h<N>.bench.test, with SNI and status_request, spread over
 * --parallel threads. Each handshake is timed (connect to the end of
 * SSL_connect) and its staple checked, independently of ocspstaple's code:
 * the leaf received is the name's certificate (X509_check_host), the
 * response is successful, OCSP_basic_verify() accepts it against --ca (the
 * test root) with the chain the server sent, it has a SingleResponse
 * "good" for the leaf's CertID (issuer from that chain) and is valid now
 * (OCSP_check_validity, 5 min of skew). The signatures of a staple whose
 * bytes, with the same issuer, were verified before are not verified again
 * (a table of SHA-256 digests): the client is measuring, and on a 2-core
 * machine its CPU is taken from the server it measures. Everything else is
 * checked at every handshake.
 *
 * Names h<i> with i a multiple of --hang-every are the hanging ones: they
 * are swept like the others but not "counted" by the goals below.
 *
 * Sweeps run back to back until --max-sweeps, or with --until-all until a
 * sweep in which every counted name got a verified staple (after at least
 * --min-sweeps), and never past --limit seconds after --t0-ms (the epoch
 * time, in ms, the other times are counted from: the server's start;
 * default: this program's start). A handshake is bounded by --timeout-ms.
 * With --until-all, a sweep that left counted names without a staple is
 * followed by retry rounds over those names alone, each round over the ones
 * still never stapled, until none is left (then the next full sweep): so
 * all_once_s is known to within a round (a second or two), not within a
 * whole sweep (12 to 18 s at N = 10,000 on 2 cores). Their handshakes count
 * in every figure except the per-sweep ones.
 *
 * stderr: one line per sweep. stdout, "key value" lines:
 *   sweeps, handshakes, failed (no handshake), bad (a staple that does not
 *   verify, or the wrong certificate), counted (names counted);
 *   first_stapled, first_worst_ms, first_p99_ms, first_median_ms (the
 *   first sweep);
 *   last_stapled (counted names stapled in the last complete sweep), once
 *   (counted names stapled at least once); worst_ms, p99_ms, median_ms
 *   (every handshake);
 *   last_miss_s: the end of the last handshake of a counted name that got no
 *   verified staple (every name was stapled from then on, as far as a
 *   client can tell: the lower bound of all_sweep_s, which must wait for a
 *   whole sweep to see it), or "none";
 *   all_once_s: when every counted name had had a verified staple at least
 *   once, all_sweep_s: the end of the first sweep in which every counted name
 *   was stapled (seconds since t0, or "none"); all_sweep (its number).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define MAX_PARALLEL 64
#define SKEW_S       300

enum result { R_NONE, R_STAPLED, R_FAILED, R_BAD, R_SKIPPED };

static struct {
    struct sockaddr_in addr;
    long n, want, hang_every, parallel, timeout_ms, min_sweeps, max_sweeps;
    double limit_s;
    int until_all;
    SSL_CTX *ctx;
    X509_STORE *store;
    int64_t t0_off_us; /* t0 in monotonic microseconds */
    _Atomic long next;
    /* the names (indices) of a retry round, or NULL: a full sweep */
    long *list, nlist;
    /* per name, this sweep */
    unsigned char *res;
    double *ms;
    /* per name, ever */
    unsigned char *once;
    _Atomic long once_count;
    double all_once_s;
    double last_miss_s; /* under .lock */
    pthread_mutex_t lock;
    /* staples (with their issuer) whose signatures verified: SHA-256
     * digests, open addressing, under .lock; a full table verifies again */
    unsigned char (*verified)[32];
    size_t nverified, capverified;
} g;

/* The digest of a staple's bytes and its issuer's, in <md>. */
static int staple_digest(const unsigned char *der, long len, X509 *issuer,
                         unsigned char md[32])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char *idr = NULL;
    int ilen = i2d_X509(issuer, &idr), ok;

    ok = c != NULL && ilen > 0 && EVP_DigestInit_ex(c, EVP_sha256(), NULL)
         && EVP_DigestUpdate(c, der, (size_t)len)
         && EVP_DigestUpdate(c, idr, (size_t)ilen)
         && EVP_DigestFinal_ex(c, md, NULL);
    EVP_MD_CTX_free(c);
    OPENSSL_free(idr);
    return ok;
}

/* Whether <md> is in the table; with <add>, puts it there. */
static int verified_before(const unsigned char md[32], int add)
{
    size_t i, h;
    int found = 0;

    if (g.capverified == 0)
        return 0;
    memcpy(&h, md, sizeof(h));
    pthread_mutex_lock(&g.lock);
    for (i = h % g.capverified;; i = (i + 1) % g.capverified) {
        static const unsigned char zero[32];

        if (memcmp(g.verified[i], md, 32) == 0) {
            found = 1;
            break;
        }
        if (memcmp(g.verified[i], zero, 32) == 0) {
            if (add && g.nverified + 1 < g.capverified) {
                memcpy(g.verified[i], md, 32);
                g.nverified++;
            }
            break;
        }
    }
    pthread_mutex_unlock(&g.lock);
    return found;
}

static int64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double since_t0_s(int64_t mono)
{
    return (double)(mono - g.t0_off_us) / 1e6;
}

static int counted(long i)
{
    return g.hang_every <= 0 || i % g.hang_every != 0;
}

/* The verdict on the staple of a completed handshake with NAME. */
static enum result check_staple(SSL *s, const char *name)
{
    const unsigned char *p;
    long len = SSL_get_tlsext_status_ocsp_resp(s, &p);
    X509 *leaf = SSL_get0_peer_certificate(s), *issuer = NULL;
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(s);
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    OCSP_CERTID *id = NULL;
    ASN1_GENERALIZEDTIME *tu, *nu;
    enum result r = R_BAD;
    int i, status, reason, known = 0, have_md = 0;
    unsigned char md[32];

    if (len <= 0 || p == NULL)
        return R_NONE;
    if (leaf == NULL || chain == NULL
        || X509_check_host(leaf, name, 0, 0, NULL) != 1)
        return R_BAD;
    for (i = 0; i < sk_X509_num(chain); i++) {
        X509 *c = sk_X509_value(chain, i);

        if (c != leaf && X509_check_issued(c, leaf) == X509_V_OK) {
            issuer = c;
            break;
        }
    }
    if (issuer != NULL && (have_md = staple_digest(p, len, issuer, md)))
        known = verified_before(md, 0);
    resp = d2i_OCSP_RESPONSE(NULL, &p, len);
    if (issuer == NULL || resp == NULL
        || OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL
        || (bs = OCSP_response_get1_basic(resp)) == NULL
        || (!known && OCSP_basic_verify(bs, chain, g.store, 0) <= 0)
        || (id = OCSP_cert_to_id(NULL, leaf, issuer)) == NULL
        || !OCSP_resp_find_status(bs, id, &status, &reason, NULL, &tu, &nu)
        || status != V_OCSP_CERTSTATUS_GOOD
        || !OCSP_check_validity(tu, nu, SKEW_S, -1))
        goto out;
    if (have_md && !known)
        verified_before(md, 1);
    r = R_STAPLED;
out:
    ERR_clear_error();
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    return r;
}

static enum result handshake(long i, double *ms)
{
    char name[64];
    struct timeval tv;
    int fd, one = 1;
    SSL *s = NULL;
    enum result r = R_FAILED;
    int64_t t = mono_us();

    snprintf(name, sizeof(name), "h%ld.bench.test", i);
    tv.tv_sec = g.timeout_ms / 1000;
    tv.tv_usec = (g.timeout_ms % 1000) * 1000;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto out;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&g.addr, sizeof(g.addr)) != 0)
        goto out;
    s = SSL_new(g.ctx);
    if (s == NULL || !SSL_set_fd(s, fd) || !SSL_set_tlsext_host_name(s, name)
        || !SSL_set_tlsext_status_type(s, TLSEXT_STATUSTYPE_ocsp))
        goto out;
    if (SSL_connect(s) != 1)
        goto out;
    *ms = (double)(mono_us() - t) / 1000.0;
    r = check_staple(s, name);
    SSL_shutdown(s);
out:
    if (r == R_FAILED)
        *ms = (double)(mono_us() - t) / 1000.0;
    ERR_clear_error();
    SSL_free(s);
    if (fd >= 0)
        close(fd);
    return r;
}

static void *worker(void *arg)
{
    (void)arg;
    for (;;) {
        long k = atomic_fetch_add(&g.next, 1);
        enum result r;

        if (k >= (g.list != NULL ? g.nlist : g.n))
            break;
        if (g.list != NULL)
            k = g.list[k];
        if (since_t0_s(mono_us()) >= g.limit_s) {
            g.res[k] = R_SKIPPED;
            g.ms[k] = 0;
            continue;
        }
        r = handshake(k + 1, &g.ms[k]);
        g.res[k] = (unsigned char)r;
        if (r != R_STAPLED && counted(k + 1)) {
            double t = since_t0_s(mono_us());

            pthread_mutex_lock(&g.lock);
            if (t > g.last_miss_s)
                g.last_miss_s = t;
            pthread_mutex_unlock(&g.lock);
        }
        if (r == R_STAPLED && !g.once[k]) {
            g.once[k] = 1;
            if (counted(k + 1)) {
                if (atomic_fetch_add(&g.once_count, 1) + 1 == g.want) {
                    pthread_mutex_lock(&g.lock);
                    g.all_once_s = since_t0_s(mono_us());
                    pthread_mutex_unlock(&g.lock);
                }
            }
        }
    }
    return NULL;
}

/* One pass of --parallel threads over the names (g.list, or all). */
static int run_pass(void)
{
    pthread_t th[MAX_PARALLEL];
    long t;

    atomic_store(&g.next, 0);
    for (t = 0; t < g.parallel; t++) {
        if (pthread_create(&th[t], NULL, worker, NULL) != 0) {
            fprintf(stderr, "bench_sweep: pthread_create failed\n");
            return 0;
        }
    }
    for (t = 0; t < g.parallel; t++)
        pthread_join(th[t], NULL);
    return 1;
}

/*
 * Retry rounds after a sweep that left counted names without a staple:
 * each round handshakes the counted names never stapled so far, until none
 * is left or the limit is reached. Adds their handshakes to <all_ms>.
 */
static int retry_rounds(double **all_ms, long *nall, long *cap, long *hs,
                        long *failed, long *bad)
{
    long i, round = 0, first = 0;
    int64_t begun = 0;

    for (;;) {
        /* at most 5 rounds a second: a name left alone is not hammered */
        if (round > 0 && mono_us() - begun < 200000)
            usleep((useconds_t)(200000 - (mono_us() - begun)));
        begun = mono_us();
        g.nlist = 0;
        for (i = 0; i < g.n; i++)
            if (counted(i + 1) && !g.once[i])
                g.list[g.nlist++] = i;
        if (g.nlist == 0 || since_t0_s(begun) >= g.limit_s)
            break;
        if (round++ == 0)
            first = g.nlist;
        if (!run_pass())
            return 0;
        for (i = 0; i < g.nlist; i++) {
            long k = g.list[i];

            if (g.res[k] == R_SKIPPED)
                continue;
            (*hs)++;
            if (*nall == *cap) {
                *cap *= 2;
                *all_ms = realloc(*all_ms, (size_t)*cap * sizeof(double));
                if (*all_ms == NULL)
                    return 0;
            }
            (*all_ms)[(*nall)++] = g.ms[k];
            *failed += g.res[k] == R_FAILED;
            *bad += g.res[k] == R_BAD;
        }
    }
    if (round > 0)
        fprintf(stderr,
                "  %ld retry round(s) over the %ld name(s) left: t=%.1fs "
                "once=%ld/%ld\n",
                round, first, since_t0_s(mono_us()), atomic_load(&g.once_count),
                g.want);
    g.list = NULL;
    g.nlist = 0;
    return 1;
}

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* The Q-quantile (0..1) of the N sorted values V (nearest rank). */
static double quantile(const double *v, long n, double q)
{
    long k;

    if (n <= 0)
        return 0;
    k = (long)(q * (double)n + 0.999999) - 1;
    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return v[k];
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_sweep --port P --n N --ca ROOT.pem [--hang-every K]"
            " [--until-all] [--min-sweeps M] [--max-sweeps M] [--limit S]"
            " [--t0-ms EPOCH_MS] [--parallel P] [--timeout-ms MS]\n");
    exit(2);
}

static long num(const char *v, long lo, long hi)
{
    char *end;
    long x;

    errno = 0;
    x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        usage();
    return x;
}

int main(int argc, char **argv)
{
    const char *ca = NULL;
    long port = 0, sweep, nsweeps = 0, i, hs = 0, failed = 0, bad = 0;
    long first_stapled = -1, last_stapled = 0, all_sweep = 0;
    double first_worst = 0, first_p99 = 0, first_median = 0, all_sweep_s = -1;
    double *all_ms, *sorted;
    long nall = 0, cap;
    long long t0_ms = -1;
    long *list;
    struct timespec rt;

    g.parallel = 2;
    g.timeout_ms = 5000;
    g.min_sweeps = 1;
    g.max_sweeps = -1;
    g.limit_s = 1e9;
    g.all_once_s = -1;
    g.last_miss_s = -1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--until-all") == 0) {
            g.until_all = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        i++;
        if (strcmp(a, "--port") == 0)
            port = num(argv[i], 1, 65535);
        else if (strcmp(a, "--n") == 0)
            g.n = num(argv[i], 1, 10000000);
        else if (strcmp(a, "--ca") == 0)
            ca = argv[i];
        else if (strcmp(a, "--hang-every") == 0)
            g.hang_every = num(argv[i], 0, 10000000);
        else if (strcmp(a, "--min-sweeps") == 0)
            g.min_sweeps = num(argv[i], 0, 1000000);
        else if (strcmp(a, "--max-sweeps") == 0)
            g.max_sweeps = num(argv[i], 1, 1000000);
        else if (strcmp(a, "--limit") == 0)
            g.limit_s = (double)num(argv[i], 1, 1000000);
        else if (strcmp(a, "--t0-ms") == 0)
            t0_ms = num(argv[i], 0, __LONG_MAX__);
        else if (strcmp(a, "--parallel") == 0)
            g.parallel = num(argv[i], 1, MAX_PARALLEL);
        else if (strcmp(a, "--timeout-ms") == 0)
            g.timeout_ms = num(argv[i], 1, 600000);
        else
            usage();
    }
    if (port == 0 || g.n == 0 || ca == NULL)
        usage();
    if (g.max_sweeps < 0)
        g.max_sweeps = g.until_all ? 1000000 : g.min_sweeps;

    clock_gettime(CLOCK_REALTIME, &rt);
    g.t0_off_us = mono_us();
    if (t0_ms >= 0)
        g.t0_off_us -=
            ((long long)rt.tv_sec * 1000 + rt.tv_nsec / 1000000 - t0_ms) * 1000;

    memset(&g.addr, 0, sizeof(g.addr));
    g.addr.sin_family = AF_INET;
    g.addr.sin_port = htons((unsigned short)port);
    g.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g.ctx = SSL_CTX_new(TLS_client_method());
    g.store = X509_STORE_new();
    if (g.ctx == NULL || g.store == NULL
        || !X509_STORE_load_file(g.store, ca)) {
        ERR_print_errors_fp(stderr);
        fprintf(stderr, "bench_sweep: cannot set up TLS with %s\n", ca);
        return 1;
    }
    SSL_CTX_set_verify(g.ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_options(g.ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(g.ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_min_proto_version(g.ctx, TLS1_2_VERSION);
    pthread_mutex_init(&g.lock, NULL);

    g.res = calloc((size_t)g.n, 1);
    g.once = calloc((size_t)g.n, 1);
    g.ms = calloc((size_t)g.n, sizeof(double));
    g.capverified = (size_t)g.n * 4 + 64; /* a few staples per name */
    g.verified = calloc(g.capverified, 32);
    sorted = calloc((size_t)g.n, sizeof(double));
    cap = g.n;
    all_ms = malloc((size_t)cap * sizeof(double));
    list = malloc((size_t)g.n * sizeof(long));
    if (!g.res || !g.once || !g.ms || !sorted || !all_ms || !g.verified
        || !list) {
        fprintf(stderr, "bench_sweep: out of memory\n");
        return 1;
    }
    for (i = 1; i <= g.n; i++)
        g.want += counted(i);

    for (sweep = 1; sweep <= g.max_sweeps; sweep++) {
        long st = 0, stc = 0, f = 0, b = 0, done = 0;
        double worst = 0, p99;

        if (since_t0_s(mono_us()) >= g.limit_s)
            break;
        nsweeps = sweep;
        g.list = NULL;
        if (!run_pass())
            return 1;
        for (i = 0; i < g.n; i++) {
            if (g.res[i] == R_SKIPPED)
                continue;
            done++;
            hs++;
            sorted[done - 1] = g.ms[i];
            if (nall == cap) {
                cap *= 2;
                all_ms = realloc(all_ms, (size_t)cap * sizeof(double));
                if (all_ms == NULL) {
                    fprintf(stderr, "bench_sweep: out of memory\n");
                    return 1;
                }
            }
            all_ms[nall++] = g.ms[i];
            if (g.ms[i] > worst)
                worst = g.ms[i];
            if (g.res[i] == R_STAPLED) {
                st++;
                stc += counted(i + 1);
            } else if (g.res[i] == R_FAILED) {
                f++;
            } else if (g.res[i] == R_BAD) {
                b++;
            }
        }
        failed += f;
        bad += b;
        qsort(sorted, (size_t)done, sizeof(double), dbl_cmp);
        p99 = quantile(sorted, done, 0.99);
        if (sweep == 1) {
            first_stapled = st;
            first_worst = worst;
            first_p99 = p99;
            first_median = quantile(sorted, done, 0.5);
        }
        if (done == g.n)
            last_stapled = stc;
        fprintf(stderr,
                "sweep %ld: t=%.1fs handshakes=%ld stapled=%ld counted=%ld/%ld"
                " once=%ld/%ld failed=%ld bad=%ld worst=%.1fms p99=%.1fms\n",
                sweep, since_t0_s(mono_us()), done, st, stc, g.want,
                atomic_load(&g.once_count), g.want, f, b, worst, p99);
        if (done == g.n && stc == g.want && all_sweep == 0) {
            all_sweep = sweep;
            all_sweep_s = since_t0_s(mono_us());
        }
        if (done < g.n)
            break; /* the limit was reached during this sweep */
        if (g.until_all && all_sweep != 0 && sweep >= g.min_sweeps)
            break;
        if (g.until_all && stc < g.want) {
            g.list = list;
            if (!retry_rounds(&all_ms, &nall, &cap, &hs, &failed, &bad)) {
                fprintf(stderr, "bench_sweep: retry rounds failed\n");
                return 1;
            }
        }
    }
    qsort(all_ms, (size_t)nall, sizeof(double), dbl_cmp);
    printf("sweeps %ld\nhandshakes %ld\nfailed %ld\nbad %ld\ncounted %ld\n",
           nsweeps, hs, failed, bad, g.want);
    printf("first_stapled %ld\nfirst_worst_ms %.1f\nfirst_p99_ms %.1f\n"
           "first_median_ms %.1f\n",
           first_stapled, first_worst, first_p99, first_median);
    printf("last_stapled %ld\nonce %ld\nworst_ms %.1f\np99_ms %.1f\n"
           "median_ms %.1f\n",
           last_stapled, atomic_load(&g.once_count),
           nall ? all_ms[nall - 1] : 0.0, quantile(all_ms, nall, 0.99),
           quantile(all_ms, nall, 0.5));
    if (g.last_miss_s >= 0)
        printf("last_miss_s %.1f\n", g.last_miss_s);
    else
        printf("last_miss_s none\n");
    if (g.all_once_s >= 0)
        printf("all_once_s %.1f\n", g.all_once_s);
    else
        printf("all_once_s none\n");
    if (all_sweep_s >= 0)
        printf("all_sweep_s %.1f\nall_sweep %ld\n", all_sweep_s, all_sweep);
    else
        printf("all_sweep_s none\nall_sweep 0\n");
    free(list);
    free(all_ms);
    free(sorted);
    free(g.ms);
    free(g.once);
    free(g.res);
    X509_STORE_free(g.store);
    SSL_CTX_free(g.ctx);
    return 0;
}
