/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_responder: the scale benchmark's OCSP responder, on 127.0.0.1 only.
 * One thread, epoll, non-blocking sockets, HTTP/1.0 and 1.1 (keep-alive),
 * GET (RFC 5019, the base64 request in the path) and POST. Each response is
 * signed at once with the OpenSSL API by the issuer itself (--ca, --key, no
 * delegated signer, no certificates in the response), for every CertID the
 * request names: "good" for a serial listed valid in --index (an `openssl
 * ca` database), "revoked" for one listed revoked, "unknown" otherwise or
 * when the CertID names another issuer. thisUpdate is now, nextUpdate now +
 * --validity seconds, the request's nonce is copied.
 *
 * Two listeners: the main one (--port) and the "hang" one (--hang-port),
 * which the benchmark's hanging certificates name in their AIA. The control
 * file (--ctl), re-read every 100 ms, holds "gen=G snap=S delay_ms=D
 * hang=H":
 *   delay_ms  every answer is sent D ms after its request arrived (timers,
 *             the loop never sleeps on one request)
 *   hang      1: the hang listener accepts, reads the request, counts it and
 *             never answers (the connection stays open until the client
 *             closes it); 0: it answers as the main one does
 *   gen       a new value resets every counter and reads --index again
 *   snap      any change of the file writes the counters at once, with
 *             "snap S": the writer waits for it to read exact counters.
 * The counters go to --stats (rewritten by rename at each change of the
 * control file, when they changed at most every 100 ms, and at exit):
 * "gen G", "snap S", "requests R" (OCSP requests
 * received on both listeners, answered or held), "requests_hang",
 * "connections", "distinct" (listed certificates asked for at least once),
 * "max_per_cert", "unknown" (CertIDs not listed), "bad" (unparsable).
 * --port-file gets "PORT HANG_PORT" once both listen. --index, --ca and
 * --key are read at start and at each new gen (the benchmark makes its
 * certificates once the ports are known); until they exist, every answer is
 * tryLater. Exits at SIGTERM or after --lifetime seconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define MAX_HEAD       16384
#define MAX_BODY       65536
#define MAX_IN         (MAX_HEAD + MAX_BODY)
#define CTL_POLL_MS    100
#define MAX_EVENTS     256
#define MAX_SERIAL     80 /* hex digits */
#define LISTEN_BACKLOG 4096

enum cstate { C_LISTEN, C_READ, C_WAIT, C_WRITE, C_HANG };
enum { L_MAIN, L_HANG, NLISTEN };

struct entry {
    char serial[MAX_SERIAL + 1]; /* upper-case hex, no leading zeros */
    char status;                 /* 'V' or 'R' */
    time_t revoked;
    unsigned long asked;
};

struct conn {
    int fd;
    int lst; /* L_MAIN or L_HANG */
    enum cstate st;
    unsigned char *in;
    size_t inlen;
    unsigned char *out;
    size_t outlen, outoff;
    int close_after;
    int64_t due;              /* C_WAIT: when the answer goes out */
    struct conn *prev, *next; /* C_WAIT list */
};

struct counters {
    unsigned long requests, requests_hang, connections, distinct, max_per,
        unknown, bad;
};

static struct {
    struct entry *idx;
    size_t nidx;
    X509 *ca;
    EVP_PKEY *key;
    OCSP_CERTID *ca_id; /* SHA-1 CertID of the CA itself (issuer hashes) */
    long validity;
    const char *index, *ca_file, *key_file, *ctl, *stats;
    char ctl_text[256];
    long gen, snap, delay_ms;
    int hang;
    struct counters c;
    int dirty;
    int ep;
    struct conn lconn[NLISTEN];
    struct conn *wait_head, *wait_tail;
} g;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_responder: %s\n", what);
    ERR_print_errors_fp(stderr);
    exit(1);
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the index ---------------------------------------------------------- */

