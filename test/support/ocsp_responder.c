/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ocsp_responder: a loopback-only HTTP front for the real `openssl ocsp`
 * responder, used by the integration tests. Each GET or POST request is
 * answered by running `openssl ocsp -index ... -reqin REQ -respout RESP`; a
 * mode file, re-read per connection, switches to fault behaviours (see
 * modes[]).
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS        32
#define MAX_HEAD         16384 /* request line + headers */
#define MAX_BODY         65536 /* POST body */
#define MAX_IN           (MAX_HEAD + MAX_BODY)
#define MAX_RESP         (1024 * 1024) /* openssl's DER response */
#define CHILD_TIMEOUT_MS 10000         /* bound on one `openssl ocsp` run */
#define DRAIN_MS         1000 /* linger after the answer before close */
#define SLOW_GAP_MS      200  /* "slow" mode: one byte per gap */
#define NO_DEADLINE      INT64_MAX

#define CT_OCSP "application/ocsp-response"

enum cstate { C_FREE, C_READ, C_WRITE, C_HANG, C_DRAIN };

struct config {
    char *index, *ca, *rsigner, *rkey, *mode_file, *replay_file;
    const char *port_file, *pid_file, *log_file, *openssl;
    const char *validity_opt, *validity; /* "-ndays" / "-nmin", number */
    long port, lifetime_s, timeout_s;
};

struct conn {
    int fd;
    enum cstate st;
    const struct mode *mode;
    unsigned char *in;
    size_t inlen;
    unsigned char *out;
    size_t outlen, outoff;
    int64_t deadline;   /* state timeout, ms on the monotonic clock */
    int64_t next_write; /* "slow" mode: when the next byte is due */
};

/* A parsed HTTP request. status != 0: answer with that HTTP error. */
struct request {
    const char *method;
    unsigned char *der;
    size_t derlen;
    int status;
};

struct server {
    struct config cfg;
    int lfd, logfd;
    char tmpdir[PATH_MAX - 16], reqpath[PATH_MAX], resppath[PATH_MAX];
    unsigned long seq;
    int64_t end_ms;
    struct conn conns[MAX_CONNS];
};

struct mode;
/* Builds c->out (or sets another state); returns the HTTP status to log. */
typedef int (*respond_fn)(struct server *s, struct conn *c,
                          const struct mode *m, const struct request *rq);

#define MODE_AT_ACCEPT 0x1 /* acts on accept, before reading anything */

struct mode {
    const char *name;
    respond_fn respond;
    unsigned int flags;
    int status;                /* HTTP status of a fixed answer */
    const unsigned char *body; /* fixed answer body */
    size_t bodylen;
    int64_t write_gap_ms; /* > 0: trickle one byte per gap */
};

static volatile sig_atomic_t g_stop;
static int g_sigpipe[2] = { -1, -1 }; /* self-pipe: wakes poll() */

static int respond_ocsp(struct server *s, struct conn *c, const struct mode *m,
                        const struct request *rq);
static int respond_fixed(struct server *s, struct conn *c, const struct mode *m,
                         const struct request *rq);
static int respond_hang(struct server *s, struct conn *c, const struct mode *m,
                        const struct request *rq);
static int respond_replay(struct server *s, struct conn *c,
                          const struct mode *m, const struct request *rq);

/* OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED } (RFC 6960 4.2.1) */
static const unsigned char der_malformed[] = { 0x30, 0x03, 0x0a, 0x01, 0x01 };
static const unsigned char der_internal[] = { 0x30, 0x03, 0x0a, 0x01, 0x02 };
static const unsigned char der_trylater[] = { 0x30, 0x03, 0x0a, 0x01, 0x03 };
static const unsigned char der_sigreq[] = { 0x30, 0x03, 0x0a, 0x01, 0x05 };
static const unsigned char der_unauth[] = { 0x30, 0x03, 0x0a, 0x01, 0x06 };
static const unsigned char garbage[] =
    "garbage from the ocspstaple test responder: this is not DER.....";
_Static_assert(sizeof(garbage) == 64 + 1, "garbage mode body is 64 bytes");
#define OCSP_ERR_LEN sizeof(der_malformed)

#define FIXED(name, status, der)                            \
    {                                                       \
        name, respond_fixed, 0, status, der, sizeof(der), 0 \
    }

/*
 * Fault modes, selected by the first word of the mode file. A new mode is one
 * row: a fixed HTTP status/body for respond_fixed, or its own respond_fn.
 */