static void norm_serial(const char *in, size_t len, char *out)
{
    size_t i, o = 0;

    while (len > 1 && *in == '0') {
        in++;
        len--;
    }
    for (i = 0; i < len && o < MAX_SERIAL; i++)
        out[o++] = (char)(in[i] >= 'a' && in[i] <= 'f' ? in[i] - 32 : in[i]);
    out[o] = '\0';
}

static int entry_cmp(const void *a, const void *b)
{
    const struct entry *x = a, *y = b;
    size_t lx = strlen(x->serial), ly = strlen(y->serial);

    if (lx != ly)
        return lx < ly ? -1 : 1;
    return strcmp(x->serial, y->serial);
}

/* openssl ca's database: status TAB expiry TAB revocation TAB serial ...
 * (read again at each new gen: the certificates may be made after the
 * responder started, once its ports are known). */
static void load_index(const char *file)
{
    FILE *f = fopen(file, "r");
    char line[1024];
    size_t cap = 0;

    free(g.idx);
    g.idx = NULL;
    g.nidx = 0;
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        char *field[4], *p = line;
        int i;
        struct entry *e;

        for (i = 0; i < 4; i++) {
            field[i] = p;
            p = strchr(p, '\t');
            if (p == NULL)
                break;
            *p++ = '\0';
        }
        if (i < 3 || (line[0] != 'V' && line[0] != 'R'))
            continue;
        if (g.nidx == cap) {
            cap = cap ? 2 * cap : 1024;
            g.idx = realloc(g.idx, cap * sizeof(*g.idx));
            if (g.idx == NULL)
                die("out of memory");
        }
        e = &g.idx[g.nidx++];
        memset(e, 0, sizeof(*e));
        e->status = line[0];
        norm_serial(field[3], strcspn(field[3], "\t\r\n"), e->serial);
        if (e->status == 'R') {
            struct tm tm;

            memset(&tm, 0, sizeof(tm));
            /* YYMMDDHHMMSSZ[,reason] */
            if (sscanf(field[2], "%2d%2d%2d%2d%2d%2d", &tm.tm_year, &tm.tm_mon,
                       &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec)
                == 6) {
                tm.tm_year += 100;
                tm.tm_mon -= 1;
                e->revoked = timegm(&tm);
            }
        }
    }
    fclose(f);
    qsort(g.idx, g.nidx, sizeof(*g.idx), entry_cmp);
}

static struct entry *find_serial(const ASN1_INTEGER *serial)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    struct entry key, *e = NULL;

    if (hex != NULL && hex[0] != '-') {
        norm_serial(hex, strlen(hex), key.serial);
        e = bsearch(&key, g.idx, g.nidx, sizeof(*g.idx), entry_cmp);
    }
    OPENSSL_free(hex);
    BN_free(bn);
    return e;
}

/* ---- OCSP --------------------------------------------------------------- */

static void count_cert(struct entry *e)
{
    if (e->asked++ == 0)
        g.c.distinct++;
    if (e->asked > g.c.max_per)
        g.c.max_per = e->asked;
}

/* The listed certificate CID names (and counts it), or NULL (counted as
 * unknown). */
static struct entry *lookup(OCSP_CERTID *cid)
{
    ASN1_OBJECT *md_obj = NULL;
    ASN1_INTEGER *serial = NULL;
    OCSP_CERTID *ca_id = g.ca_id;
    struct entry *e = NULL;

    if (OCSP_id_get0_info(NULL, &md_obj, NULL, &serial, cid)) {
        if (OBJ_obj2nid(md_obj) != NID_sha1) {
            const EVP_MD *md = EVP_get_digestbyobj(md_obj);

            ca_id = md ? OCSP_cert_to_id(md, NULL, g.ca) : NULL;
        }
        if (ca_id != NULL && OCSP_id_issuer_cmp(ca_id, cid) == 0)
            e = find_serial(serial);
        if (ca_id != g.ca_id)
            OCSP_CERTID_free(ca_id);
    }
    if (e == NULL)
        g.c.unknown++;
    else
        count_cert(e);
    return e;
}

/* Counts the certificates the DER request IN names (a held request). */
static void ocsp_count(const unsigned char *in, size_t inlen)
{
    const unsigned char *p = in;
    OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &p, (long)inlen);
    int i, n = req ? OCSP_request_onereq_count(req) : 0;

    if (n <= 0 || g.ca == NULL)
        g.c.bad++;
    for (i = 0; i < n && g.ca != NULL; i++)
        lookup(OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i)));
    OCSP_REQUEST_free(req);
}

/* The DER response to the DER request IN (NULL when it cannot be built). */
static unsigned char *ocsp_answer(const unsigned char *in, size_t inlen,
                                  size_t *outlen)
{
    const unsigned char *p = in;
    OCSP_REQUEST *req = d2i_OCSP_REQUEST(NULL, &p, (long)inlen);
    OCSP_BASICRESP *bs = NULL;
    OCSP_RESPONSE *resp = NULL;
    ASN1_TIME *now = NULL, *next = NULL, *rev = NULL;
    unsigned char *der = NULL;
    int i, n, len;

    if (g.ca == NULL || g.key == NULL) {
        resp = OCSP_response_create(OCSP_RESPONSE_STATUS_TRYLATER, NULL);
        goto out;
    }
    if (req == NULL || (n = OCSP_request_onereq_count(req)) <= 0) {
        g.c.bad++;
        resp =
            OCSP_response_create(OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, NULL);
        goto out;
    }
    bs = OCSP_BASICRESP_new();
    now = X509_gmtime_adj(NULL, 0);
    next = X509_gmtime_adj(NULL, g.validity);
    if (bs == NULL || now == NULL || next == NULL)
        goto out;
    for (i = 0; i < n; i++) {
        OCSP_CERTID *cid =
            OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i));
        struct entry *e = lookup(cid);
        int st = V_OCSP_CERTSTATUS_UNKNOWN, reason = -1;

        ASN1_TIME_free(rev);
        rev = NULL;
        if (e != NULL) {
            if (e->status == 'V') {
                st = V_OCSP_CERTSTATUS_GOOD;
            } else {
                st = V_OCSP_CERTSTATUS_REVOKED;
                reason = OCSP_REVOKED_STATUS_UNSPECIFIED;
                rev = ASN1_TIME_set(NULL, e->revoked);
            }
        }
        if (OCSP_basic_add1_status(bs, cid, st, reason, rev, now, next) == NULL)
            goto out;
    }
    if (OCSP_copy_nonce(bs, req) <= 0
        || !OCSP_basic_sign(bs, g.ca, g.key, EVP_sha256(), NULL, OCSP_NOCERTS))
        goto out;
    resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
out:
    if (resp != NULL && (len = i2d_OCSP_RESPONSE(resp, &der)) > 0)
        *outlen = (size_t)len;
    else
        der = NULL;
    if (der == NULL)
        ERR_print_errors_fp(stderr);
    OCSP_RESPONSE_free(resp);
    OCSP_BASICRESP_free(bs);
    OCSP_REQUEST_free(req);
    ASN1_TIME_free(now);
    ASN1_TIME_free(next);
    ASN1_TIME_free(rev);
    return der;
}

/* ---- control and statistics -------------------------------------------- */

static void *load_pem(const char *file, int key)
{
    FILE *f = fopen(file, "r");
    void *r;

    if (f == NULL)
        return NULL;
    r = key ? (void *)PEM_read_PrivateKey(f, NULL, NULL, NULL)
            : (void *)PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (r == NULL)
        die("cannot read a PEM file");
    return r;
}

/* (Re)loads the index, the CA and its key: they may be made after the
 * responder started, once its ports are known. Until they exist every
 * request is answered tryLater. */
static void load_pki(void)
{
    load_index(g.index);
    X509_free(g.ca);
    EVP_PKEY_free(g.key);
    OCSP_CERTID_free(g.ca_id);
    g.ca = load_pem(g.ca_file, 0);
    g.key = load_pem(g.key_file, 1);
    g.ca_id = g.ca ? OCSP_cert_to_id(EVP_sha1(), NULL, g.ca) : NULL;
    if (g.ca != NULL && g.ca_id == NULL)
        die("cannot make the CA's CertID");
}