static const struct mode modes[] = {
    { "normal", respond_ocsp, 0, 0, NULL, 0, 0 },
    { "slow", respond_ocsp, 0, 0, NULL, 0, SLOW_GAP_MS },
    { "http500", respond_fixed, 0, 500, NULL, 0, 0 },
    { "http404", respond_fixed, 0, 404, NULL, 0, 0 },
    { "garbage", respond_fixed, 0, 200, garbage, sizeof(garbage) - 1, 0 },
    FIXED("malformed", 200, der_malformed),
    FIXED("internalerror", 200, der_internal),
    FIXED("trylater", 200, der_trylater),
    FIXED("sigrequired", 200, der_sigreq),
    FIXED("unauthorized", 200, der_unauth),
    { "hang", respond_hang, 0, 0, NULL, 0, 0 },
    { "close", NULL, MODE_AT_ACCEPT, 0, NULL, 0, 0 },
    /* answers every request with the bytes of the replay file */
    { "replay", respond_replay, 0, 0, NULL, 0, 0 },
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void complain(const char *what, const char *arg)
{
    fprintf(stderr, "ocsp_responder: %s%s%s\n", what, arg ? ": " : "",
            arg ? arg : "");
}

static void complain_errno(const char *what, const char *arg)
{
    fprintf(stderr, "ocsp_responder: %s %s: %s\n", what, arg ? arg : "",
            strerror(errno));
}

/* ---- small helpers -------------------------------------------------- */

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return 0;
    *out = v;
    return 1;
}

static int set_nonblock_cloexec(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return 0;
    return fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        p += n;
        len -= (size_t)n;
    }
    return 1;
}

/* Writes "<value>\n" to PATH.tmp, then renames it to PATH. */
static int write_file_atomic(const char *path, long value)
{
    char tmp[PATH_MAX], line[32];
    int fd, ok, n;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return 0;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        complain_errno("cannot create", tmp);
        return 0;
    }
    n = snprintf(line, sizeof(line), "%ld\n", value);
    ok = write_all(fd, line, (size_t)n);
    ok = (close(fd) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        complain_errno("cannot write", path);
        unlink(tmp);
        return 0;
    }
    return 1;
}

/* Reads a whole regular file of at most MAX_RESP bytes. */
static unsigned char *read_file(const char *path, size_t *lenp)
{
    unsigned char *buf = malloc(MAX_RESP);
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (buf == NULL || fd < 0)
        goto fail;
    for (;;) {
        ssize_t n = read(fd, buf + len, MAX_RESP - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || (n > 0 && len + (size_t)n >= MAX_RESP))
            goto fail;
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    *lenp = len;
    return buf;
fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

/* ---- log and mode file ------------------------------------------------ */

/*
 * One line per request: "<seq> <GET|POST|-> <reqlen> <mode> <http-status>".
 * reqlen is the OCSP request DER length (bytes received when unparsed); status
 * 0: no HTTP answer (hang, close, client left early), 408: request timed out.
 */
static void log_request(struct server *s, const char *method, size_t reqlen,
                        const struct mode *m, int status)
{
    char line[128];
    int n;

    if (s->logfd < 0)
        return;
    n = snprintf(line, sizeof(line), "%lu %s %zu %s %d\n", s->seq, method,
                 reqlen, m->name, status);
    if (n > 0 && !write_all(s->logfd, line, (size_t)n))
        complain_errno("cannot write", s->cfg.log_file);
}

static const struct mode *find_mode(const char *name)
{
    size_t i;

    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(modes[i].name, name) == 0)
            return &modes[i];
    return NULL;
}

/* The first word of the mode file, or "normal" when it does not exist. */
static const struct mode *read_mode(const struct server *s)
{
    char buf[64], *w;
    const struct mode *m;
    ssize_t n = -1;
    int fd = -1;

    if (s->cfg.mode_file != NULL)
        fd = open(s->cfg.mode_file, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
    }
    if (n <= 0)
        return &modes[0];
    buf[n] = '\0';
    w = buf + strspn(buf, " \t\r\n");
    w[strcspn(w, " \t\r\n")] = '\0';
    if (*w == '\0')
        return &modes[0];
    m = find_mode(w);
    if (m == NULL) {
        complain("unknown mode, using normal", w);
        return &modes[0];
    }
    return m;
}

/* ---- HTTP answers ------------------------------------------------------ */

static const char *reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    default:
        return "Internal Server Error";
    }
}