static void write_stats(void)
{
    char tmp[4096];
    FILE *f;

    if (g.stats == NULL)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", g.stats);
    f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f,
            "gen %ld\nsnap %ld\nrequests %lu\nrequests_hang %lu\n"
            "connections %lu\ndistinct %lu\nmax_per_cert %lu\nunknown %lu\n"
            "bad %lu\n",
            g.gen, g.snap, g.c.requests, g.c.requests_hang, g.c.connections,
            g.c.distinct, g.c.max_per, g.c.unknown, g.c.bad);
    if (fclose(f) == 0)
        rename(tmp, g.stats);
    g.dirty = 0;
}

static long ctl_value(const char *text, const char *key, long dflt)
{
    size_t kl = strlen(key);
    const char *p = text;

    while ((p = strstr(p, key)) != NULL) {
        if ((p == text || p[-1] == ' ' || p[-1] == '\n') && p[kl] == '=')
            return strtol(p + kl + 1, NULL, 10);
        p += kl;
    }
    return dflt;
}

static void poll_ctl(void)
{
    char buf[sizeof(g.ctl_text)];
    FILE *f;
    size_t n;
    long gen;

    if (g.ctl == NULL || (f = fopen(g.ctl, "r")) == NULL)
        return;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (strcmp(buf, g.ctl_text) == 0)
        return;
    memcpy(g.ctl_text, buf, n + 1);
    g.delay_ms = ctl_value(buf, "delay_ms", 0);
    g.hang = ctl_value(buf, "hang", 0) != 0;
    g.snap = ctl_value(buf, "snap", 0);
    gen = ctl_value(buf, "gen", g.gen);
    if (gen != g.gen) {
        g.gen = gen;
        memset(&g.c, 0, sizeof(g.c));
        load_pki(); /* every "asked" count starts at 0 */
        fprintf(stderr,
                "bench_responder: gen %ld: %zu certificates, delay_ms %ld, "
                "hang %d\n",
                g.gen, g.nidx, g.delay_ms, g.hang);
    }
    write_stats();
}

/* ---- connections -------------------------------------------------------- */

static void set_events(struct conn *c, uint32_t ev)
{
    struct epoll_event e;

    memset(&e, 0, sizeof(e));
    e.events = ev;
    e.data.ptr = c;
    epoll_ctl(g.ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void wait_unlink(struct conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        g.wait_head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        g.wait_tail = c->prev;
    c->prev = c->next = NULL;
}

static void conn_close(struct conn *c)
{
    if (c->st == C_WAIT)
        wait_unlink(c);
    close(c->fd); /* also leaves the epoll set */
    free(c->in);
    free(c->out);
    free(c);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The DER request in a GET target: leading slashes, then the URL-encoded
 * base64. Returns a malloc'ed buffer or NULL. */
static unsigned char *get_der(const char *t, size_t tl, size_t *derlen)
{
    char *b64 = malloc(tl + 1);
    unsigned char *der = NULL;
    EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
    size_t i = 0, o = 0;
    int n1 = 0, n2 = 0;

    while (i < tl && t[i] == '/')
        i++;
    for (; b64 != NULL && i < tl; i++) {
        int h, l;

        if (t[i] == '%' && i + 2 < tl && (h = hexval(t[i + 1])) >= 0
            && (l = hexval(t[i + 2])) >= 0) {
            b64[o++] = (char)(h * 16 + l);
            i += 2;
        } else {
            b64[o++] = t[i];
        }
    }
    if (b64 != NULL && ctx != NULL && o > 0 && (der = malloc(o)) != NULL) {
        EVP_DecodeInit(ctx);
        if (EVP_DecodeUpdate(ctx, der, &n1, (unsigned char *)b64, (int)o) < 0
            || EVP_DecodeFinal(ctx, der + n1, &n2) < 0) {
            free(der);
            der = NULL;
        } else {
            *derlen = (size_t)(n1 + n2);
        }
    }
    EVP_ENCODE_CTX_free(ctx);
    free(b64);
    return der;
}

/* Finds header NAME (case-insensitive) in HEAD; its value, or NULL. */
static const char *header(const char *head, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *p = strstr(head, "\r\n");

    while (p != NULL && p[2] != '\r') {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *e;

            while (*v == ' ' || *v == '\t')
                v++;
            e = strstr(v, "\r\n");
            *vlen = e ? (size_t)(e - v) : strlen(v);
            return v;
        }
        p = strstr(p, "\r\n");
    }
    return NULL;
}

static void queue_answer(struct conn *c, int status, const unsigned char *body,
                         size_t blen);

/* Parses one complete request at the start of c->in, if there is one.
 * Returns 1 when one was handled, 0 when more input is needed, -1 to close. */
static int handle_request(struct conn *c)
{
    char *head = (char *)c->in, *end, *sp1, *sp2;
    size_t hlen, blen = 0, vlen, tl, derlen = 0;
    const char *v;
    unsigned char *der = NULL, *resp;
    int post, http11, close_after;

    end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (end == NULL)
        return c->inlen >= MAX_HEAD ? -1 : 0;
    hlen = (size_t)(end - head) + 4;
    *end = '\0'; /* the head is now a string; restored below */
    sp1 = strchr(head, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL)
        return -1;
    post = strncmp(head, "POST ", 5) == 0;
    if (!post && strncmp(head, "GET ", 4) != 0)
        return -1;
    http11 = strncmp(sp2 + 1, "HTTP/1.1", 8) == 0;
    close_after = !http11;
    if ((v = header(head, "Connection", &vlen)) != NULL) {
        if (vlen == 5 && strncasecmp(v, "close", 5) == 0)
            close_after = 1;
        else if (vlen == 10 && strncasecmp(v, "keep-alive", 10) == 0)
            close_after = 0;
    }
    if (post) {
        if ((v = header(head, "Content-Length", &vlen)) == NULL)
            return -1;
        blen = strtoul(v, NULL, 10);
        if (blen > MAX_BODY)
            return -1;
        if (c->inlen < hlen + blen) {
            *end = '\r';
            return 0;
        }
    }
    g.c.requests++;
    g.dirty = 1;
    if (c->lst == L_HANG)
        g.c.requests_hang++;
    c->close_after = close_after;
    if (post) {
        der = malloc(blen ? blen : 1);
        if (der != NULL)
            memcpy(der, c->in + hlen, blen);
        derlen = blen;
    } else {
        tl = (size_t)(sp2 - (sp1 + 1));
        der = get_der(sp1 + 1, tl, &derlen);
    }
    if (der == NULL)
        g.c.bad++;
    if (c->lst == L_HANG && g.hang) {
        if (der != NULL)
            ocsp_count(der, derlen);
        free(der);
        c->st = C_HANG; /* never answered; input is discarded from now on */
        c->inlen = 0;
        return 1;
    }
    memmove(c->in, c->in + hlen + blen, c->inlen - hlen - blen);
    c->inlen -= hlen + blen;
    resp = der ? ocsp_answer(der, derlen, &derlen) : NULL;
    free(der);
    if (resp == NULL) {
        c->close_after = 1;
        queue_answer(c, 400, (const unsigned char *)"bad request\n", 12);
    } else {
        queue_answer(c, 200, resp, derlen);
        OPENSSL_free(resp);
    }
    return 1;
}

static void try_write(struct conn *c);

static void queue_answer(struct conn *c, int status, const unsigned char *body,
                         size_t blen)
{
    char head[256];
    int hl;

    hl = snprintf(head, sizeof(head),
                  "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
                  "Content-Length: %zu\r\nConnection: %s\r\n\r\n",
                  status, status == 200 ? "OK" : "Bad Request",
                  status == 200 ? "application/ocsp-response" : "text/plain",
                  blen, c->close_after ? "close" : "keep-alive");
    free(c->out);
    c->out = malloc((size_t)hl + blen);
    if (c->out == NULL)
        die("out of memory");
    memcpy(c->out, head, (size_t)hl);
    memcpy(c->out + hl, body, blen);
    c->outlen = (size_t)hl + blen;
    c->outoff = 0;
    if (g.delay_ms > 0) {
        c->st = C_WAIT;
        c->due = mono_ms() + g.delay_ms;
        c->prev = g.wait_tail;
        c->next = NULL;
        if (g.wait_tail)
            g.wait_tail->next = c;
        else
            g.wait_head = c;
        g.wait_tail = c;
        set_events(c, EPOLLRDHUP); /* a client that gives up is closed */
    } else {
        c->st = C_WRITE;
    }
}

/* Handles the requests in c->in; 0 when c was closed. */
static int process_input(struct conn *c)
{
    int r;

    while (c->st == C_READ) {
        r = handle_request(c);
        if (r < 0) {
            conn_close(c);
            return 0;
        }
        if (r == 0)
            break;
        if (c->st == C_WRITE) {
            try_write(c);
            return 1; /* try_write continues with the input (or closed c) */
        }
    }
    return 1;
}

static void try_write(struct conn *c)
{
    while (c->outoff < c->outlen) {
        ssize_t w = write(c->fd, c->out + c->outoff, c->outlen - c->outoff);

        if (w < 0 && errno == EAGAIN) {
            set_events(c, EPOLLOUT);
            return;
        }
        if (w <= 0) {
            conn_close(c);
            return;
        }
        c->outoff += (size_t)w;
    }
    if (c->close_after) {
        shutdown(c->fd, SHUT_WR);
        conn_close(c);
        return;
    }
    c->st = C_READ;
    set_events(c, EPOLLIN | EPOLLRDHUP);
    process_input(c);
}

static void on_readable(struct conn *c)
{
    for (;;) {
        unsigned char buf[16384];
        ssize_t r = read(c->fd, buf, sizeof(buf));

        if (r < 0 && errno == EAGAIN)
            break;
        if (r <= 0) {
            conn_close(c);
            return;
        }
        if (c->st == C_HANG)
            continue;
        if (c->inlen + (size_t)r > MAX_IN) {
            conn_close(c);
            return;
        }
        memcpy(c->in + c->inlen, buf, (size_t)r);
        c->inlen += (size_t)r;
        if (c->st != C_READ)
            continue;
        if (!process_input(c))
            return;
        if (c->st != C_READ && c->st != C_HANG)
            return; /* waiting or writing: the rest stays in the socket */
    }
}

static void on_accept(struct conn *l)
{
    for (;;) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct conn *c;
        struct epoll_event e;

        if (fd < 0)
            return;
        c = calloc(1, sizeof(*c));
        if (c == NULL || (c->in = malloc(MAX_IN)) == NULL)
            die("out of memory");
        c->fd = fd;
        c->lst = l->lst;
        c->st = C_READ;
        g.c.connections++;
        g.dirty = 1;
        memset(&e, 0, sizeof(e));
        e.events = EPOLLIN | EPOLLRDHUP;
        e.data.ptr = c;
        if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &e) != 0) {
            close(fd);
            free(c->in);
            free(c);
        }
    }
}