/* Queues a complete HTTP/1.0 answer on c; returns status, or 0 on failure. */
static int http_reply(struct conn *c, int status, const char *ctype,
                      const unsigned char *body, size_t len)
{
    char head[256];
    int n;

    n = snprintf(head, sizeof(head),
                 "HTTP/1.0 %d %s\r\n%s%s%sContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n",
                 status, reason(status), ctype ? "Content-Type: " : "",
                 ctype ? ctype : "", ctype ? "\r\n" : "", len);
    free(c->out);
    c->out = malloc((size_t)n + len);
    if (c->out == NULL)
        return 0;
    memcpy(c->out, head, (size_t)n);
    if (len > 0)
        memcpy(c->out + n, body, len);
    c->outlen = (size_t)n + len;
    c->outoff = 0;
    return status;
}

static int respond_fixed(struct server *s, struct conn *c, const struct mode *m,
                         const struct request *rq)
{
    (void)s;
    (void)rq;
    return http_reply(c, m->status, m->bodylen ? CT_OCSP : NULL, m->body,
                      m->bodylen);
}

static int respond_hang(struct server *s, struct conn *c, const struct mode *m,
                        const struct request *rq)
{
    (void)s;
    (void)m;
    (void)rq;
    c->st = C_HANG;
    return 0;
}

static int respond_replay(struct server *s, struct conn *c,
                          const struct mode *m, const struct request *rq)
{
    unsigned char *body;
    size_t len = 0;
    int status;

    (void)m;
    (void)rq;
    body = read_file(s->cfg.replay_file, &len);
    if (body == NULL) {
        complain("replay mode: cannot read", s->cfg.replay_file);
        return http_reply(c, 200, CT_OCSP, der_internal, OCSP_ERR_LEN);
    }
    status = http_reply(c, 200, CT_OCSP, body, len);
    free(body);
    return status;
}

/* ---- running openssl ocsp ---------------------------------------------- */

/* Waits for pid at most ms; kills it when over time or when stopping. */
static int wait_child(pid_t pid, int64_t ms, int *status)
{
    int64_t end = now_ms() + ms;
    long nap = 1;

    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);

        if (r == pid)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
        if (g_stop || now_ms() >= end)
            break;
        sleep_ms(nap);
        if (nap < 20)
            nap *= 2;
    }
    complain("openssl ocsp timed out or interrupted; killing it", NULL);
    kill(pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return 0;
}

static int run_openssl(const struct server *s)
{
    const struct config *cf = &s->cfg;
    const char *argv[] = { cf->openssl,  "ocsp",      "-index",
                           cf->index,    "-CA",       cf->ca,
                           "-rsigner",   cf->rsigner, "-rkey",
                           cf->rkey,     "-reqin",    s->reqpath,
                           "-respout",   s->resppath, cf->validity_opt,
                           cf->validity, NULL };
    int status;
    pid_t pid = fork();

    if (pid < 0) {
        complain_errno("fork", NULL);
        return 0;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);

        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
            dup2(devnull, STDOUT_FILENO);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (!wait_child(pid, CHILD_TIMEOUT_MS, &status))
        return 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "ocsp_responder: openssl ocsp failed (status %d)\n",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 0;
    }
    return 1;
}

static int pki_ready(const struct config *cf)
{
    const char *files[] = { cf->index, cf->ca, cf->rsigner, cf->rkey };
    size_t i;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        if (access(files[i], R_OK) != 0) {
            complain_errno("cannot read", files[i]);
            return 0;
        }
    }
    return 1;
}

/* True if buf is exactly one DER SEQUENCE (a cheap request sanity check). */
static int der_is_sequence(const unsigned char *buf, size_t len)
{
    size_t hdr = 2, body = 0, i, n;

    if (len < 2 || buf[0] != 0x30)
        return 0;
    if (buf[1] < 0x80) {
        body = buf[1];
    } else {
        n = buf[1] & 0x7f;
        if (n == 0 || n > 4 || len < 2 + n)
            return 0;
        for (i = 0; i < n; i++)
            body = (body << 8) | buf[2 + i];
        hdr += n;
    }
    return hdr + body == len;
}