static void on_event(struct conn *c, uint32_t ev)
{
    if (c->st == C_LISTEN) {
        on_accept(c);
        return;
    }
    if (c->st == C_WAIT) {
        if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            conn_close(c);
        return;
    }
    if (c->st == C_WRITE) {
        if (ev & (EPOLLHUP | EPOLLERR))
            conn_close(c);
        else if (ev & EPOLLOUT)
            try_write(c);
        return;
    }
    on_readable(c); /* C_READ, C_HANG: also sees EOF and errors */
}

/* Sends the answers that are due; returns ms until the next one (-1). */
static int64_t flush_due(void)
{
    int64_t now = mono_ms(), next = -1;
    struct conn *c = g.wait_head, *n;

    for (; c != NULL; c = n) {
        n = c->next;
        if (c->due <= now) {
            wait_unlink(c);
            c->st = C_WRITE;
            try_write(c);
        } else if (next < 0 || c->due - now < next) {
            next = c->due - now;
        }
    }
    return next;
}

static int listen_on(long port, int lst)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    struct epoll_event e;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one))
        || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0
        || listen(fd, LISTEN_BACKLOG) != 0
        || getsockname(fd, (struct sockaddr *)&a, &al) != 0)
        die("cannot listen on 127.0.0.1");
    g.lconn[lst].fd = fd;
    g.lconn[lst].lst = lst;
    g.lconn[lst].st = C_LISTEN;
    memset(&e, 0, sizeof(e));
    e.events = EPOLLIN;
    e.data.ptr = &g.lconn[lst];
    if (epoll_ctl(g.ep, EPOLL_CTL_ADD, fd, &e) != 0)
        die("epoll_ctl");
    return ntohs(a.sin_port);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_responder --index FILE --ca PEM --key PEM "
                    "--port-file FILE [--port P] [--hang-port P] [--ctl FILE] "
                    "[--stats FILE] [--validity S] [--lifetime S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *port_file = NULL;
    long port = 0, hang_port = 0, lifetime = 3600;
    struct sigaction sa;
    struct rlimit rl;
    int64_t end, next_poll = 0;
    int i, p0, p1;
    FILE *f;

    g.validity = 86400;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (v == NULL)
            usage();
        i++;
        if (strcmp(a, "--index") == 0)
            g.index = v;
        else if (strcmp(a, "--ca") == 0)
            g.ca_file = v;
        else if (strcmp(a, "--key") == 0)
            g.key_file = v;
        else if (strcmp(a, "--port-file") == 0)
            port_file = v;
        else if (strcmp(a, "--port") == 0)
            port = atol(v);
        else if (strcmp(a, "--hang-port") == 0)
            hang_port = atol(v);
        else if (strcmp(a, "--ctl") == 0)
            g.ctl = v;
        else if (strcmp(a, "--stats") == 0)
            g.stats = v;
        else if (strcmp(a, "--validity") == 0)
            g.validity = atol(v);
        else if (strcmp(a, "--lifetime") == 0)
            lifetime = atol(v);
        else
            usage();
    }
    if (g.index == NULL || g.ca_file == NULL || g.key_file == NULL
        || port_file == NULL || port < 0 || port > 65535 || hang_port < 0
        || hang_port > 65535 || g.validity < 60 || lifetime < 1)
        usage();

    /* hanging fetches hold connections: allow as many as the system does */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    load_pki();
    g.ep = epoll_create1(EPOLL_CLOEXEC);
    if (g.ep < 0)
        die("epoll_create1");
    p0 = listen_on(port, L_MAIN);
    p1 = listen_on(hang_port, L_HANG);
    poll_ctl();
    write_stats();
    {
        char tmp[4096];

        snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
        f = fopen(tmp, "w");
        if (f == NULL || fprintf(f, "%d %d\n", p0, p1) < 0 || fclose(f) != 0
            || rename(tmp, port_file) != 0)
            die("cannot write the port file");
    }
    fprintf(stderr, "bench_responder: 127.0.0.1:%d and :%d\n", p0, p1);

    end = mono_ms() + lifetime * 1000;
    while (!g_stop) {
        struct epoll_event ev[MAX_EVENTS];
        int64_t now = mono_ms(), wait_ms, due;
        int n;

        if (now >= end)
            break;
        if (now >= next_poll) {
            poll_ctl();
            if (g.dirty)
                write_stats();
            next_poll = now + CTL_POLL_MS;
        }
        wait_ms = next_poll - now;
        due = flush_due();
        if (due >= 0 && due < wait_ms)
            wait_ms = due;
        n = epoll_wait(g.ep, ev, MAX_EVENTS, (int)(wait_ms < 0 ? 0 : wait_ms));
        for (i = 0; i < n; i++)
            on_event(ev[i].data.ptr, ev[i].events);
        flush_due();
    }
    write_stats();
    return 0;
}