/* Runs the real responder on the request; answers with its DER. */
static int respond_ocsp(struct server *s, struct conn *c, const struct mode *m,
                        const struct request *rq)
{
    const unsigned char *err = der_internal;
    unsigned char *resp;
    size_t len;
    int fd, ok, status;

    (void)m;
    if (rq->status != 0)
        return http_reply(c, rq->status, NULL, NULL, 0);
    if (rq->der == NULL || !der_is_sequence(rq->der, rq->derlen)) {
        complain("request is not a DER SEQUENCE: malformedRequest", NULL);
        return http_reply(c, 200, CT_OCSP, der_malformed, OCSP_ERR_LEN);
    }
    if (!pki_ready(&s->cfg))
        return http_reply(c, 200, CT_OCSP, der_internal, OCSP_ERR_LEN);
    unlink(s->resppath);
    fd = open(s->reqpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ok = fd >= 0 && write_all(fd, rq->der, rq->derlen);
    ok = (fd >= 0 && close(fd) == 0) && ok;
    if (ok && !run_openssl(s)) {
        err = der_malformed; /* the PKI is there: blame the request */
        ok = 0;
    }
    resp = ok ? read_file(s->resppath, &len) : NULL;
    if (resp == NULL)
        return http_reply(c, 200, CT_OCSP, err, OCSP_ERR_LEN);
    status = http_reply(c, 200, CT_OCSP, resp, len);
    free(resp);
    return status;
}

/* ---- request parsing ------------------------------------------------- */

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

/* Percent-decodes src[0..len) into dst (same size or larger). */
static size_t pct_decode(const char *src, size_t len, char *dst)
{
    size_t i, o = 0;

    for (i = 0; i < len; i++) {
        int hi, lo;

        if (src[i] == '%' && i + 2 < len
            && (hi = hexval((unsigned char)src[i + 1])) >= 0
            && (lo = hexval((unsigned char)src[i + 2])) >= 0) {
            dst[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dst[o++] = src[i];
        }
    }
    return o;
}

static int b64val(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+' || ch == '-')
        return 62;
    if (ch == '/' || ch == '_')
        return 63;
    return -1;
}

/* Base64 (standard or URL alphabet, padding optional); returns 1 if valid. */
static int b64_decode(const char *src, size_t len, unsigned char *dst,
                      size_t *outlen)
{
    unsigned long acc = 0;
    size_t i, o = 0, bits = 0;

    while (len > 0 && src[len - 1] == '=')
        len--;
    for (i = 0; i < len; i++) {
        int v = b64val((unsigned char)src[i]);

        if (v < 0)
            return 0;
        acc = (acc << 6) | (unsigned long)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dst[o++] = (unsigned char)(acc >> bits);
            acc &= (1UL << bits) - 1;
        }
    }
    *outlen = o;
    return len > 0 && len % 4 != 1;
}

/*
 * GET /<any prefix>/<url-encoded base64 of the DER request> (RFC 6960 A.1).
 * The request is the longest '/'-delimited suffix of the path that decodes
 * to exactly one DER SEQUENCE: the last segment when the client escaped the
 * base64 properly, more segments when it left a '/' of the base64 raw.
 */
static void decode_get(const char *t, size_t tlen, struct request *rq)
{
    size_t end = 0, start = 0, n, dlen;
    char *tmp;
    unsigned char *der;

    while (end < tlen && t[end] != '?' && t[end] != '#')
        end++;
    tmp = malloc(end + 1);
    der = malloc(end + 1);
    while (tmp != NULL && der != NULL && start < end) {
        n = pct_decode(t + start, end - start, tmp);
        if (b64_decode(tmp, n, der, &dlen) && der_is_sequence(der, dlen)) {
            free(tmp);
            rq->der = der;
            rq->derlen = dlen;
            return;
        }
        while (start < end && t[start] != '/')
            start++;
        start++;
    }
    free(tmp);
    free(der);
}

/* Finds the blank line ending the headers; *hlen is the offset after it. */
static int find_head_end(const char *in, size_t len, size_t *hlen)
{
    size_t i;

    for (i = 0; i + 1 < len; i++) {
        if (in[i] != '\n')
            continue;
        if (in[i + 1] == '\n') {
            *hlen = i + 2;
            return 1;
        }
        if (in[i + 1] == '\r' && i + 2 < len && in[i + 2] == '\n') {
            *hlen = i + 3;
            return 1;
        }
    }
    return 0;
}

/* Content-Length of a POST: 0 and *clen when valid, else an HTTP status. */
static int content_length(const char *in, size_t hlen, size_t *clen)
{
    static const char name[] = "Content-Length:";
    const size_t nlen = sizeof(name) - 1;
    size_t i = 0, v = 0;
    int digits = 0;

    for (;;) {
        while (i < hlen && in[i] != '\n')
            i++;
        if (++i >= hlen)
            return 411;
        if (hlen - i > nlen && strncasecmp(in + i, name, nlen) == 0)
            break;
    }
    for (i += nlen; i < hlen && (in[i] == ' ' || in[i] == '\t'); i++)
        ;
    for (; i < hlen && in[i] >= '0' && in[i] <= '9'; i++, digits++) {
        v = v * 10 + (size_t)(in[i] - '0');
        if (v > MAX_BODY)
            return 413;
    }
    if (digits == 0 || (in[i] != '\r' && in[i] != '\n' && in[i] != ' '))
        return 400;
    *clen = v;
    return 0;
}

/* Returns 1 when a whole request (or an HTTP error) is in rq, 0 if partial. */
static int parse_request(const struct conn *c, struct request *rq)
{
    const char *in = (const char *)c->in;
    size_t hlen, mlen, tstart, tend, clen = 0;

    memset(rq, 0, sizeof(*rq));
    rq->method = "-";
    if (!find_head_end(in, c->inlen, &hlen)) {
        if (c->inlen < MAX_HEAD)
            return 0;
        rq->status = 431;
        return 1;
    }
    mlen = strcspn(in, " \r\n");
    tstart = mlen + 1;
    tend = tstart;
    while (tend < hlen && in[tend] != ' ' && in[tend] != '\r'
           && in[tend] != '\n')
        tend++;
    if (mlen >= hlen || in[mlen] != ' ' || tend == tstart) {
        rq->status = 400;
    } else if (mlen == 3 && memcmp(in, "GET", 3) == 0) {
        rq->method = "GET";
        decode_get(in + tstart, tend - tstart, rq);
    } else if (mlen == 4 && memcmp(in, "POST", 4) == 0) {
        rq->method = "POST";
        rq->status = content_length(in, hlen, &clen);
        if (rq->status == 0 && c->inlen < hlen + clen)
            return 0;
        if (rq->status == 0 && (rq->der = malloc(clen + 1)) != NULL) {
            memcpy(rq->der, c->in + hlen, clen);
            rq->derlen = clen;
        }
    } else {
        rq->status = 405;
    }
    return 1;
}

/* ---- connections ------------------------------------------------------- */

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->st = C_FREE;
}

static void conn_answer(struct server *s, struct conn *c, struct request *rq)
{
    const struct mode *m = c->mode;
    int status;

    s->seq++;
    c->st = C_WRITE;
    status = m->respond(s, c, m, rq);
    log_request(s, rq->method, rq->derlen, m, status);
    free(rq->der);
    rq->der = NULL;
    if (c->st == C_HANG) {
        c->deadline = NO_DEADLINE; /* until the client leaves or lifetime */
        return;
    }
    if (c->out == NULL) {
        conn_close(c);
        return;
    }
    c->next_write = now_ms();
    c->deadline = c->next_write + s->cfg.timeout_s * 1000;
}

/* Reads what is there; in C_READ, answers once the request is complete. */
static void conn_read(struct server *s, struct conn *c)
{
    unsigned char scratch[4096];
    struct request rq;
    int eof = 0;

    for (;;) {
        int keep = c->st == C_READ;
        size_t room = keep ? MAX_IN - c->inlen : sizeof(scratch);
        ssize_t n;

        if (room == 0)
            break;
        n = recv(c->fd, keep ? c->in + c->inlen : scratch, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            eof = 1;
            break;
        }
        if (keep) {
            c->inlen += (size_t)n;
            c->in[c->inlen] = '\0';
        }
    }
    if (c->st == C_READ && parse_request(c, &rq)) {
        conn_answer(s, c, &rq);
        return;
    }
    if (eof) {
        if (c->st == C_READ && c->inlen > 0) {
            s->seq++;
            log_request(s, "-", c->inlen, c->mode, 0);
        }
        conn_close(c);
    }
}

static void conn_write(struct server *s, struct conn *c)
{
    size_t n = c->outlen - c->outoff;
    int64_t gap = c->mode->write_gap_ms;
    ssize_t r;

    if (gap > 0 && n > 1)
        n = 1;
    r = send(c->fd, c->out + c->outoff, n, MSG_NOSIGNAL);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (r <= 0) {
        conn_close(c);
        return;
    }
    c->outoff += (size_t)r;
    if (c->outoff == c->outlen) {
        shutdown(c->fd, SHUT_WR);
        c->st = C_DRAIN;
        c->deadline = now_ms() + DRAIN_MS;
    } else if (gap > 0) {
        c->next_write = now_ms() + gap;
        c->deadline = c->next_write + s->cfg.timeout_s * 1000;
    }
}

static void conn_timeout(struct server *s, struct conn *c)
{
    if (c->st == C_READ && c->inlen > 0) {
        s->seq++;
        log_request(s, "-", c->inlen, c->mode, 408);
    }
    conn_close(c);
}

static struct conn *free_slot(struct server *s)
{
    size_t i;

    for (i = 0; i < MAX_CONNS; i++)
        if (s->conns[i].st == C_FREE)
            return &s->conns[i];
    return NULL;
}

static void accept_conns(struct server *s)
{
    struct conn *c;

    while ((c = free_slot(s)) != NULL) {
        const struct mode *m;
        int fd = accept(s->lfd, NULL, NULL);

        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                complain_errno("accept", NULL);
            return;
        }
        m = read_mode(s);
        if (m->flags & MODE_AT_ACCEPT) {
            s->seq++;
            log_request(s, "-", 0, m, 0);
            close(fd);
            continue;
        }
        c->in = malloc(MAX_IN + 1);
        if (c->in == NULL || !set_nonblock_cloexec(fd)) {
            free(c->in);
            c->in = NULL;
            close(fd);
            continue;
        }
        c->fd = fd;
        c->st = C_READ;
        c->mode = m;
        c->deadline = now_ms() + s->cfg.timeout_s * 1000;
    }
}

/* ---- event loop --------------------------------------------------------- */

static void on_signal(int sig)
{
    int saved = errno;

    (void)sig;
    g_stop = 1;
    if (g_sigpipe[1] >= 0 && write(g_sigpipe[1], "x", 1) < 0) {
        /* the pipe is full: a wakeup is already pending */
    }
    errno = saved;
}

/* Fills pfd/who for one poll() round; returns the count, sets *wake. */
static int build_pollset(struct server *s, struct pollfd *pfd,
                         struct conn **who, int64_t now, int64_t *wake)
{
    int nfd = 0, have_free = 0;
    size_t i;

    pfd[nfd].fd = g_sigpipe[0];
    pfd[nfd].events = POLLIN;
    who[nfd++] = NULL;
    for (i = 0; i < MAX_CONNS; i++) {
        struct conn *c = &s->conns[i];

        if (c->st != C_FREE && c->deadline <= now)
            conn_timeout(s, c);
        if (c->st == C_FREE) {
            have_free = 1;
            continue;
        }
        pfd[nfd].events = POLLIN;
        if (c->st == C_WRITE) {
            pfd[nfd].events = c->next_write <= now ? POLLOUT : 0;
            if (c->next_write > now && c->next_write < *wake)
                *wake = c->next_write;
        }
        if (c->deadline < *wake)
            *wake = c->deadline;
        pfd[nfd].fd = c->fd;
        who[nfd++] = c;
    }
    if (have_free) {
        pfd[nfd].fd = s->lfd;
        pfd[nfd].events = POLLIN;
        who[nfd++] = NULL;
    }
    return nfd;
}

static int serve(struct server *s)
{
    struct pollfd pfd[MAX_CONNS + 2];
    struct conn *who[MAX_CONNS + 2];

    while (!g_stop) {
        int64_t now = now_ms(), wake = s->end_ms;
        int nfd, i, r;

        if (now >= s->end_ms) {
            complain("lifetime over, exiting", NULL);
            break;
        }
        nfd = build_pollset(s, pfd, who, now, &wake);
        r = poll(pfd, (nfds_t)nfd,
                 wake - now > INT_MAX ? INT_MAX : (int)(wake - now));
        if (r < 0 && errno != EINTR) {
            complain_errno("poll", NULL);
            return 0;
        }
        for (i = 0; r > 0 && i < nfd && !g_stop; i++) {
            struct conn *c = who[i];
            short re = pfd[i].revents;

            if (re == 0)
                continue;
            if (c == NULL && pfd[i].fd == s->lfd)
                accept_conns(s);
            else if (c == NULL)
                continue; /* the signal pipe: g_stop is set */
            else if (c->st == C_WRITE && (re & POLLOUT))
                conn_write(s, c);
            else if (c->st == C_WRITE)
                conn_close(c); /* POLLERR/POLLHUP: the client left */
            else
                conn_read(s, c);
        }
    }
    return 1;
}

/* ---- setup ----------------------------------------------------------- */

static int install_signals(void)
{
    struct sigaction sa;
    int i;

    if (pipe(g_sigpipe) != 0)
        return 0;
    for (i = 0; i < 2; i++)
        if (!set_nonblock_cloexec(g_sigpipe[i]))
            return 0;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGTERM, &sa, NULL) == 0
           && sigaction(SIGINT, &sa, NULL) == 0
           && sigaction(SIGHUP, &sa, NULL) == 0;
}

static int open_listener(struct server *s)
{
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    int one = 1;

    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->lfd < 0 || !set_nonblock_cloexec(s->lfd))
        return 0;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)s->cfg.port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0
        || listen(s->lfd, 64) != 0
        || getsockname(s->lfd, (struct sockaddr *)&sin, &slen) != 0) {
        complain_errno("cannot listen on 127.0.0.1", NULL);
        return 0;
    }
    s->cfg.port = ntohs(sin.sin_port);
    return 1;
}

static int setup_tmp(struct server *s)
{
    const char *base = getenv("TMPDIR");
    size_t n = sizeof(s->tmpdir);

    if (base == NULL || *base == '\0')
        base = "/tmp";
    if (snprintf(s->tmpdir, n, "%s/stp-responder.XXXXXX", base) >= (int)n
        || mkdtemp(s->tmpdir) == NULL) {
        complain_errno("cannot create a temporary directory in", base);
        s->tmpdir[0] = '\0';
        return 0;
    }
    snprintf(s->reqpath, sizeof(s->reqpath), "%s/req.der", s->tmpdir);
    snprintf(s->resppath, sizeof(s->resppath), "%s/resp.der", s->tmpdir);
    return 1;
}

static void cleanup(struct server *s)
{
    size_t i;

    for (i = 0; i < MAX_CONNS; i++)
        conn_close(&s->conns[i]);
    if (s->lfd >= 0)
        close(s->lfd);
    if (s->logfd >= 0)
        close(s->logfd);
    if (s->tmpdir[0] != '\0') {
        unlink(s->reqpath);
        unlink(s->resppath);
        rmdir(s->tmpdir);
    }
    free(s->cfg.index);
    free(s->cfg.ca);
    free(s->cfg.rsigner);
    free(s->cfg.rkey);
    free(s->cfg.mode_file);
    free(s->cfg.replay_file);
}

/* ---- options ----------------------------------------------------------- */

struct opts {
    const char *dir, *index, *ca, *rsigner, *rkey, *mode_file, *openssl;
    const char *replay_file;
    const char *port, *port_file, *pid_file, *log, *ndays, *nmin;
    const char *lifetime, *timeout;
};

static void usage(void)
{
    fputs("usage: ocsp_responder --dir DIR | --index F --ca F --rsigner F"
          " --rkey F\n"
          "  [--port N | --port-file F] [--pid-file F] [--log F]\n"
          "  [--ndays N | --nmin N] [--lifetime S] [--timeout S]\n"
          "  [--mode-file F] [--replay-file F] [--openssl PATH]\n"
          "Listens on 127.0.0.1 only. DIR defaults: index.txt int.pem"
          " ocsp.pem ocsp.key responder.mode\n",
          stderr);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    const struct {
        const char *name;
        const char **dst;
    } tab[] = {
        { "--dir", &o->dir },
        { "--index", &o->index },
        { "--ca", &o->ca },
        { "--rsigner", &o->rsigner },
        { "--rkey", &o->rkey },
        { "--mode-file", &o->mode_file },
        { "--openssl", &o->openssl },
        { "--replay-file", &o->replay_file },
        { "--port", &o->port },
        { "--port-file", &o->port_file },
        { "--pid-file", &o->pid_file },
        { "--log", &o->log },
        { "--ndays", &o->ndays },
        { "--nmin", &o->nmin },
        { "--lifetime", &o->lifetime },
        { "--timeout", &o->timeout },
    };
    const size_t ntab = sizeof(tab) / sizeof(tab[0]);
    int i;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        size_t n = strcspn(arg, "="), k;

        for (k = 0; k < ntab; k++)
            if (strlen(tab[k].name) == n && strncmp(arg, tab[k].name, n) == 0)
                break;
        if (k == ntab) {
            complain("unknown option", arg);
            return 0;
        }
        if (arg[n] == '=') {
            *tab[k].dst = arg + n + 1;
        } else if (i + 1 < argc) {
            *tab[k].dst = argv[++i];
        } else {
            complain("missing value for", arg);
            return 0;
        }
    }
    return 1;
}

/* An explicit path, else DIR/name, else an error. */
static char *pick_path(const char *given, const char *dir, const char *name,
                       const char *opt)
{
    char *p = NULL;

    if (given != NULL)
        p = strdup(given);
    else if (dir != NULL)
        p = path_join(dir, name);
    if (p == NULL && opt != NULL)
        complain("need --dir or", opt);
    return p;
}

static int parse_number(const char *s, const char *opt, long min, long max,
                        long *out)
{
    if (s == NULL)
        return 1;
    if (parse_long(s, min, max, out))
        return 1;
    complain("bad number for", opt);
    return 0;
}

static int build_config(const struct opts *o, struct config *cf)
{
    long v;

    cf->index = pick_path(o->index, o->dir, "index.txt", "--index");
    cf->ca = pick_path(o->ca, o->dir, "int.pem", "--ca");
    cf->rsigner = pick_path(o->rsigner, o->dir, "ocsp.pem", "--rsigner");
    cf->rkey = pick_path(o->rkey, o->dir, "ocsp.key", "--rkey");
    cf->mode_file = pick_path(o->mode_file, o->dir, "responder.mode", NULL);
    cf->replay_file =
        pick_path(o->replay_file, o->dir, "responder.replay.der", NULL);
    if (!cf->index || !cf->ca || !cf->rsigner || !cf->rkey)
        return 0;
    cf->openssl = o->openssl ? o->openssl : "openssl";
    cf->port_file = o->port_file;
    cf->pid_file = o->pid_file;
    cf->log_file = o->log;
    cf->port = 0;
    cf->lifetime_s = 300;
    cf->timeout_s = 10;
    if (o->ndays != NULL && o->nmin != NULL) {
        complain("--ndays and --nmin are exclusive", NULL);
        return 0;
    }
    cf->validity_opt = o->nmin ? "-nmin" : "-ndays";
    cf->validity = o->nmin ? o->nmin : o->ndays ? o->ndays : "1";
    return parse_number(o->port, "--port", 0, 65535, &cf->port)
           && parse_number(o->lifetime, "--lifetime", 1, 86400, &cf->lifetime_s)
           && parse_number(o->timeout, "--timeout", 1, 3600, &cf->timeout_s)
           && parse_number(cf->validity, cf->validity_opt, 1, 10000000, &v);
}

/* ---- main ------------------------------------------------------------- */

static int start(struct server *s)
{
    const struct config *cf = &s->cfg;

    if (!install_signals() || !setup_tmp(s))
        return 0;
    if (cf->log_file != NULL) {
        s->logfd =
            open(cf->log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (s->logfd < 0) {
            complain_errno("cannot open", cf->log_file);
            return 0;
        }
    }
    if (!open_listener(s))
        return 0;
    if (cf->pid_file != NULL && !write_file_atomic(cf->pid_file, getpid()))
        return 0;
    if (cf->port_file != NULL && !write_file_atomic(cf->port_file, cf->port))
        return 0;
    s->end_ms = now_ms() + cf->lifetime_s * 1000;
    fprintf(stderr, "ocsp_responder: listening on 127.0.0.1:%ld for %ld s\n",
            cf->port, cf->lifetime_s);
    return 1;
}

int main(int argc, char **argv)
{
    static struct server s;
    struct opts o;
    size_t i;
    int ok = 0;

    if (argc == 2
        && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage();
        return 0;
    }
    memset(&o, 0, sizeof(o));
    s.lfd = -1;
    s.logfd = -1;
    for (i = 0; i < MAX_CONNS; i++)
        s.conns[i].fd = -1;
    if (!parse_args(argc, argv, &o) || !build_config(&o, &s.cfg)) {
        usage();
        cleanup(&s);
        return 2;
    }
    if (start(&s))
        ok = serve(&s);
    cleanup(&s);
    return ok ? 0 : 1;
}
